"""Magnitude pruning (masks fixed and stored) and neuron pruning (narrower layers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equivrepair.compress import (
    apply_masks,
    get_masks,
    magnitude_prune,
    neuron_prune,
    neuron_scores,
    quantize,
    remove_neurons,
    size_report,
)
from equivrepair.nets.ir import Layer, random_fnn


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sparsity=st.floats(0.0, 1.0),
    scope=st.sampled_from(["layer", "global"]),
)
def test_magnitude_prune_sparsity_and_mask(seed, sparsity, scope):
    net = random_fnn([7, 11, 9, 3], seed=seed)
    p = magnitude_prune(net, sparsity, scope)
    masks = get_masks(p)
    sizes = [layer.W.size for layer in net.layers]
    if scope == "layer":
        for m, n in zip(masks, sizes):
            assert (~m).sum() == int(round(sparsity * n))
    else:
        assert sum((~m).sum() for m in masks) == int(round(sparsity * sum(sizes)))
        # one threshold: every kept weight is at least as large as every pruned one
        kept = np.concatenate([np.abs(layer.W)[m] for layer, m in zip(net.layers, masks)])
        cut = np.concatenate([np.abs(layer.W)[~m] for layer, m in zip(net.layers, masks)])
        if kept.size and cut.size:
            assert kept.min() >= cut.max()
    for lp, l0, m in zip(p.layers, net.layers, masks):
        np.testing.assert_array_equal(lp.W[m], l0.W[m])
        assert np.all(lp.W[~m] == 0)
        np.testing.assert_array_equal(lp.b, l0.b)
    assert p.metadata["pruning"]["sparsity_target"] == sparsity


def test_layer_scope_prunes_smallest():
    net = random_fnn([6, 8, 2], seed=2)
    p = magnitude_prune(net, 0.5, "layer")
    for l0, m in zip(net.layers, get_masks(p)):
        assert np.abs(l0.W)[m].min() >= np.abs(l0.W)[~m].max()


def test_mask_survives_and_nests():
    net = random_fnn([6, 10, 4], seed=0)
    p1 = magnitude_prune(net, 0.5, "global")
    # perturb every weight (as retraining would), re-apply the stored mask
    noisy = p1.with_layers(Layer(layer.W + 0.01, layer.b, layer.activation) for layer in p1.layers)
    back = apply_masks(noisy)
    for lb, m in zip(back.layers, get_masks(p1)):
        assert np.all(lb.W[~m] == 0) and np.all(lb.W[m] != 0)
    # pruning further keeps the old mask as a subset
    p2 = magnitude_prune(noisy, 0.8, "global")
    for m1, m2 in zip(get_masks(p1), get_masks(p2)):
        assert not np.any(m2 & ~m1)
    # the mask is JSON-friendly text
    import json

    json.dumps(p2.info()["metadata"])


def test_pruned_then_quantized_keeps_zeros():
    net = random_fnn([6, 10, 4], seed=5)
    p = magnitude_prune(net, 0.7, "layer")
    for scheme in ("symmetric", "affine"):
        q = quantize(p, 3, scheme)
        for lq, m in zip(q.layers, get_masks(q)):
            assert np.all(lq.W[~m] == 0)


def test_size_report_sparse_storage():
    net = random_fnn([50, 40, 10], seed=1)
    p = magnitude_prune(net, 0.95, "global")
    rep = size_report(p)
    assert rep.n_nonzero_weights == sum(int(m.sum()) for m in get_masks(p))
    assert abs(rep.sparsity - 0.95) < 1e-3
    assert rep.bytes < size_report(net).bytes
    assert "sparse" in rep.storage


def _zeroed_forward(net, keep, x):
    """Forward pass with all non-kept hidden neurons forced to zero (what removal must equal)."""
    h = x
    for i, layer in enumerate(net.layers):
        h = layer(h)
        if i in keep:
            mask = np.zeros(layer.n_out, dtype=bool)
            mask[list(keep[i])] = True
            h = np.where(mask, h, 0.0)
    return h


@pytest.mark.parametrize("criterion", ["l1-in", "l1-out", "l1-in-out", "mean-activation", "random"])
def test_neuron_prune_widths_and_function(criterion):
    net = random_fnn([5, 20, 10, 3], seed=4)
    X = np.random.default_rng(0).normal(size=(200, 5))
    p = neuron_prune(net, 0.3, criterion, X=X)
    assert p.widths == [5, 6, 3, 3]
    kept = {int(k): v for k, v in p.metadata["neuron_pruning"]["kept"].items()}
    np.testing.assert_allclose(p.forward(X), _zeroed_forward(net, kept, X), rtol=0, atol=1e-12)
    assert size_report(p).n_params < size_report(net).n_params


def test_neuron_prune_keeps_the_top_scores():
    net = random_fnn([5, 12, 3], seed=7)
    scores = neuron_scores(net, "l1-in")[0]
    p = neuron_prune(net, 0.5, "l1-in")
    kept = p.metadata["neuron_pruning"]["kept"]["0"]
    assert sorted(kept) == sorted(np.argsort(-scores)[:6].tolist())


def test_compensation_reduces_error():
    rng = np.random.default_rng(1)
    net = random_fnn([5, 30, 3], seed=1)
    X = rng.normal(size=(500, 5))
    plain = neuron_prune(net, 0.4, "mean-activation", X=X)
    comp = neuron_prune(net, 0.4, "mean-activation", X=X, compensate=True)
    y = net.forward(X)
    err_plain = np.abs(plain.forward(X) - y).mean()
    err_comp = np.abs(comp.forward(X) - y).mean()
    assert err_comp < err_plain
    # the compensated bias shift is exactly the removed neurons' mean contribution
    np.testing.assert_allclose(comp.forward(X).mean(axis=0), y.mean(axis=0), atol=1e-10)


def test_remove_neurons_subsets_masks():
    net = magnitude_prune(random_fnn([4, 8, 6, 2], seed=3), 0.5)
    out = remove_neurons(net, {0: [0, 2, 5], 1: [1, 3]})
    assert out.widths == [4, 3, 2, 2]
    masks = get_masks(out)
    assert [m.shape for m in masks] == [(3, 4), (2, 3), (2, 2)]
    for layer, m in zip(out.layers, masks):
        assert np.all(layer.W[~m] == 0)


def test_neuron_prune_errors():
    net = random_fnn([4, 8, 2])
    with pytest.raises(ValueError, match="needs data"):
        neuron_prune(net, 0.5, "mean-activation")
    with pytest.raises(ValueError, match="criterion"):
        neuron_prune(net, 0.5, "taylor")
    with pytest.raises(ValueError, match="keep"):
        neuron_prune(net, 0.0)
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_prune(net, 1.5)
    with pytest.raises(ValueError, match="output layer"):
        remove_neurons(net, {1: [0]})


def test_fine_tune_keeps_mask():
    pytest.importorskip("torch")
    from equivrepair.compress import fine_tune

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 6))
    y = (X[:, 0] > 0).astype(np.int64)
    p = magnitude_prune(random_fnn([6, 16, 2], seed=0), 0.8, "global")
    ft = fine_tune(p, X, y, epochs=2, lr=1e-2)
    changed = False
    for lf, lp, m in zip(ft.layers, p.layers, get_masks(p)):
        assert np.all(lf.W[~m] == 0)
        changed |= not np.array_equal(lf.W[m], lp.W[m])
    assert changed
    assert get_masks(ft)[0] is not None


def test_curvature_prune_reaches_target_widths():
    torch = pytest.importorskip("torch")
    from equivrepair.compress import accuracy, curvature_prune, train_classifier
    from equivrepair.compress.curvature import kfac_spectral_radius

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(400, 6))
        y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.3)).astype(np.int64)
        net = train_classifier([6, 20, 10, 3], X, y, epochs=5, lr=3e-3, batch_size=64)
        res = curvature_prune(net, X, y, keep=[5, 0.5], gamma=1e-2, epochs=2, batch_size=64, prune_steps=3)
        assert res.net.widths == [6, 5, 5, 3]
        assert res.history and all(np.isfinite(h["penalty"]) for h in res.history)
        assert res.net.metadata["curvature_pruning"]["widths_after"] == [6, 5, 5, 3]
        assert 0.0 <= accuracy(res.net, X, y) <= 1.0
    finally:
        torch.set_num_threads(before)
    # lmax(A) * lmax(G) against dense eigenvalues
    a = torch.randn(50, 4, dtype=torch.float64)
    g = torch.randn(50, 3, dtype=torch.float64)
    va, vg = torch.ones(4, dtype=torch.float64) / 2, torch.ones(3, dtype=torch.float64) / 3**0.5
    rad, la, lg, _, _ = kfac_spectral_radius(a, g, va, vg, iters=200)
    ea = torch.linalg.eigvalsh(a.T @ a / 50).max()
    eg = torch.linalg.eigvalsh(g.T @ g / 50).max()
    assert float(rad) == pytest.approx(float(ea * eg), rel=1e-6)
