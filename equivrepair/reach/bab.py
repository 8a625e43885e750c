"""Branch and bound that maximises the discrepancy Φ1(x) − Φ2(x) over a box (the ``exact`` method).

Objectives are signed outputs ``s * (Φ1 − Φ2)_j``. The frontier is a set of sub-boxes, each
with a sound upper bound per objective (symbolic bounds on the merged network, intersected with
the differential bounds when they are available). Each round splits the most promising boxes
in batch, bounds the children in one vectorised call, evaluates candidate vertices on the two
original networks (and climbs from each new best witness by region ascent, :mod:`.ascent`), and
closes every objective of a box that cannot beat the best witness by more than the tolerance. Closed bounds are kept, so the final upper bound is sound:

    upper_k = max(bound of every closed box for k, bound of every open box for k).

It stops when ``upper − lower <= max(atol, rtol · |lower|)`` (per objective in ``intervals``
mode, on the maximum in ``max`` mode), at the time limit, or at the branch limit.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..merge import drop_identity_layers, merge, normalise
from ..nets.ir import FNN
from .bounds import _interval_affine
from .milp_leaf import FORCED, LEAF_SOLVER, LeafPolicy, milp_leaf
from .symbolic import crown_bounds, symbolic_bounds, tighten_unstable

DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-4
DEFAULT_INTERVAL_RTOL = 1e-2  # per-output interval ends, relative to max(|end|, δ_max) ("intervals" mode)
MAX_PRIOR_FLOATS = 50_000_000  # parent bounds carried for at most this many floats (400 MB)
FP_SLACK = 1e-9  # relative inflation of every float64 bound (round-off in the bound arithmetic)
ASCENT_DIMS = 16  # region ascent for witnesses (one LP over the inputs per region) up to this many inputs
ASCENT_SHARE = 0.05  # ... taking at most this share of the time so far (plus ASCENT_GRACE seconds)
ASCENT_GRACE = 0.02
LEAF_MILP = 24  # boxes with at most this many unstable ReLUs are solved by the compact MILP ...
LEAF_GRACE = 0.25  # ... within leaf_share of the time so far plus this many seconds
# ... when the box's bound is within this factor of its closing threshold above it (a box far above
# is split: while the run is far from its end, splitting lowers the top of the frontier for less)
LEAF_GAP = 1.0


@dataclass
class BabResult:
    """Per-objective lower (witnessed) and upper (sound) bounds, with the witnesses."""

    objectives: list[tuple[int, int]]  # (sign, output)
    lower: np.ndarray  # (K,) value at the witness
    upper: np.ndarray  # (K,) sound upper bound
    witnesses: np.ndarray  # (K, n)
    finished: bool
    reason: str
    stats: dict = field(default_factory=dict)
    leaves: list = field(default_factory=list)  # (lo, hi, bound per objective when it closed there)
    closed_upper: np.ndarray | None = None  # per objective, over the boxes closed so far
    frontier: tuple[np.ndarray, np.ndarray] | None = None  # the open boxes when stopped early


def make_objectives(outputs: list[int]) -> list[tuple[int, int]]:
    return [(s, j) for j in outputs for s in (1, -1)]


def objective_matrix(objectives: list[tuple[int, int]], n_outputs: int) -> np.ndarray:
    """Rows s·e_j, one per objective (s, j): C (Φ1 − Φ2) are the objectives' values."""
    C = np.zeros((len(objectives), n_outputs))
    for k, (s, j) in enumerate(objectives):
        C[k, j] = s
    return C


class _PriorPool:
    """The hidden bounds carried by the open boxes, one slot (row) per box.

    The frontier keeps slot numbers, so closing, selecting and adding boxes moves a few integers
    per box instead of every open box's bounds: copying them twice an iteration (the filter and
    the concatenation) took a third of an 8-bit ACAS Xu δ_max run with 10k open boxes.
    """

    def __init__(self, pre: list[tuple[np.ndarray, np.ndarray]]):
        n = len(pre[0][0])
        cap = max(256, 2 * n)
        self.lo = [np.empty((cap, a.shape[1])) for a, _ in pre]
        self.hi = [np.empty((cap, b.shape[1])) for _, b in pre]
        self.per_box = sum(2 * a.shape[1] for a, _ in pre)
        self.free = np.arange(cap - 1, -1, -1)  # a stack: the next slot handed out is free[n_free - 1]
        self.n_free = cap
        self.slots = self.add(pre)

    @property
    def floats(self) -> int:
        """Floats held by the boxes that own a slot (the pool's own capacity is at most twice that)."""
        return (len(self.free) - self.n_free) * self.per_box

    def _grow(self, need: int) -> None:
        cap = len(self.free)
        new = max(2 * cap, cap - self.n_free + need)
        for arrs in (self.lo, self.hi):
            for i, a in enumerate(arrs):
                b = np.empty((new, a.shape[1]))
                b[:cap] = a
                arrs[i] = b
        free = np.empty(new, dtype=int)
        free[: new - cap] = np.arange(new - 1, cap - 1, -1)
        free[new - cap : new - cap + self.n_free] = self.free[: self.n_free]
        self.free, self.n_free = free, self.n_free + new - cap

    def add(self, pre: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Store one box's bounds per row of ``pre``; returns their slots."""
        k = len(pre[0][0])
        if k > self.n_free:
            self._grow(k)
        slots = self.free[self.n_free - k : self.n_free].copy()
        self.n_free -= k
        for (a, b), pl, ph in zip(pre, self.lo, self.hi):
            pl[slots] = a
            ph[slots] = b
        return slots

    def get(self, slots: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(pl[slots], ph[slots]) for pl, ph in zip(self.lo, self.hi)]

    def release(self, slots: np.ndarray) -> None:
        self.free[self.n_free : self.n_free + len(slots)] = slots
        self.n_free += len(slots)


def _hidden_bounds(
    net: FNN, lo: np.ndarray, hi: np.ndarray, prior: list | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds per box: forward symbolic (intersected with ``prior``, bounds valid
    on each box's parent), then back-substitution of exactly the (box, neuron) pairs still
    unstable (sparse; the dense form redid every box for a neuron unstable in any box of the
    batch, 65 % of the time of an 8-bit ACAS Xu δ_max run)."""
    if prior is None:
        _, pre = symbolic_bounds(net, lo, hi)
    else:
        # no forward pass: the first layer's bounds are exact by interval arithmetic, every other
        # neuron keeps its parent's bounds until back-substitution re-bounds the unstable ones
        W0 = net.layers[0].W
        zl0, zu0 = _interval_affine(W0, np.abs(W0), net.layers[0].b, lo, hi)
        first = (np.maximum(zl0, prior[0][0]), np.minimum(zu0, prior[0][1]))
        out = np.full((len(lo), net.n_outputs), np.inf)
        pre = [first] + [(a.copy(), b.copy()) for a, b in prior[1:]] + [(-out, out)]
        pre = [(zl, np.maximum(zu, zl)) for zl, zu in pre]
    return tighten_unstable(net, lo, hi, pre)


class _Bounder:
    """Bounds Φ1 − Φ2 on a batch of boxes: symbolic on the merged net ∩ differential bounds."""

    def __init__(self, orig: FNN, comp: FNN, use_differential: bool = True, bound: str = "crown"):
        # identity padding is dropped first (exact), so padded variants line up layer by layer
        self.orig_n, self.comp_n = normalise(drop_identity_layers(orig)), normalise(drop_identity_layers(comp))
        self.merged = merge(self.orig_n, self.comp_n)
        self.bound = bound
        self.same_depth = self.orig_n.depth == self.comp_n.depth
        self.orig, self.comp = orig, comp
        self.diff_fn: Callable | None = None
        if use_differential:
            try:
                from .bounds import differential_bounds

                self.diff_fn = differential_bounds
            except ImportError:  # pragma: no cover - bounds module always ships
                self.diff_fn = None

    def choose_differential(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Keep the differential bound only where it pays: when, on the root box, it is tighter
        than back-substitution by more than 10% (e.g. identical or near-identical networks)."""
        if self.diff_fn is None:
            return
        if self.orig_n.widths != self.comp_n.widths:
            self.diff_fn = None
            return
        fn, self.diff_fn = self.diff_fn, None
        dlo, dhi, _ = self(lo[None], hi[None])
        flo, fhi = fn(self.orig_n, self.comp_n, lo, hi)
        plain = float(np.max(np.maximum(-dlo, dhi)))
        diff = float(np.max(np.maximum(-np.asarray(flo), np.asarray(fhi))))
        if diff < 0.9 * plain:
            self.diff_fn = fn

    def __call__(self, lo: np.ndarray, hi: np.ndarray, prior: list | None = None):
        """Bounds on Φ1 − Φ2 over each box; ``prior``: hidden pre-activation bounds (merged
        layout, per box) valid on a superset of each box (its parent), intersected in before any
        neuron is re-bounded, so a neuron stable in the parent is never back-substituted again.
        The hidden bounds used are kept in ``self.pre`` (``None`` where not tracked)."""
        self.pre = None
        if self.bound == "forward":
            sym, pre = symbolic_bounds(self.merged, lo, hi)
        elif self.bound == "crown-full" and self.same_depth:
            # intermediate bounds of the two networks are independent: compute them separately
            # (a quarter of the work of the block-diagonal merged network), then stack them
            w1 = [layer.n_out for layer in self.orig_n.layers[:-1]]
            pr1 = pr2 = None
            if prior is not None:
                pr1 = [(a[:, :w], b[:, :w]) for (a, b), w in zip(prior, w1)]
                pr2 = [(a[:, w:], b[:, w:]) for (a, b), w in zip(prior, w1)]
            p1 = _hidden_bounds(self.orig_n, lo, hi, pr1)
            p2 = _hidden_bounds(self.comp_n, lo, hi, pr2)
            pre = [(np.hstack([a[0], b[0]]), np.hstack([a[1], b[1]])) for a, b in zip(p1[:-1], p2[:-1])]
            self.pre = list(pre)  # hidden layers only (the output entry below is a placeholder)
            pre.append(
                (np.full((len(lo), self.merged.n_outputs), -np.inf), np.full((len(lo), self.merged.n_outputs), np.inf))
            )
            # no forward symbolic pass on the merged network: from these intermediates its output
            # bounds rarely beat back-substitution, and it cost a third of the bounding time
            # (ACAS Xu 8-bit δ_max: 10-25 % faster end to end, same δ_max)
            sym, pre = crown_bounds(self.merged, lo, hi, pre, forward=False)
        else:
            sym, pre = crown_bounds(self.merged, lo, hi, "backsub" if self.bound == "crown-full" else "forward")
        self.unstable = sum(((zl < 0) & (zu > 0)).sum(axis=1) for zl, zu in pre[:-1])
        slack = FP_SLACK * (1.0 + np.maximum(np.abs(sym.lower), np.abs(sym.upper)))
        dlo, dhi = sym.lower - slack, sym.upper + slack
        if self.diff_fn is not None:
            try:
                # the differential bounds widen themselves outward by 1e-12 x the magnitudes
                # involved (reach.bounds); identical networks give exactly 0 there
                flo, fhi = (np.asarray(f).reshape(dlo.shape) for f in self.diff_fn(self.orig_n, self.comp_n, lo, hi))
                dlo = np.maximum(dlo, flo - FP_SLACK * np.abs(flo))
                dhi = np.minimum(dhi, fhi + FP_SLACK * np.abs(fhi))
            except NotImplementedError:
                pass
        return dlo, dhi, sym


class _DiffBounder:
    """Upper bounds of the objectives only, by differential back-substitution
    (:func:`equivrepair.reach.bounds.tiered_objective_bounds`), in tiers sharing one forward
    pass: the forward differential pass plus back-substitution of the objective rows (cheap);
    for the boxes that does not close, again with the hidden neurons' bounds tightened by sparse
    CROWN back-substitution in each network ("crown"); for the boxes still open *and* within
    reach (:meth:`_keep_delta`), again with the Δz bounds of the neurons unstable in that box
    tightened by differential back-substitution ("crown+delta"). Sound either way; every bound
    is widened by ``FP_SLACK`` relative (on top of the analysis' own round-off slack)."""

    def __init__(self, orig_n: FNN, comp_n: FNN, objectives: list[tuple[int, int]], n_outputs: int):
        self.orig_n, self.comp_n = orig_n, comp_n
        self.tiers = ("crown", "crown+delta")
        self._phi: list[float] = []  # observed gap fractions closed by the crown+delta tier
        self._low = np.zeros((0, len(objectives)))
        self.C = objective_matrix(objectives, n_outputs)

    @classmethod
    def make(
        cls, bounder: _Bounder, objectives, lo, hi, force: bool = False, ratio: float = 1.0
    ) -> _DiffBounder | None:
        """A differential bounder when the architectures match and (unless ``force``) its bound on
        the root box is at most ``ratio`` times that of back-substitution on the merged network."""
        from .bounds import same_architecture

        if not same_architecture(bounder.orig_n, bounder.comp_n):
            return None
        self = cls(bounder.orig_n, bounder.comp_n, objectives, bounder.orig_n.n_outputs)
        if force:
            return self
        ub = self(lo[None], hi[None], np.full(len(objectives), -np.inf), {})[0]
        signs = self.C.sum(axis=1)
        outs = np.argmax(np.abs(self.C), axis=1)
        dlo, dhi, _ = bounder(lo[None], hi[None])
        plain = np.where(signs > 0, dhi[0, outs], -dlo[0, outs])
        return self if float(np.max(ub)) <= ratio * float(np.max(plain)) else None

    _KEYS = ("pre1", "pre2", "delta")

    def __call__(self, lo: np.ndarray, hi: np.ndarray, thresh: np.ndarray, stats: dict, prior: list | None = None):
        """Objective upper bounds; ``prior``/``self.pre``: the hidden bounds (z1, z2, Δz per hidden
        layer, flattened, (N, w) each) valid on each box's parent / used for each box."""
        from .bounds import tiered_objective_bounds

        nh = len(self.orig_n.layers) - 1
        pri = None
        if prior is not None:
            pri = {k: [(a.T, b.T) for a, b in prior[i * nh : (i + 1) * nh]] for i, k in enumerate(self._KEYS)}

        # a lower estimate of each objective on each box: its value at the centre (exact, float64)
        centre = 0.5 * (lo + hi)
        self._low = (self.orig_n.forward(centre) - self.comp_n.forward(centre)) @ self.C.T  # (N, K)
        trace: list = []
        ob = tiered_objective_bounds(
            self.orig_n,
            self.comp_n,
            lo,
            hi,
            self.C,
            thresh,
            tiers=self.tiers,
            skip_delta=self._keep_delta if self.adaptive else None,
            stats=stats,
            trace=trace,
            prior=pri,
        )
        self.pre = [(a.T, b.T) for k in self._KEYS for a, b in ob.hidden[k]]
        for rows, u_crown, u_delta in trace:  # what the crown+delta tier achieved, per box
            gap = u_crown - self._low[rows]
            ok = (u_crown > thresh[None, :]) & (gap > 0)
            phi = np.where(ok, (u_crown - u_delta) / np.where(ok, gap, 1.0), np.nan)
            if phi.size:  # rows where no objective was open give NaN: dropped below
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    phi = np.nanmax(phi, axis=1)
            self._phi.extend(phi[np.isfinite(phi)].tolist())
            closed = np.all(u_delta + FP_SLACK * np.abs(u_delta) < thresh[None, :], axis=1)
            stats["delta_closed"] = stats.get("delta_closed", 0) + int(closed.sum())
        ub = ob.upper
        return ub + FP_SLACK * np.abs(ub), ob.coef, ob.unstable, ob.grad

    adaptive = True
    MIN_OBS = 32  # crown+delta results seen before any box is denied that tier
    QUANTILE = 0.9

    def _keep_delta(self, u_crown: np.ndarray, thresh: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(a) Which open boxes get the crown+delta tier: those whose crown bound it can plausibly
        bring below the threshold. The tier shrinks the gap (bound − value at the centre) by a
        fraction φ; a box needs φ >= (bound − threshold) / gap for every objective, so it is
        skipped (split instead) when it needs more than the 90th percentile of the φ seen so far.
        Only a performance choice: every bound stays sound."""
        keep = np.ones(len(u_crown), dtype=bool)
        if len(self._phi) < max(self.MIN_OBS, 1):
            return keep
        if len(self._phi) > 4096:
            del self._phi[: len(self._phi) - 4096]
        phi_hi = float(np.quantile(self._phi, self.QUANTILE))
        gap = u_crown - self._low[rows]
        # an objective already below its threshold needs nothing; one with no gap cannot shrink
        ratio = (u_crown - thresh[None, :]) / np.where(gap > 0, gap, 1.0)
        need = np.where(u_crown > thresh[None, :], np.where(gap > 0, ratio, np.inf), 0.0)
        return np.max(need, axis=1) <= phi_hi


def discrepancy(orig: FNN, comp: FNN, x: np.ndarray) -> np.ndarray:
    """Φ1(x) − Φ2(x) evaluated on the two original networks in float64 (the witness rule)."""
    return orig.forward(x) - comp.forward(x)


def _objective_values(d: np.ndarray, objectives: list[tuple[int, int]]) -> np.ndarray:
    signs = np.array([s for s, _ in objectives], dtype=np.float64)
    outs = np.array([j for _, j in objectives])
    return d[..., outs] * signs


def _merged_grad(net: FNN, x: np.ndarray, out: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Gradient of sign * net(x)[out] for a batch of points (one output per point)."""
    acts = [x]
    h = x
    for layer in net.layers:
        h = layer(h)
        acts.append(h)
    g = sign[:, None] * net.layers[-1].W[out]
    for li in range(len(net.layers) - 2, -1, -1):
        layer = net.layers[li]
        mask = (acts[li + 1] > 0).astype(np.float64) if layer.activation == "relu" else 1.0
        g = (g * mask) @ layer.W
    return g


def local_search(
    net: FNN, x0: np.ndarray, out: np.ndarray, sign: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int = 30
) -> np.ndarray:
    """Projected sign-gradient ascent on sign * net(x)[out] inside [lo, hi]; returns the best points."""
    x = np.clip(x0, lo, hi)
    best = x.copy()
    idx = np.arange(len(x))
    best_val = sign * net.forward(x)[idx, out]
    step = 0.25 * (hi - lo)
    for _ in range(steps):
        g = _merged_grad(net, x, out, sign)
        x = np.clip(x + step * np.sign(g), lo, hi)
        val = sign * net.forward(x)[idx, out]
        better = val > best_val
        best[better] = x[better]
        best_val = np.where(better, val, best_val)
        x = np.where(better[:, None], x, best)
        step = step * 0.7
    return best


def _ascend_witnesses(merged, best_x, best_val, ascended, outs, signs, lo, hi, stats, deadline: float):
    """Region ascent (:mod:`.ascent`) from every objective's best witness that is new (better
    than ``ascended``, the value last ascended from), best first, until ``deadline``
    (perf_counter): a witness next to a kink of Φ1 − Φ2 usually has a better one on that kink,
    a few LPs away. Returns (points, objectives ascended)."""
    from .ascent import region_ascent

    todo = np.flatnonzero(best_val > ascended)
    points, done = [], []
    for k in todo[np.argsort(-best_val[todo])]:
        if time.perf_counter() > deadline:
            break
        a = region_ascent(merged, best_x[k], lo, hi, int(outs[k]), float(signs[k]))
        stats["ascent_lps"] = stats.get("ascent_lps", 0) + a.lps
        points.append(a.x)
        done.append(k)
    return np.array(points).reshape(-1, lo.size), np.array(done, dtype=int)


def exact_leaf(
    merged: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    objectives: list[tuple[int, int]],
    pre: list[tuple[np.ndarray, np.ndarray]] | None = None,
    wanted: np.ndarray | None = None,
):
    """Exact extremes of the objectives on one box by star enumeration (few unstable ReLUs).

    ``pre``: sound hidden pre-activation bounds of ``merged`` on the box (neurons they show
    stable cost no LP); ``wanted``: which objectives to solve (the others come back as +inf, a
    bound that changes nothing, with the box centre as their point). Returns (value per
    objective, argmax point per objective, LPs); values carry the LP tolerance.
    """
    from .star import LP_TOL, enumerate_stars, star_extremes

    wanted = np.ones(len(objectives), dtype=bool) if wanted is None else np.asarray(wanted, dtype=bool)
    outputs = sorted({j for _, j in objectives})
    sides = (np.zeros(len(outputs), dtype=bool), np.zeros(len(outputs), dtype=bool))
    for k, (s, j) in enumerate(objectives):
        sides[int(s > 0)][outputs.index(j)] |= bool(wanted[k])
    res = enumerate_stars(merged, lo, hi, pre_bounds=pre)
    mins, maxs, argmins, argmaxs, nlp = star_extremes(res, outputs, sides)
    vals = np.full(len(objectives), np.inf)
    pts = np.tile(0.5 * (lo + hi), (len(objectives), 1))
    for k, (s, j) in enumerate(objectives):
        if not wanted[k]:
            continue
        i = outputs.index(j)
        v = maxs[i] if s > 0 else -mins[i]
        vals[k] = v + 10 * LP_TOL * (1.0 + abs(v))
        pts[k] = argmaxs[i] if s > 0 else argmins[i]
    return vals, pts, res.stats["lps"] + nlp


def _merged_hidden(source, merged: FNN, pre: list | None = None) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The hidden bounds of the last bound call's boxes (or ``pre``, stored in the bounder's layout),
    (N, w) per layer in ``merged``'s layout (Φ1's neurons then Φ2's per layer), or None where the
    bounder kept none or the layouts differ."""
    pre = getattr(source, "pre", None) if pre is None else pre
    if pre is None:
        return None
    if isinstance(source, _DiffBounder):  # z1, z2 and Δz per hidden layer, in that order
        nh = len(pre) // 3
        pre = [(np.hstack([pre[j][0], pre[nh + j][0]]), np.hstack([pre[j][1], pre[nh + j][1]])) for j in range(nh)]
    hidden = [layer.n_out for layer in merged.layers[:-1]]
    if [a.shape[1] for a, _ in pre] != hidden:
        return None
    return pre


def _delta_hidden(source, pre: list | None = None) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The bounds on z1 − z2 of the last bound call's boxes (or of ``pre``, in the bounder's
    layout), (N, w) per hidden layer, where the bounder kept them (the differential one), else None."""
    pre = getattr(source, "pre", None) if pre is None else pre
    if pre is None or not isinstance(source, _DiffBounder):
        return None
    nh = len(pre) // 3
    return pre[2 * nh :]


def bisect(lo: np.ndarray, hi: np.ndarray, dim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bisect each box i along dim[i]; children are [first halves, second halves]."""
    take = len(lo)
    rows = np.arange(take)
    mid = 0.5 * (lo[rows, dim] + hi[rows, dim])
    c_lo, c_hi = np.concatenate([lo, lo]), np.concatenate([hi, hi])
    c_hi[rows, dim] = mid
    c_lo[take + rows, dim] = mid
    return c_lo, c_hi


def _smear_dims(lo, hi, coef, ub, thresh) -> np.ndarray:
    """Split dimension by smear: |coefficient| x width of the most promising objective's bound."""
    rows = np.arange(len(lo))
    k_star = np.argmax(ub - thresh[None, :], axis=1)
    c = np.abs(coef[rows, k_star])
    # |coefficient| x width, floored so that a dimension the bound ignores is still split when wide
    score = (c + 0.1 * c.max(axis=1, keepdims=True) + 1e-12) * (hi - lo)
    return np.argmax(score, axis=1)


def _strong_split(bound, lo, hi, thresh):
    """Try every dimension, keep the split whose worse child has the smallest excess over the threshold."""
    take, n = lo.shape
    all_lo, all_hi = [], []
    for d in range(n):
        c_lo, c_hi = bisect(lo, hi, np.full(take, d))
        all_lo.append(c_lo)
        all_hi.append(c_hi)
    ub, cand, coef = bound(np.concatenate(all_lo), np.concatenate(all_hi))
    excess = np.max(ub - thresh[None, :], axis=1).reshape(n, 2, take)
    score = np.maximum(excess[:, 0], excess[:, 1]) + 1e-3 * np.minimum(excess[:, 0], excess[:, 1])
    best = np.argmin(score, axis=0)  # (take,)
    rows = np.arange(take)
    idx = np.concatenate([best * 2 * take + rows, best * 2 * take + take + rows])
    return np.concatenate(all_lo)[idx], np.concatenate(all_hi)[idx], ub[idx], cand[idx], coef[idx], idx


def maximize(
    orig: FNN,
    comp: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    outputs: list[int] | None = None,
    mode: Literal["max", "intervals", "decide"] = "intervals",
    epsilon: float | None = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    interval_rtol: float | None = DEFAULT_INTERVAL_RTOL,
    time_limit: float | None = None,
    max_branches: int | None = None,
    batch: int = 128,
    stop_above: float | None = None,
    stop_below: float | None = None,
    record_leaves: bool = False,
    use_differential: bool | str = "auto",
    diff_backsub: bool | None = None,
    strong_branching_dims: int = 0,
    leaf_unstable: int = 4,
    leaf_milp: int | None = None,
    leaf_time: float = 1.0,
    leaf_share: float = 0.75,
    leaf_policy: Literal["auto", "always"] = "auto",
    leaf_gap: float = LEAF_GAP,
    leaf_solver: Literal["phase", "highs"] = LEAF_SOLVER,
    bound: str = "crown-full",
    progress: Callable[[dict], None] | None = None,
    seed_points: np.ndarray | None = None,
    frontier: tuple[np.ndarray, np.ndarray] | None = None,
) -> BabResult:
    """Maximise every signed output of Φ1 − Φ2 over the box [lo, hi] by input-splitting branch and bound.

    ``mode``: ``intervals`` resolves every signed output (to ``interval_rtol``, default ``rtol``)
    and δ_max to ``rtol``, ``max`` only the largest
    (δ_max), ``decide`` only whether all of them stay below ``epsilon``.
    ``stop_above``: stop as soon as some witness exceeds it (a counterexample to ε-equivalence);
    ``stop_below``: stop as soon as the sound upper bound is below it (equivalence proved).
    ``diff_backsub``: bound by differential back-substitution (:class:`_DiffBounder`); by default
    (None) in ``decide`` mode when it is at least as tight as the merged bound at the root, in the
    other modes when it is at most half of it. ``False`` also keeps to the bounds a certificate
    checker re-proves with LPs (its large leaves are beyond the checker's LPs).
    ``leaf_unstable``/``leaf_milp``: a child box with at most that many unstable ReLUs (of Φ1 and
    Φ2) is solved exactly, by star enumeration / by the compact MILP (:mod:`.milp_leaf`; default
    ``LEAF_MILP`` except in ``decide`` mode, 0 = off; never with ``record_leaves``), the MILPs
    taking at most ``leaf_share`` of the time so far and ``leaf_time`` seconds a box. Which
    candidates get a MILP: ``leaf_policy="auto"`` where it is expected to cost less than
    splitting (:class:`.milp_leaf.LeafPolicy` measures both on the run), ``"always"`` all.
    ``leaf_gap``: with ``"auto"``, a designated box whose bound exceeds its closing threshold by
    more than this fraction of it when it reaches the top is split instead (``inf``: never).
    ``leaf_solver``: how a MILP leaf is solved, ``"phase"`` (LP branch and bound over the phases,
    :mod:`.phase_bab`) or ``"highs"`` (HiGHS's MIP solver).
    """
    t0 = time.perf_counter()
    if leaf_solver not in ("phase", "highs"):
        raise ValueError(f"leaf_solver must be 'phase' or 'highs', not {leaf_solver!r}")
    if mode == "decide":
        if epsilon is None:
            raise ValueError("mode='decide' needs epsilon")
        stop_above = epsilon if stop_above is None else stop_above
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    n = lo.size
    outputs = list(range(orig.n_outputs)) if outputs is None else list(outputs)
    objectives = make_objectives(outputs)
    K = len(objectives)
    signs = np.array([s for s, _ in objectives], dtype=np.float64)
    outs = np.array([j for _, j in objectives])
    if leaf_milp is None:
        # MILP leaves resolve δ_max (a threshold just above the best witness) several times faster;
        # a decision against a looser ε closes its boxes by bounds (measured slower with them)
        leaf_milp = 0 if mode == "decide" else LEAF_MILP
    if record_leaves:
        leaf_milp = 0  # a certificate checker re-proves each leaf with LPs, not MILPs
    bounder = _Bounder(orig, comp, use_differential in (True, "auto"), bound)
    # same architecture: bound the objectives by differential back-substitution (_DiffBounder)
    diff = None
    # δ_max (mode max/intervals) only takes the differential bounder when it is far tighter at the
    # root: measured root ratios 0.12-0.19 for ACAS Xu vs 16-bit copies (where it resolves δ_max 10x
    # tighter in the same time) and 0.78-0.97 vs 8-bit copies (where it made δ_max 1.5-3x slower:
    # the tiers cost more than the splits they save once a box must be resolved, not closed)
    ratio = 1.0 if mode == "decide" or diff_backsub else 0.5
    if diff_backsub is not False and use_differential in (True, "auto") and bound == "crown-full":
        diff = _DiffBounder.make(bounder, objectives, lo, hi, force=use_differential is True, ratio=ratio)
    if diff is None and use_differential == "auto":
        bounder.choose_differential(lo, hi)
    merged = bounder.merged
    cur_thresh = np.full(K, -np.inf)  # boxes the cheap tier cannot close get the tight tier

    best_val = np.full(K, -np.inf)
    best_x = np.tile(lo, (K, 1))
    closed_ub = np.full(K, -np.inf)
    leaves: list = []
    stats = {"branches": 0, "bound_calls": 0, "boxes_bounded": 0, "max_frontier": 0}

    def bound(blo: np.ndarray, bhi: np.ndarray, prior: list | None = None):
        stats["bound_calls"] += 1
        stats["boxes_bounded"] += len(blo)
        if diff is not None:
            ub, coef, bounder.unstable, grad = diff(blo, bhi, cur_thresh, stats, prior)
            cand = np.where(coef > 0, bhi[:, None, :], blo[:, None, :])
            # splits by smear (NeuroDiff): interval gradient of the objective x width
            return ub, cand, grad
        dlo, dhi, sym = bounder(blo, bhi, prior)
        ub = np.where(signs > 0, dhi[:, outs], -dlo[:, outs])  # (B, K)
        # candidate vertices: maximise the upper linear function (s=+1) or minimise the lower one
        coef = np.where(signs[None, :, None] > 0, sym.Uw[:, outs, :], -sym.Lw[:, outs, :])  # (B, K, n)
        cand = np.where(coef > 0, bhi[:, None, :], blo[:, None, :])
        return ub, cand, coef

    def update_witness(points: np.ndarray) -> None:
        if len(points) == 0:
            return
        d = discrepancy(orig, comp, points)
        vals = _objective_values(d, objectives)  # (P, K): every point counts for every objective
        arg = np.argmax(vals, axis=0)
        top = vals[arg, np.arange(K)]
        better = top > best_val
        best_val[better] = top[better]
        best_x[better] = points[arg[better]]

    # root (or a given frontier of sub-boxes of [lo, hi], e.g. one worker's share)
    if frontier is None:
        F_lo, F_hi = lo[None].copy(), hi[None].copy()
    else:
        F_lo, F_hi = (np.array(f, dtype=np.float64).reshape(-1, n) for f in frontier)
    ub, cand, coef = bound(F_lo, F_hi)
    # the hidden bounds of every open box (kept by whichever bounder bounds the boxes): its
    # children start from them. Not with recorded leaves: a certificate checker re-proves each
    # leaf on its own, without them
    source = bounder if diff is None else diff
    pool = _PriorPool(source.pre) if source.pre is not None and not record_leaves else None
    F_slot = pool.slots if pool is not None else None
    pts = cand[:8].reshape(-1, n)
    update_witness(np.vstack([pts, 0.5 * (F_lo + F_hi)]))
    seeds = local_search(merged, pts, np.tile(outs, min(8, len(F_lo))), np.tile(signs, min(8, len(F_lo))), lo, hi)
    update_witness(seeds)
    if seed_points is not None:  # witnesses found elsewhere (other workers); re-evaluated here
        update_witness(np.atleast_2d(np.asarray(seed_points, dtype=np.float64)))
    ascent_time = 0.0
    milp_time = 0.0  # spent in MILP leaves
    if leaf_policy not in ("auto", "always"):
        raise ValueError(f"leaf_policy must be 'auto' or 'always', not {leaf_policy!r}")
    policy = LeafPolicy(always=leaf_policy == "always")
    ascended = np.full(K, -np.inf)  # per objective, the witness value region ascent last started from

    def ascend(final: bool = False) -> None:
        # region ascent from every new best witness, within its share of the time (plus a grace);
        # ``final``: once more at the end, from the best witnesses not yet ascended, whatever the
        # share (one ascent per objective, a few LPs over at most ASCENT_DIMS inputs each)
        nonlocal ascent_time
        ta = time.perf_counter()
        budget = np.inf if final else ASCENT_SHARE * (ta - t0) + ASCENT_GRACE - ascent_time
        if n <= ASCENT_DIMS and budget > 0:
            points, ks = _ascend_witnesses(merged, best_x, best_val, ascended, outs, signs, lo, hi, stats, ta + budget)
            update_witness(points)
            ascended[ks] = best_val[ks]  # the ascended points are local maxima: not again
            if final:  # outside the share: recorded apart
                stats["ascent_final_time"] = time.perf_counter() - ta
                return
            ascent_time += time.perf_counter() - ta
            stats["ascent_time"] = ascent_time

    def solve_milp(blo, bhi, bub, thr, pre_i, dz_i) -> tuple[np.ndarray | None, float]:
        """One MILP leaf on a box: (new bounds per objective, seconds), or (None, 0) when the time
        limit or the MILP share of the time is used up."""
        nonlocal milp_time
        now = time.perf_counter()
        budget = leaf_share * (now - t0) + LEAF_GRACE - milp_time
        if budget <= 0 or (time_limit is not None and now - t0 > time_limit):
            return None, 0.0
        gap = 0.5 * max(atol, rtol * max(float(np.max(best_val)), 0.0))
        lr = milp_leaf(
            bounder.orig_n, bounder.comp_n, merged, blo, bhi, objectives, bub, thr,
            pre_i, dz_i, min(leaf_time, budget), gap, stop_above, leaf_solver,
        )  # fmt: skip
        update_witness(lr.points)
        spent = time.perf_counter() - now
        policy.milp_cost(spent)
        milp_time += spent
        stats["milp_leaves"] = stats.get("milp_leaves", 0) + 1
        stats["leaf_milps"] = stats.get("leaf_milps", 0) + lr.milps
        stats["leaf_nodes"] = stats.get("leaf_nodes", 0) + lr.nodes
        stats["milp_leaf_time"] = milp_time
        return lr.upper, spent

    ascend()
    F_ub, F_coef = ub, coef
    # the bound each objective had when it closed in a box (kept for recorded leaves / proofs)
    F_rec = np.full_like(F_ub, np.nan)
    F_tag = np.full(len(F_ub), -1, dtype=np.int64)  # LeafPolicy's tag of the split candidate above each box
    F_milp = np.zeros(len(F_ub), dtype=bool)  # designated for a MILP leaf when it reaches the top
    reason = "converged"
    finished = True
    it = 0
    while True:
        # close objectives that cannot beat the witness by more than the tolerance
        g = np.max(best_val)
        g_thresh = g + max(atol, rtol * abs(g))
        irtol = rtol if interval_rtol is None else interval_rtol
        # an objective closes in a box when it can neither raise δ_max beyond the tolerance nor
        # widen its own interval beyond the (possibly looser) interval tolerance
        # interval ends are resolved relative to the scale of the discrepancy (δ), so that an end
        # near zero does not demand an absurdly fine resolution
        scale = np.maximum(np.abs(best_val), max(g, 0.0))
        thresh = np.minimum(best_val + np.maximum(atol, irtol * scale), g_thresh)
        if mode == "max":
            g = np.max(best_val)
            thresh = np.full(K, g + max(atol, rtol * abs(g)))
        if mode == "decide":  # only boxes that provably stay below epsilon close
            thresh = np.full(K, float(epsilon))
            dead = F_ub < thresh[None, :]
        else:
            dead = F_ub <= thresh[None, :]
        cur_thresh[:] = thresh
        if dead.any():
            closed_ub = np.maximum(closed_ub, np.max(np.where(dead, F_ub, -np.inf), axis=0))
            F_rec = np.where(dead & ~np.isneginf(F_ub), F_ub, F_rec)
            F_ub = np.where(dead, -np.inf, F_ub)
        alive = ~np.all(np.isneginf(F_ub), axis=1)
        if record_leaves and (~alive).any():
            leaves.extend(zip(F_lo[~alive], F_hi[~alive], F_rec[~alive]))
        F_lo, F_hi, F_ub, F_coef, F_rec = F_lo[alive], F_hi[alive], F_ub[alive], F_coef[alive], F_rec[alive]
        F_tag, F_milp = F_tag[alive], F_milp[alive]
        if pool is not None:
            pool.release(F_slot[~alive])
            F_slot = F_slot[alive]
        stats["max_frontier"] = max(stats["max_frontier"], len(F_lo))

        upper = np.maximum(closed_ub, F_ub.max(axis=0) if len(F_ub) else -np.inf)
        g_low, g_up = float(np.max(best_val)), float(np.max(upper))
        elapsed = time.perf_counter() - t0
        if progress is not None and it % 10 == 0:
            progress({"time": elapsed, "open": len(F_lo), "lower": g_low, "upper": g_up, "branches": stats["branches"]})
        if len(F_lo) == 0:
            break
        if stop_above is not None and g_low >= stop_above:
            reason, finished = "witness above threshold", False
            break
        if stop_below is not None and g_up < stop_below:
            reason, finished = "upper bound below threshold", False
            break
        if time_limit is not None and elapsed > time_limit:
            reason, finished = "time limit", False
            break
        if max_branches is not None and stats["branches"] >= max_branches:
            reason, finished = "branch limit", False
            break
        it += 1

        # pick the boxes with the largest excess over their thresholds
        t_iter = time.perf_counter()
        excess = np.max(F_ub - thresh[None, :], axis=1)
        take = min(batch, len(F_lo))
        sel = np.argpartition(-excess, take - 1)[:take] if take < len(F_lo) else np.arange(len(F_lo))
        # boxes the MILP-leaf policy designated are solved now that they are at the top; they stay
        # in the frontier with their new bounds (closed at the next round when under threshold)
        it_milp = 0.0
        due = sel[F_milp[sel]]
        if due.size:
            F_milp[due] = False
            if not policy.always:  # far above its threshold, a box is split (see LEAF_GAP)
                rel = (F_ub[due] - thresh[None, :]) / np.maximum(np.abs(thresh), atol)[None, :]
                near = np.max(rel, axis=1) <= leaf_gap
                stats["milp_gated"] = stats.get("milp_gated", 0) + int(np.count_nonzero(~near))
                due = due[near]
            sel = sel[~np.isin(sel, due)]
            pre_due = pool.get(F_slot[due]) if pool is not None else None
            due_pre = _merged_hidden(source, merged, pre_due) if pre_due is not None else None
            due_dz = _delta_hidden(source, pre_due) if pre_due is not None else None
            for r, i in enumerate(due):
                vals, spent = solve_milp(
                    F_lo[i], F_hi[i], F_ub[i], thresh,
                    None if due_pre is None else [(a[r], b[r]) for a, b in due_pre],
                    None if due_dz is None else [(a[r], b[r]) for a, b in due_dz],
                )  # fmt: skip
                it_milp += spent
                if vals is None:
                    break  # out of time or of the MILP budget
                F_ub[i] = np.where(np.isneginf(F_ub[i]), -np.inf, np.minimum(F_ub[i], vals))
            take = sel.size
            if take == 0:
                continue
        keep = np.ones(len(F_lo), dtype=bool)
        keep[sel] = False
        s_lo, s_hi, s_ub, s_coef, s_rec = F_lo[sel], F_hi[sel], F_ub[sel], F_coef[sel], F_rec[sel]
        s_tag = F_tag[sel]
        if n <= strong_branching_dims:
            c_lo, c_hi, c_ub, c_cand, c_coef, chosen = _strong_split(bound, s_lo, s_hi, thresh)
            # the bound call covered every candidate split: keep the unstable counts of the children
            bounder.unstable = np.asarray(bounder.unstable)[chosen]
        else:
            dim = _smear_dims(s_lo, s_hi, s_coef, s_ub, thresh)
            c_lo, c_hi = bisect(s_lo, s_hi, dim)
            prior = (
                None if pool is None else [(np.tile(a, (2, 1)), np.tile(b, (2, 1))) for a, b in pool.get(F_slot[sel])]
            )
            c_ub, c_cand, c_coef = bound(c_lo, c_hi, prior)
        stats["branches"] += take

        # children inherit closed objectives from their parent; bounds can only improve
        parent_ub = np.concatenate([s_ub, s_ub])
        c_ub = np.minimum(c_ub, parent_ub)
        # children with few unstable ReLUs are solved exactly: by star enumeration (at most
        # leaf_unstable) or, where the policy expects it to cost less than splitting them, by the
        # compact MILP (at most leaf_milp; fewest first, within leaf_share of the time so far)
        unst = np.asarray(bounder.unstable)
        c_excess = np.max(c_ub - thresh[None, :], axis=1)
        c_open = c_excess >= 0 if mode == "decide" else c_excess > 0
        cand = (unst > leaf_unstable) & (unst <= leaf_milp)
        c_tag = np.concatenate([s_tag, s_tag])
        policy.grow(c_tag)
        stars = np.flatnonzero((unst > 0) & (unst <= leaf_unstable) & c_open)[:64]
        milps = stars[:0]
        if leaf_milp > 0:
            # candidates below a tagged (split) candidate are split too: their subtree is measured;
            # below a given-up one (FORCED) they are MILP'd; fresh ones as the policy chooses
            milps, tagged, tags = policy.choose(np.flatnonzero(cand & c_open & (c_tag == -1)))
            c_tag[tagged] = tags
            milps = np.concatenate([milps, np.flatnonzero(cand & c_open & (c_tag == FORCED))])
        c_milp = np.zeros(2 * take, dtype=bool)
        c_milp[milps] = True  # solved when they reach the top of the frontier, if they ever do
        if stars.size:
            # the children's hidden bounds, assembled once for all leaves (strong branching bounds
            # many candidate splits per call: its bounds are not the children's)
            leaf_pre = _merged_hidden(source, merged) if n > strong_branching_dims else None
            for i in stars:
                if time_limit is not None and time.perf_counter() - t0 > time_limit:
                    break
                pre_i = None if leaf_pre is None else [(a[i], b[i]) for a, b in leaf_pre]
                vals, xs, nlp = exact_leaf(merged, c_lo[i], c_hi[i], objectives, pre_i, c_ub[i] > thresh)
                stats["leaf_lps"] = stats.get("leaf_lps", 0) + nlp
                stats["exact_leaves"] = stats.get("exact_leaves", 0) + 1
                update_witness(xs)
                c_ub[i] = np.where(np.isneginf(c_ub[i]), -np.inf, np.minimum(c_ub[i], vals))
        # evaluate the candidate vertex of each child's most promising objective (plus centres)
        kk = np.argmax(c_ub - thresh[None, :], axis=1)
        pts = c_cand[np.arange(2 * take), kk]
        update_witness(np.vstack([pts, 0.5 * (c_lo + c_hi)]))
        if it % 5 == 1:
            ls = local_search(merged, pts, outs[kk], signs[kk], lo, hi, steps=15)
            update_witness(ls)
        ascend()

        F_lo = np.concatenate([F_lo[keep], c_lo])
        F_hi = np.concatenate([F_hi[keep], c_hi])
        F_ub = np.concatenate([F_ub[keep], c_ub])
        F_coef = np.concatenate([F_coef[keep], c_coef])
        F_rec = np.concatenate([F_rec[keep], s_rec, s_rec])  # children inherit their parent's closures
        F_tag = policy.settle(np.concatenate([F_tag[keep], c_tag]))
        F_milp = np.concatenate([F_milp[keep], c_milp])
        policy.split_cost(time.perf_counter() - t_iter - it_milp, 2 * take)
        if pool is not None:
            if source.pre is None or n <= strong_branching_dims or pool.floats > MAX_PRIOR_FLOATS:
                pool = F_slot = None  # children bounded without tracking (or too many boxes): stop carrying
            else:
                pool.release(F_slot[sel])  # the parents' bounds were read above, into ``prior``
                F_slot = np.concatenate([F_slot[keep], pool.add(source.pre)])

    ascend(final=True)
    upper = np.maximum(closed_ub, F_ub.max(axis=0) if len(F_ub) else -np.inf)
    if record_leaves and len(F_lo):
        leaves.extend(zip(F_lo, F_hi, np.where(np.isneginf(F_ub), F_rec, F_ub)))
    # an objective whose bound was never above -inf everywhere: the witness value is the truth
    upper = np.maximum(upper, best_val)
    stats["time"] = time.perf_counter() - t0
    stats["open"] = int(len(F_lo))
    if leaf_milp > 0 and policy.resolved:
        stats["leaf_tags"] = {
            "resolved": len(policy.resolved),
            "capped": int(sum(c for _, c, _ in policy.resolved)),
            "dormant": int(np.count_nonzero(policy.state == 3)),
            "budget": policy.budget,
        }  # the MILP-leaf policy's last subtree measurements (LeafPolicy)
    res = BabResult(objectives, best_val, upper, best_x, finished and len(F_lo) == 0, reason, stats, leaves)
    res.closed_upper = closed_ub
    res.frontier = (F_lo, F_hi)
    return res
