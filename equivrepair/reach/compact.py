"""The compact LP / big-M MILP of a merged network: stable neurons substituted away.

:func:`equivrepair.reach.lp.build_relaxation` gives every neuron a pre-activation and an
activation column. Around an MNIST image with a few pixel values of freedom almost every neuron
is stable, and those columns only carry the 784 × width dense first layer from row to row, so
the model is large (~1,700 columns, ~180,000 non-zeros for 3 × 100) while only a few dozen
neurons make it non-linear. Here each stable neuron is replaced by its affine expression in the
remaining columns (a stably active neuron *is* its pre-activation, an inactive one is 0), so
columns are the inputs x, and per *needed* neuron its pre-activation z (with an equality row
z = expression), activation a and, for the MILP, a binary δ. A neuron is needed when it is
unstable, or when it is the twin (same index in the other network of a same-architecture pair)
of an unstable neuron, so that the difference cuts of the differential analysis (dl <= z1 − z2
<= du and the Lipschitz chords on a1 − a2) can be stated on columns. The outputs y = Φ1 − Φ2 get
columns and equality rows as in the full model, so an :class:`LPModel` comes out and every
solver wrapper of :mod:`lp` and :mod:`milp` works on it unchanged.

The substitution is exact in real arithmetic; in float64 the composed coefficients carry a
relative round-off of about (depth · width) · 2^-53 of Σ|W||E|, far below the solvers'
feasibility tolerance (1e-7) that the MILP tolerance already covers. LP bounds computed on this
model with :func:`lp.safe_lower_bound` are rigorous for the model as built.
"""

from __future__ import annotations

import numpy as np

from ..nets.ir import FNN
from .lp import LPModel, _Builder, check_merged, difference_cuts, layer_bounds, unstable_rows


def build_compact(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    A: np.ndarray | None = None,
    c: np.ndarray | None = None,
    delta_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    integer: bool = True,
) -> LPModel:
    """The big-M MILP (``integer=True``) or triangle LP of ``net`` with stable neurons eliminated.

    Same arguments and meaning as :func:`lp.build_relaxation` (hidden ReLU layers, a linear last
    layer, sound pre-activation bounds per hidden layer and optionally for the output).
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    layers = net.layers
    n_hidden = check_merged(net, pre_bounds)
    b = _Builder()
    x_cols = b.add_cols(lo, hi)
    # E v + e is the affine expression of each neuron of the previous layer over the columns so far
    # (None for the inputs themselves: E = I, e = 0, not multiplied out)
    E: np.ndarray | None = None
    e = np.zeros(lo.size)
    prev_lo, prev_hi = lo, hi
    int_cols: list[np.ndarray] = []
    n_unstable = 0
    layout: list[dict] = []
    for i in range(n_hidden):
        W, bias = layers[i].W, layers[i].b
        zl, zu = layer_bounds(W, bias, pre_bounds[i], prev_lo, prev_hi)
        n = zl.size
        Z = W.copy() if E is None else W @ E
        zc = W @ e + bias
        active = zl >= 0.0
        unstable = (zl < 0.0) & (zu > 0.0)
        n_unstable += int(unstable.sum())
        pairs = delta_bounds is not None and i < len(delta_bounds) and n % 2 == 0
        if pairs:
            dl = np.asarray(delta_bounds[i][0], dtype=np.float64)
            du = np.asarray(delta_bounds[i][1], dtype=np.float64)
            pairs = dl.size == n // 2
        needed = unstable.copy()
        if pairs:
            s = n // 2
            twin = unstable[:s] | unstable[s:]
            needed[:s] |= twin
            needed[s:] |= twin
        k = np.flatnonzero(needed)
        # pre-activation columns of the needed neurons: z − Z v = zc
        zcol = np.full(n, -1)
        acol = np.full(n, -1)
        if k.size:
            zcol[k] = b.add_cols(zl[k], zu[k])
            ncols_before = Z.shape[1]
            M = np.zeros((k.size, b.n_cols))
            M[:, :ncols_before] = -Z[k]
            M[np.arange(k.size), zcol[k]] = 1.0
            b.add_dense_rows(M, np.arange(b.n_cols), zc[k], zc[k])
        ku = np.flatnonzero(unstable)
        dcol = np.zeros(0, dtype=int)
        if ku.size:
            acol[ku] = b.add_cols(np.zeros(ku.size), np.maximum(zu[ku], 0.0))
            unstable_rows(b, zcol[ku], acol[ku], zl[ku], zu[ku], integer, int_cols)
            dcol = int_cols[-1] if integer else dcol
        # twins that are stable still need an activation column for the cuts
        ka = np.flatnonzero(needed & active)
        acol[ka] = zcol[ka]
        kd = np.flatnonzero(needed & ~active & ~unstable)
        if kd.size:
            acol[kd] = b.add_cols(np.zeros(kd.size), np.zeros(kd.size))
        layout.append(
            {
                "z": (k, zcol[k]),
                "a": (ku, acol[ku]),
                "phase": (ku[: dcol.size], dcol),
                "half": n // 2 if pairs else None,
            }
        )
        if pairs:
            half = n // 2
            difference_cuts(b, zcol, acol, zl, zu, unstable, dl, du, needed[:half])
        # the expressions of this layer's activations over all columns so far
        E_new = np.zeros((n, b.n_cols))
        e_new = np.zeros(n)
        plain = active & ~needed
        E_new[plain, : Z.shape[1]] = Z[plain]
        e_new[plain] = zc[plain]
        kk = np.flatnonzero(needed & (active | unstable))
        E_new[kk, acol[kk]] = 1.0
        E, e = E_new, e_new
        prev_lo, prev_hi = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    W, bias = layers[-1].W, layers[-1].b
    yl, yu = layer_bounds(W, bias, pre_bounds[n_hidden] if len(pre_bounds) > n_hidden else None, prev_lo, prev_hi)
    m = yl.size
    Y = W.copy() if E is None else W @ E
    yc = W @ e + bias
    y = b.add_cols(yl, yu)
    M = np.zeros((m, b.n_cols))
    M[:, : Y.shape[1]] = -Y
    M[np.arange(m), y] = 1.0
    b.add_dense_rows(M, np.arange(b.n_cols), yc, yc)
    if A is not None:
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        cc = np.asarray(c, dtype=np.float64).ravel()
        b.add_dense_rows(A, x_cols, np.full(cc.size, -np.inf), cc)
    Am, rl, ru, cl, cu = b.build()
    ints = np.concatenate(int_cols) if int_cols else np.zeros(0, dtype=int)
    return LPModel(Am, rl, ru, cl, cu, x_cols, y, ints, n_unstable, layout)


def model_point(net: FNN, model: LPModel, x: np.ndarray) -> np.ndarray | None:
    """Every column of a :func:`build_compact` model at input ``x``: the pre-activations,
    activations and phases (binaries) of the network at x, and its outputs — a complete MIP
    start. Clipped to the column bounds (they hold at x up to round-off); None for other models."""
    if model.layout is None:
        return None
    v = np.zeros(model.n_cols)
    h = np.asarray(x, dtype=np.float64)
    v[model.x_cols] = h
    for layer, cols in zip(net.layers, model.layout):
        z = layer.W @ h + layer.b
        for key, val in (("z", z), ("a", np.maximum(z, 0.0)), ("phase", (z > 0.0).astype(np.float64))):
            idx, col = cols[key]
            v[col] = val[idx]
        h = np.maximum(z, 0.0)
    v[model.y_cols] = net.layers[-1].W @ h + net.layers[-1].b
    return np.clip(v, model.col_lower, model.col_upper)
