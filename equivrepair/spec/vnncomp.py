"""VNN-COMP benchmark files: ``instances.csv`` and verifier result files.

``instances.csv`` has no header; each row is ``onnx path, vnnlib path, timeout in seconds``, the
paths relative to the folder holding the CSV (that is how the VNN-COMP scripts resolve them).

A result file starts with one of ``sat``, ``unsat``, ``timeout``, ``unknown``, ``error``; after
``sat`` comes the counterexample as an s-expression assignment::

    sat
    ((X_0 0.5)
     (X_1 -0.25)
     (Y_0 1.75))

The older words ``violated`` (= sat) and ``holds`` (= unsat) are read as well.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import FormatError
from .vnnlib import SAtom, SList, format_number, parse_sexprs

__all__ = [
    "Instance",
    "VerificationResult",
    "RESULT_STATUSES",
    "write_instances_csv",
    "read_instances_csv",
    "write_result_file",
    "read_result_file",
]

RESULT_STATUSES = ("sat", "unsat", "timeout", "unknown", "error")
_SYNONYMS = {"violated": "sat", "holds": "unsat"}


class Instance(NamedTuple):
    """One row of ``instances.csv``; paths as written (relative to the CSV's folder)."""

    onnx: str
    vnnlib: str
    timeout: float

    def resolve(self, root: str | Path) -> tuple[Path, Path, float]:
        """Absolute paths, given the folder holding the CSV."""
        r = Path(root)
        return (r / self.onnx).resolve(), (r / self.vnnlib).resolve(), self.timeout


class VerificationResult(NamedTuple):
    """A parsed result file; ``x`` and ``y`` are the counterexample after ``sat`` (else None)."""

    status: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None


def _rel(p: str | os.PathLike[str], root: Path) -> str:
    s = os.fspath(p)
    if os.path.isabs(s):
        s = os.path.relpath(s, root.resolve())
    s = s.replace(os.sep, "/")
    if "," in s or "\n" in s:
        raise ValueError(f"instances.csv cannot hold a path with a comma or newline: {s!r}")
    return s


def _format_timeout(t: Any) -> str:
    v = float(t)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {t!r}")
    return str(int(v)) if v.is_integer() else format_number(v)


def write_instances_csv(path: str | Path, rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``instances.csv`` from rows ``(onnx, vnnlib, timeout)``.

    Absolute paths are made relative to the CSV's folder; relative paths are written as given
    (they are understood relative to that folder). No header, ``/`` as the separator.
    """
    p = Path(path)
    root = p.parent
    lines = []
    for k, row in enumerate(rows):
        if len(row) != 3:
            raise ValueError(f"instances.csv row {k}: expected (onnx, vnnlib, timeout), got {len(row)} values")
        onnx, vnnlib, timeout = row
        lines.append(f"{_rel(onnx, root)},{_rel(vnnlib, root)},{_format_timeout(timeout)}")
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def read_instances_csv(path: str | Path) -> list[Instance]:
    """Read ``instances.csv``; blank lines are skipped, anything else malformed is a FormatError."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"instances file not found: {p}")
    out = []
    for lineno, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [s.strip() for s in line.split(",")]
        if len(parts) != 3:
            raise FormatError(f"{p}:{lineno}: expected 'onnx,vnnlib,timeout', got {len(parts)} fields: {raw!r}")
        onnx, vnnlib, t = parts
        if not onnx or not vnnlib:
            raise FormatError(f"{p}:{lineno}: empty path in {raw!r}")
        try:
            timeout = float(t)
        except ValueError:
            raise FormatError(f"{p}:{lineno}: timeout {t!r} is not a number") from None
        if not (math.isfinite(timeout) and timeout > 0):
            raise FormatError(f"{p}:{lineno}: timeout must be a positive number of seconds, got {t!r}")
        out.append(Instance(onnx, vnnlib, timeout))
    return out


def write_result_file(path: str | Path, status: str, counterexample_x: Any = None, y: Any = None) -> Path:
    """Write a VNN-COMP result file; ``sat`` may carry the counterexample ``x`` with its output ``y``."""
    if status not in RESULT_STATUSES:
        raise ValueError(f"result status must be one of {RESULT_STATUSES}, got {status!r}")
    if (counterexample_x is None) != (y is None):
        raise ValueError("a counterexample needs both the input x and the output y")
    lines = [status]
    if counterexample_x is not None:
        if status != "sat":
            raise ValueError(f"only a 'sat' result carries a counterexample, not {status!r}")
        x = np.asarray(counterexample_x, dtype=np.float64).ravel()
        yy = np.asarray(y, dtype=np.float64).ravel()
        entries = [f"(X_{i} {format_number(v)})" for i, v in enumerate(x)]
        entries += [f"(Y_{j} {format_number(v)})" for j, v in enumerate(yy)]
        if entries:
            body = "\n ".join(entries)
            lines.append(f"({body})")
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


_ASSIGN = re.compile(r"([XY])_(0|[1-9]\d*)")


def read_result_file(path: str | Path) -> VerificationResult:
    """Read a VNN-COMP result file (status and, after ``sat``, the counterexample)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"result file not found: {p}")
    text = p.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise FormatError(f"{p}:1: empty result file")
    first_line_no = text[: len(text) - len(stripped)].count("\n") + 1
    first, _, rest = stripped.partition("\n")
    word = first.strip().lower()
    word = _SYNONYMS.get(word, word)
    if word not in RESULT_STATUSES:
        raise FormatError(
            f"{p}:{first_line_no}: unknown result {first.strip()!r} (expected one of {', '.join(RESULT_STATUSES)})"
        )
    if word != "sat":
        if rest.strip():
            raise FormatError(f"{p}:{first_line_no + 1}: unexpected text after {word!r}")
        return VerificationResult(word)
    if not rest.strip():
        return VerificationResult("sat")
    # re-pad so that line numbers in errors count from the top of the file
    exprs = parse_sexprs("\n" * first_line_no + rest, str(p))
    if len(exprs) != 1:
        raise FormatError(f"{p}:{exprs[1].line if len(exprs) > 1 else first_line_no + 1}: expected one assignment list")
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for item in exprs[0].items:
        if not (isinstance(item, SList) and len(item.items) == 2 and all(isinstance(t, SAtom) for t in item.items)):
            raise FormatError(f"{p}:{item.line}: expected (X_i value) or (Y_j value), got {item}")
        name, val = item.items
        m = _ASSIGN.fullmatch(name.text)
        if not m:
            raise FormatError(f"{p}:{item.line}: unknown variable {name.text!r} in the counterexample")
        try:
            v = float(val.text)
        except ValueError:
            raise FormatError(f"{p}:{item.line}: value {val.text!r} of {name.text} is not a number") from None
        kind, idx = m.group(1), int(m.group(2))
        if idx in values[kind]:
            raise FormatError(f"{p}:{item.line}: {name.text} is assigned twice")
        values[kind][idx] = v
    arrays = []
    for kind in ("X", "Y"):
        d = values[kind]
        missing = [i for i in range(len(d)) if i not in d]
        if missing:
            raise FormatError(f"{p}: counterexample assigns {kind}_{max(d)} but not {kind}_{missing[0]}")
        arrays.append(np.array([d[i] for i in range(len(d))], dtype=np.float64) if d else None)
    return VerificationResult("sat", arrays[0], arrays[1])
