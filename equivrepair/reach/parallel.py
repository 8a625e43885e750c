"""The branch-and-bound frontier spread over worker processes on one machine (``--workers``).

A short serial phase runs the branch and bound for a few rounds, which finds good witnesses and
leaves a frontier of the hard sub-boxes; the frontier is dealt out to worker processes, each
seeded with the best witnesses so far (so each prunes against the global incumbent), and the
results are combined: the lower bound is the best witness anywhere, the upper bound the maximum
of the serial phase's closed bounds and the workers' sound upper bounds.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ..nets.ir import FNN
from .bab import BabResult, maximize


def _solve(args: tuple) -> BabResult:
    orig, comp, lo, hi, frontier, seeds, kwargs = args
    return maximize(orig, comp, lo, hi, frontier=frontier, seed_points=seeds, **kwargs)


def maximize_parallel(
    orig: FNN,
    comp: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    workers: int = 2,
    serial_branches: int = 512,
    time_limit: float | None = None,
    progress: Any = None,
    **kwargs: Any,
) -> BabResult:
    """:func:`maximize` with its frontier dealt out to ``workers`` processes; same guarantees."""
    t0 = time.perf_counter()
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    first = maximize(orig, comp, lo, hi, max_branches=serial_branches, time_limit=time_limit, **kwargs)
    if first.finished or first.frontier is None or len(first.frontier[0]) == 0 or first.reason != "branch limit":
        return first
    F_lo, F_hi = first.frontier
    remaining = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 0.0)
    chunks = [np.arange(i, len(F_lo), workers) for i in range(workers)]
    jobs = [
        (orig, comp, lo, hi, (F_lo[c], F_hi[c]), first.witnesses, dict(kwargs, time_limit=remaining))
        for c in chunks
        if len(c)
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_solve, jobs))
    lower = first.lower.copy()
    wit = first.witnesses.copy()
    upper = first.closed_upper.copy()
    for r in results:
        better = r.lower > lower
        lower[better] = r.lower[better]
        wit[better] = r.witnesses[better]
        upper = np.maximum(upper, r.upper)
    upper = np.maximum(upper, lower)
    stats = {
        "branches": int(first.stats["branches"] + sum(r.stats.get("branches", 0) for r in results)),
        "boxes_bounded": int(first.stats["boxes_bounded"] + sum(r.stats.get("boxes_bounded", 0) for r in results)),
        "exact_leaves": int(sum(r.stats.get("exact_leaves", 0) for r in [first, *results])),
        "milp_leaves": int(sum(r.stats.get("milp_leaves", 0) for r in [first, *results])),
        "workers": workers,
        "serial_branches": int(first.stats["branches"]),
        "time": time.perf_counter() - t0,
    }
    finished = all(r.finished for r in results)
    reason = "converged" if finished else next(r.reason for r in results if not r.finished)
    return BabResult(first.objectives, lower, upper, wit, finished, reason, stats)
