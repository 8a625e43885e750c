"""ReLU-splitting branch and bound for ε-decisions over many free inputs (an L∞ ball around an
image), on the differential bounds.

Why. Input splitting cannot narrow a box of 784 free pixels, and the compact MILP of the merged
network pays a dense LP per node. The differential back-substitution
(:func:`.bounds.tiered_objective_bounds`) bounds C(Φ1 − Φ2) of a 3×100 MNIST pair and its 16-bit
copy in tens of milliseconds, and on the ±4 ball it alone proves ε = 1 on most images; what is left
is the slack of the ReLUs that straddle zero. Fixing the phase of one makes its relaxation exact.

How. A node is the input box plus hidden bounds (z1, z2, Δz = z1 − z2 per hidden layer), which
the differential forward pass intersects layer by layer before it relaxes any ReLU. A split on
neuron i of layer j clamps z1_i >= 0 in one child and z1_i <= 0 in the other, and with it its twin:
z2_i = z1_i − Δz_i >= −Δz_hi, resp. <= −Δz_lo (or the other way round when only z2_i straddles
zero). Every point of the node lies in one child, and each child's bounds hold on its points (a
clamp only states the child's sign), so a child whose bound is below ε is closed soundly.

Which pair to split. Two cheap scores (the width of the Δa relaxation, and each network's own
relaxation intercept, BaBSR-style, both weighted by the objective's back-propagated |λ|) rank the
pairs only loosely: on MNIST ±4/255 (image 7) the best single split lowers the bound 1.0705 →
1.0498 while the top-scored ones leave it unchanged. So the top ``strong`` pairs of each score
are all tried (strong branching: 2·2·strong children bounded in one batch) and the split whose
worse child is lowest is kept. Image 7 at 12 s: 2 candidates a split 1.0705 → 1.052, 12
candidates 1.0705 → 1.020; image 15 proved in 4.6 s with 12, not at all with 2.

Only bounds, no LPs: a node whose unstable ReLUs are all split is not exact, so the method decides
or stops, never claims δ_max. It also stops when the frontier's top bound stalls (``STALL_*``):
with ε just above δ_max (MNIST ±1/255 image 2, ε = 1.03·δ_max) bounds would grind for the whole
time limit where the MILP decides in seconds. Counterexamples are concrete inputs (the bound's
maximising vertices and a sign-gradient search), re-evaluated on the original networks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..merge import drop_identity_layers, merge, normalise
from ..nets.ir import FNN
from .bab import discrepancy, local_search, make_objectives, objective_matrix
from .bounds import same_architecture, tiered_objective_bounds

KEYS = ("pre1", "pre2", "delta")
FP_SLACK = 1e-9  # relative inflation of each bound (as the input-splitting branch and bound)
STALL_ROUNDS = 8  # stop when, over this many rounds, the largest bound fell by less than ...
STALL_GAIN = 0.05  # ... this fraction of its distance to ε (a MILP decides tight instances better)


@dataclass
class SplitDecision:
    """Outcome of :func:`decide_relu_split`: ``status`` is ``equivalent`` (every node's bound below
    ε), ``not_equivalent`` (``witness`` attains ``lower`` >= ε) or ``unknown`` (limits)."""

    status: str
    lower: float
    upper: float
    witness: np.ndarray
    stats: dict = field(default_factory=dict)


def _split_scores(nets: tuple[FNN, FNN], hidden: dict, C: np.ndarray, open_: np.ndarray) -> list[np.ndarray]:
    """Per hidden layer (N, w): how much slack each twin pair leaves in the differential bound,
    |λ|·(max(Δz_hi, 0) − min(Δz_lo, 0)) where either ReLU straddles zero (the width of the Δa
    relaxation, which a split makes exact), λ the open objectives' weight on Δa back-propagated
    through Φ1's weights (Δz' = W1 Δa + (W1 − W2) a2 + Δb) with the relaxations' rough slopes."""
    n1 = nets[0]
    pre1 = [(a.T, b.T) for a, b in hidden["pre1"]]  # (N, w)
    pre2 = [(a.T, b.T) for a, b in hidden["pre2"]]
    dlt = [(a.T, b.T) for a, b in hidden["delta"]]
    H = len(pre1)
    lam = (C[None] * open_[:, :, None]) @ n1.layers[H].W  # (N, K, w_{H-1}): weights on Δa_{H-1}
    out = [None] * H
    for j in range(H - 1, -1, -1):
        (l1, u1), (l2, u2), (dl, du) = pre1[j], pre2[j], dlt[j]
        unst = ((l1 < 0) & (u1 > 0)) | ((l2 < 0) & (u2 > 0))
        gap = np.where(unst, np.maximum(du, 0.0) - np.minimum(dl, 0.0), 0.0)
        out[j] = np.abs(lam).max(axis=1) * gap
        slope = np.where((l1 >= 0) & (l2 >= 0), 1.0, np.where(unst, 0.5, 0.0))
        if j:
            lam = (lam * slope[:, None, :]) @ n1.layers[j].W
    return out


def _area_scores(nets: tuple[FNN, FNN], hidden: dict, C: np.ndarray, open_: np.ndarray) -> list[np.ndarray]:
    """Per hidden layer (N, w): |λ|·(−l·u/(u − l)) of z1 plus that of z2 (BaBSR-style: the
    intercept of each network's own ReLU relaxation, λ back-propagated through that network)."""
    scores = None
    for net, key, sign in ((nets[0], "pre1", 1.0), (nets[1], "pre2", -1.0)):
        pre = [(a.T, b.T) for a, b in hidden[key]]  # (N, w)
        H = len(pre)
        lam = ((sign * C)[None] * open_[:, :, None]) @ net.layers[H].W
        out = [None] * H
        for j in range(H - 1, -1, -1):
            lo, hi = pre[j]
            unst = (lo < 0) & (hi > 0)
            width = np.where(unst, hi - lo, 1.0)
            out[j] = np.abs(lam).max(axis=1) * np.where(unst, -lo * hi / width, 0.0)
            slope = np.where(lo >= 0, 1.0, np.where(unst, hi / width, 0.0))
            if j:
                lam = (lam * slope[:, None, :]) @ net.layers[j].W
        scores = out if scores is None else [a + b for a, b in zip(scores, out)]
    return scores


def _candidates(nets: tuple[FNN, FNN], hidden: dict, C: np.ndarray, open_: np.ndarray, k: int) -> np.ndarray:
    """(N, 2k) flat neuron indices (layers concatenated) to try splitting: the top k by each
    score; −1 where a node has fewer twin pairs with a positive score."""
    cands = []
    for fn in (_split_scores, _area_scores):
        flat = np.concatenate(fn(nets, hidden, C, open_), axis=1)
        top = np.argsort(-flat, axis=1)[:, :k]
        cands.append(np.where(np.take_along_axis(flat, top, axis=1) > 0, top, -1))
    return np.concatenate(cands, axis=1)


def _children(hidden: dict, choice: np.ndarray) -> dict:
    """Two children per node and chosen twin pair (flat index ``choice[r]`` >= 0): node r's
    children are columns r (the pair active) and N + r (inactive) of the result."""
    widths = [a.shape[0] for a, _ in hidden["pre1"]]
    offs = np.cumsum([0] + widths)
    layer = np.searchsorted(offs, choice, side="right") - 1
    idx = choice - offs[layer]
    N = len(choice)
    kids = {
        k: [(np.concatenate([a, a], axis=1), np.concatenate([b, b], axis=1)) for a, b in v] for k, v in hidden.items()
    }
    for r in range(N):
        j, i = layer[r], idx[r]
        l1, u1 = kids["pre1"][j]
        l2, u2 = kids["pre2"][j]
        dl, du = hidden["delta"][j][0][i, r], hidden["delta"][j][1][i, r]
        on, off = r, N + r
        if l1[i, on] < 0 < u1[i, on]:  # split z1; z2 = z1 − Δz follows
            l1[i, on] = 0.0
            l2[i, on] = max(l2[i, on], -du)
            u1[i, off] = 0.0
            u2[i, off] = min(u2[i, off], -dl)
        elif l2[i, on] < 0 < u2[i, on]:  # only z2 straddles zero: split it; z1 = z2 + Δz follows
            l2[i, on] = 0.0
            l1[i, on] = max(l1[i, on], dl)
            u2[i, off] = 0.0
            u1[i, off] = min(u1[i, off], du)
        else:  # pragma: no cover - candidates straddle zero by construction
            raise AssertionError("split of a stable ReLU pair")
    for k in ("pre1", "pre2"):  # an empty child (clamp past its other bound) is left a point
        kids[k] = [(a, np.maximum(b, a)) for a, b in kids[k]]
    return kids


def _take(hidden: dict, cols: np.ndarray) -> dict:
    return {k: [(a[:, cols], b[:, cols]) for a, b in v] for k, v in hidden.items()}


def decide_relu_split(
    orig: FNN,
    comp: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    epsilon: float,
    outputs: list[int] | None = None,
    time_limit: float | None = None,
    max_nodes: int | None = None,
    batch: int = 2,
    strong: int = 6,
    progress: Callable[[dict], None] | None = None,
) -> SplitDecision:
    """Decide max_x |Φ1(x) − Φ2(x)|_j < ε over the box [lo, hi] (outputs j; default all) by
    splitting ReLUs, best first (largest bound first), ``batch`` nodes at a time, each by the best
    of ``2·strong`` candidate pairs (strong branching: their children are bounded). Stops early
    when a node above ε has nothing left to split (``stats["reason"]``). Needs the same
    architecture (after :func:`normalise`); raises ``NotImplementedError`` otherwise."""
    t0 = time.perf_counter()
    n1, n2 = normalise(drop_identity_layers(orig)), normalise(drop_identity_layers(comp))
    if not same_architecture(n1, n2):
        raise NotImplementedError("ReLU splitting on differential bounds needs the same architecture")
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    outputs = list(range(orig.n_outputs)) if outputs is None else list(outputs)
    C = objective_matrix(make_objectives(outputs), n1.n_outputs)
    K = len(C)
    thresh = np.full(K, float(epsilon))
    merged = merge(n1, n2)
    stats = {"nodes": 0, "splits": 0, "bound_calls": 0}
    best = {"val": -np.inf, "x": 0.5 * (lo + hi)}
    per_node = 0.0  # seconds per node of the last bound call

    def witness(points: np.ndarray) -> None:
        vals = np.max(np.abs(discrepancy(orig, comp, points)[:, outputs]), axis=1)
        i = int(np.argmax(vals))
        if vals[i] > best["val"]:
            best["val"], best["x"] = float(vals[i]), points[i].copy()

    def bound(n: int, prior: dict | None, rows: np.ndarray):
        """Bounds of the objectives ``rows`` (the others −inf: closed) on n nodes; only open
        objectives are back-substituted (most close at the root)."""
        nonlocal per_node
        stats["bound_calls"] += 1
        stats["nodes"] += n
        tb = time.perf_counter()
        # children skip the forward pass: their parent's bounds and the clamp, re-tightened by the
        # back-substitution tiers, bound as well per node and cost a quarter (MNIST ±4 image 7,
        # 14 s: 457 nodes to 1.0133 instead of 121 to 1.0199; ±6 image 3 proved instead of 1.094)
        ob = tiered_objective_bounds(
            n1, n2, np.tile(lo, (n, 1)), np.tile(hi, (n, 1)), C[rows], thresh[rows],
            prior=prior, grad=False, forward=prior is None,
        )  # fmt: skip
        per_node = (time.perf_counter() - tb) / n
        ub = np.full((n, K), -np.inf)
        ub[:, rows] = ob.upper + FP_SLACK * np.abs(ob.upper)
        # the maximising vertex of each node's linear bound on its worst objective
        coef = ob.coef[np.arange(n), np.argmax(ob.upper, axis=1)]
        witness(np.where(coef > 0, hi, lo))
        return ub, ob.hidden

    ub, hidden = bound(1, None, np.arange(K))
    # a sign-gradient search from the root's maximising vertex, for its three largest objectives
    top = np.argsort(-ub[0])[:3]
    starts = np.tile(best["x"], (top.size, 1))
    witness(local_search(merged, starts, np.argmax(np.abs(C[top]), axis=1), C[top].sum(axis=1), lo, hi, steps=15))
    status = "unknown"
    closed_ub = -np.inf  # the largest bound of an objective when it closed
    tops: list[float] = []  # the frontier's largest bound, per round
    it = 0
    while True:
        dead = ub < thresh[None, :]
        if dead.any():
            closed_ub = max(closed_ub, float(np.max(np.where(dead & np.isfinite(ub), ub, -np.inf))))
        ub = np.where(dead, -np.inf, ub)  # closed objectives stay closed
        alive = np.any(np.isfinite(ub), axis=1)
        ub = ub[alive]
        hidden = {key: [(a[:, alive], b[:, alive]) for a, b in v] for key, v in hidden.items()}
        upper = max(closed_ub, float(np.max(ub)) if len(ub) else -np.inf)
        elapsed = time.perf_counter() - t0
        if progress is not None and it % 10 == 0:
            progress(
                {"time": elapsed, "open": len(ub), "lower": best["val"], "upper": upper, "branches": stats["splits"]}
            )
        if best["val"] >= epsilon:
            status, stats["reason"] = "not_equivalent", "a witness reaches ε"
            break
        if len(ub) == 0:
            status, stats["reason"] = "equivalent", "every node's bound is below ε"
            break
        take = min(batch, len(ub))
        # the next round bounds 2·take·(2·strong) nodes: stop now if that would overrun the limit
        cost = per_node * 4 * take * strong if stats["bound_calls"] > 1 else 0.0  # the root's is no guide
        if time_limit is not None and elapsed + cost > time_limit:
            stats["reason"] = "time limit"
            break
        if max_nodes is not None and stats["nodes"] >= max_nodes:
            stats["reason"] = "node limit"
            break
        tops.append(float(np.max(ub)))
        if len(tops) > STALL_ROUNDS and tops[-1 - STALL_ROUNDS] - tops[-1] < STALL_GAIN * (
            tops[-1 - STALL_ROUNDS] - epsilon
        ):
            # the top of the frontier has barely moved towards ε: leave the rest to the MILP
            stats["reason"] = "stalled"
            break
        it += 1
        sel = np.argsort(-np.max(ub, axis=1))[:take]
        rest = np.setdiff1d(np.arange(len(ub)), sel)
        s_hidden = _take(hidden, sel)
        cand = _candidates((n1, n2), s_hidden, C, np.isfinite(ub[sel]), strong)  # (take, 2·strong)
        if (cand < 0).all(axis=1).any():
            # a node above ε with nothing left to split: bounds alone cannot decide it
            stats["unsplittable"] = int((cand < 0).all(axis=1).sum())
            stats["reason"] = "a node above ε has no unstable ReLU left to split"
            break
        cand = np.where(cand < 0, cand.max(axis=1, keepdims=True), cand)  # pad with a valid one
        # strong branching: bound the children of every candidate, keep the split whose worse
        # child is lowest
        J = cand.shape[1]
        node = np.repeat(np.arange(take), J)
        kids = _children(_take(s_hidden, node), cand.ravel())
        rows = np.flatnonzero(np.isfinite(ub[sel]).any(axis=0))
        c_ub, c_hidden = bound(2 * take * J, kids, rows)
        parent = np.concatenate([ub[sel][node], ub[sel][node]])
        c_ub = np.minimum(c_ub, parent)  # a child never loosens
        worse = np.maximum(np.max(c_ub[: take * J], axis=1), np.max(c_ub[take * J :], axis=1)).reshape(take, J)
        pick = np.arange(take) * J + np.argmin(worse, axis=1)
        cols = np.concatenate([pick, take * J + pick])
        stats["splits"] += take
        ub = np.concatenate([ub[rest], c_ub[cols]])
        c_hidden = _take(c_hidden, cols)
        hidden = {
            key: [
                (np.concatenate([a[:, rest], ca], axis=1), np.concatenate([b[:, rest], cb], axis=1))
                for (a, b), (ca, cb) in zip(hidden[key], c_hidden[key])
            ]
            for key in KEYS
        }
    stats["time"] = time.perf_counter() - t0
    stats["open"] = int(len(ub))
    stats["tops"] = tops
    return SplitDecision(
        status, best["val"], upper if status != "not_equivalent" else max(upper, best["val"]), best["x"], stats
    )
