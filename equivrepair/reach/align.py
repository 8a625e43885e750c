"""Aligning a pair of different widths: the narrower network rewritten, exactly, in the other's shape.

The differential bounds pair neuron i of Φ1 with neuron i of Φ2, so they only help when the two
networks have the same widths and their neurons correspond. A lumped network (proportional neurons
merged, constant and dead ones folded away) computes the same function as its original but has
fewer neurons, and its relaxation errors do not cancel against the original's: input splitting
alone then does not close δ_max = 0. Here the narrow network N is *widened* to the wide network
G's widths without changing its function:

* each neuron j of G is matched to a neuron π(j) of N whose incoming weights and bias, read
  through the matching of the layer below, point the same way (``||u_j − u_π(j)|| <= tol`` for
  unit vectors u, factor ρ_j > 0); the widened neuron is then ρ_j · N's neuron π(j), which is
  again a ReLU neuron since relu(ρ z) = ρ relu(z) for ρ > 0;
* a neuron of G without a match is a *constant* (no incoming weight from a live neuron: the widened
  neuron is relu(b_j) with no inputs, its contribution taken out of the next layer's bias) or
  *absent* (dead on the box, or pruned away in N: the widened neuron is relu(−1) = 0, and the
  differential bounds see G's activation against 0, as for a pruned neuron);
* the outgoing weights of N's neuron l are shared among the widened neurons matched to it in G's
  proportions, so the widened network's weights equal G's wherever the match is exact.

By construction the widened network equals N in real arithmetic for *any* matching; the
matching only decides how close it comes to G (and so how tight the differential bounds are).
Storing its weights in float64 leaves residuals, which :func:`widen_like` bounds soundly over the
box (the standard γ_k = k·2^-53 error of each sum, plus the float residual of every identity,
propagated through |W| with interval bounds of N's activations): ``error`` >= sup over the box of
|widened(x) − N(x)|∞. A matching that fails (a neuron of N with no partner in G) returns ``None``
and the caller keeps the pair as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..merge import drop_identity_layers, normalise
from ..nets.ir import FNN, Layer
from .bounds import _symbolic_net, interval_bounds

MATCH_TOLERANCE = 1e-6  # the exact mode of compress.lump: float32 round-off of a proportional row
LOOSE_MATCH = 0.5  # nearest directions within ~29 degrees: approximate lumpings (sound, less tight)
_U = 2.0**-53


@dataclass
class Alignment:
    """The narrow network widened to the guide's widths, and the proof-relevant facts about it."""

    net: FNN  # same widths as the guide, computes the narrow network's function
    error: float  # sound bound on sup over the box of |net(x) − narrow(x)|∞ (real arithmetic)
    matched: int  # hidden neurons of the guide matched to a neuron of the narrow network
    constant: int  # unmatched guide neurons without live inputs: the same constant in both
    absent: int  # other unmatched guide neurons: identically 0 in the widened network
    dead: int  # of those, the ones interval bounds prove dead in the guide on the box


def _prepare(net: FNN) -> FNN:
    return normalise(drop_identity_layers(net))


def alignable(a: FNN, b: FNN) -> str | None:
    """``"b"`` when b is narrower than a in some hidden layer and nowhere wider (b gets widened),
    ``"a"`` for the reverse, ``None`` when widths agree, depths differ or both are wider somewhere."""
    wa, wb = _prepare(a).widths, _prepare(b).widths
    if len(wa) != len(wb) or wa == wb:
        return None
    if all(x >= y for x, y in zip(wa, wb)):
        return "b"
    if all(x <= y for x, y in zip(wa, wb)):
        return "a"
    return None


def _match(V: np.ndarray, V2: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each row of V the row of V2 with the nearest direction: (index or −1, factor ρ)."""
    n1 = np.linalg.norm(V, axis=1)
    n2 = np.linalg.norm(V2, axis=1)
    pi = np.full(V.shape[0], -1)
    rho = np.zeros(V.shape[0])
    live1, live2 = n1 > 0, n2 > 0
    if not live1.any() or not live2.any():
        return pi, rho
    U1 = V[live1] / n1[live1, None]
    U2 = V2[live2] / n2[live2, None]
    cos = U1 @ U2.T
    best = np.argmax(cos, axis=1)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * cos[np.arange(best.size), best], 0.0))
    ok = dist <= tol
    idx2 = np.flatnonzero(live2)[best]
    rows = np.flatnonzero(live1)
    pi[rows[ok]] = idx2[ok]
    V2b = V2[pi[rows[ok]]]
    rho[rows[ok]] = np.einsum("ij,ij->i", V[rows[ok]], V2b) / np.einsum("ij,ij->i", V2b, V2b)
    bad = rho <= 0
    pi[bad] = -1
    return pi, rho


def widen_like(
    narrow: FNN, guide: FNN, lo: np.ndarray, hi: np.ndarray, tol: float = MATCH_TOLERANCE
) -> Alignment | None:
    """``narrow`` rewritten with ``guide``'s widths (see the module docstring), or ``None``."""
    N, G = _prepare(narrow), _prepare(guide)
    if N.n_inputs != G.n_inputs or N.n_outputs != G.n_outputs or N.depth != G.depth:
        return None
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    g_pre = interval_bounds(G, lo, hi)
    # |activation| bounds of the narrow network scale the round-off terms: symbolic (tighter) ∩ IBP
    sym = _symbolic_net(N.layers, lo[None], hi[None]).pre
    n_pre = [
        (np.maximum(a, s[0][:, 0]), np.minimum(b, s[1][:, 0])) for (a, b), s in zip(interval_bounds(N, lo, hi), sym)
    ]
    # the layer below, as the widened network sees it: per guide neuron its partner, factor and kind
    n_in = lo.size
    pi, rho = np.arange(n_in), np.ones(n_in)
    const = np.zeros(n_in, dtype=bool)  # neurons of the widened layer that are fixed constants
    cval = np.zeros(n_in)  # their value relu(b)
    err = np.zeros(n_in)  # bound on |widened activation − ρ · narrow activation| (matched ones)
    h2 = np.maximum(np.abs(lo), np.abs(hi))  # bound on |narrow activation| of the layer below
    layers: list[Layer] = []
    counts = {"matched": 0, "constant": 0, "absent": 0, "dead": 0}
    last = G.depth - 1
    for i, (lg, ln) in enumerate(zip(G.layers, N.layers)):
        W1, b1, W2, b2 = lg.W, lg.b, ln.W, ln.b
        p2 = W2.shape[1]
        matched_prev = pi >= 0
        if np.bincount(pi[matched_prev], minlength=p2).min(initial=1) == 0:
            return None  # a neuron of the narrow network below has no partner in the guide
        # the guide's rows read through the matching below: C[:, l] = Σ_{k→l} W1[:, k] ρ_k
        C = np.zeros((W1.shape[0], p2))
        np.add.at(C.T, pi[matched_prev], (W1[:, matched_prev] * rho[matched_prev]).T)
        b_eff = b1 + W1[:, const] @ cval[const]
        if i < last:
            m_pi, m_rho = _match(np.hstack([C, b_eff[:, None]]), np.hstack([W2, b2[:, None]]), tol)
        else:  # outputs correspond one to one
            m_pi, m_rho = np.arange(W1.shape[0]), np.ones(W1.shape[0])
        live_prev = matched_prev | const
        is_const = (m_pi < 0) & ~np.any(W1[:, live_prev] != 0.0, axis=1)
        is_dead = (m_pi < 0) & ~is_const  # absent from the narrow network: 0 in the widened one
        if i < last and np.bincount(m_pi[m_pi >= 0], minlength=W2.shape[0]).min(initial=1) == 0:
            return None  # a neuron of the narrow network has no partner in the guide
        rows = np.flatnonzero(m_pi >= 0)
        # weights: the target ρ_j W2[π(j), l] shared among the guide columns matched to l
        T = m_rho[rows, None] * W2[m_pi[rows]]  # (r, p2)
        Cr = C[rows]
        scale_ok = np.abs(Cr) > 1e-9 * np.maximum(np.abs(T), 1e-300)
        F = np.where(scale_ok, T / np.where(scale_ok, Cr, 1.0), 0.0)
        Wh = np.zeros_like(W1)
        cols = np.flatnonzero(matched_prev)
        Wh[np.ix_(rows, cols)] = W1[np.ix_(rows, cols)] * F[:, pi[cols]]
        # where G's group sum is (nearly) zero: the whole weight on the group's first member
        first = np.full(p2, -1)
        for k in cols[::-1]:
            first[pi[k]] = k
        rr, ll = np.nonzero(~scale_ok)
        if rr.size:
            Wh[rows[rr], first[ll]] = T[rr, ll] / rho[first[ll]]
        Wh[np.ix_(rows, np.flatnonzero(const))] = W1[np.ix_(rows, np.flatnonzero(const))]
        bh = np.zeros(W1.shape[0])
        bh[rows] = m_rho[rows] * b2[m_pi[rows]] - Wh[np.ix_(rows, np.flatnonzero(const))] @ cval[const]
        bh[is_const] = b1[is_const]
        bh[is_dead] = -1.0
        # residuals of the identities z_hat_j = ρ_j z2_π(j), with the γ_k error of each float sum
        R = np.zeros((rows.size, p2))
        np.add.at(R.T, pi[cols], (Wh[np.ix_(rows, cols)] * rho[cols]).T)
        R -= T
        gam = (W1.shape[1] + 4) * _U * 1.01
        Ra = np.zeros((rows.size, p2))
        np.add.at(Ra.T, pi[cols], (np.abs(Wh[np.ix_(rows, cols)]) * rho[cols]).T)
        # no rounding at all where a one-member group with unit factors copies a weight (pruning)
        plain = (np.bincount(pi[cols], minlength=p2) == 1) & (
            np.bincount(pi[cols], weights=rho[cols], minlength=p2) == 1.0
        )
        unit = m_rho[rows] == 1.0
        exact_entry = unit[:, None] & plain[None, :] & scale_ok & (F == 1.0)
        Rbar = np.abs(R) * (1.0 + 4 * _U) + np.where(exact_entry, 0.0, gam * (Ra + np.abs(T)))
        ci = np.flatnonzero(const)
        cterm = Wh[np.ix_(rows, ci)] @ cval[ci] if ci.size else np.zeros(rows.size)
        rb = bh[rows] + cterm - m_rho[rows] * b2[m_pi[rows]]
        rb_round = gam * (
            np.abs(bh[rows]) + np.abs(Wh[np.ix_(rows, ci)]) @ cval[ci] + np.abs(m_rho[rows] * b2[m_pi[rows]])
        )
        rbar = np.abs(rb) * (1.0 + 4 * _U) + np.where(unit & (ci.size == 0), 0.0, rb_round)
        e_new = np.zeros(W1.shape[0])
        e_new[rows] = np.abs(Wh[np.ix_(rows, cols)]) @ err[cols] + Rbar @ h2 + rbar
        e_new[rows] *= 1.0 + 4 * gam  # the error sums themselves are floats
        layers.append(Layer(Wh, bh, lg.activation))
        if i < last:
            counts["matched"] += rows.size
            counts["constant"] += int(is_const.sum())
            counts["absent"] += int(is_dead.sum())
            counts["dead"] += int((is_dead & (g_pre[i][1] <= 0.0)).sum())
            pi = np.where(m_pi >= 0, m_pi, -1)
            rho = m_rho
            const = is_const
            cval = np.where(is_const, np.maximum(b1, 0.0), 0.0)
            err = e_new
            zl, zu = n_pre[i]
            h2 = np.maximum(np.maximum(zl, 0.0), np.maximum(zu, 0.0))
        else:
            out_err = e_new
    net = narrow.with_layers(layers)
    return Alignment(net, float(np.max(out_err)), **counts)
