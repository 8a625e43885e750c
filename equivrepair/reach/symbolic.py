"""Symbolic linear bounds (symbolic intervals with DeepPoly/Neurify ReLU relaxations), batched.

Every neuron carries a lower and an upper linear function of the input x, valid on the box.
Propagation is forward, so its cost grows with the input dimension n, not with depth squared:
for low-dimensional inputs (ACAS Xu) it is far cheaper than back-substitution, and batching
over N boxes turns the whole frontier of a branch and bound into a few matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nets.ir import FNN


@dataclass
class LinearBounds:
    """Linear bounds ``Lw x + Lc <= f(x) <= Uw x + Uc`` on N boxes, with their concrete ranges."""

    Lw: np.ndarray  # (N, k, n)
    Lc: np.ndarray  # (N, k)
    Uw: np.ndarray  # (N, k, n)
    Uc: np.ndarray  # (N, k)
    lower: np.ndarray  # (N, k) concrete lower bound of f over the box
    upper: np.ndarray  # (N, k) concrete upper bound of f over the box


def _concretize(w: np.ndarray, c: np.ndarray, center: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``w x + c`` over the boxes ``center ± radius``: (min, max), each (N, k)."""
    mid = np.einsum("nkd,nd->nk", w, center) + c
    spread = np.einsum("nkd,nd->nk", np.abs(w), radius)
    return mid - spread, mid + spread


def symbolic_bounds(
    net: FNN, lo: np.ndarray, hi: np.ndarray
) -> tuple[LinearBounds, list[tuple[np.ndarray, np.ndarray]]]:
    """Output linear bounds of ``net`` on each box [lo_i, hi_i], plus concrete pre-activation bounds.

    ``lo``/``hi`` are (N, n) or (n,). Sound in exact arithmetic; float64 round-off is covered by
    the caller's tolerance (see :mod:`equivrepair.reach.bab`).
    """
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    N, n = lo.shape
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    eye = np.broadcast_to(np.eye(n), (N, n, n))
    Lw, Uw = eye, eye
    Lc = Uc = np.zeros((N, n))
    pre_bounds: list[tuple[np.ndarray, np.ndarray]] = []
    zl = zu = None
    for layer in net.layers:
        Wp, Wn = np.maximum(layer.W, 0.0), np.minimum(layer.W, 0.0)
        nLw = np.matmul(Wp, Lw) + np.matmul(Wn, Uw)
        nUw = np.matmul(Wp, Uw) + np.matmul(Wn, Lw)
        nLc = Lc @ Wp.T + Uc @ Wn.T + layer.b
        nUc = Uc @ Wp.T + Lc @ Wn.T + layer.b
        Lw, Uw, Lc, Uc = nLw, nUw, nLc, nUc
        l_lo, l_hi = _concretize(Lw, Lc, center, radius)
        u_lo, u_hi = _concretize(Uw, Uc, center, radius)
        zl, zu = l_lo, u_hi
        pre_bounds.append((zl, zu))
        if layer.activation != "relu":
            continue
        # upper function U: relu(z) <= relu(U) <= s (U - u_lo) where U crosses zero
        s_up = np.where(u_lo >= 0, 1.0, np.where(u_hi <= 0, 0.0, u_hi / np.maximum(u_hi - u_lo, 1e-300)))
        t_up = np.where((u_lo < 0) & (u_hi > 0), -s_up * u_lo, 0.0)
        # lower function L: relu(z) >= relu(L) >= lam L with lam in [0, 1] (DeepPoly's choice)
        lam = np.where(l_lo >= 0, 1.0, np.where(l_hi <= 0, 0.0, (l_hi > -l_lo).astype(np.float64)))
        Uw = Uw * s_up[..., None]
        Uc = Uc * s_up + t_up
        Lw = Lw * lam[..., None]
        Lc = Lc * lam
    out_lo, _ = _concretize(Lw, Lc, center, radius)
    _, out_hi = _concretize(Uw, Uc, center, radius)
    return LinearBounds(Lw, Lc, Uw, Uc, out_lo, out_hi), pre_bounds


def _relaxation(zl: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ReLU relaxation per neuron: lower slope alpha, upper slope s and intercept t (a <= s z + t)."""
    unstable = (zl < 0) & (zu > 0)
    s = np.where(zl >= 0, 1.0, np.where(zu <= 0, 0.0, zu / np.maximum(zu - zl, 1e-300)))
    t = np.where(unstable, -s * zl, 0.0)
    alpha = np.where(zl >= 0, 1.0, np.where(zu <= 0, 0.0, (zu > -zl).astype(np.float64)))
    return alpha, s, t


def backsub_bounds(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    upto: int,
    C: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DeepPoly/CROWN back-substitution of ``C @ z_upto`` to the input, batched over N boxes.

    Uses the relaxations implied by ``pre_bounds`` of the layers below ``upto``. Returns
    (lower, upper, lower coefficient on x (N, r, n), upper coefficient (N, r, n)).
    """
    lo = np.atleast_2d(lo)
    hi = np.atleast_2d(hi)
    N = lo.shape[0]
    layer = net.layers[upto]
    W = layer.W if C is None else C @ layer.W
    b = layer.b if C is None else C @ layer.b
    LamU = np.broadcast_to(W, (N,) + W.shape)
    LamL = LamU
    cU = np.broadcast_to(b, (N, W.shape[0])).copy()
    cL = cU.copy()
    for j in range(upto - 1, -1, -1):
        zl, zu = pre_bounds[j]
        alpha, s, t = _relaxation(zl, zu)  # (N, w)
        # upper bound: positive coefficients take the upper relaxation, negative the lower one
        pos, neg = np.maximum(LamU, 0.0), np.minimum(LamU, 0.0)
        cU = cU + np.einsum("nrw,nw->nr", pos, t)
        LamU = pos * s[:, None, :] + neg * alpha[:, None, :]
        pos, neg = np.maximum(LamL, 0.0), np.minimum(LamL, 0.0)
        cL = cL + np.einsum("nrw,nw->nr", neg, t)
        LamL = pos * alpha[:, None, :] + neg * s[:, None, :]
        Wj, bj = net.layers[j].W, net.layers[j].b
        cU = cU + LamU @ bj
        cL = cL + LamL @ bj
        LamU = LamU @ Wj
        LamL = LamL @ Wj
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    lower = np.einsum("nrd,nd->nr", LamL, center) - np.einsum("nrd,nd->nr", np.abs(LamL), radius) + cL
    upper = np.einsum("nrd,nd->nr", LamU, center) + np.einsum("nrd,nd->nr", np.abs(LamU), radius) + cU
    return lower, upper, LamL, LamU


def intermediate_bounds(net: FNN, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds of every layer: forward symbolic, then back-substitution for the
    neurons that are unstable in some box of the batch (the others are already decided)."""
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    _, pre = symbolic_bounds(net, lo, hi)
    pre = [(zl.copy(), zu.copy()) for zl, zu in pre]
    for k in range(1, net.depth - 1):
        zl, zu = pre[k]
        rows = np.flatnonzero(((zl < 0) & (zu > 0)).any(axis=0))
        if rows.size == 0:
            continue
        C = np.eye(net.layers[k].n_out)[rows]
        l_k, u_k, _, _ = backsub_bounds(net, lo, hi, pre, k, C)
        zl[:, rows] = np.maximum(zl[:, rows], l_k)
        zu[:, rows] = np.minimum(zu[:, rows], u_k)
    return pre


def crown_bounds(
    net: FNN, lo: np.ndarray, hi: np.ndarray, intermediate: str | list = "forward", forward: bool = True
) -> tuple[LinearBounds, list]:
    """Output bounds by back-substitution. Intermediate bounds: ``"forward"`` (symbolic pass),
    ``"backsub"`` (tighter, see :func:`intermediate_bounds`), or a list of given (lower, upper).
    With a given list, ``forward=False`` skips the forward symbolic pass, whose output bounds are
    otherwise intersected in (rarely tighter than back-substitution from tight intermediates)."""
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    if not forward and not isinstance(intermediate, str):
        pre = [(np.asarray(a), np.asarray(b)) for a, b in intermediate]
        l_out, u_out, Lw, Uw = backsub_bounds(net, lo, hi, pre, net.depth - 1)
        center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
        # the constants of the linear bounds: lower = min over the box of Lw x + Lc (likewise upper)
        Lc = l_out - np.einsum("nkd,nd->nk", Lw, center) + np.einsum("nkd,nd->nk", np.abs(Lw), radius)
        Uc = u_out - np.einsum("nkd,nd->nk", Uw, center) - np.einsum("nkd,nd->nk", np.abs(Uw), radius)
        return LinearBounds(Lw, Lc, Uw, Uc, l_out, u_out), pre
    fwd, pre = symbolic_bounds(net, lo, hi)
    if intermediate == "backsub":
        pre = intermediate_bounds(net, lo, hi)
    elif not isinstance(intermediate, str):
        pre = [(np.maximum(a, c), np.minimum(b, d)) for (a, b), (c, d) in zip(pre, intermediate)]
    last = net.depth - 1
    l_out, u_out, Lw, Uw = backsub_bounds(net, lo, hi, pre, last)
    lower = np.maximum(l_out, fwd.lower)
    upper = np.minimum(u_out, fwd.upper)
    # keep the coefficients of whichever bound was tighter (used for split choices and candidates)
    Uw_best = np.where((u_out <= fwd.upper)[..., None], Uw, fwd.Uw)
    Lw_best = np.where((l_out >= fwd.lower)[..., None], Lw, fwd.Lw)
    return LinearBounds(Lw_best, fwd.Lc, Uw_best, fwd.Uc, lower, upper), pre


SPARSE_FP_REL = 1e-12
"""Relative outward slack of :func:`tighten_unstable` per unit of accumulated term magnitude."""


def tighten_unstable(net: FNN, lo: np.ndarray, hi: np.ndarray, pre: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """Tighten the bounds ``pre`` (per layer (N, w) lower and upper, valid on the boxes) of every
    hidden neuron that is unstable in its own box, by DeepPoly/CROWN back-substitution.

    Same bounds as :func:`intermediate_bounds`, but sparse: only the (box, neuron) pairs that
    straddle zero are back-substituted, stacked as the rows of one matrix, so each step is a single
    (pairs × w) @ (w × w') product whatever the batch. Layers are processed in order, so a layer's
    relaxations use the tightened bounds of the layers below it. ``net`` must be normalised (hidden
    layers ReLU). Returns new arrays (the input is not modified).

    Round-off: each bound is widened by ``SPARSE_FP_REL`` times the sum of the absolute values of
    all terms that were added up to form it (|coefficient| x max |variable|, per step), which
    bounds the float64 error of the back-substitution (as in :mod:`equivrepair.reach.bounds`).
    """
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    pre = [(np.array(zl, dtype=np.float64), np.array(zu, dtype=np.float64)) for zl, zu in pre]
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    xM = np.maximum(np.abs(lo), np.abs(hi))
    absW = [np.abs(layer.W) for layer in net.layers]
    cache: dict[int, tuple] = {}

    def relax(j: int) -> tuple:
        # per box (N, w_j): relaxation of layer j and the magnitudes used for the round-off slack
        if j not in cache:
            pl, pu = pre[j]
            alpha, s, t = _relaxation(pl, pu)
            zM = np.maximum(np.abs(pl), np.abs(pu))
            aM = xM if j == 0 else np.maximum(pre[j - 1][1], 0.0)
            scale = aM @ absW[j].T + np.abs(net.layers[j].b)  # |W_j| max|a_{j-1}| + |b_j|
            cache[j] = (alpha, s, t, zM + scale)
        return cache[j]

    for k in range(1, net.depth - 1):
        zl, zu = pre[k]
        bi, ni = np.nonzero((zl < 0) & (zu > 0))
        if bi.size == 0:
            continue
        layer = net.layers[k]
        LamU = layer.W[ni]
        LamL = LamU
        cU = layer.b[ni].copy()
        cL = cU.copy()
        magU = np.abs(cU)
        magL = magU.copy()
        for j in range(k - 1, -1, -1):
            alpha, s, t, zs = (a[bi] for a in relax(j))
            pos, neg = np.maximum(LamU, 0.0), np.minimum(LamU, 0.0)
            tU = np.einsum("pw,pw->p", pos, t)  # >= 0
            cU = cU + tU
            LamU = pos * s + neg * alpha
            pos, neg = np.maximum(LamL, 0.0), np.minimum(LamL, 0.0)
            tL = np.einsum("pw,pw->p", neg, t)  # <= 0
            cL = cL + tL
            LamL = pos * alpha + neg * s
            # round-off: the relaxed coefficients times max|z_j|, then the products with W_j, b_j
            magU = magU + np.einsum("pw,pw->p", np.abs(LamU), zs) + tU + np.abs(cU)
            magL = magL + np.einsum("pw,pw->p", np.abs(LamL), zs) - tL + np.abs(cL)
            Wj, bj = net.layers[j].W, net.layers[j].b
            cU = cU + LamU @ bj
            cL = cL + LamL @ bj
            LamU = LamU @ Wj
            LamL = LamL @ Wj
        ctr, rad = center[bi], radius[bi]
        aU, aL, actr = np.abs(LamU), np.abs(LamL), np.abs(ctr)
        sU = np.einsum("pw,pw->p", aU, rad)
        sL = np.einsum("pw,pw->p", aL, rad)
        mU = np.einsum("pw,pw->p", LamU, ctr)
        mL = np.einsum("pw,pw->p", LamL, ctr)
        up = cU + mU + sU
        low = cL + mL - sL
        up = up + SPARSE_FP_REL * (magU + np.abs(cU) + np.einsum("pw,pw->p", aU, actr) + sU)
        low = low - SPARSE_FP_REL * (magL + np.abs(cL) + np.einsum("pw,pw->p", aL, actr) + sL)
        zl, zu = zl.copy(), zu.copy()
        zl[bi, ni] = np.maximum(zl[bi, ni], low)
        zu[bi, ni] = np.minimum(zu[bi, ni], up)
        pre[k] = (zl, zu)
        cache.pop(k, None)
        cache.pop(k + 1, None)
    return pre
