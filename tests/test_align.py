"""Aligning pairs of different widths (reach/align.py) and what it buys the default exact method."""

import numpy as np
import pytest

from equivrepair.compress import lump, neuron_prune
from equivrepair.compress.lump import widen
from equivrepair.nets.ir import FNN, Layer, random_fnn
from equivrepair.reach.align import LOOSE_MATCH, alignable, widen_like
from equivrepair.reach.api import check, evaluate
from equivrepair.spec.sets import Box


def _pairs():
    """(narrow, guide) pairs: exact lumpings (float64 and float32 widening), a neuron-pruned
    network, a perturbed lumping and an approximate lumping (the last two by loose matching)."""
    net = random_fnn([3, 6, 5, 2], seed=21)
    wide = widen(net, extra=[3, 2], seed=4, constant=1)
    yield "lumped", lump(wide), wide, None
    wide32 = widen(random_fnn([4, 7, 6, 3], seed=2), extra=[4, 3], seed=1, dtype=np.float32)
    yield "lumped-f32", lump(wide32), wide32, None
    big = random_fnn([3, 12, 10, 2], seed=5)
    yield "neuron-pruned", neuron_prune(big, 0.6), big, None
    lumped = lump(wide)
    W = [layer.W.copy() for layer in lumped.layers]
    W[0][0, 0] += 1e-3
    yield "perturbed", FNN.from_arrays(W, [layer.b for layer in lumped.layers]), wide, LOOSE_MATCH
    noisy = widen(random_fnn([3, 10, 3], seed=0), extra=6, seed=1)
    W0 = noisy.layers[0].W + np.random.default_rng(0).normal(scale=1e-3, size=noisy.layers[0].W.shape)
    noisy = noisy.with_layers([Layer(W0, noisy.layers[0].b), noisy.layers[1]])
    yield "approx-lumped", lump(noisy, tolerance=0.05), noisy, LOOSE_MATCH


@pytest.mark.parametrize("case", list(_pairs()), ids=lambda c: c[0])
def test_widened_network_computes_the_narrow_function(case):
    """Same widths as the guide, same function as the narrow network: on 20k samples the
    difference stays within the stated round-off bound (plus float64 evaluation noise)."""
    name, narrow, guide, tol = case
    box = Box(-np.ones(narrow.n_inputs), np.ones(narrow.n_inputs))
    a = widen_like(narrow, guide, box.lower, box.upper, **({} if tol is None else {"tol": tol}))
    assert a is not None
    assert a.net.widths == guide.widths
    x = box.sample(20_000, seed=3)
    y, yw = narrow.forward(x), a.net.forward(x)
    noise = 1e-13 * (1.0 + np.abs(y))
    assert np.all(np.abs(yw - y) <= a.error + noise)
    assert a.error < 1e-10  # the rewrite is exact in real arithmetic: only round-off remains
    if name == "lumped":
        # exact matches: the widened network is the guide up to round-off
        assert np.max(np.abs(yw - guide.forward(x))) < 1e-12
    if name == "neuron-pruned":
        assert a.error == 0.0 and a.absent > 0  # copied weights carry no round-off


def test_alignable_sides():
    a, b = random_fnn([3, 8, 6, 2], 0), random_fnn([3, 5, 6, 2], 1)
    assert alignable(a, b) == "b" and alignable(b, a) == "a"
    assert alignable(a, a) is None
    assert alignable(random_fnn([3, 8, 4, 2], 0), random_fnn([3, 5, 6, 2], 1)) is None  # mixed
    assert alignable(a, random_fnn([3, 5, 2], 1)) is None  # depths differ


def test_default_exact_proves_a_lumped_pair_and_padded_variant_equivalent():
    """The issue's check, now with the default method: δ_max = 0 of (widened, lumped) at the
    root without a single branch, either way round and with identity padding; and a 1e-3 change
    of an output bias is found as exactly that."""
    net = random_fnn([3, 6, 5, 2], seed=21)
    wide = widen(net, extra=[3, 2], seed=4, constant=1)
    lumped = lump(wide)
    n = lumped.layers[0].n_out
    padded = lumped.with_layers(lumped.layers[:1] + (Layer(np.eye(n), np.zeros(n), "relu"),) + lumped.layers[1:])
    box = Box(-0.5 * np.ones(3), 0.5 * np.ones(3))
    for o, c in ((wide, lumped), (lumped, wide), (wide, padded)):
        d = evaluate(o, c, box, time_limit=30)
        assert d.status == "exact"
        assert d.delta_max <= 1e-9
        assert d.stats["branches"] == 0
        assert d.stats["aligned"]["matched"] == 16
    b = [layer.b.copy() for layer in lumped.layers]
    b[-1][0] += 1e-3
    off = evaluate(wide, FNN.from_arrays([layer.W for layer in lumped.layers], b), box, time_limit=30)
    assert off.status == "exact"
    assert off.lower == pytest.approx(1e-3, rel=1e-9)
    assert off.delta_max <= 1e-3 + off.tolerance


@pytest.mark.parametrize("name", ["perturbed", "neuron-pruned", "approx-lumped"])
def test_aligned_exact_agrees_with_milp_and_samples(name):
    """Soundness of the aligned route: witness <= sampled max <= δ_max, and δ_max agrees with
    the MILP on the merged network (which never aligns) to the stated tolerances."""
    case = {c[0]: c for c in _pairs()}[name]
    _, narrow, guide, _ = case
    box = Box(-0.5 * np.ones(narrow.n_inputs), 0.5 * np.ones(narrow.n_inputs))
    d = evaluate(guide, narrow, box, time_limit=60)
    assert d.status == "exact" and "aligned" in d.stats
    m = evaluate(guide, narrow, box, method="milp", time_limit=60)
    assert m.status == "exact"
    x = box.sample(100_000, seed=7)
    sampled = np.max(np.abs(guide.forward(x) - narrow.forward(x)))
    assert d.lower <= d.delta_max and sampled <= d.delta_max + 1e-12
    assert abs(d.delta_max - m.delta_max) <= d.tolerance + m.tolerance + 1e-9
    assert np.all(d.per_output[:, 0] <= m.per_output[:, 1] + 1e-9)


def test_check_uses_the_alignment_and_stays_sound():
    net = random_fnn([3, 6, 5, 2], seed=21)
    wide = widen(net, extra=[3, 2], seed=4, constant=1)
    lumped = lump(wide)
    box = Box(-0.5 * np.ones(3), 0.5 * np.ones(3))
    yes = check(wide, lumped, box, 1e-6, time_limit=20)
    assert yes.verdict == "equivalent" and yes.stats["aligned"]["widths"] == wide.widths
    W = [layer.W.copy() for layer in lumped.layers]
    W[0][0, 0] += 1e-3
    bad = FNN.from_arrays(W, [layer.b for layer in lumped.layers])
    x = box.sample(20_000, seed=1)
    sampled = np.max(np.abs(wide.forward(x) - bad.forward(x)))
    no = check(wide, bad, box, 0.9 * sampled, time_limit=20)
    assert no.verdict == "not_equivalent"
    assert np.max(np.abs(wide.forward(no.counterexample) - bad.forward(no.counterexample))) >= 0.9 * sampled
