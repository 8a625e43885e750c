"""The source revision benchmarks record: the checkout's commit, marked when tracked files differ."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from equivrepair.provenance import source_revision

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(where: Path, *args: str) -> str:
    cmd = ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_clean_and_dirty_checkout(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert source_revision(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("new\n")  # untracked files do not count
    assert source_revision(tmp_path) == head
    (tmp_path / "a.txt").write_text("two\n")
    assert source_revision(tmp_path) == head + "+dirty"


def test_outside_a_checkout_is_none(tmp_path: Path) -> None:
    assert source_revision(tmp_path / "missing") is None
    plain = tmp_path / "plain"
    plain.mkdir()
    if subprocess.run(["git", "-C", str(plain), "rev-parse"], capture_output=True).returncode == 0:
        pytest.skip("the temporary directory lies inside a git checkout")
    assert source_revision(plain) is None
