"""Lumping (after Ressi et al., arXiv 2209.07475): data-free reduction of ReLU layers, numpy only.

For a hidden ReLU layer with pre-activations ``z_j = w_j . h + b_j`` and the augmented incoming
vector ``v_j = (w_j, b_j)``:

* **proportional neurons**: if ``v_j = rho * v_r`` with ``rho > 0`` then ``relu(z_j) = rho * relu(z_r)``,
  so neuron ``j`` is merged into the representative ``r``: ``W_next[:, r] += rho * W_next[:, j]``
  and ``j`` is removed. Exact.
* **constant neurons**: if ``w_j = 0`` the neuron outputs the constant ``relu(b_j)``; it is removed
  and ``W_next[:, j] * relu(b_j)`` is added to the next bias. Exact.
* **dead neurons** (only with an ``input_box``): if interval bounds over the box prove
  ``z_j <= 0`` everywhere, the neuron always outputs 0 and is removed. Exact on the box (and only
  there: outside it the lumped network may differ).

Layers are treated from the input on; merging columns of ``W_next`` keeps proportional rows of
``W_next`` proportional, so redundancy one layer down is still found.

Tolerances. ``v_j`` and ``v_r`` are compared as directions: ``u = v / ||v||_2`` and ``j ~ r`` when
``||u_j - u_r||_2 <= tol`` (for small values, the angle between them in radians);
``rho = (v_j . v_r) / (v_r . v_r)``. The default ``tol = 1e-6`` (:data:`EXACT_TOLERANCE`) is the
*exact* mode for networks stored in float32: storing ``rho * v_r`` in float32 changes each entry by
at most 2^-24 of itself (~6e-8 relative), so the unit directions of two float32-stored proportional
vectors are at most ~2 * 6e-8 apart in L2 (plus float64 noise); 1e-6 absorbs that with margin and is
far below any real difference between trained neurons.
In exact mode the lumped network differs from the original only by that round-off (and not at
all when the proportionality is exact in float64, as after :func:`widen` in float64). A weight row
counts as zero in exact mode only when it is exactly zero. A larger user ``tolerance`` gives the
*approximate* mode: neurons whose directions are within ``tol`` of a representative are merged (the representative is the
group member with the largest norm), zero rows are those with ``||w_j||_inf <= tol * max|W|``; the
result is no longer exactly equivalent and the error should be measured (:func:`sampled_discrepancy`).

Negative multiples are not merged (``relu(-z) = relu(z) - z`` needs a skip connection).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nets.ir import FNN, Layer

__all__ = [
    "EXACT_TOLERANCE",
    "lump",
    "lump_layer_groups",
    "interval_bounds",
    "widen",
    "sampled_discrepancy",
]

EXACT_TOLERANCE = 1e-6


def interval_bounds(net: FNN, lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval (IBP) bounds on every layer's pre-activation over the box [lower, upper], float64.

    The bounds are widened by a relative 1e-12 of the summed magnitudes to cover float64 round-off.
    """
    lo = np.asarray(lower, dtype=np.float64).ravel()
    hi = np.asarray(upper, dtype=np.float64).ravel()
    if lo.shape != (net.n_inputs,) or hi.shape != (net.n_inputs,):
        raise ValueError(f"input box has {lo.size}/{hi.size} entries, network has {net.n_inputs} inputs")
    if np.any(lo > hi):
        raise ValueError("input box: lower > upper")
    out = []
    for layer in net.layers:
        mid = (lo + hi) / 2.0
        rad = (hi - lo) / 2.0
        c = layer.W @ mid + layer.b
        r = np.abs(layer.W) @ rad
        slack = 1e-12 * (np.abs(layer.W) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(layer.b))
        zl, zu = c - r - slack, c + r + slack
        out.append((zl, zu))
        if layer.activation == "relu":
            lo, hi = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
        else:
            lo, hi = zl, zu
    return out


def lump_layer_groups(
    W: np.ndarray, b: np.ndarray, tol: float = EXACT_TOLERANCE
) -> list[tuple[int, list[tuple[int, float]]]]:
    """Groups of positively proportional neurons of one layer (rows of ``[W | b]``).

    Returns ``[(representative, [(member, rho), ...]), ...]`` for groups with at least one member
    besides the representative; rows that are entirely zero are skipped. ``rho`` is the least-squares
    factor with ``v_member ~= rho * v_representative``.
    """
    V = np.concatenate([W, b.reshape(-1, 1)], axis=1)
    norms = np.linalg.norm(V, axis=1)
    live = np.flatnonzero(norms > 0)
    U = V[live] / norms[live, None]
    unassigned = np.ones(live.size, dtype=bool)
    # representative = largest norm first (for exact groups any choice is exact)
    order = np.argsort(-norms[live], kind="stable")
    groups = []
    for a in order:
        if not unassigned[a]:
            continue
        unassigned[a] = False
        cand = np.flatnonzero(unassigned)
        if cand.size == 0:
            continue
        close = cand[np.linalg.norm(U[cand] - U[a], axis=1) <= tol]
        if close.size == 0:
            continue
        unassigned[close] = False
        r = int(live[a])
        vr = V[r]
        members = [(int(live[c]), float(V[live[c]] @ vr / (vr @ vr))) for c in close]
        groups.append((r, members))
    return groups


def lump(
    net: FNN,
    tolerance: float | None = None,
    input_box: tuple[np.ndarray, np.ndarray] | None = None,
    max_rounds: int = 10,
) -> FNN:
    """Lump ``net``: merge positively proportional neurons, fold constant ones, drop provably dead ones.

    ``tolerance=None`` is the exact mode (:data:`EXACT_TOLERANCE`, zero rows exactly zero);
    a number is the approximate mode with that tolerance (see the module docstring). ``input_box``
    (lower, upper) enables dead-neuron removal by interval bounds (exact on that box only). The
    result's metadata ``"lumping"`` records mode, tolerance, widths before/after and per-layer counts.
    """
    exact = tolerance is None
    tol = EXACT_TOLERANCE if exact else float(tolerance)
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    layers = list(net.layers)
    counts: dict[int, dict[str, int]] = {
        i: {"merged": 0, "constant": 0, "dead": 0} for i in range(net.depth - 1) if layers[i].activation == "relu"
    }
    for _ in range(max_rounds):
        changed = False
        for i in sorted(counts):
            cur = layers[i]
            nxt = layers[i + 1]
            W, b = cur.W, cur.b
            Wn, bn = nxt.W.copy(), nxt.b.copy()
            remove = np.zeros(cur.n_out, dtype=bool)
            # dead over the input box
            if input_box is not None:
                tmp = FNN(tuple(layers))
                zl, zu = interval_bounds(tmp, input_box[0], input_box[1])[i]
                dead = zu <= 0.0
                remove |= dead
                counts[i]["dead"] += int(dead.sum())
            # constant: no incoming weights
            if exact:
                zero_rows = np.all(W == 0.0, axis=1)
            else:
                scale = np.max(np.abs(W)) if W.size else 0.0
                zero_rows = np.max(np.abs(W), axis=1) <= tol * scale
            const = zero_rows & ~remove
            if np.any(const):
                bn = bn + Wn[:, const] @ np.maximum(b[const], 0.0)
                remove |= const
                counts[i]["constant"] += int(const.sum())
            # proportional: among the remaining neurons
            alive = np.flatnonzero(~remove)
            groups = lump_layer_groups(W[alive], b[alive], tol)
            for r_local, members in groups:
                r = int(alive[r_local])
                for m_local, rho in members:
                    m = int(alive[m_local])
                    if rho <= 0:  # cannot happen for directions within tol < 1, kept as a guard
                        continue
                    Wn[:, r] += rho * Wn[:, m]
                    remove[m] = True
                    counts[i]["merged"] += 1
            if np.any(remove):
                if remove.all():
                    # keep one neuron (an FNN layer cannot be empty); make it inert
                    keep0 = int(np.flatnonzero(remove)[0])
                    remove[keep0] = False
                    W = W.copy()
                    b = b.copy()
                    W[keep0] = 0.0
                    b[keep0] = 0.0
                    Wn[:, keep0] = 0.0
                keep = ~remove
                layers[i] = Layer(W[keep], b[keep], cur.activation)
                layers[i + 1] = Layer(Wn[:, keep], bn, nxt.activation)
                changed = True
        if not changed:
            break
    metadata = dict(net.metadata)
    metadata.pop("quantization", None)
    metadata.pop("pruning", None)
    info: dict[str, Any] = {
        "mode": "exact" if exact else "approximate",
        "tolerance": tol,
        "input_box": input_box is not None,
        "widths_before": net.widths,
        "widths_after": [net.n_inputs] + [layer.n_out for layer in layers],
        "per_layer": {str(i): c for i, c in counts.items()},
        "source": net.content_hash,
    }
    metadata["lumping"] = info
    out = net.replace(layers=tuple(layers), metadata=metadata)
    return out.replace(name=f"{net.name or 'net'}-lumped")


def widen(
    net: FNN,
    extra: int | list[int] = 2,
    seed: int | np.random.Generator = 0,
    constant: int = 0,
    permute: bool = True,
    dtype: type = np.float64,
) -> FNN:
    """A function-preserving widening of ``net`` (a test-bed for lumping).

    Each hidden ReLU layer gets ``extra`` new neurons, each a copy of a random existing neuron ``r``
    with incoming weights and bias scaled by a random ``rho`` in [0.25, 4]; the outgoing weights of
    ``r`` are split: the copy takes ``alpha / rho`` of them, ``r`` keeps ``1 - alpha``, so the sum is
    unchanged. ``constant`` more neurons with zero incoming weights, a random bias and random
    outgoing weights are added, compensated in the next bias. With ``permute`` the neurons are
    shuffled. ``dtype=np.float32`` rounds the result's weights to float32 (as a stored network
    would be); then the function is preserved only up to float32 round-off.
    """
    rng = np.random.default_rng(seed)
    layers = list(net.layers)
    hidden = [i for i in range(net.depth - 1) if layers[i].activation == "relu"]
    extras = [int(extra)] * len(hidden) if np.isscalar(extra) else list(extra)
    for i, n_extra in zip(hidden, extras):
        W, b = layers[i].W.copy(), layers[i].b.copy()
        Wn, bn = layers[i + 1].W.copy(), layers[i + 1].b.copy()
        for _ in range(n_extra):
            r = int(rng.integers(W.shape[0]))
            rho = float(np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
            alpha = float(rng.uniform(0.2, 0.8))
            W = np.vstack([W, rho * W[r]])
            b = np.append(b, rho * b[r])
            col = Wn[:, r].copy()
            Wn[:, r] = (1.0 - alpha) * col
            Wn = np.hstack([Wn, (alpha / rho * col)[:, None]])
        for _ in range(constant):
            c = float(rng.normal())
            out = rng.normal(size=Wn.shape[0])
            W = np.vstack([W, np.zeros(W.shape[1])])
            b = np.append(b, c)
            Wn = np.hstack([Wn, out[:, None]])
            bn = bn - out * max(c, 0.0)
        if permute:
            p = rng.permutation(W.shape[0])
            W, b, Wn = W[p], b[p], Wn[:, p]
        layers[i] = Layer(W, b, layers[i].activation)
        layers[i + 1] = Layer(Wn, bn, layers[i + 1].activation)
    if dtype is not np.float64:
        layers = [
            Layer(layer.W.astype(dtype).astype(np.float64), layer.b.astype(dtype).astype(np.float64), layer.activation)
            for layer in layers
        ]
    return net.replace(layers=tuple(layers), name=f"{net.name or 'net'}-widened")


def sampled_discrepancy(
    net1: FNN,
    net2: FNN,
    lower: np.ndarray,
    upper: np.ndarray,
    n: int = 100_000,
    seed: int = 0,
    batch: int = 20_000,
) -> dict[str, float]:
    """max |net1(x) - net2(x)| over ``n`` uniform samples of the box (a lower bound on delta_max).

    Also returns ``relative`` = that maximum divided by max |net1(x)| over the same samples.
    """
    rng = np.random.default_rng(seed)
    lo = np.asarray(lower, dtype=np.float64).ravel()
    hi = np.asarray(upper, dtype=np.float64).ravel()
    worst = 0.0
    scale = 0.0
    done = 0
    while done < n:
        m = min(batch, n - done)
        x = lo + (hi - lo) * rng.random((m, lo.size))
        y1 = net1.forward(x)
        y2 = net2.forward(x)
        worst = max(worst, float(np.max(np.abs(y1 - y2))))
        scale = max(scale, float(np.max(np.abs(y1))))
        done += m
    return {"max_abs": worst, "max_ref": scale, "relative": worst / scale if scale > 0 else worst, "samples": n}
