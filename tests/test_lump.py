"""Lumping: exact recovery after function-preserving widening, constants, dead neurons, tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equivrepair.compress import interval_bounds, lump, sampled_discrepancy, widen
from equivrepair.nets.ir import FNN, Layer, random_fnn


def _box(n, r=2.0):
    return -r * np.ones(n), r * np.ones(n)


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(2, 12), min_size=1, max_size=3),
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    extra=st.integers(1, 10),
    constant=st.integers(0, 3),
)
def test_widening_is_recovered_exactly(widths, n_in, n_out, seed, extra, constant):
    net = random_fnn([n_in, *widths, n_out], seed=seed)
    wide = widen(net, extra=extra, seed=seed + 1, constant=constant)
    assert wide.widths[1:-1] == [w + extra + constant for w in widths]
    x = np.random.default_rng(seed).uniform(-2, 2, size=(500, n_in))
    np.testing.assert_allclose(wide.forward(x), net.forward(x), rtol=0, atol=1e-9 * (1 + np.abs(net.forward(x)).max()))
    lumped = lump(wide)
    assert lumped.widths == net.widths
    d = sampled_discrepancy(wide, lumped, *_box(n_in), n=2000, seed=seed)
    assert d["relative"] <= 1e-9
    info = lumped.metadata["lumping"]
    assert info["mode"] == "exact"
    assert sum(c["merged"] for c in info["per_layer"].values()) == extra * len(widths)
    assert sum(c["constant"] for c in info["per_layer"].values()) == constant * len(widths)


def test_lumping_dense_sampling_100k():
    """The issue's check: max |Φ1 − Φ2| over 100k samples ≤ 1e-9 relative."""
    net = random_fnn([8, 30, 20, 5], seed=11)
    wide = widen(net, extra=[25, 15], seed=3, constant=2)
    lumped = lump(wide)
    assert lumped.widths == net.widths
    d = sampled_discrepancy(wide, lumped, *_box(8), n=100_000)
    assert d["samples"] == 100_000 and d["relative"] <= 1e-9


def test_float32_stored_network():
    """Proportionality hidden by float32 storage is found with the exact-mode tolerance (1e-6)."""
    net = random_fnn([6, 24, 12, 3], seed=2)
    wide32 = widen(net, extra=8, seed=5, dtype=np.float32)
    lumped = lump(wide32)
    assert lumped.widths == net.widths
    d = sampled_discrepancy(wide32, lumped, *_box(6), n=20_000)
    assert d["relative"] <= 1e-6  # float32 round-off of the stored copies, nothing more
    # with a zero tolerance (pure float64 equality of directions) the float32 copies are missed
    assert lump(wide32, tolerance=0.0).widths != net.widths


def test_trained_like_network_unchanged():
    net = random_fnn([5, 16, 8, 2], seed=9)
    lumped = lump(net)
    assert lumped.widths == net.widths
    np.testing.assert_array_equal(lumped.forward(np.ones(5)), net.forward(np.ones(5)))


def test_negative_multiples_are_not_merged():
    W = np.array([[1.0, 2.0], [-1.0, -2.0], [2.0, 4.0]])
    b = np.array([0.5, -0.5, 1.0])
    net = FNN((Layer(W, b), Layer(np.array([[1.0, 1.0, 1.0]]), [0.0], "linear")))
    lumped = lump(net)
    assert lumped.widths == [2, 2, 1]
    x = np.random.default_rng(0).normal(size=(1000, 2))
    np.testing.assert_allclose(lumped.forward(x), net.forward(x), atol=1e-12)


def test_constant_neurons_folded():
    W = np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0]])
    b = np.array([2.0, 0.1, -3.0])  # relu(2) = 2 and relu(-3) = 0 constants
    net = FNN((Layer(W, b), Layer(np.array([[1.5, 1.0, 7.0]]), [0.25], "linear")))
    lumped = lump(net)
    assert lumped.widths == [2, 1, 1]
    assert lumped.layers[1].b[0] == pytest.approx(0.25 + 1.5 * 2.0)
    x = np.random.default_rng(0).normal(size=(100, 2))
    np.testing.assert_allclose(lumped.forward(x), net.forward(x), atol=1e-12)


def test_dead_neurons_on_box():
    W = np.array([[1.0, 1.0], [1.0, -1.0], [0.5, 0.5]])
    b = np.array([-5.0, 0.0, -0.5])  # neuron 0 dead on [-1, 1]^2; neuron 2 not (reaches 0.5)
    net = FNN((Layer(W, b), Layer(np.array([[1.0, 2.0, 3.0]]), [0.0], "linear")))
    lo, hi = -np.ones(2), np.ones(2)
    assert lump(net).widths == [2, 3, 1]  # without a box nothing is provably dead
    lumped = lump(net, input_box=(lo, hi))
    assert lumped.widths == [2, 2, 1]
    assert lumped.metadata["lumping"]["per_layer"]["0"]["dead"] == 1
    x = np.random.default_rng(0).uniform(-1, 1, size=(5000, 2))
    np.testing.assert_allclose(lumped.forward(x), net.forward(x), atol=1e-12)


def test_interval_bounds_enclose_samples():
    net = random_fnn([4, 10, 6, 2], seed=1)
    lo, hi = -np.ones(4), np.ones(4)
    bounds = interval_bounds(net, lo, hi)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2000, 4))
    for (zl, zu), z in zip(bounds, net.activations(x)):
        assert np.all(z >= zl) and np.all(z <= zu)


def test_approximate_mode_merges_near_proportional():
    rng = np.random.default_rng(0)
    net = random_fnn([6, 10, 3], seed=0)
    wide = widen(net, extra=6, seed=1)
    W = wide.layers[0].W + rng.normal(scale=1e-3, size=wide.layers[0].W.shape)
    noisy = wide.with_layers([Layer(W, wide.layers[0].b), wide.layers[1]])
    assert lump(noisy).widths == noisy.widths  # exact mode: not proportional
    approx = lump(noisy, tolerance=0.05)
    assert approx.widths == net.widths
    assert approx.metadata["lumping"]["mode"] == "approximate"
    d = sampled_discrepancy(noisy, approx, *_box(6), n=5000)
    assert 0 < d["relative"] < 0.05


def test_all_neurons_constant_keeps_one():
    net = FNN((Layer(np.zeros((3, 2)), [1.0, -1.0, 2.0]), Layer(np.ones((1, 3)), [0.0], "linear")))
    lumped = lump(net)
    assert lumped.widths == [2, 1, 1]
    np.testing.assert_allclose(lumped.forward(np.zeros(2)), [3.0])


@pytest.mark.parametrize("method", ["star-enum", "milp"])
def test_engine_proves_exact_lumping_is_lossless(method):
    """The issue's check with the engine: δ_max of (widened, lumped) is 0 up to the method's
    stated tolerance, by two independent exact methods; a perturbed lumping is not. (The default
    ``exact`` closes such pairs by aligning them first: tests/test_align.py.)"""
    from equivrepair.reach.api import evaluate
    from equivrepair.spec.sets import Box

    net = random_fnn([3, 6, 5, 2], seed=21)
    wide = widen(net, extra=[3, 2], seed=4, constant=1)
    lumped = lump(wide)
    assert lumped.widths == net.widths and wide.widths != net.widths
    box = Box(-0.5 * np.ones(3), 0.5 * np.ones(3))
    d = evaluate(wide, lumped, box, method=method, time_limit=120)
    assert d.status == "exact"
    assert d.lower <= 1e-12
    assert d.delta_max <= d.tolerance + 1e-9
    # the engine is not blind: a 1e-3 change in one output bias is seen as exactly that
    W = [layer.W for layer in lumped.layers]
    b = [layer.b.copy() for layer in lumped.layers]
    b[-1][0] += 1e-3
    off = evaluate(wide, FNN.from_arrays(W, b), box, method=method, time_limit=120)
    assert off.lower == pytest.approx(1e-3, rel=1e-6)
    assert 1e-3 - 1e-12 <= off.delta_max <= 1e-3 + off.tolerance + 1e-12
