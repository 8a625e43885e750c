"""Cheap sound bounds on Φ1(x) − Φ2(x): interval (IBP) and differential (NeuroDiff-style).

Both are batched over N boxes (``lo``/``hi`` of shape (N, n) or (n,)) and fully vectorised: no
Python loop over neurons or boxes, only over layers.

Differential bounds
-------------------
For two networks with the same architecture (same depth and widths after :func:`normalise`), the
analysis tracks, for every layer, symbolic lower and upper *linear functions of the input* for the
pre-activations z1 of Φ1, z2 of Φ2 and for their difference Δz = z1 − z2 (ReluVal/Neurify-style
"symbolic intervals", concretised at every layer to choose the ReLU relaxations), as NeuroDiff
(Paulsen, Wang, Wang, ASE 2020) does on top of ReluDiff (ICSE 2020). The difference goes through
an affine layer as

    Δz' = W1 Δa + (W1 − W2) a2 + (b1 − b2),      Δa = relu(z1) − relu(z2),

and through a ReLU by the rules of :func:`_relax_delta` (documented there). In short, per layer:

* z1, z2: forms propagated through W, b (each network on its own), concretised and intersected
  with interval arithmetic on the previous layer's concrete bounds;
* Δz: the propagated form, or L1 − U2 / U1 − L2 (the merged-network bound, which keeps the input
  correlation), whichever concretises tighter; concrete bounds also intersected with interval
  arithmetic on Δa and a2 and with [l1 − u2, u1 − l2];
* the individual bounds are then tightened by z1 = z2 + Δz;
* relu(z1), relu(z2): per neuron the tighter of DeepPoly's relaxation on [l, u] and Neurify's on
  the forms' own ranges (:func:`_relu_forms`);
* Δa = relu(z1) − relu(z2): per neuron the tightest of several valid forms: exact in the stable
  cases, chords of min(0, Δz) <= Δa <= max(0, Δz) (relu is monotone and 1-Lipschitz), and the
  difference of the two networks' own relaxations (:func:`_relax_delta`).

Identical networks: Δz is exactly 0 at the first layer, every rule maps 0 to 0 and every slack is
proportional to magnitudes that are 0, so the output bound is exactly [0, 0] in one pass. When the two networks
differ in depth or width the differential part does not apply; the analysis falls back to the same
symbolic-interval propagation on the merged network ``merge(orig, comp)`` (intersected with
interval bounds); :class:`DifferentialBounds.mode` says which was used.

Coordinates: linear forms are kept in the normalised input ξ ∈ [−1, 1]^n, with x = mid + rad ⊙ ξ,
so concretising ``c·ξ + c0`` over the box is just ``c0 ± Σ|c|``. Forms of k neurons on N boxes
are stored as arrays of shape (n + 1, k, N), the last slot holding the constant, so that a layer
is a batched matrix product and a concretisation is a sum over the first axis.

Floating point
--------------
All bounds are sound in exact arithmetic. Float64 round-off is covered by outward slack: every
matrix product, relaxation and concretisation widens its constant term by ``FP_REL`` times an upper
bound on the magnitude of the quantities it summed (for a product with W: ``FP_REL · Σ_j |W_ij| ·
max_j |X_j|``). ``FP_REL = 1e-12`` exceeds the standard rounding-error bound γ_k = k·2^-53 of a
length-k dot product for k < 9000, the widths seen here. The slack is proportional to the
magnitudes involved, so a difference that is exactly zero (identical networks) stays exactly 0.
This is a careful but not machine-checked rounding analysis; "sound" here means sound up to it.

Candidate relaxations are chosen per neuron by their concrete bounds; a later candidate must win by
a relative 1e-9 (``_TIE``), so exact ties resolve the same way in batched and single-box calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..merge import merge, normalise
from ..nets.ir import FNN, Layer
from ..spec.sets import Box
from .result import Discrepancy

FP_REL = 1e-12
"""Relative outward slack per operation covering float64 round-off (see the module docstring)."""

_CHUNK_ELEMS = 2_000_000  # largest form tensor (neurons × boxes × (n+1)) processed at once


# --------------------------------------------------------------------------------------------
# batching helpers
# --------------------------------------------------------------------------------------------
def _as_batch(lo: Any, hi: Any, n_inputs: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if lo.shape != hi.shape:
        raise ValueError(f"lower bound shape {lo.shape} differs from upper bound shape {hi.shape}")
    single = lo.ndim == 1
    lo2, hi2 = np.atleast_2d(lo), np.atleast_2d(hi)
    if lo2.ndim != 2:
        raise ValueError(f"boxes must be (n,) or (N, n), got shape {lo.shape}")
    if n_inputs is not None and lo2.shape[1] != n_inputs:
        raise ValueError(f"boxes have {lo2.shape[1]} dimensions, the network has {n_inputs} inputs")
    if np.any(lo2 > hi2):
        raise ValueError("a box has lower > upper")
    return lo2, hi2, single


def _mid_rad(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and radius with [mid − rad, mid + rad] ⊇ [lo, hi] exactly (radius rounded up)."""
    mid = 0.5 * (lo + hi)
    rad = np.nextafter(np.maximum(hi - mid, mid - lo), np.inf)
    return mid, rad


# --------------------------------------------------------------------------------------------
# interval bound propagation
# --------------------------------------------------------------------------------------------
def interval_bounds(net: FNN, lo: Any, hi: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds ``(l, u)`` of every layer of ``net`` by interval arithmetic (IBP).

    ``lo``/``hi`` are one box (n,) or N boxes (N, n); the result arrays are (n_i,) or (N, n_i).
    The last entry bounds the network output.
    """
    lo2, hi2, single = _as_batch(lo, hi, net.n_inputs)
    al, au = lo2, hi2
    out = []
    for layer in net.layers:
        zl, zu = _interval_affine(layer.W, np.abs(layer.W), layer.b, al, au)
        out.append((zl[0], zu[0]) if single else (zl, zu))
        if layer.activation == "relu":
            al, au = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
        else:
            al, au = zl, zu
    return out


def _interval_affine(
    W: np.ndarray, absW: np.ndarray, b: np.ndarray | None, al: np.ndarray, au: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``W a + b`` for a in [al, au] (N, n_in) → (N, n_out) each, outward rounded."""
    mid = 0.5 * (al + au)
    rad = np.maximum(au - mid, mid - al)
    zm = mid @ W.T
    zr = rad @ absW.T
    mag = np.abs(mid) @ absW.T + zr
    if b is not None:
        zm = zm + b
        mag = mag + np.abs(b)
    slack = FP_REL * mag
    return zm - zr - slack, zm + zr + slack


# --------------------------------------------------------------------------------------------
# linear forms in ξ coordinates, shape (k, N, n + 1)
# --------------------------------------------------------------------------------------------
def _first_layer_form(W: np.ndarray, b: np.ndarray, mid: np.ndarray, rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact forms of ``W x + b`` (lower, upper: they differ only by round-off slack)."""
    n_out = W.shape[0]
    N, n = mid.shape
    form = np.empty((n + 1, n_out, N))
    np.multiply(W.T[:, :, None], rad.T[:, None, :], out=form[:-1])
    form[-1] = (mid @ W.T + b).T
    err = FP_REL * (np.abs(mid) @ np.abs(W).T + np.abs(b)).T
    lower, upper = form.copy(), form
    lower[-1] -= err
    upper[-1] += err
    return lower, upper


def _conc_lower(F: np.ndarray) -> np.ndarray:
    """Minimum of the forms ``F`` (n+1, k, N) over ξ ∈ [−1, 1]^n, rounded down: (k, N)."""
    s = np.abs(F[:-1]).sum(axis=0)
    c = F[-1]
    return c - s - FP_REL * (np.abs(c) + s)


def _conc_upper(F: np.ndarray) -> np.ndarray:
    """Maximum of the forms ``F`` (n+1, k, N) over the box, rounded up: (k, N)."""
    s = np.abs(F[:-1]).sum(axis=0)
    c = F[-1]
    return c + s + FP_REL * (np.abs(c) + s)


def _range(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of the forms ``F`` over the box, rounded outward; shares the |coef| sum."""
    sa = np.abs(F[:-1]).sum(axis=0)
    c = F[-1]
    e = FP_REL * (np.abs(c) + sa)
    return c - sa - e, c + sa + e


def _left_mul(W: np.ndarray, F: np.ndarray) -> np.ndarray:
    """W @ F for stacked forms F (s, k, N). One box (N = 1, the MILP route): one (s, k) @ (k, w)
    product, 7x faster than np.matmul's broadcast loop of s matrix-vector products on a
    784-input MNIST net; batches keep np.matmul, faster there (measured on ACAS Xu shapes)."""
    if F.shape[2] == 1:
        return (F[:, :, 0] @ W.T)[:, :, None]
    return np.matmul(W, F)


def _affine_forms(
    W: np.ndarray, absW: np.ndarray, rowsum: np.ndarray, b: np.ndarray | None, Lo: np.ndarray, Up: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forms bounding ``W a + b`` given forms Lo <= a <= Up (each (n+1, n_in, N))."""
    M = 0.5 * (Lo + Up)
    D = 0.5 * (Up - Lo)
    WM = _left_mul(W, M)
    AD = _left_mul(absW, D)
    # |a_j| <= sum over slots of max_j(|M| + |D|) since |ξ| <= 1: bounds every term of the dot products.
    # |M| + |D| = max(|Lo|, |Up|) elementwise
    mag = np.maximum.reduce([Lo.max(axis=1), -Lo.min(axis=1), Up.max(axis=1), -Up.min(axis=1)]).sum(axis=0)  # (N,)
    slack = FP_REL * rowsum[:, None] * mag[None, :]
    lower = WM - AD
    upper = WM + AD
    if b is not None:
        slack = slack + FP_REL * np.abs(b)[:, None]
        lower[-1] += b[:, None]
        upper[-1] += b[:, None]
    lower[-1] -= slack
    upper[-1] += slack
    return lower, upper


def _scale(F: np.ndarray, s: np.ndarray | float, t: np.ndarray | None = None) -> np.ndarray:
    """The form ``s * F + t`` for per-neuron, per-box scalars s, t of shape (k, N)."""
    out = F * s
    if t is not None:
        out[-1] += t
    return out


@dataclass
class _Relax:
    """DeepPoly relaxation of relu(z) on [l, u]: sl·Lz <= relu(z) <= su·Uz + tu."""

    sl: np.ndarray
    su: np.ndarray
    tu: np.ndarray
    al: np.ndarray  # concrete bounds of relu(z)
    au: np.ndarray


def _relu_relax(zl: np.ndarray, zu: np.ndarray) -> _Relax:
    active = zl >= 0.0
    inactive = zu <= 0.0
    unstable = ~(active | inactive)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(unstable, zu / (zu - zl), 0.0)
    su = np.where(active, 1.0, lam)
    # upper chord λ(z − zl); the constant is rounded outward by FP_REL·(|λ zl| + zu)
    tu = np.where(unstable, -lam * zl + FP_REL * (np.abs(lam * zl) + np.abs(zu)), 0.0)
    sl = np.where(active, 1.0, np.where(unstable & (zu > -zl), 1.0, 0.0))
    return _Relax(sl=sl, su=su, tu=tu, al=np.maximum(zl, 0.0), au=np.maximum(zu, 0.0))


_TIE = 1e-9
"""Relative margin by which a later candidate relaxation must beat an earlier one to be chosen:
ties in exact arithmetic then resolve the same way whatever the float64 noise (batched and
single-box calls sum in different orders), so batched results match per-box ones."""


def _better(v: np.ndarray, val: np.ndarray, best: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        tau = np.where(np.isfinite(val), _TIE * (1.0 + np.abs(val)), 0.0)
    return v > val + tau if best == "max" else v < val - tau


def _select(cands: list[np.ndarray], conc: list[np.ndarray], best: str) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron and box, the candidate form with the tightest concrete bound (earlier on ties)."""
    F, val = cands[0].copy(), conc[0]
    for G, v in zip(cands[1:], conc[1:]):
        b = _better(v, val, best)
        np.copyto(F, G, where=b)
        val = np.where(b, v, val)
    return F, val


def _relax_delta(
    LD: np.ndarray,
    UD: np.ndarray,
    dl: np.ndarray,
    du: np.ndarray,
    L1: np.ndarray,
    U1: np.ndarray,
    l1: np.ndarray,
    u1: np.ndarray,
    r1: _Relax,
    L2: np.ndarray,
    U2: np.ndarray,
    l2: np.ndarray,
    u2: np.ndarray,
    r2: _Relax,
    La1: np.ndarray,
    Ua1: np.ndarray,
    La2: np.ndarray,
    Ua2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear forms and concrete bounds for Δa = relu(z1) − relu(z2).

    Candidate lower forms (each valid where stated; per neuron and box the one with the largest
    concrete lower bound is kept, the first on ties):

    * LD — z2 stably active (l2 >= 0): Δa = Δz + relu(z1) − z1 >= Δz >= LΔ.
    * LC — z1 stably active (l1 >= 0): Δa = Δz + min(z2, 0) >= LΔ + chord of min(·, 0) over
      [l2, u2] evaluated at L2 (its slope 1 − su2 is >= 0, so the lower form of z2 is the one).
    * LE — always: relu is monotone and 1-Lipschitz, so Δa >= min(0, Δz) >= min(0, LΔ) >= the
      chord of min(·, 0) over the range of the form LΔ itself.
    * LA — always: Δa >= min(0, Δz) >= the chord of min(·, 0) over [dl, du] (slope
      μ = −dl/(du − dl) >= 0) applied to LΔ.
    * LB — always: (lower form of relu(z1)) − (upper form of relu(z2)), from the networks' own
      relaxations (see :func:`_relu_forms`).

    Upper forms mirror them: UC (l1 >= 0: Δa = Δz + min(z2, 0) <= Δz <= UΔ), UD (l2 >= 0:
    Δa = Δz + relu(−z1) <= UΔ + chord of relu(−·) over [l1, u1] at L1, slope su1 − 1 <= 0),
    UE and UA (max(0, Δz) <= chord of max(0, ·) over the range of UΔ, resp. over [dl, du],
    λ = du/(du − dl)), and UB = (upper form of relu(z1)) − (lower form of relu(z2)).
    Stable cases come out exactly: both active → [LΔ, UΔ]; both inactive → 0; z1 active and
    z2 inactive → z1; z1 inactive and z2 active → −z2; and Δ ≡ 0 stays exactly 0.

    Concrete bounds are the tightest of the chosen forms' and the interval rules
    Δa ∈ [min(0, dl), max(0, du)] ∩ [relu(l1) − relu(u2), relu(u1) − relu(l2)]
    (plus Δa ∈ [dl + min(l2, 0), du] when z1 is active, [dl, du − min(l1, 0)] when z2 is).
    """
    act1, act2 = l1 >= 0.0, l2 >= 0.0
    neg_inf = np.full_like(dl, -np.inf)
    pos_inf = np.full_like(dl, np.inf)
    zero = np.zeros_like(dl)

    # chords of min(0, ·) and max(0, ·) over the concrete range [dl, du] of Δz ...
    ld_lo, ld_hi = _range(LD)
    ud_lo, ud_hi = _range(UD)
    # LD, LE and LA are all s·LΔ + t: pick the best (s, t) per neuron first, from LΔ's range
    # (chords of min(0, ·) over [dl, du] and over the range of LΔ itself; likewise for the upper)
    sA_l, tA_l = _chord_min(dl, du)
    sA_u, tA_u = _chord_max(dl, du)
    sE_l, tE_l = _chord_min(ld_lo, ld_hi)
    sE_u, tE_u = _chord_max(ud_lo, ud_hi)
    one, nil = np.ones_like(dl), np.zeros_like(dl)

    def pick(opts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], best: str) -> tuple[np.ndarray, ...]:
        sc, t, c = opts[0]
        for sc2, t2, c2 in opts[1:]:
            b = _better(c2, c, best)
            sc, t, c = np.where(b, sc2, sc), np.where(b, t2, t), np.where(b, c2, c)
        return sc, t, c

    def scaled(sc: np.ndarray, t: np.ndarray, v: np.ndarray, sign: float) -> np.ndarray:
        # concrete value of s·F + t (s >= 0) from F's range, rounded outward
        w = sc * v + t
        return w + sign * FP_REL * (np.abs(w) + np.abs(t))

    sl, tl, cl = pick(
        [
            (one, nil, np.where(act2, ld_lo, neg_inf)),
            (sE_l, tE_l, scaled(sE_l, tE_l, ld_lo, -1.0)),
            (sA_l, tA_l, scaled(sA_l, tA_l, ld_lo, -1.0)),
        ],
        "max",
    )
    su, tu, cu = pick(
        [
            (one, nil, np.where(act1, ud_hi, pos_inf)),
            (sE_u, tE_u, scaled(sE_u, tE_u, ud_hi, 1.0)),
            (sA_u, tA_u, scaled(sA_u, tA_u, ud_hi, 1.0)),
        ],
        "min",
    )
    LS = _scale(LD, sl, tl)
    US = _scale(UD, su, tu)
    LB = La1 - Ua2
    UB = Ua1 - La2
    LC = LD + _scale(L2, 1.0 - r2.su, -r2.tu)
    UDp = UD + _scale(L1, r1.su - 1.0, r1.tu)

    lows = [LS, LC, LB]
    lconc = [cl, np.where(act1, _conc_lower(LC), neg_inf), _conc_lower(LB)]
    ups = [US, UDp, UB]
    uconc = [cu, np.where(act2, _conc_upper(UDp), pos_inf), _conc_upper(UB)]
    Lsel, lval = _select(lows, lconc, "max")
    Usel, uval = _select(ups, uconc, "min")

    lo = np.maximum.reduce(
        [
            lval,
            np.minimum(dl, zero),
            r1.al - r2.au,
            np.where(act1, dl + np.minimum(l2, 0.0), neg_inf),
            np.where(act2, dl, neg_inf),
        ]
    )
    hi = np.minimum.reduce(
        [
            uval,
            np.maximum(du, zero),
            r1.au - r2.al,
            np.where(act1, du, pos_inf),
            np.where(act2, du - np.minimum(l1, 0.0), pos_inf),
        ]
    )
    return Lsel, Usel, lo, hi


def _chord_max(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, intercept) of a linear upper bound of max(0, t) valid for t in [lo, hi]."""
    cross = (lo < 0.0) & (hi > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(cross, hi / (hi - lo), 0.0)
    s = np.where(lo >= 0.0, 1.0, lam)
    t = np.where(cross, -lam * lo + FP_REL * (np.abs(lam * lo) + np.abs(hi)), 0.0)
    return s, t


def _chord_min(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, intercept) of a linear lower bound of min(0, t) valid for t in [lo, hi]."""
    cross = (lo < 0.0) & (hi > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(cross, -lo / (hi - lo), 0.0)
        lam = np.where(cross, hi / (hi - lo), 0.0)
    s = np.where(hi <= 0.0, 1.0, mu)
    t = np.where(cross, lo * lam - FP_REL * (np.abs(lo * lam) + np.abs(lo)), 0.0)
    return s, t


def _relu_forms(L: np.ndarray, U: np.ndarray, r: _Relax) -> tuple[np.ndarray, np.ndarray]:
    """Forms bounding relu(z) given forms L <= z <= U: per neuron the better of two relaxations.

    (i) DeepPoly on the neuron's bounds [l, u]: sl·L <= relu(z) <= λ(U − l), λ = u/(u − l);
    (ii) Neurify-style on the forms' own ranges: relu(z) >= relu(L) >= α L (α ∈ {0, 1} by L's
    range) and relu(z) <= relu(U) <= chord of max(0, ·) over U's range [min U, max U].
    Both are valid everywhere; the one with the tighter concrete bound is kept (ties: (ii)).
    """
    ll, lh = _range(L)
    ul, uh = _range(U)
    s, t = _chord_max(ul, uh)
    alpha = np.where(ll >= 0.0, 1.0, np.where(lh <= 0.0, 0.0, (lh > -ll).astype(np.float64)))
    # concrete bounds of the scaled forms follow from the ranges (only used to choose)
    use_l1 = ~_better(r.sl * ll, alpha * ll, "max")  # ties: (ii)
    use_u1 = ~_better(r.su * uh + r.tu, s * uh + t, "min")
    sl = np.where(use_l1, alpha, r.sl)
    su = np.where(use_u1, s, r.su)
    tu = np.where(use_u1, t, r.tu)
    return _scale(L, sl), _scale(U, su, tu)


# --------------------------------------------------------------------------------------------
# symbolic intervals for one network (used for the merged-network fallback)
# --------------------------------------------------------------------------------------------
@dataclass
class _SymResult:
    pre: list[tuple[np.ndarray, np.ndarray]]  # concrete (l, u) per layer, each (k, N)
    out_lower: np.ndarray  # output lower form (n+1, m, N)
    out_upper: np.ndarray


def _symbolic_net(layers: tuple[Layer, ...], lo: np.ndarray, hi: np.ndarray) -> _SymResult:
    mid, rad = _mid_rad(lo, hi)
    pre: list[tuple[np.ndarray, np.ndarray]] = []
    L = U = None
    al, au = lo.T, hi.T
    for i, layer in enumerate(layers):
        W, b = layer.W, layer.b
        absW = np.abs(W)
        if i == 0:
            L, U = _first_layer_form(W, b, mid, rad)
        else:
            L, U = _affine_forms(W, absW, absW.sum(axis=1), b, L, U)
        il, iu = _interval_affine(W, absW, b, al.T, au.T)
        zl = np.maximum(_conc_lower(L), il.T)
        zu = np.minimum(_conc_upper(U), iu.T)
        pre.append((zl, zu))
        if layer.activation == "relu":
            r = _relu_relax(zl, zu)
            L, U = _relu_forms(L, U, r)
            al, au = r.al, r.au
        else:
            al, au = zl, zu
    return _SymResult(pre=pre, out_lower=L, out_upper=U)


# --------------------------------------------------------------------------------------------
# differential analysis
# --------------------------------------------------------------------------------------------
@dataclass
class DifferentialBounds:
    """Everything the differential analysis learned, batched over N boxes.

    Arrays have a leading N axis (also when one box was given). ``pre1``/``pre2`` are the
    pre-activation bounds of every layer of the normalised Φ1 and Φ2 and ``delta`` those of
    z1 − z2 (mode ``"differential"``); in mode ``"merged"`` (architectures differ) ``pre1`` holds
    the bounds of the merged network's layers and ``pre2``/``delta`` are empty.
    ``out_lower``/``out_upper`` are the final linear forms of Φ1 − Φ2 in ξ coordinates,
    (N, m, n+1), with x = mid + rad ⊙ ξ.
    """

    dlo: np.ndarray
    dhi: np.ndarray
    mode: str
    pre1: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    pre2: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    delta: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    out_lower: np.ndarray | None = None
    out_upper: np.ndarray | None = None
    mid: np.ndarray | None = None
    rad: np.ndarray | None = None


def same_architecture(a: FNN, b: FNN) -> bool:
    """Whether the normalised networks have equal depth, widths and activations."""
    a, b = normalise(a), normalise(b)
    if a.depth != b.depth:
        return False
    return all(x.W.shape == y.W.shape and x.activation == y.activation for x, y in zip(a.layers, b.layers))


def _diff_forward(
    l1s: tuple[Layer, ...], l2s: tuple[Layer, ...], lo: np.ndarray, hi: np.ndarray, prior: dict | None = None
) -> dict[str, Any]:
    """The forward differential pass; ``prior`` (keys pre1, pre2, delta; (w, N) arrays per hidden
    layer) holds bounds valid on each box (its parent's), intersected in layer by layer."""
    mid, rad = _mid_rad(lo, hi)
    pre1, pre2, delta = [], [], []
    K = len(l1s)
    L1 = U1 = L2 = U2 = LD = UD = None
    a1l, a1u, a2l, a2u = lo, hi, lo, hi  # (N, n) concrete activations of the previous layer
    dal = dau = None  # concrete Δa, (N, n)
    LDa = UDa = La2 = Ua2 = None  # forms of Δa and a2 from the previous layer
    for i, (A, B) in enumerate(zip(l1s, l2s)):
        W1, W2, b1, b2 = A.W, B.W, A.b, B.b
        dW, db = W1 - W2, b1 - b2
        aW1, aW2, adW = np.abs(W1), np.abs(W2), np.abs(dW)
        if i == 0:
            L1, U1 = _first_layer_form(W1, b1, mid, rad)
            L2, U2 = _first_layer_form(W2, b2, mid, rad)
            LD, UD = _first_layer_form(dW, db, mid, rad)
            idl, idu = _interval_affine(dW, adW, db, lo, hi)
        else:
            L1, U1 = _affine_forms(W1, aW1, aW1.sum(axis=1), b1, L1, U1)
            L2, U2 = _affine_forms(W2, aW2, aW2.sum(axis=1), b2, L2, U2)
            p_l, p_u = _affine_forms(W1, aW1, aW1.sum(axis=1), None, LDa, UDa)
            q_l, q_u = _affine_forms(dW, adW, adW.sum(axis=1), db, La2, Ua2)
            LD, UD = p_l + q_l, p_u + q_u
            pl, pu = _interval_affine(W1, aW1, None, dal, dau)
            ql, qu = _interval_affine(dW, adW, db, a2l, a2u)
            idl, idu = pl + ql, pu + qu
            # the sums above round too: widen by FP_REL of their magnitudes
            e = FP_REL * (np.abs(idl) + np.abs(idu))
            idl, idu = idl - e, idu + e
        il1, iu1 = _interval_affine(W1, aW1, b1, a1l, a1u)
        il2, iu2 = _interval_affine(W2, aW2, b2, a2l, a2u)
        l1 = np.maximum(_conc_lower(L1), il1.T)
        u1 = np.minimum(_conc_upper(U1), iu1.T)
        l2 = np.maximum(_conc_lower(L2), il2.T)
        u2 = np.minimum(_conc_upper(U2), iu2.T)
        # Δz: the propagated forms, or z1 − z2 bounded jointly (keeps the input correlation)
        LDm, UDm = L1 - U2, U1 - L2
        LD, dl = _select([LD, LDm], [_conc_lower(LD), _conc_lower(LDm)], "max")
        UD, du = _select([UD, UDm], [_conc_upper(UD), _conc_upper(UDm)], "min")
        # z1 − z2 as the two networks compute it in float64 rounds with the size of z1 and z2, not
        # of the (small) difference: every Δz bound is widened by FP_REL of those magnitudes
        # (found by hypothesis: a first-layer sample 4e-16 outside the exact bound). A bound of
        # exactly [0, 0] means identical rows on identical inputs, whose float results agree: kept.
        e = FP_REL * (np.abs(l1) + np.abs(u1) + np.abs(l2) + np.abs(u2))
        dl = np.maximum.reduce([dl, idl.T, l1 - u2 - e])
        du = np.minimum.reduce([du, idu.T, u1 - l2 + e])
        e = np.where((dl == 0.0) & (du == 0.0), 0.0, e)
        dl, du = dl - e, du + e
        # z1 = z2 + Δz tightens the individual bounds
        e1 = FP_REL * (np.abs(l2) + np.abs(u2) + np.abs(dl) + np.abs(du))
        nl1 = np.maximum(l1, l2 + dl - e1)
        nu1 = np.minimum(u1, u2 + du + e1)
        nl2 = np.maximum(l2, l1 - du - e1)
        nu2 = np.minimum(u2, u1 - dl + e1)
        l1, u1, l2, u2 = nl1, nu1, nl2, nu2
        if prior is not None and i < K - 1:
            (p1l, p1u), (p2l, p2u), (pdl, pdu) = prior["pre1"][i], prior["pre2"][i], prior["delta"][i]
            l1, u1 = np.maximum(l1, p1l), np.minimum(u1, p1u)
            l2, u2 = np.maximum(l2, p2l), np.minimum(u2, p2u)
            dl, du = np.maximum(dl, pdl), np.minimum(du, pdu)
            u1, u2, du = np.maximum(u1, l1), np.maximum(u2, l2), np.maximum(du, dl)
        pre1.append((l1, u1))
        pre2.append((l2, u2))
        delta.append((dl, du))
        if i == K - 1:
            break
        if A.activation == "relu":
            r1, r2 = _relu_relax(l1, u1), _relu_relax(l2, u2)
            La1, Ua1 = _relu_forms(L1, U1, r1)
            La2, Ua2 = _relu_forms(L2, U2, r2)
            LDa, UDa, dal_t, dau_t = _relax_delta(
                LD, UD, dl, du, L1, U1, l1, u1, r1, L2, U2, l2, u2, r2, La1, Ua1, La2, Ua2
            )
            L1, U1 = La1, Ua1
            a1l, a1u, a2l, a2u = r1.al.T, r1.au.T, r2.al.T, r2.au.T
        else:  # linear hidden layer (not produced by normalise, handled for completeness)
            LDa, UDa, dal_t, dau_t = LD, UD, dl, du
            La2, Ua2 = L2, U2
            a1l, a1u, a2l, a2u = l1.T, u1.T, l2.T, u2.T
        dal, dau = dal_t.T, dau_t.T
        L2, U2 = La2, Ua2
    return {
        "pre1": pre1,
        "pre2": pre2,
        "delta": delta,
        "out_lower": LD,
        "out_upper": UD,
        "mid": mid,
        "rad": rad,
    }


def _prior_record(prior: dict, lo: np.ndarray, hi: np.ndarray, m: int) -> dict[str, Any]:
    """What :func:`_diff_forward` records, taken from hidden bounds valid on each box (copies);
    the output layer, which no back-substitution reads, is left unbounded."""
    mid, rad = _mid_rad(lo, hi)
    out = np.full((m, lo.shape[0]), np.inf)
    rec = {k: [(a.copy(), b.copy()) for a, b in prior[k]] + [(-out, out)] for k in ("pre1", "pre2", "delta")}
    rec.update(mid=mid, rad=rad)
    return rec


def _chunks(N: int, width: int, n_in: int) -> list[slice]:
    per = max(1, _CHUNK_ELEMS // max(1, width * (n_in + 1)))
    return [slice(s, min(N, s + per)) for s in range(0, N, per)]


def _t(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)) for a, b in pairs]


def differential_analysis(orig: FNN, comp: FNN, lo: Any, hi: Any) -> DifferentialBounds:
    """The full differential analysis (see the module docstring); batched over N boxes."""
    if orig.n_inputs != comp.n_inputs or orig.n_outputs != comp.n_outputs:
        raise ValueError(
            f"networks differ in input/output sizes: {orig.n_inputs}->{orig.n_outputs} vs "
            f"{comp.n_inputs}->{comp.n_outputs}"
        )
    lo2, hi2, _ = _as_batch(lo, hi, orig.n_inputs)
    N = lo2.shape[0]
    n1, n2 = normalise(orig), normalise(comp)
    if same_architecture(n1, n2):
        width = max(n1.widths[1:])
        parts = [_diff_forward(n1.layers, n2.layers, lo2[s], hi2[s]) for s in _chunks(N, 3 * width, orig.n_inputs)]
        mode = "differential"
    else:
        net = merge(n1, n2)
        width = max(net.widths[1:])
        parts = []
        for s in _chunks(N, width, orig.n_inputs):
            r = _symbolic_net(net.layers, lo2[s], hi2[s])
            mid, rad = _mid_rad(lo2[s], hi2[s])
            parts.append(
                {
                    "pre1": r.pre,
                    "pre2": [],
                    "delta": [],
                    "out_lower": r.out_lower,
                    "out_upper": r.out_upper,
                    "mid": mid,
                    "rad": rad,
                }
            )
        mode = "merged"

    def cat_pairs(key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        n_layers = len(parts[0][key])
        return [
            (
                np.concatenate([p[key][j][0] for p in parts], axis=1),
                np.concatenate([p[key][j][1] for p in parts], axis=1),
            )
            for j in range(n_layers)
        ]

    pre1, pre2, delta = _t(cat_pairs("pre1")), _t(cat_pairs("pre2")), _t(cat_pairs("delta"))
    out_lower = np.concatenate([p["out_lower"] for p in parts], axis=2).transpose(2, 1, 0)
    out_upper = np.concatenate([p["out_upper"] for p in parts], axis=2).transpose(2, 1, 0)
    if mode == "differential":
        dlo, dhi = delta[-1]
    else:
        dlo, dhi = pre1[-1]
    return DifferentialBounds(
        dlo=dlo,
        dhi=dhi,
        mode=mode,
        pre1=pre1,
        pre2=pre2,
        delta=delta,
        out_lower=out_lower,
        out_upper=out_upper,
        mid=np.concatenate([p["mid"] for p in parts]),
        rad=np.concatenate([p["rad"] for p in parts]),
    )


def differential_bounds(orig: FNN, comp: FNN, lo: Any, hi: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds ``(dlo, dhi)`` on Φ1(x) − Φ2(x) per output over each box.

    ``lo``/``hi`` are one box (n,) → results (m,), or N boxes (N, n) → results (N, m). Same
    architecture: NeuroDiff-style differential symbolic intervals; otherwise symbolic intervals
    on the merged network (see the module docstring).
    """
    single = np.asarray(lo).ndim == 1
    r = differential_analysis(orig, comp, lo, hi)
    return (r.dlo[0], r.dhi[0]) if single else (r.dlo, r.dhi)


# --------------------------------------------------------------------------------------------
# differential back-substitution: bounds on a few objectives C (Φ1 − Φ2), for the branch and bound
# --------------------------------------------------------------------------------------------
@dataclass
class ObjectiveBounds:
    """Sound upper bounds of the objectives ``C (Φ1(x) − Φ2(x))`` on N boxes.

    ``upper`` (N, r); ``coef`` (N, r, n): the input coefficients (x units) of the back-substituted
    linear upper bound (for split choices and candidate vertices); ``unstable`` (N,): the ReLUs of
    Φ1 and Φ2 whose pre-activation bounds straddle 0; ``forward`` (N, r): the forward pass's
    own bound (``upper`` is never above it).
    """

    upper: np.ndarray
    coef: np.ndarray
    unstable: np.ndarray
    forward: np.ndarray
    grad: np.ndarray | None = None  # (N, r, n): max |∂/∂x_i| of C(Φ1 − Φ2) by interval gradients
    hidden: dict | None = None  # pre1, pre2, delta per hidden layer, (w, N): the tightest bounds used


def _grad_interval(layers: tuple[Layer, ...], pre: list[tuple[np.ndarray, np.ndarray]], C: np.ndarray):
    """Interval bounds on the gradient of ``C net(x)`` over each box, given the pre-activation
    bounds ``pre`` (per layer (k, N)): inactive ReLUs pass 0, unstable ones [min(g, 0), max(g, 0)]
    (ReluVal/NeuroDiff's interval back-propagation). Returns (lower, upper), each (N, r, n)."""
    N = pre[0][0].shape[1]
    g = np.broadcast_to(C @ layers[-1].W, (N,) + (C.shape[0], layers[-1].W.shape[1]))
    gl, gu = g, g
    for j in range(len(layers) - 2, -1, -1):
        zl, zu = pre[j]
        off = (zu <= 0.0).T[:, None, :]
        unst = ((zl < 0.0) & (zu > 0.0)).T[:, None, :]
        gl = np.where(off, 0.0, np.where(unst, np.minimum(gl, 0.0), gl))
        gu = np.where(off, 0.0, np.where(unst, np.maximum(gu, 0.0), gu))
        W = layers[j].W
        Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
        gl, gu = gl @ Wp + gu @ Wn, gu @ Wp + gl @ Wn
    return gl, gu


def _delta_relaxation(
    l1: np.ndarray, u1: np.ndarray, l2: np.ndarray, u2: np.ndarray, dl: np.ndarray, du: np.ndarray
) -> dict[str, Any]:
    """The ingredients of the ReLU step of :func:`_diff_backsub`, per neuron and box (N, w).

    Δa = relu(z1) − relu(z2) is bounded, per neuron and direction, by one of two valid relaxations,
    the one with the smaller worst-case gap:

    * (B) the two networks' own DeepPoly relaxations (relu(z) <= s z + t, relu(z) >= α z), applied
      to the coefficients of a1 and a2 jointly, as CROWN on the merged network would. Exact when
      both neurons are stable. Gap at most (chord gap of one) + (lower-relaxation gap of the other).
    * (D) relu is monotone and 1-Lipschitz, so min(0, Δz) <= Δa <= max(0, Δz); the chords of
      max(0, ·) and min(0, ·) over [dl, du] bound these linearly in Δz alone. Gap at most
      max(du, 0) − min(dl, 0): tiny when the networks are close (Δz ≡ 0 gives exactly 0).

    All slopes are in [0, 1]; intercepts carry the outward slack of :func:`_relu_relax` and
    :func:`_chord_max` / :func:`_chord_min`.
    """
    r1, r2 = _relu_relax(l1, u1), _relu_relax(l2, u2)
    un1, un2 = (l1 < 0.0) & (u1 > 0.0), (l2 < 0.0) & (u2 > 0.0)
    # lower-relaxation gap of relu: α = 1 leaves −l at z = l, α = 0 leaves u at z = u
    lg1 = np.where(un1, np.where(r1.sl > 0.0, -l1, u1), 0.0)
    lg2 = np.where(un2, np.where(r2.sl > 0.0, -l2, u2), 0.0)
    gap_d = np.maximum(du, 0.0) - np.minimum(dl, 0.0)
    sU, tU = _chord_max(dl, du)
    sL, tL = _chord_min(dl, du)
    return {
        "r1": r1,
        "r2": r2,
        "use_u": gap_d < r1.tu + lg2,  # tu = the chord's gap at z = 0 (0 when stable)
        "use_l": gap_d < lg1 + r2.tu,
        "sU": sU,
        "tU": tU,
        "sL": sL,
        "tL": tL,
    }


def _diff_backsub(
    l1s: tuple[Layer, ...],
    l2s: tuple[Layer, ...],
    f: dict[str, Any],
    upto: int,
    cD: np.ndarray,
    c2: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds of ``cD Δz_upto + c2 z2_upto`` (rows (r, w)) by back-substitution to the input
    through the pair of networks (CROWN/DeepPoly on the difference). The state at hidden layer j
    is (Δa_j, a2_j); a linear layer maps it exactly,

        Δz_j = W1_j Δa_{j−1} + (W1_j − W2_j) a2_{j−1} + (b1_j − b2_j),   z2_j = W2_j a2_{j−1} + b2_j,

    and a ReLU layer is relaxed by :func:`_delta_relaxation` (Δa) and DeepPoly (a2), choosing
    the upper or lower relaxation by the sign of each coefficient. The bounds of the layers below
    ``upto`` come from ``f`` (:func:`_diff_forward`, possibly tightened). Returns
    (upper (N, r), coefficients on x (N, r, n)).

    Round-off: alongside the bound, ``mag`` accumulates the absolute values of every term summed
    (|coefficient| x a bound on |variable|, per relaxation and per layer, using |W| @ max|a|);
    the result is widened by ``FP_REL · mag`` as in the forward pass (module docstring).
    """
    mid, rad = f["mid"], f["rad"]
    N = mid.shape[0]
    r = cD.shape[-2]
    if c2 is None:
        c2 = np.zeros_like(cD)
    ein = np.einsum
    A, B = l1s[upto], l2s[upto]
    dW, db = A.W - B.W, A.b - B.b
    aD, a2 = np.abs(cD), np.abs(c2)
    # cD, c2: (r, w) shared by every box, or (N, r, w) per box (sparse queries, zero rows padded)
    sub = "rk" if cD.ndim == 2 else "nrk"
    const = np.broadcast_to(cD @ db + c2 @ B.b, (N, r)).copy()
    mag = np.broadcast_to(aD @ np.abs(db) + a2 @ np.abs(B.b), (N, r)).copy()
    if upto == 0:
        gx = np.broadcast_to(cD @ dW + c2 @ B.W, (N, r, dW.shape[1]))
        xM = np.abs(mid) + rad
        mag += ein(f"{sub},nk->nr", aD, xM @ np.abs(dW).T) + ein(f"{sub},nk->nr", a2, xM @ np.abs(B.W).T)
    else:
        gD = np.broadcast_to(cD @ A.W, (N, r, A.W.shape[1]))
        g2 = np.broadcast_to(cD @ dW + c2 @ B.W, (N, r, dW.shape[1]))
        pdl, pdu = f["delta"][upto - 1]
        daM = np.maximum(np.abs(pdl), np.abs(pdu)).T  # |Δa| <= |Δz| (relu is 1-Lipschitz)
        a2M = np.maximum(f["pre2"][upto - 1][1], 0.0).T
        mag += ein(f"{sub},nk->nr", aD, daM @ np.abs(A.W).T + a2M @ np.abs(dW).T)
        mag += ein(f"{sub},nk->nr", a2, a2M @ np.abs(B.W).T)
    for j in range(upto - 1, -1, -1):
        l1, u1 = (a.T for a in f["pre1"][j])
        l2, u2 = (a.T for a in f["pre2"][j])
        dl, du = (a.T for a in f["delta"][j])
        R = _delta_relaxation(l1, u1, l2, u2, dl, du)
        r1, r2 = R["r1"], R["r2"]
        uu, ul = R["use_u"], R["use_l"]
        # per neuron and box, for a coefficient gD > 0 (P) and gD <= 0 (N): the slope on Δz (chord
        # (D), or a1's slope under (B)), a1's slope (0 under (D)), whether gD moves onto a2 (B:
        # gD Δa + g2 a2 = gD a1 + (g2 − gD) a2) and the intercept
        kP, kN = np.where(uu, R["sU"], r1.su)[:, None, :], np.where(ul, R["sL"], r1.sl)[:, None, :]
        bP, bN = np.where(uu, 0.0, r1.su)[:, None, :], np.where(ul, 0.0, r1.sl)[:, None, :]
        mP, mN = np.where(uu, 0.0, 1.0)[:, None, :], np.where(ul, 0.0, 1.0)[:, None, :]
        qP, qN = np.where(uu, R["tU"], r1.tu), np.where(ul, R["tL"], 0.0)
        # a sign split, not np.where (slow on broadcast operands): of the two products in each sum
        # one is ±0, so every entry is exactly the product the relaxation selects
        gp, gn = np.maximum(gD, 0.0), np.minimum(gD, 0.0)
        hD = gp * kP + gn * kN
        c1s1 = gp * bP + gn * bN
        cc2 = g2 - (gp * mP + gn * mN)
        cp, cn = np.maximum(cc2, 0.0), np.minimum(cc2, 0.0)
        c2s2 = cp * r2.su[:, None, :] + cn * r2.sl[:, None, :]
        h2 = c1s1 + c2s2
        # the intercept terms are all >= 0 (gD > 0 times an upper intercept >= 0, gD <= 0 times a
        # lower one <= 0, cc2⁺ times a2's >= 0), so their sum is also their magnitude
        tt = ein("nrk,nk->nr", gp, qP) + ein("nrk,nk->nr", gn, qN) + ein("nrk,nk->nr", cp, r2.tu)
        const += tt
        mag += tt
        mag += ein("nrk,nk->nr", np.abs(hD), np.maximum(np.abs(dl), np.abs(du)))
        mag += ein("nrk,nk->nr", np.abs(c1s1) + np.abs(c2s2), np.maximum(np.abs(l2), np.abs(u2)))
        A, B = l1s[j], l2s[j]
        dW, db = A.W - B.W, A.b - B.b
        const += hD @ db + h2 @ B.b
        aD, a2 = np.abs(hD), np.abs(h2)
        mag += aD @ np.abs(db) + a2 @ np.abs(B.b)
        if j == 0:
            gx = hD @ dW + h2 @ B.W
            xM = np.abs(mid) + rad
            mag += ein("nrk,nk->nr", aD, xM @ np.abs(dW).T) + ein("nrk,nk->nr", a2, xM @ np.abs(B.W).T)
        else:
            gD = hD @ A.W
            g2 = hD @ dW + h2 @ B.W
            pdl, pdu = f["delta"][j - 1]
            daM = np.maximum(np.abs(pdl), np.abs(pdu)).T
            a2M = np.maximum(f["pre2"][j - 1][1], 0.0).T
            mag += ein("nrk,nk->nr", aD, daM @ np.abs(A.W).T + a2M @ np.abs(dW).T)
            mag += ein("nrk,nk->nr", a2, a2M @ np.abs(B.W).T)
    lin = ein("nrk,nk->nr", gx, mid)
    spread = ein("nrk,nk->nr", np.abs(gx), rad)
    mag += np.abs(const) + ein("nrk,nk->nr", np.abs(gx), np.abs(mid)) + spread
    upper = const + lin + spread + FP_REL * mag
    return upper, np.ascontiguousarray(gx)


def _tighten_intermediate(l1s: tuple[Layer, ...], l2s: tuple[Layer, ...], f: dict[str, Any], what: str) -> None:
    """Tighten, layer by layer, the forward bounds in ``f`` of hidden neurons that are unstable
    in some box of the batch, by back-substitution (``what``: "delta" for Δz only, "all" for Δz,
    z1 and z2). In place; every new bound is intersected with the old one."""
    K = len(l1s)
    for j in range(1, K - 1):
        l1, u1 = f["pre1"][j]
        l2, u2 = f["pre2"][j]
        dl, du = f["delta"][j]
        un = (((l1 < 0) & (u1 > 0)) | ((l2 < 0) & (u2 > 0))).any(axis=1)
        rows = np.flatnonzero(un)
        if rows.size == 0:
            continue
        w = l1.shape[0]
        E = np.eye(w)[rows]
        Z = np.zeros_like(E)
        if what == "all":
            cD = np.vstack([E, -E, Z, Z, E, -E])
            c2 = np.vstack([Z, Z, E, -E, E, -E])
        else:
            cD, c2 = np.vstack([E, -E]), None
        ub, _ = _diff_backsub(l1s, l2s, f, j, cD, c2)
        k = rows.size
        dl, du = dl.copy(), du.copy()
        dl[rows] = np.maximum(dl[rows], -ub[:, k : 2 * k].T)
        du[rows] = np.minimum(du[rows], ub[:, :k].T)
        f["delta"][j] = (dl, du)
        if what == "all":
            l2, u2, l1, u1 = l2.copy(), u2.copy(), l1.copy(), u1.copy()
            u2[rows] = np.minimum(u2[rows], ub[:, 2 * k : 3 * k].T)
            l2[rows] = np.maximum(l2[rows], -ub[:, 3 * k : 4 * k].T)
            u1[rows] = np.minimum(u1[rows], ub[:, 4 * k : 5 * k].T)
            l1[rows] = np.maximum(l1[rows], -ub[:, 5 * k : 6 * k].T)
            f["pre1"][j] = (l1, u1)
            f["pre2"][j] = (l2, u2)


def differential_objective_bounds(
    orig: FNN, comp: FNN, lo: Any, hi: Any, C: np.ndarray, intermediate: str = "none", grad: bool = False
) -> ObjectiveBounds:
    """Upper bounds of ``C (Φ1(x) − Φ2(x))`` (C: (r, m) objective rows, e.g. ±e_j) on N boxes.

    The forward differential pass (:func:`_diff_forward`) gives every neuron's bounds on z1, z2
    and Δz; :func:`_diff_backsub` then back-substitutes only the r objective rows, which is cheap
    for r << m and much tighter than the forward forms at the output. The result is the minimum
    of the two. Needs the same architecture after :func:`normalise` (else ``NotImplementedError``).
    """
    n1, n2 = normalise(orig), normalise(comp)
    if not same_architecture(n1, n2):
        raise NotImplementedError("the differential back-substitution needs the same architecture")
    lo2, hi2, _ = _as_batch(lo, hi, orig.n_inputs)
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    N = lo2.shape[0]
    width = max(n1.widths[1:])
    ups, coefs, uns, fws, grads = [], [], [], [], []
    for s in _chunks(N, 3 * width, orig.n_inputs):
        f = _diff_forward(n1.layers, n2.layers, lo2[s], hi2[s])
        if intermediate in ("crown", "crown+delta"):
            from .symbolic import tighten_unstable

            for key, net in (("pre1", n1), ("pre2", n2)):
                pb = tighten_unstable(net, lo2[s], hi2[s], [(a.T, b.T) for a, b in f[key]])
                f[key] = [(zl.T, zu.T) for zl, zu in pb]
            if intermediate == "crown+delta":
                _tighten_intermediate(n1.layers, n2.layers, f, "delta")
        elif intermediate == "crown-dense":
            from .symbolic import intermediate_bounds

            for key, net in (("pre1", n1), ("pre2", n2)):
                pb = intermediate_bounds(net, lo2[s], hi2[s])
                f[key] = [(np.maximum(a, zl.T), np.minimum(b, zu.T)) for (a, b), (zl, zu) in zip(f[key], pb)]
        elif intermediate != "none":
            _tighten_intermediate(n1.layers, n2.layers, f, intermediate)
        ub, gx = _diff_backsub(n1.layers, n2.layers, f, len(n1.layers) - 1, C)
        dl, du = f["delta"][-1]  # (m, N)
        fw = (np.maximum(C, 0.0) @ du + np.minimum(C, 0.0) @ dl).T
        fw = fw + FP_REL * (np.abs(C) @ (np.abs(dl) + np.abs(du))).T
        ups.append(np.minimum(ub, fw))
        fws.append(fw)
        coefs.append(gx)
        if grad:
            al, au = _grad_interval(n1.layers, f["pre1"], C)
            bl, bu = _grad_interval(n2.layers, f["pre2"], -C)
            grads.append(np.maximum(np.abs(al + bl), np.abs(au + bu)))
        uns.append(sum(((zl < 0.0) & (zu > 0.0)).sum(axis=0) for zl, zu in f["pre1"][:-1] + f["pre2"][:-1]))
    return ObjectiveBounds(
        upper=np.concatenate(ups),
        coef=np.concatenate(coefs),
        unstable=np.concatenate(uns),
        forward=np.concatenate(fws),
        grad=np.concatenate(grads) if grad else None,
    )


# --------------------------------------------------------------------------------------------
# sparse (per box) differential back-substitution and the tiered bound used by the branch and bound
# --------------------------------------------------------------------------------------------
def _rows_relaxation(f: dict[str, Any], j: int) -> np.ndarray:
    """Per box (15, N, w): everything the ReLU step of layer j of :func:`_diff_backsub_rows` reads
    (the :func:`_delta_relaxation` slopes/intercepts and the magnitudes for the round-off slack),
    stacked so that one gather per layer serves every row."""
    l1, u1 = (a.T for a in f["pre1"][j])
    l2, u2 = (a.T for a in f["pre2"][j])
    dl, du = (a.T for a in f["delta"][j])
    R = _delta_relaxation(l1, u1, l2, u2, dl, du)
    r1, r2 = R["r1"], R["r2"]
    return np.stack(
        [
            R["use_u"].astype(np.float64),
            R["use_l"].astype(np.float64),
            R["sU"],
            R["sL"],
            R["tU"],
            R["tL"],
            r1.su,
            r1.sl,
            r1.tu,
            r2.su,
            r2.sl,
            r2.tu,
            np.maximum(np.abs(dl), np.abs(du)),  # max |Δz|, also max |Δa| (relu is 1-Lipschitz)
            np.maximum(np.abs(l2), np.abs(u2)),  # max |z2|
            np.maximum(u2, 0.0),  # max a2
        ]
    )


def _diff_backsub_rows(
    l1s: tuple[Layer, ...],
    l2s: tuple[Layer, ...],
    f: dict[str, Any],
    upto: int,
    bi: np.ndarray,
    cD: np.ndarray,
    cache: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_diff_backsub` (with c2 = 0) with one box per row: row p bounds ``cD[p] Δz_upto`` on
    box ``bi[p]`` only (rows (P, w)). Same relaxations and the same round-off accounting, applied
    row by row, so a batch of sparse (box, neuron) queries costs (P × w) work per layer whatever
    the number of boxes. ``cache`` holds :func:`_rows_relaxation` per layer (valid while those
    layers' bounds do not change). Returns (upper (P,), coefficients on x (P, n))."""
    bi = np.asarray(bi, dtype=np.intp)
    cache = {} if cache is None else cache

    def relax(j: int) -> np.ndarray:
        if j not in cache:
            cache[j] = _rows_relaxation(f, j)
        return cache[j][:, bi]

    mid, rad = f["mid"][bi], f["rad"][bi]
    A, B = l1s[upto], l2s[upto]
    dW, db = A.W - B.W, A.b - B.b
    aD = np.abs(cD)
    const = cD @ db
    mag = aD @ np.abs(db)
    if upto == 0:
        gx = cD @ dW
        xM = np.abs(mid) + rad
        mag += (aD * (xM @ np.abs(dW).T)).sum(axis=1)
        R = None
    else:
        gD = cD @ A.W
        g2 = cD @ dW
        R = relax(upto - 1)
        daM, a2M = R[12], R[14]
        mag += (aD * (daM @ np.abs(A.W).T + a2M @ np.abs(dW).T)).sum(axis=1)
    for j in range(upto - 1, -1, -1):
        use_u, use_l, sU, sL, tU, tL, su1, sl1, tu1, su2, sl2, tu2, dzM, z2M = R[:14]
        pos = gD > 0.0
        use_d = np.where(pos, use_u, use_l) > 0.0
        sd = np.where(pos, sU, sL)
        td = np.where(pos, tU, tL)
        s1 = np.where(pos, su1, sl1)
        t1 = np.where(pos, tu1, 0.0)
        hD = gD * np.where(use_d, sd, s1)
        c1 = np.where(use_d, 0.0, gD)
        cc2 = np.where(use_d, g2, g2 - gD)
        s2 = np.where(cc2 > 0.0, su2, sl2)
        h2 = c1 * s1 + cc2 * s2
        tt = np.where(use_d, gD * td, gD * t1) + np.maximum(cc2, 0.0) * tu2
        const += tt.sum(axis=1)
        mag += (np.abs(hD) * dzM + (np.abs(c1 * s1) + np.abs(cc2 * s2)) * z2M + np.abs(tt)).sum(axis=1)
        A, B = l1s[j], l2s[j]
        dW, db = A.W - B.W, A.b - B.b
        const += hD @ db + h2 @ B.b
        aD, a2 = np.abs(hD), np.abs(h2)
        mag += aD @ np.abs(db) + a2 @ np.abs(B.b)
        if j == 0:
            gx = hD @ dW + h2 @ B.W
            xM = np.abs(mid) + rad
            mag += (aD * (xM @ np.abs(dW).T)).sum(axis=1) + (a2 * (xM @ np.abs(B.W).T)).sum(axis=1)
        else:
            gD = hD @ A.W
            g2 = hD @ dW + h2 @ B.W
            R = relax(j - 1)
            daM, a2M = R[12], R[14]
            mag += (aD * (daM @ np.abs(A.W).T + a2M @ np.abs(dW).T)).sum(axis=1)
            mag += (a2 * (a2M @ np.abs(B.W).T)).sum(axis=1)
    lin = (gx * mid).sum(axis=1)
    spread = (np.abs(gx) * rad).sum(axis=1)
    mag += np.abs(const) + (np.abs(gx) * np.abs(mid)).sum(axis=1) + spread
    return const + lin + spread + FP_REL * mag, gx


def _tighten_delta_sparse(l1s: tuple[Layer, ...], l2s: tuple[Layer, ...], f: dict[str, Any], rows: str = "auto") -> int:
    """Tighten, layer by layer, the Δz bounds in ``f`` of the (box, neuron) pairs where the neuron
    is unstable in Φ1 or Φ2 *in that box* (the only ones whose Δz enters a relaxation: a neuron
    stable in both networks is relaxed exactly, whatever its Δz bounds), by back-substituting
    ±e_neuron. Per layer, either per box with zero rows padded to the largest count in the batch
    (:func:`_diff_backsub` with per-box rows; ``rows="padded"``) or one row per pair
    (:func:`_diff_backsub_rows`; ``rows="pairs"``), "auto" picking the cheaper (pairs cost about
    3x more per row). In place, intersected with the old bounds. Returns the number of pairs."""
    total = 0
    cache: dict[int, np.ndarray] = {}
    for j in range(1, len(l1s) - 1):
        l1, u1 = f["pre1"][j]
        l2, u2 = f["pre2"][j]
        un = (((l1 < 0) & (u1 > 0)) | ((l2 < 0) & (u2 > 0))).T  # (N, w)
        cnt = un.sum(axis=1)
        k = int(cnt.max()) if cnt.size else 0
        if k == 0:
            continue
        P = int(cnt.sum())
        total += P
        N, w = un.shape
        bi, ni = np.nonzero(un)  # row-major: boxes in order, neurons ascending
        if rows == "pairs" or (rows == "auto" and 3 * P < N * k):
            cD = np.zeros((2 * P, w))
            r = np.arange(P)
            cD[r, ni] = 1.0
            cD[P + r, ni] = -1.0
            ub, _ = _diff_backsub_rows(l1s, l2s, f, j, np.concatenate([bi, bi]), cD, cache)
            up, dn = ub[:P], ub[P:]
        else:
            slot = np.arange(P) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            cD = np.zeros((N, 2 * k, w))
            cD[bi, slot, ni] = 1.0
            cD[bi, k + slot, ni] = -1.0
            ub, _ = _diff_backsub(l1s, l2s, f, j, cD)
            up, dn = ub[bi, slot], ub[bi, k + slot]
        dl, du = (a.copy() for a in f["delta"][j])
        du[ni, bi] = np.minimum(du[ni, bi], up)
        dl[ni, bi] = np.maximum(dl[ni, bi], -dn)
        f["delta"][j] = (dl, du)
        cache.pop(j, None)  # layer j's bounds changed (layers above it are not cached yet)
    return total


def _subset(f: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """The forward-pass record ``f`` restricted to the boxes ``idx`` (bounds are (w, N))."""
    out = {key: [(a[:, idx], b[:, idx]) for a, b in f[key]] for key in ("pre1", "pre2", "delta")}
    out["mid"], out["rad"] = f["mid"][idx], f["rad"][idx]
    return out


def _unstable_count(f: dict[str, Any]) -> np.ndarray:
    return sum(((zl < 0.0) & (zu > 0.0)).sum(axis=0) for zl, zu in f["pre1"][:-1] + f["pre2"][:-1])


def tiered_objective_bounds(
    orig: FNN,
    comp: FNN,
    lo: Any,
    hi: Any,
    C: np.ndarray,
    thresh: np.ndarray,
    *,
    tiers: tuple[str, ...] = ("crown", "crown+delta"),
    skip_delta: Any = None,
    stats: dict | None = None,
    trace: list | None = None,
    prior: dict | None = None,
    grad: bool = True,
    forward: bool = True,
) -> ObjectiveBounds:
    """:func:`differential_objective_bounds` in tiers, reusing one forward pass: every box gets the
    forward pass and the back-substitution of the rows C ("none"); the boxes whose bound of some
    objective is still ``>= thresh`` (r,) get the hidden bounds of Φ1 and Φ2 tightened by sparse
    CROWN (:func:`equivrepair.reach.symbolic.tighten_unstable`) and are bounded again ("crown");
    of those still open, the ones ``skip_delta(upper, thresh, rows)`` (a boolean mask, or None for
    all) keeps also get their Δz bounds tightened per box (:func:`_tighten_delta_sparse`) and are
    bounded again ("crown+delta"). Every bound is sound; each tier only intersects. ``grad``
    (interval gradients) comes from the tightest hidden bounds of each box. ``trace`` (a list)
    receives, per chunk, (box indices, crown bounds, crown+delta bounds) of the boxes that got
    the last tier. ``prior``: hidden bounds valid on each box (see :func:`_diff_forward`); the
    result's ``hidden`` holds the bounds used, for the children of these boxes. ``grad=False``:
    no interval gradients (``grad`` is None). ``forward=False`` (with ``prior``): no forward
    pass; the tiers start from the prior bounds as they are, and ``forward`` is +inf."""
    from .symbolic import tighten_unstable

    n1, n2 = normalise(orig), normalise(comp)
    if not same_architecture(n1, n2):
        raise NotImplementedError("the differential back-substitution needs the same architecture")
    lo2, hi2, _ = _as_batch(lo, hi, orig.n_inputs)
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    thresh = np.asarray(thresh, dtype=np.float64)
    stats = {} if stats is None else stats
    N = lo2.shape[0]
    width = max(n1.widths[1:])
    K = len(n1.layers)
    ups, coefs, uns, fws, grads, hid = [], [], [], [], [], []

    def bump(key: str, v: int) -> None:
        stats[key] = stats.get(key, 0) + int(v)

    for s in _chunks(N, 3 * width, orig.n_inputs):
        clo, chi = lo2[s], hi2[s]
        cp = None if prior is None else {k: [(a[:, s], b[:, s]) for a, b in v] for k, v in prior.items()}
        if forward or cp is None:
            f = _diff_forward(n1.layers, n2.layers, clo, chi, cp)
            ub, gx = _diff_backsub(n1.layers, n2.layers, f, K - 1, C)
            dl, du = f["delta"][-1]
            fw = (np.maximum(C, 0.0) @ du + np.minimum(C, 0.0) @ dl).T
            fw = fw + FP_REL * (np.abs(C) @ (np.abs(dl) + np.abs(du))).T
            ub = np.minimum(ub, fw)
        else:
            f = _prior_record(cp, clo, chi, n1.n_outputs)
            ub, gx = _diff_backsub(n1.layers, n2.layers, f, K - 1, C)
            fw = np.full_like(ub, np.inf)
        pre1 = [(a.copy(), b.copy()) for a, b in f["pre1"]]
        pre2 = [(a.copy(), b.copy()) for a, b in f["pre2"]]
        dlt = [(a.copy(), b.copy()) for a, b in f["delta"]]
        open_ = np.flatnonzero(np.max(ub - thresh[None, :], axis=1) >= 0)
        fs = f
        if "crown" in tiers and open_.size:
            bump("bounds_crown", open_.size)
            fs = _subset(f, open_)
            for key, net in (("pre1", n1), ("pre2", n2)):
                pb = tighten_unstable(net, clo[open_], chi[open_], [(a.T, b.T) for a, b in fs[key]])
                fs[key] = [(zl.T, zu.T) for zl, zu in pb]
            u2, g2 = _diff_backsub(n1.layers, n2.layers, fs, K - 1, C)
            ub[open_] = np.minimum(ub[open_], u2)
            gx[open_] = g2
            for j in range(K):
                pre1[j][0][:, open_], pre1[j][1][:, open_] = fs["pre1"][j]
                pre2[j][0][:, open_], pre2[j][1][:, open_] = fs["pre2"][j]
            still = np.max(ub[open_] - thresh[None, :], axis=1) >= 0
            if "crown+delta" in tiers and still.any():
                if skip_delta is not None:
                    keep = np.asarray(skip_delta(ub[open_], thresh, open_ + s.start), dtype=bool)
                    bump("delta_skipped", int((still & ~keep).sum()))
                    still &= keep
                sel = np.flatnonzero(still)
                if sel.size:
                    bump("bounds_crown+delta", sel.size)
                    fd = _subset(fs, sel)
                    bump("delta_pairs", _tighten_delta_sparse(n1.layers, n2.layers, fd))
                    u3, g3 = _diff_backsub(n1.layers, n2.layers, fd, K - 1, C)
                    rows = open_[sel]
                    for j in range(K):
                        dlt[j][0][:, rows], dlt[j][1][:, rows] = fd["delta"][j]
                    if trace is not None:
                        trace.append((rows + s.start, ub[rows].copy(), u3))
                    better = u3 < ub[rows]
                    ub[rows] = np.minimum(ub[rows], u3)
                    # coefficients of the tightest bound (used for candidate vertices)
                    gx[rows] = np.where(better[:, :, None], g3, gx[rows])
        fin = {"pre1": pre1, "pre2": pre2}
        ups.append(ub)
        fws.append(fw)
        coefs.append(gx)
        if grad:
            al, au = _grad_interval(n1.layers, pre1, C)
            bl, bu = _grad_interval(n2.layers, pre2, -C)
            grads.append(np.maximum(np.abs(al + bl), np.abs(au + bu)))
        uns.append(_unstable_count(fin))
        hid.append({"pre1": pre1[:-1], "pre2": pre2[:-1], "delta": dlt[:-1]})
    hidden = {
        k: [
            (np.concatenate([h[k][j][0] for h in hid], axis=1), np.concatenate([h[k][j][1] for h in hid], axis=1))
            for j in range(K - 1)
        ]
        for k in ("pre1", "pre2", "delta")
    }
    return ObjectiveBounds(
        upper=np.concatenate(ups),
        coef=np.concatenate(coefs),
        unstable=np.concatenate(uns),
        forward=np.concatenate(fws),
        grad=np.concatenate(grads) if grad else None,
        hidden=hidden,
    )


def differential_output_bounds(
    orig: FNN, comp: FNN, lo: Any, hi: Any, hidden: dict[str, list] | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-output bounds on Φ1(x) − Φ2(x) over one box by the tiered differential
    back-substitution (:func:`tiered_objective_bounds`, every tier), widened by 1e-9 relative;
    ``None`` when the architectures differ. On a 784-input MNIST pair and its 16-bit copy these
    are 20-35 % tighter than the forward analyses of :func:`merged_pre_bounds` (0.1-0.3 s).
    ``hidden``: bounds valid on the box for every hidden layer (keys pre1, pre2, delta, each a
    list of (lower, upper) 1-D arrays, e.g. :func:`hidden_bounds` of :func:`merged_pre_bounds`'s
    result): the back-substitution starts from them instead of its own forward pass, and so lacks
    that pass's output bound; intersect with :func:`merged_pre_bounds`'s output entry, which has it."""
    n1, n2 = normalise(orig), normalise(comp)
    if not same_architecture(n1, n2):
        return None
    m = n1.n_outputs
    C = np.vstack([np.eye(m), -np.eye(m)])
    lo2 = np.asarray(lo, dtype=np.float64).reshape(1, -1)
    hi2 = np.asarray(hi, dtype=np.float64).reshape(1, -1)
    prior = None
    if hidden is not None:
        prior = {
            k: [(np.asarray(a, float)[:, None], np.asarray(b, float)[:, None]) for a, b in hidden[k]] for k in hidden
        }
    thresh = np.full(2 * m, -np.inf)
    ub = tiered_objective_bounds(n1, n2, lo2, hi2, C, thresh, grad=False, prior=prior, forward=hidden is None).upper[0]
    ub = ub + 1e-9 * (1.0 + np.abs(ub))
    return -ub[m:], ub[:m]


def merged_pre_bounds(
    orig: FNN, comp: FNN, lo: Any, hi: Any, merged: FNN | None = None
) -> tuple[FNN, list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]] | None]:
    """The merged network and the tightest known pre-activation bounds of each of its layers.

    Elementwise intersection of interval bounds, symbolic intervals on the merged network and (same
    architecture) the differential analysis; the last entry bounds the merged output Φ1 − Φ2.
    Also returns the bounds on z1 − z2 per hidden layer (``None`` when architectures differ),
    which LP and MILP formulations can add as valid cuts. One box: arrays are 1-D.
    """
    lo2, hi2, single = _as_batch(lo, hi, orig.n_inputs)
    net = merged if merged is not None else merge(orig, comp)
    ib = interval_bounds(net, lo2, hi2)
    sym = _t(_symbolic_net(net.layers, lo2, hi2).pre)
    best = [(np.maximum(a[0], b[0]), np.minimum(a[1], b[1])) for a, b in zip(ib, sym)]
    delta = None
    if same_architecture(orig, comp):
        d = differential_analysis(orig, comp, lo2, hi2)
        n_hidden = len(d.pre1) - 1
        if len(best) == n_hidden + 1:
            for i in range(n_hidden):
                zl = np.concatenate([d.pre1[i][0], d.pre2[i][0]], axis=1)
                zu = np.concatenate([d.pre1[i][1], d.pre2[i][1]], axis=1)
                best[i] = (np.maximum(best[i][0], zl), np.minimum(best[i][1], zu))
            best[-1] = (np.maximum(best[-1][0], d.dlo), np.minimum(best[-1][1], d.dhi))
            delta = d.delta[:-1]
    if single:
        best = [(a[0], b[0]) for a, b in best]
        if delta is not None:
            delta = [(a[0], b[0]) for a, b in delta]
    return net, best, delta


def hidden_bounds(
    orig: FNN, pre: list[tuple[np.ndarray, np.ndarray]], delta: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """:func:`merged_pre_bounds`'s one-box result (same architecture, so ``delta`` is not None)
    split back into the hidden bounds of Φ1 and Φ2 (the merged layers stack Φ1's neurons first)
    and of z1 − z2, as :func:`differential_output_bounds` takes them."""
    widths = normalise(orig).widths[1:-1]
    if len(widths) != len(delta):
        raise ValueError(f"{len(delta)} hidden difference layers for a network of {len(widths)} hidden layers")
    pre1 = [(lo[:w], hi[:w]) for (lo, hi), w in zip(pre, widths)]
    pre2 = [(lo[w:], hi[w:]) for (lo, hi), w in zip(pre, widths)]
    return {"pre1": pre1, "pre2": pre2, "delta": list(delta)}


# --------------------------------------------------------------------------------------------
# witnesses and the method wrappers
# --------------------------------------------------------------------------------------------
def discrepancy_at(orig: FNN, comp: FNN, x: np.ndarray) -> np.ndarray:
    """Φ1(x) − Φ2(x) on the two original networks in float64 (batch (N, n) → (N, m))."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return orig.forward(x) - comp.forward(x)


def points_in_set(box: Box, points: np.ndarray) -> np.ndarray:
    """The points clipped to the box, keeping the finite ones that satisfy its constraints."""
    x = np.clip(np.atleast_2d(np.asarray(points, dtype=np.float64)), box.lower, box.upper)
    x = x[np.all(np.isfinite(x), axis=1)]
    if box.has_constraints:
        x = x[np.atleast_1d(box.contains(x, tol=0.0))]
    return x


def best_witness(
    orig: FNN, comp: FNN, box: Box, candidates: np.ndarray, refine: int = 12
) -> tuple[float, np.ndarray | None, int | None, int]:
    """The candidate (inside the set) with the largest |Φ1 − Φ2|∞: (value, x, output, n_checked).

    With ``refine > 0`` the best few candidates are then improved by that many steps of a
    sign-gradient ascent within the box (see :func:`refine_witness`); values are always
    re-evaluated on the two original networks in float64.
    """
    cand = np.atleast_2d(np.asarray(candidates, dtype=np.float64))
    if cand.size == 0:
        return 0.0, None, None, 0
    cand = points_in_set(box, cand)
    if cand.shape[0] == 0:
        return 0.0, None, None, 0
    d = np.abs(discrepancy_at(orig, comp, cand))
    score = d.max(axis=1)
    k = int(np.argmax(score))
    best_v, best_x, best_j = float(d[k, int(np.argmax(d[k]))]), cand[k].copy(), int(np.argmax(d[k]))
    if refine > 0:
        for k in np.argsort(-score)[:3]:
            v, x, j = refine_witness(orig, comp, box, cand[k], steps=refine)
            if v > best_v:
                best_v, best_x, best_j = v, x, j
    return best_v, best_x, best_j, int(cand.shape[0])


def _grad_diff(orig: FNN, comp: FNN, x: np.ndarray, j: int) -> np.ndarray:
    """Gradient of output j of Φ1 − Φ2 at x (on the linear piece x lies in), (n,): one backward
    pass per network, not the full Jacobian."""

    def grad(net: FNN) -> np.ndarray:
        masks = []
        a = x
        for layer in net.layers:
            z = layer.W @ a + layer.b
            if layer.activation == "relu":
                masks.append(z > 0)
                a = np.maximum(z, 0.0)
            else:
                masks.append(None)
                a = z
        g = np.zeros(net.n_outputs)
        g[j] = 1.0
        for layer, mask in zip(reversed(net.layers), reversed(masks)):
            if mask is not None:
                g = g * mask
            g = g @ layer.W
        return g

    return grad(orig) - grad(comp)


def refine_witness(orig: FNN, comp: FNN, box: Box, x: np.ndarray, steps: int = 12) -> tuple[float, np.ndarray, int]:
    """Local sign-gradient ascent on |Φ1 − Φ2|∞ from x within the set: (value, x, output).

    Each step moves every coordinate towards the bound the gradient of the current worst output
    points to, trying step lengths rad·2^-k (k = 0..40) at once, and keeps the best point
    (points violating A x <= c are dropped). Cheap: one batched forward pass per step.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), box.lower, box.upper)
    d = discrepancy_at(orig, comp, x)[0]
    j = int(np.argmax(np.abs(d)))
    v = float(abs(d[j]))
    span = box.upper - box.lower
    ts = 2.0 ** -np.arange(41)
    for _ in range(steps):
        g = _grad_diff(orig, comp, x, j) * np.sign(d[j])
        if not np.any(g):
            break
        target = np.where(g > 0, box.upper, np.where(g < 0, box.lower, x))
        step = np.minimum(np.abs(target - x), span)
        pts = x + np.sign(target - x) * step * ts[:, None]
        if box.has_constraints:
            pts = pts[np.atleast_1d(box.contains(pts, tol=0.0))]
            if pts.shape[0] == 0:
                break
        dd = discrepancy_at(orig, comp, pts)
        a = np.abs(dd)
        k = int(np.argmax(a.max(axis=1)))
        if a[k].max() <= v:
            break
        x, d = pts[k], dd[k]
        j = int(np.argmax(a[k]))
        v = float(a[k, j])
    return v, x.copy(), j


def form_corners(lower: np.ndarray, upper: np.ndarray, mid: np.ndarray, rad: np.ndarray) -> np.ndarray:
    """Box corners that maximise each upper form and minimise each lower form ((2m, n) points)."""
    xu = mid + rad * np.sign(upper[:, :-1])
    xl = mid - rad * np.sign(lower[:, :-1])
    return np.vstack([xu, xl])


def centre_jacobians(net: FNN, centre: np.ndarray):
    """Per layer, the Jacobian of its pre-activations with respect to the input at ``centre``
    (the network's linearisation there), one layer at a time."""
    J = np.eye(centre.size)
    a = centre
    for layer in net.layers:
        z = layer.pre(a[None])[0]
        Jz = layer.W @ J
        yield Jz
        if layer.activation == "relu":
            J = Jz * (z > 0)[:, None]
            a = np.maximum(z, 0.0)
        else:
            J, a = Jz, z


def linearisation_corners(net: FNN, box: Box) -> np.ndarray:
    """Corners chosen by the sign of the merged network's gradient at the box centre."""
    *_, J = centre_jacobians(net, box.center)
    s = np.sign(J)
    return np.vstack([box.center + box.radius * s, box.center - box.radius * s])


def default_candidates(box: Box, n_samples: int = 64, seed: int = 0) -> np.ndarray:
    pts = [box.center[None]]
    if n_samples > 0:
        s = box.sample(n_samples, seed=seed)
        if s.size:
            pts.append(s)
    return np.vstack(pts)


def _upper_of(per_output: np.ndarray) -> float:
    return float(np.max(np.abs(per_output))) if per_output.size else 0.0


def method_interval(orig: FNN, comp: FNN, box: Box, *, n_samples: int = 64, seed: int = 0) -> Discrepancy:
    """Interval (IBP) bounds on the merged network, as a verification method (status ``bounded``)."""
    t0 = time.perf_counter()
    box.check_dim(orig.n_inputs)
    net = merge(orig, comp)
    out_lo, out_hi = interval_bounds(net, box.lower, box.upper)[-1]
    per = np.stack([out_lo, out_hi], axis=1)
    cand = np.vstack([default_candidates(box, n_samples, seed), linearisation_corners(net, box)])
    lower, w, j, n_c = best_witness(orig, comp, box, cand)
    return Discrepancy(
        per_output=per,
        lower=lower,
        upper=_upper_of(per),
        witness=w,
        status="bounded",
        method="interval",
        witness_output=j,
        message="interval bound propagation on the merged network",
        stats={"time": time.perf_counter() - t0, "method": "interval", "candidates": n_c, "fp_rel_slack": FP_REL},
    )


def method_differential(orig: FNN, comp: FNN, box: Box, *, n_samples: int = 64, seed: int = 0) -> Discrepancy:
    """Differential symbolic-interval bounds (NeuroDiff-style) as a verification method."""
    t0 = time.perf_counter()
    box.check_dim(orig.n_inputs)
    r = differential_analysis(orig, comp, box.lower, box.upper)
    per = np.stack([r.dlo[0], r.dhi[0]], axis=1)
    corners = form_corners(r.out_lower[0], r.out_upper[0], r.mid[0], r.rad[0])
    cand = np.vstack([default_candidates(box, n_samples, seed), corners])
    lower, w, j, n_c = best_witness(orig, comp, box, cand)
    msg = (
        "differential symbolic intervals (NeuroDiff-style)"
        if r.mode == "differential"
        else "architectures differ: symbolic intervals on the merged network"
    )
    return Discrepancy(
        per_output=per,
        lower=lower,
        upper=_upper_of(per),
        witness=w,
        status="bounded",
        method="differential",
        witness_output=j,
        message=msg,
        stats={
            "time": time.perf_counter() - t0,
            "method": "differential",
            "mode": r.mode,
            "candidates": n_c,
            "fp_rel_slack": FP_REL,
        },
    )
