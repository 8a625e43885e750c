"""Region ascent: a local search for witnesses across the linear regions of a ReLU network.

A ReLU network is affine on each activation region (a polytope), so the maximum of one output
over a box is attained at a vertex of some region. From a start point, an LP over the start's
region (its halfspaces plus the box) reaches that region's best vertex; the search then moves
into a neighbouring region, across a neuron whose boundary is tight at that vertex, when the LP
there does better, and stops at a local maximum. Sign-gradient steps rarely land on such a kink
exactly; this lands on one each step. Only a search: the caller re-evaluates every point it
returns on the original networks (the witness rule), so nothing here needs to be sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nets.ir import FNN
from .star import _LP

TIGHT = 1e-7  # a neuron is on its boundary at a vertex when |z| <= TIGHT · (scale of z's form)


@dataclass
class Ascent:
    """Best point found, its value (of ``sign * net(x)[out]``, in the LP's arithmetic), LPs solved."""

    x: np.ndarray
    value: float
    lps: int


def activation_pattern(net: FNN, x: np.ndarray) -> list[np.ndarray]:
    """Which neurons of each hidden layer are active at ``x`` (pre-activation > 0; every neuron of
    a linear layer)."""
    pattern, h = [], x
    for layer in net.layers[:-1]:
        z = layer.W @ h + layer.b
        relu = layer.activation == "relu"
        pattern.append(z > 0 if relu else np.ones(z.size, dtype=bool))
        h = np.maximum(z, 0.0) if relu else z
    return pattern


def region_forms(net: FNN, pattern: list[np.ndarray]):
    """The region of ``pattern`` as halfspaces ``G x <= g``, the network's affine map on it
    (``Wout x + bout``) and each hidden ReLU layer's pre-activation form ``(Z, z)`` (empty for a
    linear layer)."""
    n = net.n_inputs
    A, a = np.eye(n), np.zeros(n)
    G, g, forms = [], [], []
    for layer, active in zip(net.layers[:-1], pattern):
        Z, z = layer.W @ A, layer.W @ a + layer.b
        if layer.activation != "relu":  # a linear layer adds no boundary (and no form to flip)
            forms.append((Z[:0], z[:0]))
            A, a = Z, z
            continue
        forms.append((Z, z))
        side = np.where(active, -1.0, 1.0)  # active: z >= 0, i.e. -z <= 0; inactive: z <= 0
        G.append(side[:, None] * Z)
        g.append(-side * z)
        A, a = Z * active[:, None], z * active
    last = net.layers[-1]
    G = np.vstack(G) if G else np.zeros((0, n))
    g = np.concatenate(g) if g else np.zeros(0)
    return G, g, last.W @ A, last.W @ a + last.b, forms


def _tight(forms, x: np.ndarray) -> list[tuple[int, int]]:
    """(layer, neuron) pairs whose boundary passes through ``x`` (up to ``TIGHT``)."""
    out = []
    for li, (Z, z) in enumerate(forms):
        if not len(z):
            continue
        v = Z @ x + z
        scale = np.abs(Z) @ np.maximum(np.abs(x), 1.0) + np.abs(z) + 1e-300
        out += [(li, int(j)) for j in np.flatnonzero(np.abs(v) <= TIGHT * scale)]
    return out


def _region_max(lp: _LP, net: FNN, pattern, out: int, sign: float):
    G, g, Wout, bout, forms = region_forms(net, pattern)
    try:
        val, x = lp.solve(sign * Wout[out], G, g, maximize=True)
    except RuntimeError:  # HiGHS gave up on a degenerate region: treat it as a dead end
        return None, -np.inf, forms
    if x is None:
        return None, -np.inf, forms
    return x, val + sign * bout[out], forms


def region_ascent(
    net: FNN,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    out: int,
    sign: float,
    max_steps: int = 30,
    max_flips: int = 24,
) -> Ascent:
    """Local maximum of ``sign * net(x)[out]`` over the box by moving between adjacent regions."""
    lp = _LP(lo, hi)
    x0 = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    pattern = activation_pattern(net, x0)
    x, val, forms = _region_max(lp, net, pattern, out, sign)
    if x is None:  # x0 lies on a boundary the LP sees from the wrong side: keep it
        return Ascent(x0, float(sign * net.forward(x0[None])[0, out]), lp.count)
    for _ in range(max_steps):
        moved = False
        for li, j in _tight(forms, x)[:max_flips]:  # first improvement: the walk, not the LPs, climbs
            flipped = [p.copy() for p in pattern]
            flipped[li][j] = ~flipped[li][j]
            x2, v2, f2 = _region_max(lp, net, flipped, out, sign)
            if x2 is not None and v2 > val + 1e-12 * (1.0 + abs(val)):
                val, x, pattern, forms, moved = v2, x2, flipped, f2, True
                break
        if not moved:
            break
    return Ascent(x, float(val), lp.count)
