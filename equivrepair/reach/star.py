"""Exact star-set enumeration of the merged network (the ``star-enum`` method, as in the seed paper).

A star is an affine image ``y = V x + v`` of an input polytope
``{x : lo <= x <= hi, A x <= c, G x <= g}``. A ReLU whose sign is not fixed on the star splits
it in two (adding ``z_i >= 0`` or ``z_i <= 0`` to the polytope), so the leaves partition X into
linear regions and the union of their output stars is exactly the reachable set of Φ1 − Φ2.
Each output's extremes come from one LP per star and objective; the stars are kept so users
can plot projections of the reachable discrepancy set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..merge import merge
from ..nets.ir import FNN
from .lp import new_highs, run_highs

LP_TOL = 1e-9  # HiGHS primal/dual feasibility tolerance used here


@dataclass
class Star:
    """The output set ``{V x + v : x in polytope}``; the polytope is the box plus ``G x <= g``."""

    V: np.ndarray
    v: np.ndarray
    G: np.ndarray
    g: np.ndarray

    def affine(self, W: np.ndarray, b: np.ndarray) -> Star:
        return Star(W @ self.V, W @ self.v + b, self.G, self.g)


@dataclass
class StarEnumResult:
    stars: list[Star]
    lo: np.ndarray
    hi: np.ndarray
    finished: bool
    stats: dict = field(default_factory=dict)


class _LP:
    """Small LPs over a star's polytope (box bounds plus halfspaces ``G x <= g``), HiGHS via highspy.

    The model is kept while the polytope stays the same object, so the many objectives solved
    over one star only change costs and warm-start (a few hundred microseconds each).
    """

    def __init__(self, lo: np.ndarray, hi: np.ndarray):
        import highspy

        self._hs = highspy
        self.lo, self.hi = np.asarray(lo, float), np.asarray(hi, float)
        self.n = self.lo.size
        self.h = new_highs()
        self.h.setOptionValue("primal_feasibility_tolerance", LP_TOL)
        self.h.setOptionValue("dual_feasibility_tolerance", LP_TOL)
        self._key: tuple | None = None
        self.count = 0

    def _load(self, G: np.ndarray, g: np.ndarray) -> None:
        hs = self._hs
        lp = hs.HighsLp()
        lp.num_col_ = self.n
        lp.num_row_ = len(g)
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_ = self.lo
        lp.col_upper_ = self.hi
        if len(g):
            A = np.asfortranarray(G)
            lp.row_lower_ = np.full(len(g), -hs.kHighsInf)
            lp.row_upper_ = np.asarray(g, float)
            lp.a_matrix_.format_ = hs.MatrixFormat.kColwise
            lp.a_matrix_.start_ = np.arange(0, A.size + 1, len(g), dtype=np.int32)
            lp.a_matrix_.index_ = np.tile(np.arange(len(g), dtype=np.int32), self.n)
            lp.a_matrix_.value_ = A.T.ravel()
        self.h.passModel(lp)
        self._key = (id(G), len(g))
        self._G = G  # keep it alive so that id() stays unique

    def solve(self, obj: np.ndarray, G: np.ndarray, g: np.ndarray, maximize: bool):
        """Optimum of obj·x over the polytope: (value, x) or (None, None) when infeasible."""
        self.count += 1
        if self._key != (id(G), len(g)):
            self._load(G, g)
        cost = -np.asarray(obj, float) if maximize else np.asarray(obj, float)
        self.h.changeColsCost(self.n, np.arange(self.n, dtype=np.int32), cost)
        run_highs(self.h)
        status = self.h.getModelStatus()
        ok = (self._hs.HighsModelStatus.kOptimal, self._hs.HighsModelStatus.kInfeasible)
        if status not in ok:
            # a warm start HiGHS cannot continue from (status "Unknown" on degenerate polytopes of
            # random networks): solve again from scratch, then without presolve
            for presolve in ("on", "off"):
                self.h.clearSolver()
                self.h.setOptionValue("presolve", presolve)
                run_highs(self.h)
                status = self.h.getModelStatus()
                if status in ok:
                    break
            self.h.setOptionValue("presolve", "choose")
        if status == self._hs.HighsModelStatus.kInfeasible:
            return None, None
        if status != self._hs.HighsModelStatus.kOptimal:
            raise RuntimeError(f"LP failed in star enumeration: {self.h.modelStatusToString(status)}")
        x = np.clip(np.array(self.h.getSolution().col_value), self.lo, self.hi)
        return float(np.dot(obj, x)), x


def _interval(V: np.ndarray, v: np.ndarray, center: np.ndarray, radius: np.ndarray):
    mid = V @ center + v
    spread = np.abs(V) @ radius
    return mid - spread, mid + spread


def enumerate_stars(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    A: np.ndarray | None = None,
    c: np.ndarray | None = None,
    time_limit: float | None = None,
    progress: Callable[[dict], None] | None = None,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> StarEnumResult:
    """All output stars of ``net`` on the box (cut by ``A x <= c``); depth-first, exact.

    ``pre_bounds``: sound bounds on each hidden layer's pre-activations over the box (e.g. from
    back-substitution); a neuron they show stable is stable on every star, so it costs no LP."""
    t0 = time.perf_counter()
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    n = lo.size
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    lp = _LP(lo, hi)
    G0 = np.zeros((0, n)) if A is None else np.asarray(A, dtype=np.float64)
    g0 = np.zeros(0) if c is None else np.asarray(c, dtype=np.float64)
    root = Star(np.eye(n), np.zeros(n), G0, g0)
    if len(g0) and lp.solve(np.zeros(n), G0, g0, True)[0] is None:
        return StarEnumResult([], lo, hi, True, {"lps": lp.count, "time": 0.0, "stars": 0})
    # a stack of (star after the affine map of layer li, layer index, next neuron to decide)
    stack = [(root.affine(net.layers[0].W, net.layers[0].b), 0, 0)]
    done: list[Star] = []
    splits = 0
    finished = True
    while stack:
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            finished = False
            break
        star, li, ni = stack.pop()
        layer = net.layers[li]
        if layer.activation == "relu":
            V, v = star.V.copy(), star.v.copy()
            G, g = star.G, star.g
            zl, zu = _interval(V, v, center, radius)
            if pre_bounds is not None and li < len(pre_bounds):
                zl, zu = np.maximum(zl, pre_bounds[li][0]), np.minimum(zu, pre_bounds[li][1])
            branched = False
            for i in range(ni, layer.n_out):
                if zl[i] >= 0:
                    continue
                if zu[i] <= 0:
                    V[i], v[i] = 0.0, 0.0
                    continue
                lo_i, _ = lp.solve(V[i], G, g, maximize=False)
                if lo_i is None:  # empty star
                    branched = True
                    break
                if lo_i + v[i] >= 0:
                    continue
                hi_i, _ = lp.solve(V[i], G, g, maximize=True)
                if hi_i + v[i] <= 0:
                    V[i], v[i] = 0.0, 0.0
                    continue
                # split: active part (z_i >= 0) and inactive part (z_i <= 0)
                splits += 1
                G_act = np.vstack([G, -V[i][None]])
                g_act = np.append(g, v[i])
                G_in = np.vstack([G, V[i][None]])
                g_in = np.append(g, -v[i])
                V_in, v_in = V.copy(), v.copy()
                V_in[i], v_in[i] = 0.0, 0.0
                stack.append((Star(V_in, v_in, G_in, g_in), li, i + 1))
                stack.append((Star(V, v, G_act, g_act), li, i + 1))
                branched = True
                break
            if branched:
                continue
            star = Star(V, v, G, g)
        if li + 1 < net.depth:
            nxt = net.layers[li + 1]
            stack.append((star.affine(nxt.W, nxt.b), li + 1, 0))
        else:
            done.append(star)
            if progress is not None and len(done) % 50 == 0:
                progress({"time": time.perf_counter() - t0, "stars": len(done), "open": len(stack), "lps": lp.count})
    stats = {"lps": lp.count, "splits": splits, "stars": len(done), "time": time.perf_counter() - t0}
    return StarEnumResult(done, lo, hi, finished, stats)


def star_extremes(
    result: StarEnumResult, outputs: list[int], sides: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-output min and max over all stars, with the argmin/argmax inputs; returns LP count.

    ``sides``: (want_min, want_max) booleans per output; an extreme not wanted is not solved
    (left at ±inf, its argument at zero)."""
    m = len(outputs)
    lp = _LP(result.lo, result.hi)
    mins, maxs = np.full(m, np.inf), np.full(m, -np.inf)
    n = result.lo.size
    argmins, argmaxs = np.zeros((m, n)), np.zeros((m, n))
    center, radius = 0.5 * (result.lo + result.hi), 0.5 * (result.hi - result.lo)
    for star in result.stars:
        zl, zu = _interval(star.V, star.v, center, radius)
        for k, j in enumerate(outputs):
            if zu[j] > maxs[k] and (sides is None or sides[1][k]):
                val, x = lp.solve(star.V[j], star.G, star.g, maximize=True)
                if val is not None and val + star.v[j] > maxs[k]:
                    maxs[k], argmaxs[k] = val + star.v[j], x
            if zl[j] < mins[k] and (sides is None or sides[0][k]):
                val, x = lp.solve(star.V[j], star.G, star.g, maximize=False)
                if val is not None and val + star.v[j] < mins[k]:
                    mins[k], argmins[k] = val + star.v[j], x
    return mins, maxs, argmins, argmaxs, lp.count


def star_enum(orig: FNN, comp: FNN, lo, hi, A=None, c=None, time_limit=None, progress=None):
    """Enumerate the merged network's stars on the set; returns (StarEnumResult, merged net)."""
    merged = merge(orig, comp)
    return enumerate_stars(merged, lo, hi, A, c, time_limit, progress), merged
