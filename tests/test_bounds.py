"""Soundness and tightness of the interval, differential, LP and MILP bounds on Φ1 − Φ2.

Ground truth comes from sampling (every bound must contain every sampled value) and from the
methods agreeing with each other (MILP <= LP <= interval, highspy LP == cvxpy LP); no number is
copied into a test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equivrepair.merge import merge
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.reach.bounds import (
    differential_analysis,
    differential_bounds,
    interval_bounds,
    merged_pre_bounds,
    method_differential,
    method_interval,
)
from equivrepair.reach.lp import lp_bounds_merged, method_lp
from equivrepair.reach.milp import method_milp
from equivrepair.spec.sets import Box

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("perturbed", "identical", "wider", "deeper", "unrelated", "rounded")


def _rtol(a: np.ndarray) -> np.ndarray:
    return 1e-9 * (1.0 + np.abs(a))


def make_pair(seed: int, kind: str) -> tuple[FNN, FNN]:
    """A random network pair of the given kind (small: 1-4 inputs, 1-3 hidden layers)."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    hidden = [int(rng.integers(2, 9)) for _ in range(int(rng.integers(1, 4)))]
    n_out = int(rng.integers(1, 4))
    widths = [n_in, *hidden, n_out]
    a = random_fnn(widths, seed=seed, name="orig")
    if kind == "identical":
        return a, random_fnn(widths, seed=seed, name="copy")
    if kind in ("perturbed", "rounded"):
        ws, bs = [], []
        for layer in a.layers:
            if kind == "perturbed":
                eps = 10.0 ** rng.uniform(-4, -1)
                ws.append(layer.W + rng.normal(0, eps, layer.W.shape))
                bs.append(layer.b + rng.normal(0, eps, layer.b.shape))
            else:
                s = np.abs(layer.W).max() / 127
                ws.append(np.round(layer.W / s) * s)
                bs.append(layer.b)
        return a, FNN.from_arrays(ws, bs, name="comp")
    if kind == "wider":
        w2 = list(widths)
        w2[1] += int(rng.integers(1, 4))
        return a, random_fnn(w2, seed=seed + 1, name="wider")
    if kind == "deeper":
        w2 = [n_in, *hidden, int(rng.integers(2, 6)), n_out]
        return a, random_fnn(w2, seed=seed + 1, name="deeper")
    return a, random_fnn(widths, seed=seed + 1, name="unrelated")


def make_box(seed: int, n: int, scale: float = 1.0) -> Box:
    rng = np.random.default_rng(seed + 7)
    lo = rng.uniform(-1.0, 0.5, size=n)
    width = rng.uniform(0.0, scale, size=n)
    width[rng.random(n) < 0.1] = 0.0  # some degenerate dimensions
    return Box(lo, lo + width)


def sampled(a: FNN, b: FNN, box: Box, n: int = 2000, seed: int = 1) -> np.ndarray:
    x = box.sample(n, seed=seed)
    x = np.vstack([x, box.lower, box.upper, box.center])
    return a.forward(x) - b.forward(x)


seeds = st.integers(0, 10**6)
kinds = st.sampled_from(KINDS)


# --------------------------------------------------------------------------------------------
# soundness
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(seed=seeds, kind=kinds)
def test_interval_bounds_contain_samples(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    x = box.sample(2000, seed=seed)
    for net in (a, b, merge(a, b)):
        for (lo, hi), z in zip(interval_bounds(net, box.lower, box.upper), net.activations(x)):
            assert np.all(z >= lo) and np.all(z <= hi)


@SETTINGS
@given(seed=seeds, kind=kinds)
def test_differential_bounds_contain_samples(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    d = sampled(a, b, box)
    dlo, dhi = differential_bounds(a, b, box.lower, box.upper)
    assert dlo.shape == dhi.shape == (a.n_outputs,)
    assert np.all(d >= dlo) and np.all(d <= dhi)
    # hidden-layer bounds of both networks and of their difference contain the samples too
    r = differential_analysis(a, b, box.lower, box.upper)
    if r.mode == "differential":
        x = box.sample(500, seed=seed + 3)
        z1s, z2s = a.activations(x), b.activations(x)
        for (l1, u1), (l2, u2), (dl, du), z1, z2 in zip(r.pre1, r.pre2, r.delta, z1s, z2s):
            assert np.all(z1 >= l1[0]) and np.all(z1 <= u1[0])
            assert np.all(z2 >= l2[0]) and np.all(z2 <= u2[0])
            assert np.all(z1 - z2 >= dl[0]) and np.all(z1 - z2 <= du[0])
    m = method_differential(a, b, box)
    assert m.lower <= m.upper
    assert np.abs(d).max() <= m.upper


@SETTINGS
@given(seed=seeds, kind=kinds)
def test_differential_at_least_as_tight_as_interval(seed: int, kind: str) -> None:
    """Per case (not only on average): the analysis intersects with interval arithmetic at every
    layer, so it can only be tighter, up to the float64 slack."""
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    dlo, dhi = differential_bounds(a, b, box.lower, box.upper)
    ilo, ihi = interval_bounds(merge(a, b), box.lower, box.upper)[-1]
    assert np.all(dlo >= ilo - _rtol(ilo))
    assert np.all(dhi <= ihi + _rtol(ihi))


@SETTINGS
@given(seed=seeds)
def test_identical_networks_give_exactly_zero(seed: int) -> None:
    a, b = make_pair(seed, "identical")
    box = make_box(seed, a.n_inputs, scale=3.0)
    dlo, dhi = differential_bounds(a, b, box.lower, box.upper)
    assert np.all(dlo == 0.0) and np.all(dhi == 0.0)
    m = method_differential(a, b, box)
    assert m.upper == 0.0 and m.lower == 0.0


def test_differential_much_tighter_when_close() -> None:
    """Φ2 = Φ1 with 8-bit weights: on average far tighter than interval on the merged net."""
    ratios = []
    for seed in range(20):
        a = random_fnn([3, 16, 16, 2], seed=seed)
        ws = []
        for layer in a.layers:
            s = np.abs(layer.W).max() / 127
            ws.append(np.round(layer.W / s) * s)
        b = FNN.from_arrays(ws, [layer.b for layer in a.layers])
        box = make_box(seed, 3, scale=0.2)
        dlo, dhi = differential_bounds(a, b, box.lower, box.upper)
        ilo, ihi = interval_bounds(merge(a, b), box.lower, box.upper)[-1]
        ratios.append(np.max(np.abs([dlo, dhi])) / np.max(np.abs([ilo, ihi])))
    assert np.mean(ratios) < 0.2


@SETTINGS
@given(seed=seeds, kind=kinds, n=st.integers(1, 7))
def test_batched_equals_per_box(seed: int, kind: str, n: int) -> None:
    a, b = make_pair(seed, kind)
    boxes = [make_box(seed + i, a.n_inputs) for i in range(n)]
    lo = np.stack([bx.lower for bx in boxes])
    hi = np.stack([bx.upper for bx in boxes])
    dlo, dhi = differential_bounds(a, b, lo, hi)
    assert dlo.shape == (n, a.n_outputs)
    ib = interval_bounds(merge(a, b), lo, hi)
    # equal up to float64 round-off (BLAS sums batched and single products in different orders)
    for i, bx in enumerate(boxes):
        l1, u1 = differential_bounds(a, b, bx.lower, bx.upper)
        np.testing.assert_allclose(dlo[i], l1, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dhi[i], u1, rtol=1e-10, atol=1e-12)
        for (bl, bu), (sl, su) in zip(ib, interval_bounds(merge(a, b), bx.lower, bx.upper)):
            np.testing.assert_allclose(bl[i], sl, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(bu[i], su, rtol=1e-12, atol=1e-12)


def test_batched_chunking_large_n() -> None:
    """Large batches are processed in chunks; the result must not depend on that."""
    import equivrepair.reach.bounds as bounds

    a, b = make_pair(3, "perturbed")
    rng = np.random.default_rng(0)
    lo = rng.uniform(-1, 0, size=(300, a.n_inputs))
    hi = lo + rng.uniform(0, 0.5, size=lo.shape)
    full = differential_bounds(a, b, lo, hi)
    old = bounds._CHUNK_ELEMS
    try:
        bounds._CHUNK_ELEMS = 500
        chunked = differential_bounds(a, b, lo, hi)
    finally:
        bounds._CHUNK_ELEMS = old
    np.testing.assert_allclose(full[0], chunked[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(full[1], chunked[1], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------
# LP
# --------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, kind=kinds)
def test_lp_sound_and_below_interval(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    d = sampled(a, b, box)
    r = method_lp(a, b, box)
    assert np.all(d >= r.per_output[:, 0]) and np.all(d <= r.per_output[:, 1])
    ri = method_interval(a, b, box)
    rd = method_differential(a, b, box)
    assert r.upper <= ri.upper + 1e-9 * (1 + ri.upper)
    assert r.upper <= rd.upper + 1e-9 * (1 + rd.upper)
    assert r.lower <= r.upper
    assert r.witness is not None and box.contains(r.witness)
    np.testing.assert_allclose(r.lower, np.abs(a(r.witness) - b(r.witness)).max(), rtol=1e-12, atol=1e-15)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, kind=st.sampled_from(("perturbed", "wider", "unrelated")))
def test_lp_highs_and_cvxpy_agree(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    net, pre, delta = merged_pre_bounds(a, b, box.lower, box.upper)
    # without the output bounds, so that the LP itself decides the result
    h = lp_bounds_merged(net, box.lower, box.upper, pre[:-1], delta_bounds=delta, backend="highs")
    c = lp_bounds_merged(net, box.lower, box.upper, pre[:-1], delta_bounds=delta, backend="cvxpy")
    scale = 1e-6 * (1 + np.abs(h.upper) + np.abs(h.lower))
    np.testing.assert_array_less(np.abs(h.upper - c.upper), scale)
    np.testing.assert_array_less(np.abs(h.lower - c.lower), scale)
    # the safe bounds are at most a little looser than the solver's optimum
    assert h.tolerance < 1e-6 and c.tolerance < 1e-6


def test_lp_with_linear_constraints() -> None:
    a, b = make_pair(11, "perturbed")
    n = a.n_inputs
    A = np.ones((1, n))
    box = Box(-np.ones(n), np.ones(n), A, np.array([-0.5 * n]))  # the corner half: sum(x) <= -n/2
    r = method_lp(a, b, box)
    x = Box(-np.ones(n), np.ones(n)).sample(20000, seed=2)
    x = x[x.sum(axis=1) <= -0.5 * n]
    d = a(x) - b(x)
    assert np.all(d >= r.per_output[:, 0]) and np.all(d <= r.per_output[:, 1])
    assert r.witness is None or box.contains(r.witness)
    full = method_lp(a, b, Box(-np.ones(n), np.ones(n)))
    assert r.upper <= full.upper + 1e-9


# --------------------------------------------------------------------------------------------
# MILP
# --------------------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, kind=st.sampled_from(("perturbed", "wider", "deeper", "unrelated", "identical")))
def test_milp_exact_and_ordered(seed: int, kind: str) -> None:
    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    r = method_milp(a, b, box, time_limit=20)
    x = box.sample(5000, seed=seed)
    d = a(x) - b(x)
    assert np.all(d >= r.per_output[:, 0]) and np.all(d <= r.per_output[:, 1])
    assert r.lower <= r.upper
    lp = method_lp(a, b, box)
    ri = method_interval(a, b, box)
    assert r.upper <= lp.upper + 1e-12 and lp.upper <= ri.upper + 1e-9 * (1 + ri.upper)
    assert r.witness is not None and box.contains(r.witness)
    assert r.lower == pytest.approx(float(np.abs(a(r.witness) - b(r.witness)).max()), rel=1e-12, abs=1e-15)
    if r.status == "exact":
        assert r.delta_max is not None and r.delta_max >= np.abs(d).max()
        # exact: the witness attains the bound up to the stated tolerance (default tol = 1e-6)
        assert r.upper - r.lower <= r.tolerance
        assert r.upper - r.lower <= 20 * 1e-6 * (1 + r.upper)
    mx = method_milp(a, b, box, time_limit=20, mode="max")
    if r.status == mx.status == "exact":
        assert mx.upper == pytest.approx(r.upper, abs=10 * r.tolerance + 1e-7)


def test_milp_time_limit_is_honest() -> None:
    a = random_fnn([4, 24, 24, 24, 3], seed=5)
    b = random_fnn([4, 24, 24, 24, 3], seed=6)
    box = Box(-np.ones(4), np.ones(4))
    r = method_milp(a, b, box, time_limit=0.5)
    assert r.stats["time"] < 15
    d = sampled(a, b, box)
    assert np.all(d >= r.per_output[:, 0]) and np.all(d <= r.per_output[:, 1])
    if r.status != "exact":
        assert r.delta_max is None


# --------------------------------------------------------------------------------------------
# a real pair: ACAS Xu 1_1 and its 16-bit NeuroDiff copy
# --------------------------------------------------------------------------------------------
def _load_nnet(path: Path) -> FNN:
    try:
        from equivrepair.nets.nnet_io import load_nnet
    except ImportError:  # minimal reader: fold input normalisation, raw outputs
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("//")]
        vals = [[float(v) for v in re.split(r"[,\s]+", ln.strip().strip(",")) if v] for ln in lines]
        n_layers, n_in = int(vals[0][0]), int(vals[0][1])
        sizes = [int(v) for v in vals[1]]
        mins, maxes, means, ranges = vals[3], vals[4], vals[5], vals[6]
        rows, ws, bs = vals[7:], [], []
        for k in range(n_layers):
            W = np.array(rows[: sizes[k + 1]])
            rows = rows[sizes[k + 1] :]
            ws.append(W)
            bs.append(np.array([r[0] for r in rows[: sizes[k + 1]]]))
            rows = rows[sizes[k + 1] :]
        ws[0] = ws[0] / np.array(ranges[:n_in])
        bs[0] = bs[0] - ws[0] @ np.array(means[:n_in])
        return FNN.from_arrays(ws, bs, input_domain=(mins[:n_in], maxes[:n_in]))
    return load_nnet(path)


def test_acas_xu_16bit_pair(data: Path) -> None:
    orig_p = data / "neurodiff" / "original" / "ACASXU_run2a_1_1_batch_2000.nnet"
    comp_p = data / "neurodiff" / "compressed16" / "ACASXU_run2a_1_1_batch_2000_16bit.nnet"
    if not (orig_p.is_file() and comp_p.is_file()):
        pytest.skip("NeuroDiff ACAS Xu files not present")
    a, b = _load_nnet(orig_p), _load_nnet(comp_p)
    # a small box inside the property-1 region (raw units)
    centre = np.array([58000.0, 0.5, -1.0, 1170.0, 30.0])
    radius = 0.005 * (a.input_domain[1] - a.input_domain[0])
    box = Box(centre - radius, centre + radius)
    d = sampled(a, b, box, n=2000)
    dlo, dhi = differential_bounds(a, b, box.lower, box.upper)
    assert np.all(d >= dlo) and np.all(d <= dhi)
    ilo, ihi = interval_bounds(merge(a, b), box.lower, box.upper)[-1]
    du = np.abs([dlo, dhi]).max()
    assert du <= 0.01 * np.abs([ilo, ihi]).max()  # orders of magnitude tighter than interval
    lp = method_lp(a, b, box)
    assert np.all(d >= lp.per_output[:, 0]) and np.all(d <= lp.per_output[:, 1])
    assert lp.upper <= du + 1e-12
    assert lp.lower <= lp.upper and box.contains(lp.witness)


def test_fallback_mode_for_different_architectures() -> None:
    a, b = make_pair(4, "perturbed")
    assert differential_analysis(a, b, -np.ones(a.n_inputs), np.ones(a.n_inputs)).mode == "differential"
    for kind in ("wider", "deeper"):
        a, b = make_pair(4, kind)
        r = differential_analysis(a, b, -np.ones(a.n_inputs), np.ones(a.n_inputs))
        assert r.mode == "merged"
        assert "architectures differ" in method_differential(a, b, make_box(4, a.n_inputs)).message


def _acas_pair(data: Path) -> tuple[FNN, FNN, Box]:
    orig_p = data / "neurodiff" / "original" / "ACASXU_run2a_1_1_batch_2000.nnet"
    if not orig_p.is_file():
        pytest.skip("NeuroDiff ACAS Xu files not present")
    a = _load_nnet(orig_p)
    ws = []
    for layer in a.layers:
        s = np.abs(layer.W).max() / 127
        ws.append(np.round(layer.W / s) * s)
    b = FNN.from_arrays(ws, [layer.b for layer in a.layers])
    centre = np.array([58000.0, 0.5, -1.0, 1170.0, 30.0])
    radius = 0.005 * (a.input_domain[1] - a.input_domain[0])
    return a, b, Box(centre - radius, centre + radius)


@pytest.mark.slow
def test_acas_xu_8bit_milp(data: Path) -> None:
    a, b, box = _acas_pair(data)
    r = method_milp(a, b, box, time_limit=120)
    d = sampled(a, b, box, n=5000)
    assert np.all(d >= r.per_output[:, 0]) and np.all(d <= r.per_output[:, 1])
    lp = method_lp(a, b, box)
    assert r.upper <= lp.upper <= method_differential(a, b, box).upper + 1e-12
    if r.status == "exact":
        assert r.delta_max >= np.abs(d).max()
        assert r.upper - r.lower <= 20 * 1e-6 * (1 + r.upper)


@SETTINGS
@given(seed=seeds, kind=kinds)
def test_output_bounds_from_merged_hidden_bounds_are_sound_and_match_the_forward_pass(seed: int, kind: str) -> None:
    """differential_output_bounds started from merged_pre_bounds's hidden bounds (as the MILP route
    calls it, skipping its own forward pass) contains every sample and, intersected with the
    merged output bounds, is no looser than the version with its own forward pass (round-off)."""
    from equivrepair.reach.bounds import differential_output_bounds, hidden_bounds

    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    _, pre, delta = merged_pre_bounds(a, b, box.lower, box.upper)
    own = differential_output_bounds(a, b, box.lower, box.upper)
    if delta is None:
        assert own is None
        return
    lo, hi = differential_output_bounds(a, b, box.lower, box.upper, hidden_bounds(a, pre, delta))
    d = sampled(a, b, box)
    assert np.all(d >= lo) and np.all(d <= hi)
    # without its forward pass it lacks that pass's output bound: intersected with
    # merged_pre_bounds's output entry (which has it), as the MILP route does
    lo, hi = np.maximum(lo, pre[-1][0]), np.minimum(hi, pre[-1][1])
    slack = 1e-9 * (1.0 + np.abs(own[1] - own[0]))
    assert np.all(hi <= own[1] + slack) and np.all(lo >= own[0] - slack)


@SETTINGS
@given(seed=seeds, kind=kinds)
def test_witness_gradient_is_the_jacobian_row(seed: int, kind: str) -> None:
    """_grad_diff (one backward pass per network) equals row j of the Jacobian of Φ1 − Φ2 by
    central differences, at points where no ReLU is within the difference step of its kink."""
    from hypothesis import assume

    from equivrepair.reach.bounds import _grad_diff

    a, b = make_pair(seed, kind)
    box = make_box(seed, a.n_inputs)
    x = box.sample(1, seed=seed)[0]
    h = 1e-6
    for net in (a, b):
        for layer, z in zip(net.layers, net.activations(x[None])):
            if layer.activation == "relu":
                assume(np.min(np.abs(z)) > 1e-3)
    E = h * np.eye(a.n_inputs)
    fd = ((a.forward(x + E) - b.forward(x + E)) - (a.forward(x - E) - b.forward(x - E))) / (2 * h)
    for j in range(a.n_outputs):
        g = _grad_diff(a, b, x, j)
        np.testing.assert_allclose(g, fd[:, j], rtol=1e-5, atol=1e-6 * (1 + np.abs(fd).max()))


def test_left_mul_is_the_stacked_matrix_product() -> None:
    from equivrepair.reach.bounds import _left_mul

    rng = np.random.default_rng(0)
    for n in (1, 3):  # one box (its own product) and a batch
        W, F = rng.normal(size=(7, 5)), rng.normal(size=(11, 5, n))
        np.testing.assert_allclose(_left_mul(W, F), np.matmul(W, F), rtol=1e-13, atol=1e-13)
