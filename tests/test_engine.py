"""The exact engine: witness lower <= sampled maximum <= δ_max <= every over-approximation, and the
independent exact methods (branch and bound, star enumeration, MILP) agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.reach.api import check, evaluate
from equivrepair.reach.bab import maximize
from equivrepair.spec.sets import Box, InputSetError
from tests.test_bounds import make_pair

SAMPLES = 100_000


def perturbed(net: FNN, scale: float, seed: int) -> FNN:
    rng = np.random.default_rng(seed)
    return FNN.from_arrays(
        [layer.W + scale * rng.normal(size=layer.W.shape) for layer in net.layers],
        [layer.b for layer in net.layers],
        [layer.activation for layer in net.layers],
    )


def sampled(orig: FNN, comp: FNN, box: Box, n: int = SAMPLES, seed: int = 0) -> np.ndarray:
    x = box.sample(n, seed)
    return orig(x) - comp(x)


@st.composite
def pairs(draw):
    n_in = draw(st.integers(2, 3))
    n_out = draw(st.integers(1, 3))
    h1 = draw(st.lists(st.integers(3, 7), min_size=1, max_size=2))
    seed = draw(st.integers(0, 10_000))
    orig = random_fnn([n_in, *h1, n_out], seed)
    if draw(st.booleans()):
        comp = perturbed(orig, draw(st.sampled_from([0.01, 0.05, 0.2])), seed + 1)
    else:
        h2 = draw(st.lists(st.integers(2, 6), min_size=1, max_size=3))
        comp = random_fnn([n_in, *h2, n_out], seed + 2)
    c = draw(st.lists(st.floats(-1, 1), min_size=n_in, max_size=n_in))
    r = draw(st.floats(0.05, 1.0))
    box = Box(np.array(c) - r, np.array(c) + r)
    return orig, comp, box


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_exact_is_sandwiched_and_sound(case):
    orig, comp, box = case
    d = evaluate(orig, comp, box, method="exact", time_limit=60)
    assert d.status == "exact", d.message
    s = sampled(orig, comp, box, 20_000)
    smax = np.abs(s).max()
    # witness re-evaluated on the original networks
    assert np.isclose(d.lower, np.abs(orig(d.witness) - comp(d.witness)).max(), rtol=0, atol=1e-12)
    assert box.contains(d.witness)
    assert d.lower <= smax + 1e-12 or d.lower >= smax  # the witness may beat sampling, never be fake
    assert smax <= d.upper + 1e-12
    assert d.upper - d.lower <= max(d.tolerance, 1e-6) + 1e-12
    # per-output intervals enclose every sample
    assert np.all(s.min(0) >= d.per_output[:, 0] - 1e-12)
    assert np.all(s.max(0) <= d.per_output[:, 1] + 1e-12)
    for method in ("symbolic", "interval", "differential"):
        over = evaluate(orig, comp, box, method=method)
        assert over.upper >= d.lower - 1e-12, method
        assert over.upper >= smax - 1e-12, method


def test_exact_star_enum_and_milp_agree():
    orig = random_fnn([3, 6, 5, 2], 11)
    comp = perturbed(orig, 0.05, 12)
    box = Box(-0.5 * np.ones(3), 0.5 * np.ones(3))
    ex = evaluate(orig, comp, box, method="exact", delta_only=False)
    se = evaluate(orig, comp, box, method="star-enum")
    mi = evaluate(orig, comp, box, method="milp", time_limit=60)
    assert ex.status == se.status == "exact"
    tol = 1e-5 + 1e-4 * ex.upper
    assert abs(ex.delta_max - se.delta_max) <= tol
    if mi.status == "exact":
        assert abs(mi.delta_max - ex.delta_max) <= tol + mi.tolerance
    # star-enum intervals are tight: they agree with exact's to the interval tolerance
    width = np.abs(se.per_output).max()
    assert np.allclose(se.per_output, ex.per_output, atol=1e-2 * width + 1e-6)
    s = sampled(orig, comp, box)
    assert np.abs(s).max() <= min(ex.upper, se.upper) + 1e-9
    assert se.stars is not None and len(se.stars) > 1


def test_star_enum_stars_cover_the_outputs():
    """Every sample's Φ1 − Φ2 is the affine map of the star whose polytope contains it."""
    orig = random_fnn([2, 5, 4, 2], 3)
    comp = perturbed(orig, 0.1, 4)
    box = Box(-np.ones(2), np.ones(2))
    d = evaluate(orig, comp, box, method="star-enum")
    x = box.sample(2000, 1)
    y = orig(x) - comp(x)
    hit = np.zeros(len(x), dtype=bool)
    for star in d.stars:
        inside = np.all(x @ star.G.T <= star.g + 1e-9, axis=1) if len(star.g) else np.ones(len(x), bool)
        assert np.allclose(x[inside] @ star.V.T + star.v, y[inside], atol=1e-9)
        hit |= inside
    assert hit.all()


def test_identical_networks_give_zero_with_milp_and_star_enum():
    net = random_fnn([3, 6, 6, 2], 5)
    box = Box(-np.ones(3), np.ones(3))
    for method in ("star-enum", "milp"):
        d = evaluate(net, net, box, method=method, time_limit=60)
        assert d.lower == 0.0
        assert d.upper <= 1e-6, method


def test_delta_only_and_decision_on_acas(data):
    from equivrepair.compress import quantize
    from equivrepair.nets.onnx_io import load_onnx
    from equivrepair.spec.vnnlib import read_vnnlib

    orig = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    comp = quantize(orig, 4)
    full = read_vnnlib(data / "acasxu" / "prop_1.vnnlib").input_box()
    box = Box(full.center - 0.1 * full.radius, full.center + 0.1 * full.radius)
    d = evaluate(orig, comp, box, delta_only=True, time_limit=120)
    assert d.status == "exact"
    s = sampled(orig, comp, box, 20_000)
    assert np.abs(s).max() <= d.upper + 1e-9
    assert d.lower <= d.upper <= d.lower + max(1e-6, 1e-4 * d.lower) + 1e-12
    yes = check(orig, comp, box, epsilon=d.upper * 1.01 + 1e-9)
    no = check(orig, comp, box, epsilon=d.lower * 0.99)
    assert yes.verdict == "equivalent"
    assert no.verdict == "not_equivalent"
    assert np.abs(orig(no.counterexample) - comp(no.counterexample)).max() >= d.lower * 0.99
    assert box.contains(no.counterexample)


def test_time_limit_returns_honest_bounds():
    orig = random_fnn([4, 16, 16, 3], 1)
    comp = perturbed(orig, 0.05, 5)
    box = Box(-np.ones(4), np.ones(4))
    d = evaluate(orig, comp, box, time_limit=0.2)
    s = sampled(orig, comp, box, 20_000)
    assert d.status in ("bounded", "exact")
    if d.status == "bounded":
        assert d.delta_max is None and "time limit" in d.message
    assert d.lower <= np.abs(s).max() + 1e-9 or d.lower <= d.upper
    assert np.abs(s).max() <= d.upper + 1e-9


def test_fixed_inputs_are_folded():
    orig = random_fnn([6, 8, 2], 2)
    comp = perturbed(orig, 0.05, 3)
    lo = np.array([-1, 0.3, -1, 0.2, 0.1, -0.5])
    hi = np.array([1, 0.3, 1, 0.2, 0.1, -0.5])
    box = Box(lo, hi)
    d = evaluate(orig, comp, box)
    assert d.stats.get("folded_fixed_inputs") == 4
    assert d.witness.shape == (6,) and box.contains(d.witness)
    assert np.abs(sampled(orig, comp, box, 20_000)).max() <= d.upper + 1e-9


def test_parallel_matches_serial():
    orig = random_fnn([3, 10, 10, 2], 8)
    comp = perturbed(orig, 0.05, 9)
    box = Box(-np.ones(3), np.ones(3))
    r1 = maximize(orig, comp, box.lower, box.upper, mode="max")
    from equivrepair.reach.parallel import maximize_parallel

    r2 = maximize_parallel(orig, comp, box.lower, box.upper, workers=2, serial_branches=8, mode="max")
    assert r1.finished and r2.finished
    tol = 1e-6 + 1e-4 * r1.upper.max()
    assert abs(r1.upper.max() - r2.upper.max()) <= tol
    assert abs(r1.lower.max() - r2.lower.max()) <= tol


@pytest.mark.parametrize(
    "lower, upper, match",
    [([0.0, 1.0], [1.0, 0.0], "empty"), ([0.0, np.nan], [1.0, 1.0], "NaN"), ([0.0, 0.0], [1.0, np.inf], "infinite")],
)
def test_malformed_sets_are_rejected(lower, upper, match):
    with pytest.raises(InputSetError, match=match):
        Box(lower, upper)


def test_dimension_mismatch_is_rejected():
    net = random_fnn([3, 4, 2], 0)
    with pytest.raises(InputSetError, match="3 inputs"):
        evaluate(net, net, Box(np.zeros(2), np.ones(2)))
    other = dataclasses.replace(random_fnn([3, 4, 3], 0), name="small")
    with pytest.raises(InputSetError, match="output size: Φ1 .* has 2 outputs, Φ2 small has 3"):
        evaluate(net, other, Box(np.zeros(3), np.ones(3)))
    with pytest.raises(InputSetError, match="epsilon"):
        check(net, net, Box(np.zeros(3), np.ones(3)), epsilon=-1)


def test_differential_bounds_are_sound_on_sub_boxes():
    """Regression: a sub-box on which the differential bound once excluded a real value."""
    from equivrepair.reach.bounds import differential_bounds

    orig = random_fnn([3, 8, 8, 2], 1)
    comp = perturbed(orig, 0.05, 5)
    x = np.array([-0.999512, -0.447266, 1.0])
    rng = np.random.default_rng(0)
    for f in (1.0, 0.5, 0.1, 0.03):
        lo, hi = np.maximum(x - f, -1), np.minimum(x + f, 1)
        dlo, dhi = differential_bounds(orig, comp, lo, hi)
        pts = np.vstack([x, rng.uniform(lo, hi, size=(5000, 3))])
        d = orig(pts) - comp(pts)
        assert np.all(d <= np.asarray(dhi) + 1e-9) and np.all(d >= np.asarray(dlo) - 1e-9), f


def test_top1_equivalence_decides_both_ways():
    from equivrepair.reach.api import check_top1

    orig = random_fnn([2, 8, 3], 21)
    box = Box(-np.ones(2), np.ones(2))
    # the same network, classes shifted: disagreement somewhere unless one class wins everywhere
    other = FNN.from_arrays(
        [orig.layers[0].W, orig.layers[1].W[[1, 2, 0]]], [orig.layers[0].b, orig.layers[1].b[[1, 2, 0]]]
    )
    no = check_top1(orig, other, box, time_limit=30)
    assert no.verdict == "not_equivalent"
    y1, y2 = orig(no.counterexample), other(no.counterexample)
    assert y1.argmax() != y2.argmax() or (y1 == y1.max()).sum() > 1 or (y2 == y2.max()).sum() > 1
    # a tiny perturbation on a small box where one class wins clearly: equivalent
    pts = box.sample(1000, 4)
    ys = np.sort(orig(pts), axis=1)
    x0 = pts[np.argmax(ys[:, -1] - ys[:, -2])]
    y = np.sort(orig(x0))
    small = Box(x0 - 1e-3, x0 + 1e-3)
    assert y[-1] - y[-2] > 1e-2
    yes = check_top1(orig, perturbed(orig, 1e-4, 3), small, time_limit=30)
    assert yes.verdict == "equivalent"


def _padded(net: FNN, at: int, copies: int = 2) -> FNN:
    """``net`` with identity ReLU layers inserted after hidden layer ``at`` (function unchanged)."""
    from equivrepair.nets.ir import Layer

    n = net.layers[at].n_out
    pad = tuple(Layer(np.eye(n), np.zeros(n), "relu") for _ in range(copies))
    return net.with_layers(net.layers[: at + 1] + pad + net.layers[at + 1 :])


def test_identical_and_padded_networks_give_zero_with_exact():
    net = random_fnn([3, 8, 8, 2], 6)
    box = Box(-np.ones(3), np.ones(3))
    for other in (net, _padded(net, 0), _padded(net, 1, copies=1)):
        d = evaluate(net, other, box, time_limit=30)
        assert d.status == "exact"
        assert d.upper <= 1e-12
        assert d.stats["branches"] == 0  # the differential bound proves it at the root


def test_auto_differential_stays_off_when_it_does_not_help(data):
    from equivrepair.compress import quantize
    from equivrepair.nets.onnx_io import load_onnx
    from equivrepair.reach.bab import _Bounder

    orig = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    b = _Bounder(orig, quantize(orig, 4), True, "crown-full")
    full = np.array([0.6, -0.5, -0.5, 0.45, -0.5]), np.array([0.68, 0.5, 0.5, 0.5, -0.45])
    b.choose_differential(*full)
    same = _Bounder(orig, orig, True, "crown-full")
    same.choose_differential(*full)
    assert same.diff_fn is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_children_bounded_from_their_parent_stay_sound(seed):
    """A child box bounded from its parent's hidden bounds (no forward pass; only the neurons
    unstable in the parent back-substituted again) still encloses every sampled pre-activation
    and every sampled Φ1 − Φ2 of the child; with fewer or equally many unstable neurons."""
    from equivrepair.merge import merge
    from equivrepair.reach.bab import _Bounder, bisect

    orig = random_fnn([4, 12, 10, 8, 3], seed)
    comp = perturbed(orig, 0.05, seed + 10)
    b = _Bounder(orig, comp, False, "crown-full")
    lo, hi = -np.ones((1, 4)), np.ones((1, 4))
    b(lo, hi)
    parent = b.pre
    c_lo, c_hi = bisect(lo, hi, np.array([seed % 4]))
    prior = [(np.tile(a, (2, 1)), np.tile(u, (2, 1))) for a, u in parent]
    dlo, dhi, _ = b(c_lo, c_hi, prior)
    pre = b.pre
    merged = merge(b.orig_n, b.comp_n)
    rng = np.random.default_rng(seed)
    for i in range(2):
        x = rng.uniform(c_lo[i], c_hi[i], size=(5000, 4))
        d = orig.forward(x) - comp.forward(x)
        assert np.all(d >= dlo[i] - 1e-9) and np.all(d <= dhi[i] + 1e-9)
        for (zl, zu), z in zip(pre, merged.activations(x)[:-1]):
            assert np.all(z >= zl[i] - 1e-9) and np.all(z <= zu[i] + 1e-9)
        n_child = sum(int(((zl[i] < 0) & (zu[i] > 0)).sum()) for zl, zu in pre)
        n_parent = sum(int(((zl[0] < 0) & (zu[0] > 0)).sum()) for zl, zu in parent)
        assert n_child <= n_parent


@pytest.mark.parametrize("seed,differential", [(3, False), (5, True)])
def test_small_batches_keep_parent_bounds_aligned_with_their_boxes(seed, differential):
    """With batch=2 most of the frontier waits between iterations, so the per-box parent bounds
    must follow their boxes through every filter and concatenation: δ_max agrees with a run that
    bounds the whole frontier every iteration (nothing waits, so nothing can be misaligned) and
    no sample exceeds it."""
    orig = random_fnn([3, 10, 10, 2], seed)
    comp = perturbed(orig, 0.05, seed + 20)
    box = Box(-np.ones(3), np.ones(3))
    # differential: the objectives are bounded by differential back-substitution, whose hidden
    # bounds (z1, z2, Δz) are carried instead of the merged network's
    opts = dict(
        mode="max", leaf_unstable=0, leaf_milp=0, use_differential=differential, diff_backsub=differential or None
    )
    r = maximize(orig, comp, box.lower, box.upper, batch=2, **opts)
    assert r.finished and r.stats["max_frontier"] > 8
    ref = maximize(orig, comp, box.lower, box.upper, batch=100_000, **opts)
    up, up_ref = float(np.max(r.upper)), float(np.max(ref.upper))
    assert abs(up - up_ref) <= 2 * (1e-6 + 1e-4 * up_ref)
    x = box.sample(50_000, seed=seed)
    assert np.max(np.abs(orig.forward(x) - comp.forward(x))) <= up + 1e-9


@pytest.mark.parametrize("pair", ["neurodiff-16bit", "acas-box-lumped"])
def test_parent_bounds_and_alignment_sound_on_real_pairs(data, pair):
    """The two bounding routes changed last (children from parent bounds in the differential
    bounder; aligned pairs of different widths), on real networks: witness <= max of 50k samples
    <= δ_max <= every one-pass over-approximation (the MILP does not finish on these full ACAS Xu
    networks in minutes; exact-vs-MILP agreement on real pairs is the cross-validation suite's)."""
    from equivrepair.compress import lump
    from equivrepair.nets.nnet_io import load_nnet
    from equivrepair.nets.onnx_io import load_onnx
    from equivrepair.spec.vnnlib import read_vnnlib

    full = read_vnnlib(data / "acasxu" / "prop_1.vnnlib").input_box()
    box = Box(full.center - 0.05 * full.radius, full.center + 0.05 * full.radius)
    if pair == "neurodiff-16bit":
        nd = data / "neurodiff"
        kw = dict(input_normalization=False, normalize_output=False)
        orig = load_nnet(nd / "original" / "ACASXU_run2a_1_2_batch_2000.nnet", **kw)
        comp = load_nnet(nd / "compressed16" / "ACASXU_run2a_1_2_batch_2000_16bit.nnet", **kw)
    else:
        orig = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
        comp = lump(orig, input_box=(box.lower, box.upper))
        assert comp.widths != orig.widths
    d = evaluate(orig, comp, box, time_limit=120)
    assert d.status == "exact"
    if pair == "neurodiff-16bit":
        assert d.stats["branches"] > 0 and "bounds_crown" in d.stats  # differential bounder, branching
    else:
        assert "aligned" in d.stats
    s = np.abs(sampled(orig, comp, box, 50_000)).max()
    assert d.lower <= d.delta_max and s <= d.delta_max + 1e-12
    for method in ("interval", "symbolic", "differential", "lp"):
        assert d.delta_max <= evaluate(orig, comp, box, method=method).upper + 1e-12
    if pair == "acas-box-lumped":
        assert d.delta_max <= 1e-9  # the lumping is exact on the box: the truth is 0


def test_prior_pool_keeps_each_box_bounds_through_release_add_and_growth():
    """The slot pool behind the carried parent bounds: after random closes, selections and
    additions (past several growths of its capacity) every live slot still reads back exactly the
    bounds written for its box."""
    from equivrepair.reach.bab import _PriorPool

    rng = np.random.default_rng(0)
    widths = (3, 5)

    def boxes(k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(rng.normal(size=(k, w)), rng.normal(size=(k, w))) for w in widths]

    first = boxes(10)
    pool = _PriorPool(first)
    ref = {int(s): [(a[i], b[i]) for a, b in first] for i, s in enumerate(pool.slots)}
    for _ in range(60):
        live = np.array(sorted(ref))
        gone = rng.choice(live, size=rng.integers(0, len(live) // 10 + 1), replace=False)
        pool.release(gone)
        for s in gone:
            del ref[int(s)]
        new = boxes(int(rng.integers(1, 80)))
        slots = pool.add(new)
        assert not set(slots.tolist()) & set(ref), "a slot was handed out twice"
        for i, s in enumerate(slots):
            ref[int(s)] = [(a[i], b[i]) for a, b in new]
        live = np.array(sorted(ref))
        got = pool.get(live)
        for j, s in enumerate(live):
            for (ga, gb), (ra, rb) in zip(got, ref[int(s)]):
                assert np.array_equal(ga[j], ra) and np.array_equal(gb[j], rb)
        assert pool.floats == len(ref) * 2 * sum(widths)
    assert len(pool.free) >= 4 * 256  # it grew (several times)


def test_strong_branching_agrees_with_smear_branching():
    """Strong branching (every dimension tried per box) used to crash in the exact-leaf step,
    which read the unstable counts of all candidate splits as the children's; now it finishes
    and finds the same δ_max, above every sample."""
    orig, comp = make_pair(3, "perturbed")
    lo, hi = -np.ones(orig.n_inputs), np.ones(orig.n_inputs)
    ref = maximize(orig, comp, lo, hi, mode="max")
    strong = maximize(orig, comp, lo, hi, mode="max", strong_branching_dims=8)
    assert ref.finished and strong.finished
    up, up_ref = float(np.max(strong.upper)), float(np.max(ref.upper))
    assert abs(up - up_ref) <= 2 * (1e-6 + 1e-4 * up_ref)
    assert float(np.max(strong.lower)) <= up
    x = np.random.default_rng(0).uniform(lo, hi, size=(50_000, lo.size))
    assert np.max(np.abs(orig.forward(x) - comp.forward(x))) <= up + 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(time_limit=0), "time_limit"),
        (dict(time_limit=-1.0), "time_limit"),
        (dict(time_limit=float("nan")), "time_limit"),
        (dict(workers=0), "workers"),
        (dict(workers=1.5), "workers"),
        (dict(atol=-1e-6), "atol"),
        (dict(rtol=float("inf")), "rtol"),
    ],
)
def test_bad_limits_are_rejected_not_ignored(kwargs, match):
    net = random_fnn([3, 4, 2], 0)
    box = Box(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=match):
        evaluate(net, net, box, **kwargs)
    if "time_limit" in kwargs:
        with pytest.raises(ValueError, match=match):
            check(net, net, box, 0.1, **kwargs)


def test_public_entry_points_run_with_one_blas_thread(monkeypatch):
    """evaluate, check and check_top1 run their bounds with one BLAS thread (many small products,
    which BLAS threads slow down); a helper inserted above one of them once took its decorator."""
    from threadpoolctl import threadpool_info

    from equivrepair.reach import api

    seen = []
    real = api._validate

    def spy(*args, **kwargs):
        seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "_validate", spy)
    net = random_fnn([3, 4, 2], 0)
    box = Box(np.zeros(3), np.ones(3))
    api.evaluate(net, net, box, method="interval")
    api.check(net, net, box, 0.1, method="interval")
    assert len(seen) >= 2 and all(all(n == 1 for n in s) for s in seen), seen
    for fn in (api.evaluate, api.check, api.check_top1):
        assert fn.__wrapped__.__name__ == fn.__name__
