"""Quantization-aware training (torch): weights end exactly on the grid; int8 eager-mode QAT."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from equivrepair.compress import (  # noqa: E402
    accuracy,
    fake_quantize,
    get_masks,
    int8_qat,
    magnitude_prune,
    on_grid,
    qat_train,
    quantization_codes,
    quantize_array,
    size_report,
    train_classifier,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny models: one thread avoids oversubscription on small shared machines
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(one_thread):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8))
    y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] + X[:, 2] > 0.5)).astype(np.int64)
    net = train_classifier([8, 24, 12, 3], X, y, epochs=8, lr=3e-3, batch_size=64)
    return net, X, y


@pytest.mark.parametrize("scheme", ["symmetric", "affine"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_fake_quantize_matches_numpy(scheme, per_channel):
    w = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    q = fake_quantize(w, 3, scheme, per_channel)
    ref = quantize_array(w.detach().numpy(), 3, scheme, axis=0 if per_channel else None).values
    np.testing.assert_allclose(q.detach().numpy(), ref, rtol=0, atol=1e-12)
    q.sum().backward()  # straight-through: gradient of the identity
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((5, 7)))


@pytest.mark.parametrize("bits, granularity, biases", [(2, "per-tensor", False), (3, "per-channel", True)])
def test_qat_ends_on_grid(toy, bits, granularity, biases):
    net, X, y = toy
    q = qat_train(net, X, y, bits=bits, granularity=granularity, biases=biases, epochs=2, lr=1e-3, batch_size=64)
    assert on_grid(q)
    md = q.metadata["quantization"]
    assert md["method"] == "qat" and md["bits"] == bits
    for layer in q.layers:
        rows = [layer.W] if granularity == "per-tensor" else list(layer.W)
        assert max(np.unique(r).size for r in rows) <= 2**bits
        if biases:
            assert np.unique(layer.b).size <= 2**bits
    assert len(quantization_codes(q)) == net.depth
    assert size_report(q).bits_per_weight == bits
    assert accuracy(q, X, y) > 0.5


def test_qat_keeps_pruning_mask(toy):
    net, X, y = toy
    p = magnitude_prune(net, 0.6, "global")
    q = qat_train(p, X, y, bits=4, epochs=1, batch_size=64)
    for layer, m in zip(q.layers, get_masks(p)):
        assert np.all(layer.W[~m] == 0)
    assert on_grid(q)


def test_int8_qat_converts_back(toy):
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("fbgemm quantized engine not available")
    net, X, y = toy
    res = int8_qat(net, X, y, epochs=2, lr=1e-3, batch_size=64, X_test=X, y_test=y)
    fnn = res.net
    assert fnn.widths == net.widths
    md = fnn.metadata["quantization"]
    assert md["activation_rounding"] == "ignored"
    assert md["granularity"] == "per-channel" and md["bits"] == 8
    assert on_grid(fnn)  # int8 codes times the per-channel scales, exactly
    for layer in fnn.layers:
        assert max(np.unique(r).size for r in layer.W) <= 256
    acts = md["activations"]
    assert len(acts) == net.depth
    assert all(a["output_scale"] > 0 and a["max_rounding_error"] == a["output_scale"] / 2 for a in acts)
    assert 0.0 <= res.accuracy_fnn <= 1.0 and 0.0 <= res.accuracy_int8 <= 1.0
    # the FNN ignores activation rounding only: it must agree with the int8 model on most inputs
    assert res.agreement > 0.9
    assert md["accuracy_int8"] == res.accuracy_int8
