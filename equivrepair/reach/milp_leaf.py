"""MILP leaves of the input-splitting branch and bound: a box with a few dozen unstable ReLUs,
solved exactly by the compact big-M MILP instead of being split further.

Why. Around the maximiser of Φ1 − Φ2 for a close pair (ACAS Xu against its float16 copy) every
twin pair of ReLUs that is unstable in a box adds a slack of about its |Δz| to any single linear
relaxation, whatever the box's size: Δa = relu(z1) − relu(z1 − Δz) is a ramp of height Δz, and
Δz is of the size of δ itself. So the bounds of boxes with ten or so unstable ReLUs stay 2–3×
above their true maximum (measured on 2_2: 3.3e-3 against 1.25e-3), and the branch and bound
keeps splitting until each box has at most ``leaf_unstable`` (4) of them, for which star
enumeration is cheap. A MILP on such a box settles it at once: on 2_2's frontier, boxes with
10–16 unstable ReLUs took 36–180 ms by MILP against 32–600 ms by star enumeration, with the same
values to 1e-11.

Solver. By default the MILP is solved by :class:`.phase_bab.PhaseBaB`, an LP branch and bound
over the phase binaries on one warm-started HiGHS LP, whose bound is the minimum of rigorous
Neumaier–Shcherbina bounds over its leaves (no solver tolerance enters it); on 400 leaves of
NeuroDiff pair 2_1 (~80 rows, ~14 binaries) it took 2.2 s against 11.7 s for HiGHS's MIP solver,
with the same closing decision on every leaf. ``solver="highs"`` keeps HiGHS's MIP solver.

Precision. The LPs (and HiGHS's MIP) run with feasibility (and integrality and optimality)
tolerances of ``LEAF_TOL`` (1e-9): with the default 1e-7 a merged MILP cannot resolve differences
of 1e-5 next to activations of 10–100 (seen in stop 18). The reported bound is the solver's bound
plus ``LEAF_TOL · (1 + |bound|)``, the convention of the ``milp`` method (for HiGHS's MIP this
slack is a stated tolerance, not a proof); the witness is always re-evaluated on the original
networks. With HiGHS's MIP, anything but an optimal or interrupted run (a time limit, "infeasible"
from presolve numerics on a box that is not empty) tells nothing: the box keeps its bound and is
split as before. The phase branch and bound's bound holds whatever its LPs return (a lost LP only
weakens it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..nets.ir import FNN
from .bounds import discrepancy_at, merged_pre_bounds
from .compact import build_compact

LEAF_TOL = 1e-9
LEAF_SOLVER = "phase"  # "phase": LP branch and bound over the ReLU phases (:mod:`.phase_bab`); "highs": HiGHS's MIP


@dataclass
class LeafResult:
    """Per objective of one box: ``upper`` (sound to the MILP tolerance; +inf where nothing was
    learnt), ``points`` (the best input found, the box centre where none), and counts."""

    upper: np.ndarray
    points: np.ndarray
    milps: int
    nodes: int
    settled: int  # objectives whose MILP ended optimal or stopped at the threshold


def _intersect(a: list, b: list | None) -> list:
    if b is None:
        return a
    out = []
    for (l1, u1), (l2, u2) in zip(a, b):
        lo, hi = np.maximum(l1, l2), np.minimum(u1, u2)
        out.append((lo, np.maximum(hi, lo)))
    return out


def milp_leaf(
    orig_n: FNN,
    comp_n: FNN,
    merged: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    objectives: list[tuple[int, int]],
    upper: np.ndarray,
    thresh: np.ndarray,
    hidden: list[tuple[np.ndarray, np.ndarray]] | None = None,
    delta: list[tuple[np.ndarray, np.ndarray]] | None = None,
    time_limit: float = 1.0,
    gap: float | None = None,
    stop_above: float | None = None,
    solver: str = LEAF_SOLVER,
) -> LeafResult:
    """Bound the objectives ``(sign, output)`` still open on the box [lo, hi] by the compact MILP.

    ``orig_n``/``comp_n``: the normalised pair and ``merged`` their merged network. ``upper``:
    the box's current sound bound per objective (finite ones bound the output columns, +inf
    none; only objectives with ``upper > thresh`` are solved, so -inf skips one already closed). ``thresh``: an objective's MILP
    stops as soon as its bound is below its threshold (the box closes for it). ``hidden``/``delta``:
    sound bounds on the merged hidden pre-activations and on z1 − z2 valid on the box (e.g. its
    own from the bounder), intersected with the box's own interval/symbolic/differential bounds.
    ``gap``: absolute MIP gap (the engine's resolution); ``time_limit`` covers all objectives.
    ``stop_above``: also stop (and skip the remaining objectives) once a point reaches it (a
    counterexample to ε-equivalence is enough). ``solver``: ``"phase"`` (:class:`.phase_bab.PhaseBaB`,
    LP branch and bound over the phases with rigorous LP bounds, 5x faster on these models) or
    ``"highs"`` (HiGHS's MIP solver, whose dual bound holds up to its tolerances).
    """
    from .milp import _HighsMILP
    from .phase_bab import PhaseBaB

    if solver not in ("phase", "highs"):
        raise ValueError(f"solver must be 'phase' or 'highs', not {solver!r}")

    t0 = time.perf_counter()
    K = len(objectives)
    centre = 0.5 * (lo + hi)
    out = LeafResult(np.full(K, np.inf), np.tile(centre, (K, 1)), 0, 0, 0)
    todo = [k for k in np.argsort(-upper, kind="stable") if upper[k] > thresh[k]]
    if not todo:
        return out
    if hidden is None:
        _, pre, dl = merged_pre_bounds(orig_n, comp_n, lo, hi, merged)
        hid = list(pre[:-1])
        if dl is not None and delta is not None:
            dl = _intersect(list(dl), delta)
        yl, yu = pre[-1][0].copy(), pre[-1][1].copy()
    else:  # the bounder's own bounds on the box (already at least as tight): no second pass
        hid, dl = _intersect(list(hidden), None), delta
        yl, yu = np.full(merged.n_outputs, -np.inf), np.full(merged.n_outputs, np.inf)
    # the box's own objective bounds are valid output bounds: they keep the output columns small
    for k, (s, j) in enumerate(objectives):
        if np.isfinite(upper[k]):
            if s > 0:
                yu[j] = min(yu[j], upper[k])
            else:
                yl[j] = max(yl[j], -upper[k])
    yu = np.maximum(yu, yl)
    model = build_compact(merged, lo, hi, hid + [(yl, yu)], None, None, dl, integer=True)
    if model.integer_cols.size == 0:
        return out  # linear on the box: the bounder's linear bounds are already exact there
    # without the twin-pair hull cuts: on these tiny models (~14 binaries, a dozen nodes) the
    # hulls and the root's extra LPs cost more than they save (NeuroDiff 1_2, 5_4, 1_7, 2_2 δ
    # columns, side by side: 8.2/10.3/18.4/31.5 s without, 11.5/15.8/21.5/52.9 s with)
    mip = PhaseBaB(model, LEAF_TOL, gap, pair_cuts=False) if solver == "phase" else _HighsMILP(model, LEAF_TOL, gap)
    for n_left, k in zip(range(len(todo), 0, -1), todo):
        rem = time_limit - (time.perf_counter() - t0)
        if rem <= 0:
            break
        s, j = objectives[k]
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[j]] = -float(s)  # minimise −s·y_j
        # stop once the bound (after the tolerance added below) is under the threshold
        t = float(thresh[k])
        stop_dual = -t + 2.0 * LEAF_TOL * (1.0 + abs(t))
        stop_primal = -np.inf if stop_above is None else -float(stop_above)
        if solver == "phase":
            r = mip.solve(cost, rem / n_left, (stop_dual, stop_primal), value_at=_value_at(orig_n, comp_n, s, j))
        else:
            r = mip.solve(cost, rem / n_left, (stop_dual, stop_primal))
        out.milps += 1
        out.nodes += int(r.get("nodes", 0))
        if r["x"] is not None:
            out.points[k] = np.clip(r["x"], lo, hi)
        # HiGHS's MIP teaches nothing unless it ran (an "infeasible" box is presolve numerics);
        # the phase branch and bound's bound is rigorous whatever its status
        usable = solver == "phase" or r["status"] in ("optimal", "interrupted", "time_limit")
        if usable and np.isfinite(r["bound"]):
            b = float(r["bound"])
            out.upper[k] = -b + LEAF_TOL * (1.0 + abs(b))
            out.settled += int(r["status"] in ("optimal", "interrupted"))
        if stop_above is not None and np.isfinite(r["value"]) and -float(r["value"]) >= stop_above:
            break  # a counterexample (re-evaluated by the caller on the original networks)
    return out


def _value_at(orig_n: FNN, comp_n: FNN, s: int, j: int):
    """The leaf's minimisation objective −s·(Φ1 − Φ2)_j at an input, on the networks themselves."""

    def value(x: np.ndarray) -> float:
        return -float(s) * float(discrepancy_at(orig_n, comp_n, x)[0, j])

    return value


FORCED = -2  # a box of a subtree given up on by the policy: its candidate descendants are MILP'd


class LeafPolicy:
    """Which open boxes the compact MILP solves instead of the branch and bound splitting them.

    A MILP leaf costs c_m seconds, splitting c_b per bounded box (moving averages of the run's
    own timings). Whether a MILP pays depends on how many boxes the subtree below a candidate box
    would cost, which varies a lot between networks, so it is measured, ski-rental style: a
    sample ``explore`` of the candidates is *tagged* and split, its descendants carry the tag
    (and are never MILP'd), and ``grow`` counts the boxes bounded under each tag. A tag is
    resolved once no open box carries it (finished: its size is known) or once its subtree has
    cost the budget B = c_m / c_b boxes (capped: its open boxes become ``FORCED``, and their
    candidate descendants are MILP'd), or, provisionally, once none of its boxes has been bounded
    for ``dormant`` iterations (a time limit may come first: it counts at its size so far). From
    the last ``window`` tags resolved, the expected cost of renting,
    (1 − h)·E_small·c_b + h·(B·c_b + 2·c_m) with h the capped share and E_small the mean size of
    the finished (or dormant) ones, is compared with c_m: while a MILP costs less, the untagged
    candidates are designated for a MILP; otherwise they are split like any box. The branch and
    bound solves a designated box only when it reaches the top of the frontier (best first), so
    a box that the rising witness closes first costs no MILP.

    Measured on ACAS Xu 8-bit pairs (60 s): MILP leaves for every candidate made 3_3 exact in
    36 s instead of bounded at 120 s, but left 4_1 bounded where splitting alone is exact in
    39 s. On 4_1 the subtrees of split candidates have a median of 6 boxes, 95 % under 32,
    against c_m / c_b ≈ 30; on 3_3, 2,389 subtrees still open after 60 s held 100k of the 148k
    boxes bounded. Tagged subtrees get no priority in the frontier (that would finish them
    sooner, but the bounds a time limit returns depend on best-first order).
    """

    def __init__(
        self,
        explore: float = 0.25,
        window: int = 256,
        min_resolved: int = 16,
        seed: int = 0,
        always: bool = False,
        dormant: int = 32,
    ) -> None:
        """``always``: every candidate is MILP'd at once (no renting, no measurements)."""
        self.explore, self.window, self.min_resolved, self.always = explore, window, min_resolved, always
        self.dormant = dormant
        self.size = np.zeros(0)  # boxes bounded under each tag
        self.state = np.zeros(0, dtype=np.int8)  # 0 active, 1 finished, 2 capped, 3 dormant
        self.last = np.zeros(0, dtype=np.int64)  # the iteration each tag last grew in
        self.it = 0  # iterations settled
        self.resolved: list[tuple[int, bool, float]] = []  # (tag, capped, size) resolved, in order
        self.c_b: float | None = None  # seconds per bounded box (splitting, everything included)
        self.c_m: float | None = None  # seconds per MILP leaf

        self.rng = np.random.default_rng(seed)

    @property
    def budget(self) -> float:
        """B: boxes a tagged subtree may cost before it is given up (the MILP's cost in boxes)."""
        if self.c_b is None or self.c_m is None:
            return 32.0
        return float(np.clip(self.c_m / self.c_b, 4.0, 1000.0))

    def grow(self, tags: np.ndarray) -> None:
        """One iteration's newly bounded boxes (their tags; negative = untagged)."""
        t = tags[tags >= 0]
        if t.size:
            self.size[: t.max() + 1] += np.bincount(t)
            t = np.unique(t)
            self.last[t] = self.it
            woke = t[self.state[t] == 3]  # a dormant subtree is back at the top: not resolved after all
            if woke.size:
                self.state[woke] = 0
                awake = set(woke.tolist())
                self.resolved = [r for r in self.resolved if r[0] not in awake]

    def settle(self, tags: np.ndarray) -> np.ndarray:
        """After an iteration, with the frontier's tags: resolve the tags no box carries any more
        (finished), that reached the budget (capped: their boxes become FORCED), or whose boxes
        have not been at the top for ``dormant`` iterations (dormant: under a time limit they may
        never be again, so they count at their size so far until they grow again)."""
        self.it += 1
        if self.size.size == 0:
            return tags
        live = np.zeros(self.size.size, dtype=bool)
        live[tags[tags >= 0]] = True
        active = self.state == 0
        finished = active & ~live
        capped = active & live & (self.size >= self.budget)
        dormant = active & live & ~capped & (self.it - self.last > self.dormant)
        for k in np.flatnonzero(finished | capped | dormant):
            self.resolved.append((int(k), bool(capped[k]), float(self.size[k])))
        del self.resolved[: max(0, len(self.resolved) - self.window)]
        self.state[finished] = 1
        self.state[capped] = 2
        self.state[dormant] = 3
        gone = (tags >= 0) & capped[np.maximum(tags, 0)]
        return np.where(gone, FORCED, tags)

    def split_cost(self, seconds: float, boxes: int) -> None:
        if boxes > 0:
            c = seconds / boxes
            self.c_b = c if self.c_b is None else 0.9 * self.c_b + 0.1 * c

    def milp_cost(self, seconds: float) -> None:
        self.c_m = seconds if self.c_m is None else 0.9 * self.c_m + 0.1 * seconds

    def rent_cost(self) -> float | None:
        """Expected seconds a tagged candidate costs (None until enough tags are resolved)."""
        if len(self.resolved) < self.min_resolved or self.c_b is None:
            return None
        capped = np.array([c for _, c, _ in self.resolved])
        sizes = np.array([s for _, _, s in self.resolved])
        h = float(capped.mean())
        small = float(sizes[~capped].mean()) if (~capped).any() else 0.0
        c_m = self.c_m if self.c_m is not None else self.budget * self.c_b
        return (1.0 - h) * small * self.c_b + h * (self.budget * self.c_b + 2.0 * c_m)

    def pays(self) -> bool:
        """Whether a MILP now is expected to cost less than renting, on what was seen so far."""
        rent = self.rent_cost()
        if rent is None:
            return False  # rent (split) until subtree costs are known
        return self.c_m is None or self.c_m < rent

    def choose(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split the candidates (indices of untagged open boxes) into those the MILP solves now
        and those split and tagged; returns (milp indices, tagged indices, their new tags)."""
        if candidates.size == 0 or self.always:
            return candidates, candidates[:0], candidates[:0]
        sample = self.rng.random(candidates.size) < self.explore
        tagged = candidates[sample]
        tags = np.arange(self.size.size, self.size.size + tagged.size)
        self.size = np.concatenate([self.size, np.zeros(tagged.size)])
        self.state = np.concatenate([self.state, np.zeros(tagged.size, dtype=np.int8)])
        self.last = np.concatenate([self.last, np.full(tagged.size, self.it, dtype=np.int64)])
        return (candidates[~sample] if self.pays() else candidates[:0]), tagged, tags
