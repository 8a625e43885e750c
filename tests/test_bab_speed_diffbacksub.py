"""Soundness of the differential back-substitution bounds used by the branch and bound.

Ground truth is dense sampling and concrete witnesses: on random network pairs of the same
architecture (perturbed, 8-bit rounded, identical, unrelated) and random boxes, every tier of
:func:`differential_objective_bounds` must enclose every sampled value of the objectives
C (Φ1 − Φ2), and the sparse CROWN tightening must enclose every sampled pre-activation. The
branch and bound with these bounds must agree with dense sampling (lower <= sampled max <= upper)
and decide ε-equivalence consistently with a sampled counterexample. No number is copied in.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equivrepair.merge import normalise
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.reach.bab import maximize
from equivrepair.reach.bounds import differential_objective_bounds
from equivrepair.reach.symbolic import tighten_unstable

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIERS = ("none", "crown", "crown+delta", "all")


def make_pair(seed: int, kind: str) -> tuple[FNN, FNN]:
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    hidden = [int(rng.integers(2, 10)) for _ in range(int(rng.integers(1, 5)))]
    widths = [n_in, *hidden, int(rng.integers(1, 4))]
    a = random_fnn(widths, seed=seed, name="orig")
    if kind == "identical":
        return a, random_fnn(widths, seed=seed, name="copy")
    if kind == "unrelated":
        return a, random_fnn(widths, seed=seed + 1, name="other")
    ws, bs = [], []
    for layer in a.layers:
        if kind == "perturbed":
            eps = 10.0 ** rng.uniform(-5, -1)
            ws.append(layer.W + rng.normal(0, eps, layer.W.shape))
            bs.append(layer.b + rng.normal(0, eps, layer.b.shape))
        else:  # rounded to an 8-bit grid
            s = np.abs(layer.W).max() / 127
            ws.append(np.round(layer.W / s) * s)
            bs.append(layer.b)
    return a, FNN.from_arrays(ws, bs, name="comp")


def boxes(seed: int, n: int, N: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 11)
    lo = rng.uniform(-1.0, 0.5, size=(N, n))
    width = rng.uniform(0.0, 1.0, size=(N, n)) * 10.0 ** rng.uniform(-3, 0, size=(N, 1))
    width[rng.random((N, n)) < 0.1] = 0.0
    return lo, lo + width


def samples(lo: np.ndarray, hi: np.ndarray, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.random((lo.shape[0], m, lo.shape[1]))
    u[:, : min(m, 8)] = rng.integers(0, 2, size=(lo.shape[0], min(m, 8), lo.shape[1]))  # corners
    return lo[:, None, :] + u * (hi - lo)[:, None, :]


def _tol(v: np.ndarray) -> np.ndarray:
    return 1e-9 * (1.0 + np.abs(v))


@SETTINGS
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["perturbed", "rounded", "identical", "unrelated"]))
def test_objective_bounds_enclose_samples(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    lo, hi = boxes(seed, a.n_inputs)
    m = a.n_outputs
    C = np.vstack([np.eye(m), -np.eye(m), np.random.default_rng(seed).normal(size=(2, m))])
    X = samples(lo, hi, 400, seed)
    d = (a.forward(X.reshape(-1, a.n_inputs)) - b.forward(X.reshape(-1, a.n_inputs))).reshape(len(lo), 400, m)
    vals = np.einsum("rm,nsm->nsr", C, d).max(axis=1)  # (N, r) sampled maxima
    for tier in TIERS:
        ob = differential_objective_bounds(a, b, lo, hi, C, intermediate=tier, grad=True)
        assert np.all(vals <= ob.upper + _tol(vals)), (tier, (vals - ob.upper).max())
        assert np.all(ob.upper <= ob.forward)
        assert ob.grad.shape == (len(lo), len(C), a.n_inputs) and np.all(ob.grad >= 0)
    if kind == "identical":
        assert np.all(ob.upper == 0.0)


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_sparse_crown_tightening_encloses_samples(seed: int) -> None:
    from equivrepair.reach.symbolic import intermediate_bounds, symbolic_bounds

    a = normalise(random_fnn([3, 7, 6, 5, 2], seed=seed))
    lo, hi = boxes(seed, 3)
    _, pre = symbolic_bounds(a, lo, hi)
    tight = tighten_unstable(a, lo, hi, pre)
    dense = intermediate_bounds(a, lo, hi)
    X = samples(lo, hi, 300, seed).reshape(-1, 3)
    h = X
    for k, layer in enumerate(a.layers):
        z = layer.pre(h).reshape(len(lo), 300, -1)
        zl, zu = tight[k]
        assert np.all(z >= zl[:, None, :] - _tol(z)) and np.all(z <= zu[:, None, :] + _tol(z))
        if k < a.depth - 1:  # where the neuron was unstable: as tight as the dense back-substitution
            dl, du = dense[k]
            was = (pre[k][0] < 0) & (pre[k][1] > 0)
            assert np.all((zl >= dl - 1e-7 * (1 + np.abs(dl))) | ~was)
            assert np.all((zu <= du + 1e-7 * (1 + np.abs(du))) | ~was)
        h = layer(h.reshape(-1, h.shape[-1]) if h.ndim > 2 else h)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["perturbed", "rounded"])
def test_bab_with_differential_backsub_agrees_with_sampling(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    lo, hi = boxes(seed, a.n_inputs, N=1)
    lo, hi = lo[0], hi[0]
    r = maximize(a, b, lo, hi, mode="max", use_differential=True, time_limit=8.0)
    X = samples(lo[None], hi[None], 4000, seed)[0]
    d = np.abs(a.forward(X) - b.forward(X)).max()
    tol = 1e-9 * (1 + d)
    assert np.max(r.lower) <= d + 1e-6 * (1 + d) or np.max(r.lower) <= np.max(r.upper)
    assert d <= np.max(r.upper) + tol
    assert np.max(r.lower) <= np.max(r.upper) + tol
    # decide at a threshold just above / below the sampled maximum
    if d > 1e-9:
        above = maximize(a, b, lo, hi, outputs=None, mode="decide", epsilon=0.5 * d, use_differential=True)
        assert np.max(above.lower) >= 0.5 * d  # a witness refutes it
        eps = 1.01 * np.max(r.upper) + 1e-9
        below = maximize(a, b, lo, hi, mode="decide", epsilon=eps, use_differential=True, time_limit=8.0)
        assert below.finished and np.max(below.upper) < eps
        assert d < eps


def test_bab_uses_differential_backsub_and_only_requested_outputs() -> None:
    a, b = make_pair(3, "perturbed")
    lo, hi = boxes(3, a.n_inputs, N=1)
    r = maximize(a, b, lo[0], hi[0], outputs=[0], mode="decide", epsilon=10.0, use_differential=True)
    assert r.objectives == [(1, 0), (-1, 0)]
    assert r.finished and np.max(r.upper) < 10.0


# ---- tiered bounds with one forward pass, sparse (per box) Δz tightening, skipped tiers ----
@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(["perturbed", "rounded", "identical", "unrelated"]),
    rows=st.sampled_from(["padded", "pairs", "auto"]),
)
def test_sparse_delta_tightening_encloses_samples_and_matches_dense(seed: int, kind: str, rows: str) -> None:
    from equivrepair.reach.bounds import _diff_forward, _tighten_delta_sparse, _tighten_intermediate

    a, b = (normalise(n) for n in make_pair(seed, kind))
    lo, hi = boxes(seed, a.n_inputs)
    f = _diff_forward(a.layers, b.layers, lo, hi)
    for key, net in (("pre1", a), ("pre2", b)):
        pb = tighten_unstable(net, lo, hi, [(x.T, y.T) for x, y in f[key]])
        f[key] = [(zl.T, zu.T) for zl, zu in pb]
    dense = {k: list(v) if isinstance(v, list) else v for k, v in f.items()}
    sparse = {k: list(v) if isinstance(v, list) else v for k, v in f.items()}
    _tighten_intermediate(a.layers, b.layers, dense, "delta")
    _tighten_delta_sparse(a.layers, b.layers, sparse, rows)
    X = samples(lo, hi, 300, seed).reshape(-1, a.n_inputs)
    h1, h2 = X, X
    for j, (l1, l2) in enumerate(zip(a.layers, b.layers)):
        z1, z2 = l1.pre(h1), l2.pre(h2)
        dz = (z1 - z2).reshape(len(lo), 300, -1)
        sl, su = (v.T[:, None, :] for v in sparse["delta"][j])
        assert np.all(dz >= sl - _tol(dz)) and np.all(dz <= su + _tol(dz)), (j, rows)
        # where the neuron is unstable in its own box, exactly the dense tightening (up to round-off)
        ul1, uu1 = f["pre1"][j]
        ul2, uu2 = f["pre2"][j]
        un = ((ul1 < 0) & (uu1 > 0)) | ((ul2 < 0) & (uu2 > 0))
        for s_, d_ in zip(sparse["delta"][j], dense["delta"][j]):
            assert np.allclose(s_[un], d_[un], rtol=1e-9, atol=1e-9)
        h1, h2 = l1(h1), l2(h2)


@SETTINGS
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["perturbed", "rounded", "identical", "unrelated"]))
def test_tiered_bounds_enclose_samples_every_skip_pattern(seed: int, kind: str) -> None:
    from equivrepair.reach.bounds import tiered_objective_bounds

    a, b = make_pair(seed, kind)
    lo, hi = boxes(seed, a.n_inputs)
    m = a.n_outputs
    C = np.vstack([np.eye(m), -np.eye(m)])
    X = samples(lo, hi, 400, seed)
    d = (a.forward(X.reshape(-1, a.n_inputs)) - b.forward(X.reshape(-1, a.n_inputs))).reshape(len(lo), 400, m)
    vals = np.einsum("rm,nsm->nsr", C, d).max(axis=1)
    rng = np.random.default_rng(seed)
    ref = differential_objective_bounds(a, b, lo, hi, C, intermediate="crown+delta", grad=True)
    for thresh in (np.full(len(C), -np.inf), np.median(vals, axis=0), np.full(len(C), np.inf)):
        for tiers, skip in (
            (("crown", "crown+delta"), None),
            (("crown", "crown+delta"), lambda u, t, r: rng.random(len(u)) < 0.5),
            (("crown",), None),
            ((), None),
        ):
            stats: dict = {}
            trace: list = []
            ob = tiered_objective_bounds(
                a, b, lo, hi, C, thresh, tiers=tiers, skip_delta=skip, stats=stats, trace=trace
            )
            assert np.all(vals <= ob.upper + _tol(vals)), (tiers, (vals - ob.upper).max())
            assert np.all(ob.upper <= ob.forward)
            assert ob.grad.shape == (len(lo), len(C), a.n_inputs) and np.all(ob.grad >= 0)
            assert ob.coef.shape == (len(lo), len(C), a.n_inputs)
            for rows_, u_crown, u_delta in trace:
                assert np.all(vals[rows_] <= u_delta + _tol(vals[rows_]))
                assert np.all(ob.upper[rows_] <= np.minimum(u_crown, u_delta))
            if np.all(np.isneginf(thresh)) and skip is None and len(tiers) == 2:
                # every box got every tier: at least as tight as the dense reference (sparse Δz
                # tightening; the tiers' minimum can be tighter than crown+delta alone)
                assert np.all(ob.upper <= ref.upper + 1e-7 * (1 + np.abs(ref.upper)))
                assert stats.get("bounds_crown+delta", 0) == len(lo)
            if np.all(np.isposinf(thresh)):
                assert "bounds_crown" not in stats  # everything closes after the first tier
    if kind == "identical":
        assert np.all(ob.upper == 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_bab_skipping_delta_tier_stays_sound(seed: int) -> None:
    """The adaptive skip of the crown+delta tier (forced on from the start) keeps the bab sound."""
    from equivrepair.reach import bab

    a, b = make_pair(seed, "perturbed")
    lo, hi = boxes(seed, a.n_inputs, N=1)
    lo, hi = lo[0], hi[0]
    X = samples(lo[None], hi[None], 4000, seed)[0]
    d = np.abs(a.forward(X) - b.forward(X)).max()
    old = bab._DiffBounder.MIN_OBS, bab._DiffBounder.QUANTILE
    try:
        bab._DiffBounder.MIN_OBS, bab._DiffBounder.QUANTILE = 0, 0.0
        r = maximize(a, b, lo, hi, mode="max", use_differential=True, time_limit=8.0)
    finally:
        bab._DiffBounder.MIN_OBS, bab._DiffBounder.QUANTILE = old
    assert d <= np.max(r.upper) + 1e-9 * (1 + d)
    assert np.max(r.lower) <= d + 1e-9 * (1 + d) or np.max(r.lower) <= np.max(r.upper)
