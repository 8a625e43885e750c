"""Where a result came from: the source revision of the running equivrepair, for benchmark records.

Benchmark JSON records the package and solver versions; between stops the version number stays
0.1.0 while the engine changes, so a figure also cites the git commit it was measured on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def source_revision(path: str | Path | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: this package), with ``+dirty``
    when tracked files differ from it; None outside a git checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + ("+dirty" if dirty else "")
