"""Top-1 equivalence: argmax Φ1(x) = argmax Φ2(x) for every x in X, decided by input splitting.

A box is proved when one class c wins strictly in both networks on all of it (lower bounds of
y_c − y_k > 0 for every k, from back-substitution through each network with the class-difference
layer folded in). A point where the argmaxes differ, or where either network has a tie, is a
counterexample (the same convention as the VNN-LIB top-1 property). Boxes that straddle the two
networks' decision boundaries are split until one of the two happens or the time runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..nets.ir import FNN, Layer
from .result import Decision
from .symbolic import crown_bounds


def _margin_net(net: FNN) -> tuple[FNN, np.ndarray]:
    """``net`` with its last layer replaced by all class differences y_c − y_k (c ≠ k)."""
    m = net.n_outputs
    pairs = np.array([(c, k) for c in range(m) for k in range(m) if c != k])
    D = np.zeros((len(pairs), m))
    D[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    D[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    last = net.layers[-1]
    layers = net.layers[:-1] + (Layer(D @ last.W, D @ last.b, last.activation),)
    return net.with_layers(layers), pairs


def _disagree(orig: FNN, comp: FNN, x: np.ndarray) -> np.ndarray:
    """Points where the argmaxes differ or either network has a tie at the top."""
    y1, y2 = orig.forward(x), comp.forward(x)
    a1, a2 = y1.argmax(axis=1), y2.argmax(axis=1)
    tie1 = (y1 == y1.max(axis=1, keepdims=True)).sum(axis=1) > 1
    tie2 = (y2 == y2.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return (a1 != a2) | tie1 | tie2


def check_top1(
    orig: FNN,
    comp: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    time_limit: float | None = None,
    batch: int = 256,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> Decision:
    """Decide top-1 equivalence on the box [lo, hi] (``epsilon`` is unused and reported as 0)."""
    t0 = time.perf_counter()
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    m = orig.n_outputs
    n1, pairs = _margin_net(orig)
    n2, _ = _margin_net(comp)
    rng = np.random.default_rng(seed)
    # a quick search for a counterexample first
    x = np.vstack([rng.uniform(lo, hi, size=(2000, lo.size)), 0.5 * (lo + hi)])
    bad = _disagree(orig, comp, x)
    stats = {"boxes": 0, "branches": 0}
    if bad.any():
        stats["time"] = time.perf_counter() - t0
        return Decision("not_equivalent", 0.0, x[np.argmax(bad)], None, method="top1-bab", stats=stats)
    F_lo, F_hi = lo[None].copy(), hi[None].copy()
    while len(F_lo):
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            stats["time"] = time.perf_counter() - t0
            stats["open"] = len(F_lo)
            return Decision("unknown", 0.0, method="top1-bab", message="time limit", stats=stats)
        take = min(batch, len(F_lo))
        b_lo, b_hi = F_lo[:take], F_hi[:take]
        F_lo, F_hi = F_lo[take:], F_hi[take:]
        s1, _ = crown_bounds(n1, b_lo, b_hi)
        s2, _ = crown_bounds(n2, b_lo, b_hi)
        stats["boxes"] += take
        # class c is proved on a box when all its margins are positive in both networks
        ok1 = (s1.lower > 0).reshape(take, m, m - 1).all(axis=2)
        ok2 = (s2.lower > 0).reshape(take, m, m - 1).all(axis=2)
        proved = (ok1 & ok2).any(axis=1)
        # candidate counterexamples: the vertex minimising each margin's lower bound, and centres
        coef = np.concatenate([s1.Lw, s2.Lw], axis=1)  # (take, 2P, n)
        verts = np.where(coef > 0, b_lo[:, None, :], b_hi[:, None, :]).reshape(-1, lo.size)
        cand = np.vstack([verts, 0.5 * (b_lo + b_hi)])
        bad = _disagree(orig, comp, cand)
        if bad.any():
            stats["time"] = time.perf_counter() - t0
            return Decision("not_equivalent", 0.0, cand[np.argmax(bad)], None, method="top1-bab", stats=stats)
        open_lo, open_hi = b_lo[~proved], b_hi[~proved]
        if len(open_lo):
            d = np.argmax(open_hi - open_lo, axis=1)
            rows = np.arange(len(open_lo))
            mid = 0.5 * (open_lo[rows, d] + open_hi[rows, d])
            c_lo, c_hi = np.concatenate([open_lo, open_lo]), np.concatenate([open_hi, open_hi])
            c_hi[rows, d] = mid
            c_lo[len(open_lo) + rows, d] = mid
            F_lo, F_hi = np.concatenate([F_lo, c_lo]), np.concatenate([F_hi, c_hi])
            stats["branches"] += len(open_lo)
        if progress is not None:
            progress({"time": time.perf_counter() - t0, "open": len(F_lo), "branches": stats["branches"]})
    stats["time"] = time.perf_counter() - t0
    return Decision("equivalent", 0.0, method="top1-bab", stats=stats)
