"""Post-training quantization: grid membership, error bound, float32 exactness, metadata, sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from equivrepair.compress import on_grid, quantization_codes, quantize, quantize_array, size_report
from equivrepair.compress.quantize import float32_exact_scale, grid_params
from equivrepair.nets.ir import FNN, Layer, random_fnn

# magnitudes inside float32's normal range (float32 exactness needs scales that float32 can hold)
finite = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))
matrices = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=finite)


@settings(max_examples=150, deadline=None)
@given(
    w=matrices,
    bits=st.integers(2, 16),
    scheme=st.sampled_from(["symmetric", "affine"]),
    per_channel=st.booleans(),
)
def test_grid_membership_and_error_bound(w, bits, scheme, per_channel):
    axis = 0 if per_channel else None
    qt = quantize_array(w, bits, scheme, axis=axis)
    qmin, qmax = grid_params(bits, scheme)
    assert qt.codes.min() >= qmin and qt.codes.max() <= qmax
    v = qt.values
    s = qt.scale.reshape(-1, 1) if per_channel else qt.scale.reshape(())
    assert np.all(np.abs(w - v) <= s / 2 * (1 + 1e-12))
    groups = list(v) if per_channel else [v]
    for g in groups:
        assert np.unique(g).size <= 2**bits
    # exact float32 numbers: the grid survives float32 export
    assert np.array_equal(v.astype(np.float32).astype(np.float64), v)
    # zero stays zero
    assert np.all(v[w == 0] == 0)


def test_scale_rounding_only_grows():
    s = np.array([0.1, 1.0 / 3.0, 7.123456789e-4])
    for bits in (2, 8, 16):
        r = float32_exact_scale(s, bits)
        assert np.all(r >= s) and np.all(r <= s * (1 + 2.0 ** -(max(24 - bits, 8) - 1)))


def test_symmetric_8bit_matches_torch_rule():
    w = np.array([[-1.0, 0.25, 1.0]])
    qt = quantize_array(w, 8, "symmetric", float32_exact=False)
    assert qt.scale[0] == pytest.approx(1.0 / 127.5)
    assert qt.codes.tolist() == [[-128, 32, 127]]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("scheme", ["symmetric", "affine"])
@pytest.mark.parametrize("granularity", ["per-tensor", "per-channel"])
def test_quantize_network(bits, scheme, granularity):
    net = random_fnn([8, 16, 12, 4], seed=bits)
    q = quantize(net, bits, scheme, granularity)
    assert q.widths == net.widths
    assert on_grid(q)
    for lq, l0 in zip(q.layers, net.layers):
        np.testing.assert_array_equal(lq.b, l0.b)  # weights only by default
        if granularity == "per-tensor":
            assert np.unique(lq.W).size <= 2**bits
        else:
            assert max(np.unique(row).size for row in lq.W) <= 2**bits
    md = q.metadata["quantization"]
    assert md["bits"] == bits and md["scheme"] == scheme and md["granularity"] == granularity
    codes = quantization_codes(q)
    assert len(codes) == net.depth
    for rec, layer in zip(codes, q.layers):
        s = rec["scale"].reshape(-1, 1) if granularity == "per-channel" else rec["scale"][0]
        z = rec["zero_point"].reshape(-1, 1) if granularity == "per-channel" else rec["zero_point"][0]
        np.testing.assert_array_equal((rec["W_codes"] - z) * s, layer.W)
    rep = size_report(q)
    assert rep.bits_per_weight == bits
    assert rep.bytes < size_report(net).bytes


def test_three_bits_default_at_most_eight_values():
    net = random_fnn([20, 30, 5], seed=3)
    q = quantize(net, 3)
    assert all(np.unique(layer.W).size <= 8 for layer in q.layers)


def test_biases_and_layer_selection():
    net = random_fnn([5, 9, 3], seed=1)
    q = quantize(net, 4, biases=True, layers=[-1])
    np.testing.assert_array_equal(q.layers[0].W, net.layers[0].W)
    assert np.unique(q.layers[1].b).size <= 16
    assert on_grid(q)
    assert "b_codes" in quantization_codes(q)[0]
    rep = size_report(q)
    assert 4 < rep.bits_per_weight < 32


def test_all_zero_and_constant_tensors():
    net = FNN((Layer(np.zeros((3, 2)), np.zeros(3)), Layer(np.full((1, 3), 0.5), [0.0], "linear")))
    for scheme in ("symmetric", "affine"):
        q = quantize(net, 2, scheme, biases=True)
        np.testing.assert_array_equal(q.layers[0].W, 0.0)
        np.testing.assert_allclose(
            q.layers[1].W, 0.5, rtol=0, atol=q.metadata["quantization"]["layers"][1]["scale"][0] / 2
        )
        assert on_grid(q)


def test_off_grid_detected():
    q = quantize(random_fnn([4, 6, 2], seed=0), 4)
    W = q.layers[0].W.copy()
    W[0, 0] += 1e-3
    edited = q.with_layers([Layer(W, q.layers[0].b), q.layers[1]])
    assert not on_grid(edited)
    with pytest.raises(ValueError, match="not on the recorded grid"):
        quantization_codes(edited)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bits": 1}, "bits"),
        ({"bits": 17}, "bits"),
        ({"bits": 4, "scheme": "log"}, "scheme"),
        ({"bits": 4, "granularity": "row"}, "granularity"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quantize(random_fnn([3, 4, 2]), **kwargs)
