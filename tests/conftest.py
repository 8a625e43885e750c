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
