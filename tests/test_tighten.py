"""LP bound tightening of hidden pre-activations (reach/tighten.py) and its use before the MILP.

Tightened bounds must stay sound: they lie inside the bounds they started from and contain the
pre-activations (and z1 − z2 of twin neurons) at every sampled input of the set and at every LP
optimum the tightening returns. The MILP's δ_max must not depend on whether the tightening ran
(two runs of the exact method, ground truth from sampling and witnesses; no number copied in).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equivrepair.reach import milp as milp_mod
from equivrepair.reach.bounds import default_candidates, merged_pre_bounds
from equivrepair.reach.milp import method_milp
from equivrepair.reach.tighten import (
    _unstable_pairs,
    gradient_corners,
    pre_activations,
    tighten_pre_bounds,
    unstable_mask,
)
from equivrepair.spec.sets import Box
from tests.test_bounds import KINDS, make_pair
from tests.test_compact import _highdim_pair, _mnist_256x4_ball, _sampled_max

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_contains(net, pre, delta, X: np.ndarray) -> None:
    """Every pre-activation (and twin difference) at the rows of X lies in the bounds."""
    for i, z in enumerate(pre_activations(net, X)):
        lo, hi = pre[i]
        tol = 1e-7 * (1.0 + np.abs(z))
        assert np.all(z >= lo - tol) and np.all(z <= hi + tol), f"layer {i}"
        if delta is not None and i < len(delta):
            half = z.shape[1] // 2
            d = z[:, :half] - z[:, half:]
            tol = 1e-7 * (1.0 + np.abs(z).max())
            assert np.all(d >= delta[i][0] - tol) and np.all(d <= delta[i][1] + tol), f"delta {i}"


def _corners(box: Box) -> np.ndarray:
    bits = np.array(list(itertools.product((0, 1), repeat=box.dim)), dtype=bool)
    return np.where(bits, box.upper, box.lower)


def _inside(old, new) -> bool:
    return all(np.all(n[0] >= o[0]) and np.all(n[1] <= o[1]) for o, n in zip(old, new))


@SETTINGS
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(KINDS), radius=st.floats(0.05, 2.0))
def test_tightened_bounds_are_inside_the_old_ones_and_contain_every_sample(seed: int, kind: str, radius: float):
    orig, comp = make_pair(seed, kind)
    box = Box(-radius * np.ones(orig.n_inputs), radius * np.ones(orig.n_inputs))
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    t = tighten_pre_bounds(net, box.lower, box.upper, pre, delta_bounds=delta, delta_layers=len(pre))
    assert _inside(pre, t.pre) and t.complete
    assert delta is None or _inside(delta, t.delta)
    assert t.pre[-1][0] is not pre[-1][0] and np.array_equal(t.pre[-1][0], pre[-1][0])  # output untouched
    assert sum(t.unstable_after) <= sum(t.unstable_before)
    X = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(3000, box.dim))
    _check_contains(net, t.pre, t.delta, np.vstack([X, _corners(box), t.points]))


def test_tightening_fixes_deep_phases_on_real_mnist_and_stays_sound(data) -> None:
    """mnist-net_256x4 vs 8-bit, ±3/255 around test image 7 (139 unstable ReLUs): the LPs fix the
    phase of some neurons of the deeper layers, the first hidden layer keeps its (exact) bounds,
    LPs are only solved for neurons no input showed on both sides, and every sampled input, LP
    optimum and gradient corner stays inside the tightened bounds."""
    orig, comp, box = _mnist_256x4_ball(data, 7, 3)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    cand = default_candidates(box, 64, 0)
    t = tighten_pre_bounds(net, box.lower, box.upper, pre, delta_bounds=delta, candidates=cand)
    assert t.complete and t.stabilised > 0
    assert t.unstable_after[0] == t.unstable_before[0]
    # fewer LPs than two per unstable neuron of layers 1.. and per twin pair of the last layer
    assert t.skipped_by_evidence > 0
    assert t.n_lps < 2 * sum(t.unstable_before[1:]) + 2 * len(_unstable_pairs(pre[-2]))
    assert _inside(pre, t.pre) and _inside(delta, t.delta)
    rng = np.random.default_rng(1)
    X = np.vstack([rng.uniform(box.lower, box.upper, size=(2000, box.dim)), t.points, cand])
    X = np.vstack([X, gradient_corners(net, box.lower, box.upper, unstable_mask(pre))])
    _check_contains(net, t.pre, t.delta, X)


def test_no_time_for_the_tightening_leaves_the_bounds_as_they_were() -> None:
    orig, comp, box = _highdim_pair(3, 0.3)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    t = tighten_pre_bounds(net, box.lower, box.upper, pre, delta_bounds=delta, time_limit=0.0)
    assert not t.complete or t.n_lps == 0
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(pre, t.pre))


def test_tightening_respects_linear_input_constraints() -> None:
    """With A x <= c the bounds may shrink below the box's; they still contain every input of the
    constrained set (rejection-sampled)."""
    orig, comp = make_pair(11, "perturbed")
    n = orig.n_inputs
    box = Box(-np.ones(n), np.ones(n))
    A, c = np.ones((1, n)), np.array([-0.5 * n])
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    t = tighten_pre_bounds(net, box.lower, box.upper, pre, A, c, delta, delta_layers=len(pre))
    X = np.random.default_rng(0).uniform(-1, 1, size=(200_000, n))
    X = X[X @ A[0] <= c[0]]
    assert X.shape[0] > 100
    _check_contains(net, t.pre, t.delta, X)


@pytest.mark.parametrize("radius", [0.3, 0.6])
def test_milp_gives_the_same_delta_with_and_without_the_tightening(radius: float, monkeypatch) -> None:
    """A high-dimensional random pair (compact MILP route): the exact δ_max with the tightening
    forced on (threshold 0) equals the one without (threshold above any count), both lie above
    every sample and at their witnesses' values, and the stats say the tightening ran."""
    orig, comp, box = _highdim_pair(3, radius)
    runs = {}
    for name, threshold in (("on", 0), ("off", 10**9)):
        monkeypatch.setattr(milp_mod, "TIGHTEN_MIN_UNSTABLE", threshold)
        runs[name] = method_milp(orig, comp, box, 60, compact=True, backend="highs", mode="max", rtol=1e-4, atol=1e-6)
    on, off = runs["on"], runs["off"]
    assert on.status == off.status == "exact"
    assert "LP bound tightening" in on.message and "LP bound tightening" not in off.message
    assert off.stats["tightening_lps"] == 0
    smax = _sampled_max(orig, comp, box, n=20000).max()
    for r in (on, off):
        attained = np.abs(orig.forward(r.witness) - comp.forward(r.witness)).max()
        assert attained == pytest.approx(r.lower, rel=1e-12)
        assert smax <= r.delta_max + 1e-9
    assert on.stats["binaries"] <= off.stats["binaries"]
    tol = max(1e-6, 1e-4 * off.delta_max)
    assert abs(on.delta_max - off.delta_max) <= 2 * tol


def test_exact_on_real_mnist_agrees_with_and_without_the_tightening(data, monkeypatch) -> None:
    """mnist-net_256x4 vs 8-bit, ±3/255 around test image 21 (77 unstable ReLUs, above the
    threshold): the two exact runs give the same δ_max within the tolerance."""
    from equivrepair.reach.api import evaluate

    orig, comp, box = _mnist_256x4_ball(data, 21, 3)
    on = evaluate(orig, comp, box, time_limit=120)
    monkeypatch.setattr(milp_mod, "TIGHTEN_MIN_UNSTABLE", 10**9)
    off = evaluate(orig, comp, box, time_limit=120)
    assert on.status == off.status == "exact"
    assert on.stats["tightening_lps"] > 0 and off.stats["tightening_lps"] == 0
    tol = max(1e-6, 1e-4 * off.delta_max)
    assert abs(on.delta_max - off.delta_max) <= 2 * tol
    assert max(on.lower, off.lower) <= min(on.delta_max, off.delta_max) + 2 * tol
