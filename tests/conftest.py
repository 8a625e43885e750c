"""Shared fixtures: where the third-party data lives (../shared/data or $EQUIVREPAIR_DATA)."""

from __future__ import annotations

import os

# one BLAS thread: the batched bounds are many small matmuls, which threads slow down on 2 cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("EQUIVREPAIR_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data() -> Path:
    d = data_dir()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d} (set EQUIVREPAIR_DATA)")
    return d


def round8(net):
    """The benchmarks' 8-bit copy of ``net`` (``benchmarks/acasxu_exact.round8``: symmetric
    per-tensor rounding, s = max|w|/127), so tests use the issue's pairs exactly."""
    import sys

    bench = str(ROOT / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    from acasxu_exact import round8 as _round8

    return _round8(net)
