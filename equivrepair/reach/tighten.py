"""LP bound tightening of hidden pre-activations (OBBT), the step before a big-M MILP.

The MILP needs one binary per unstable neuron and a big-M per binary, both read off the
pre-activation bounds (interval ∩ symbolic ∩ differential). Those bounds are per-neuron
relaxations; the triangle LP of the whole merged network, with the difference cuts, is tighter
and often proves a deep neuron stable (MNIST 256x4 ±3/255 image 7: 36 unstable neurons of the
last hidden layer become 22, after 44 LPs of 182 that full OBBT would solve). Solving two LPs per unstable neuron costs more
than the MILP saves on easy models, so only the LPs that can stabilise a neuron are solved:

- *sign evidence* first: the pre-activations at concrete inputs of the box (the caller's
  candidates, the box corners that the sign of each unstable neuron's gradient at the centre
  picks, and every LP optimum as it comes) show most unstable neurons take both signs; no bound
  can stabilise such a neuron, and it is skipped (with linear input constraints a corner may lie
  outside the set: its evidence then only skips an LP, which costs tightness, never soundness);
- for the others only the side not yet witnessed is minimised: min z when no input showed z < 0
  (may prove the neuron active), max z when none showed z > 0 (may prove it inactive).

Every bound comes from :class:`.lp.SafeBound` on the LP's duals, so it is rigorous for the model
as built, and is intersected with the bounds it started from: tightening only shrinks sound
intervals. Each proved bound is also written into the LP's column bound of that neuron at once
(sound for every later LP). Skipping an LP (no time left, evidence) never costs soundness, only
tightness. The LP optima (inputs of the box, up to the solver's tolerance: the caller re-evaluates
them) come back as witness candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..nets.ir import FNN
from .bounds import centre_jacobians
from .compact import build_compact
from .lp import SafeBound, _HighsLP

Bounds = list[tuple[np.ndarray, np.ndarray]]

STABLE_MARGIN = 1e-9
"""Every LP-proved bound b is loosened by this much (relative, ``(1 + |b|)``) before it is used, so
a phase is fixed only with this clearance from 0: the compact model's substituted rows carry
float64 round-off far below it."""


@dataclass
class Tightening:
    """The result of :func:`tighten_pre_bounds`."""

    pre: Bounds  # the tightened pre-activation bounds (same layout as the input)
    delta: Bounds | None  # the tightened bounds on z1 − z2 (None when none were given)
    unstable_before: list[int]  # unstable neurons per hidden layer, before and after
    unstable_after: list[int]
    n_lps: int
    skipped_by_evidence: int  # unstable neurons that concrete inputs showed take both signs
    time: float
    complete: bool  # False when the time limit stopped it (the bounds so far are still sound)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # the LP optima's inputs

    @property
    def stabilised(self) -> int:
        return sum(self.unstable_before) - sum(self.unstable_after)


def pre_activations(net: FNN, X: np.ndarray) -> list[np.ndarray]:
    """The pre-activations of every hidden layer of ``net`` at the rows of ``X``."""
    return net.activations(X)[:-1]


def gradient_corners(net: FNN, lo: np.ndarray, hi: np.ndarray, unstable: list[np.ndarray]) -> np.ndarray:
    """Per unstable hidden neuron, the two box corners where the linearisation of its
    pre-activation at the box centre is least and largest: likely inputs of either sign."""
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    pts = [c[None]]
    for Jz, u in zip(centre_jacobians(net, c), unstable):
        s = np.sign(Jz[u])
        pts += [c + r * s, c - r * s]
    return np.vstack(pts)


def _signs_seen(net: FNN, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per hidden layer, which neurons take a negative, and which a positive, pre-activation at
    some row of ``X``: sign evidence no bound can contradict."""
    zs = pre_activations(net, X)
    return [np.any(z < 0.0, axis=0) for z in zs], [np.any(z > 0.0, axis=0) for z in zs]


def unstable_mask(pre: Bounds) -> list[np.ndarray]:
    """Per hidden layer, which neurons the bounds leave unstable (lower < 0 < upper)."""
    return [(lo < 0.0) & (hi > 0.0) for lo, hi in pre[:-1]]


class _LPs:
    """The triangle LP of the merged network (compact, difference cuts) for a series of objectives,
    each bound made rigorous from the duals; the LP optima's inputs kept as witness candidates."""

    def __init__(self, net, lo, hi, pre, A, c, delta_bounds, time_limit, t0) -> None:
        self.model = build_compact(net, lo, hi, pre, A, c, delta_bounds, integer=False)
        self.solve = _HighsLP(self.model, time_limit, t0)
        self.bound = SafeBound(self.model)
        self.lo, self.hi = lo, hi
        self.n = 0
        self.timed_out = False
        self.points: list[np.ndarray] = []

    def cols(self, layer: int) -> dict[int, int]:
        """The z column of each neuron of a hidden layer that has one."""
        idx, cols = self.model.layout[layer]["z"]
        return dict(zip(idx.tolist(), cols.tolist()))

    def minimum(self, terms: dict[int, float]) -> float | None:
        """A rigorous lower bound of min Σ coef·v[col] over the LP, minus the margin (None: no
        bound, the time limit or a model HiGHS could not solve)."""
        cost = np.zeros(self.model.n_cols)
        for col, coef in terms.items():
            cost[col] = coef
        status, _, x, y = self.solve(cost)
        self.n += 1
        self.timed_out |= status == "time_limit"
        if x is not None and np.all(np.isfinite(x[self.model.x_cols])):
            self.points.append(np.clip(x[self.model.x_cols], self.lo, self.hi))
        if status != "optimal":
            return None
        safe = self.bound(cost, y)
        return safe - STABLE_MARGIN * (1.0 + abs(safe))


def tighten_pre_bounds(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    pre: Bounds,
    A: np.ndarray | None = None,
    c: np.ndarray | None = None,
    delta_bounds: Bounds | None = None,
    *,
    candidates: np.ndarray | None = None,
    time_limit: float | None = None,
    delta_layers: int = 1,
) -> Tightening:
    """Tighten the bounds of the unstable neurons of hidden layers 1.. (the first hidden layer's
    are exact already) by the LPs that can fix their phase, deepest layer first; then, on the LP
    rebuilt with those bounds, the bounds on z1 − z2 of the twin pairs with an unstable member in
    the last ``delta_layers`` hidden layers (the difference cuts the MILP leans on most).

    ``net``: the merged network; ``pre``: its sound pre-activation bounds per layer (the last
    entry, the output's, is used and returned unchanged); ``A``, ``c``: linear input constraints
    A x <= c; ``delta_bounds``: bounds on z1 − z2 per hidden layer (same architectures) or None.
    """
    t0 = time.perf_counter()
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    new = [(np.array(zl, dtype=np.float64), np.array(zu, dtype=np.float64)) for zl, zu in pre]
    unstable = unstable_mask(new)
    before = [int(u.sum()) for u in unstable]
    pts = gradient_corners(net, lo, hi, unstable)
    if candidates is not None and np.size(candidates):
        pts = np.vstack([pts, np.atleast_2d(candidates)])
    neg, pos = _signs_seen(net, pts)
    evidence = sum(int(np.sum(u & n & p)) for u, n, p in zip(unstable, neg, pos))

    def out_of_time() -> bool:
        return time_limit is not None and time.perf_counter() - t0 >= time_limit

    n_lps, complete, found = 0, True, []
    todo = [i for i in range(len(unstable) - 1, 0, -1) if np.any(unstable[i] & ~(neg[i] & pos[i]))]
    if todo:
        lps = _LPs(net, lo, hi, new, A, c, delta_bounds, time_limit, t0)
        for i in todo:
            for kk, col in lps.cols(i).items():
                for side in (0, 1):  # 0: min z (may prove the neuron active), 1: max z (inactive)
                    zl, zu = new[i][0][kk], new[i][1][kk]
                    if not (zl < 0.0 < zu) or (neg[i][kk] if side == 0 else pos[i][kk]):
                        continue  # settled by an earlier LP, or shown to take this sign
                    complete = complete and not out_of_time()
                    b = lps.minimum({col: 1.0 if side == 0 else -1.0}) if complete else None
                    if b is not None and side == 0:
                        new[i][0][kk] = max(zl, b)
                    elif b is not None:
                        new[i][1][kk] = min(zu, -b)
                    if b is not None:
                        lps.solve.set_col_bounds(col, new[i][0][kk], new[i][1][kk])
                    if len(lps.points) > len(found):  # a new LP optimum: its signs too
                        n2, p2 = _signs_seen(net, np.vstack(lps.points[len(found) :]))
                        neg = [a | b for a, b in zip(neg, n2)]
                        pos = [a | b for a, b in zip(pos, p2)]
                        found = list(lps.points)
        n_lps += lps.n
        complete = complete and not lps.timed_out
    delta = None if delta_bounds is None else [(np.array(a), np.array(b)) for a, b in delta_bounds]
    layers = [] if delta is None else list(range(len(delta) - 1, max(0, len(delta) - delta_layers) - 1, -1))
    pairs = {i: _unstable_pairs(new[i]) for i in layers}
    if complete and any(p.size for p in pairs.values()):
        lps = _LPs(net, lo, hi, new, A, c, delta, time_limit, t0)
        for i in layers:
            cols, half = lps.cols(i), new[i][0].size // 2
            for j in (j for j in pairs[i] if j in cols and j + half in cols):
                for side in (0, 1):  # 0: min z1 − z2, 1: max
                    complete = complete and not out_of_time()
                    sgn = 1.0 if side == 0 else -1.0
                    b = lps.minimum({cols[j]: sgn, cols[j + half]: -sgn}) if complete else None
                    if b is not None and side == 0:
                        delta[i][0][j] = max(delta[i][0][j], b)
                    elif b is not None:
                        delta[i][1][j] = min(delta[i][1][j], -b)
        n_lps += lps.n
        complete = complete and not lps.timed_out
        found += lps.points
    return Tightening(
        pre=new,
        delta=delta,
        unstable_before=before,
        unstable_after=[int(u.sum()) for u in unstable_mask(new)],
        n_lps=n_lps,
        skipped_by_evidence=evidence,
        time=time.perf_counter() - t0,
        complete=complete,
        points=np.vstack(found) if found else np.zeros((0, lo.size)),
    )


def _unstable_pairs(bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The twin pairs (index in Φ1's half) of a merged hidden layer with an unstable member."""
    u = (bounds[0] < 0.0) & (bounds[1] > 0.0)
    half = u.size // 2
    return np.flatnonzero(u[:half] | u[half:])
