"""MILP leaves (reach/milp_leaf.py) of the input-splitting branch and bound.

Ground truth: star enumeration (exact_leaf: one LP per linear region, an independent exact
method), uniform sampling, and the branch and bound without MILP leaves. No number is copied
into a test.
"""

from __future__ import annotations

import numpy as np
import pytest

import equivrepair.reach.milp as milp_mod
from equivrepair.merge import merge, normalise
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.reach.bab import discrepancy, exact_leaf, make_objectives, maximize
from equivrepair.reach.milp_leaf import LEAF_TOL, milp_leaf
from equivrepair.spec.sets import Box
from tests.test_engine import perturbed

STAR_SLACK = 1e-8  # exact_leaf adds 10·LP_TOL·(1 + |v|)


def _case(seed: int, n: int = 3, width: int = 10, radius: float = 0.1):
    orig = random_fnn([n, width, width, 2], seed)
    comp = perturbed(orig, 0.03, seed + 50)
    on, cn = normalise(orig), normalise(comp)
    c = np.random.default_rng(seed).uniform(-0.3, 0.3, n)
    return orig, comp, on, cn, merge(on, cn), c - radius, c + radius


def _unstable(on: FNN, cn: FNN, lo: np.ndarray, hi: np.ndarray) -> int:
    from equivrepair.reach.bounds import merged_pre_bounds

    _, pre, _ = merged_pre_bounds(on, cn, lo, hi)
    return sum(int(((a < 0) & (b > 0)).sum()) for a, b in pre[:-1])


@pytest.mark.parametrize("solver", ["phase", "highs"])
@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5, 7])  # 10-26 unstable ReLUs, each under a second
def test_milp_leaf_agrees_with_star_enumeration(seed, solver):
    """Every objective's MILP bound equals the star-enumeration maximum to the two methods'
    tolerances, lies above every sampled value and above the value at the MILP's own point;
    with the phase branch and bound and with HiGHS's MIP solver."""
    orig, comp, on, cn, merged, lo, hi = _case(seed)
    assert _unstable(on, cn, lo, hi) >= 5  # a box the MILP has to branch on, not a linear one
    objs = make_objectives([0, 1])
    star, _, _ = exact_leaf(merged, lo, hi, objs)
    lr = milp_leaf(on, cn, merged, lo, hi, objs, np.full(4, np.inf), np.full(4, -np.inf), time_limit=30, solver=solver)
    assert lr.settled == 4 and lr.milps == 4
    true = star - STAR_SLACK * (1 + np.abs(star))  # the LPs' own optimum
    np.testing.assert_allclose(lr.upper, true, rtol=0, atol=1e-7 * (1 + np.abs(true).max()))
    assert np.all(lr.upper >= true - 1e-9 * (1 + np.abs(true)))
    x = Box(lo, hi).sample(20_000, seed=seed)
    d = discrepancy(orig, comp, x)
    for k, (s, j) in enumerate(objs):
        assert np.max(s * d[:, j]) <= lr.upper[k] + 1e-12
        v = s * discrepancy(orig, comp, lr.points[k][None])[0, j]
        assert v <= lr.upper[k] + 1e-9 and v >= lr.upper[k] - 1e-6 * (1 + abs(v))


def test_milp_leaf_resolves_float16_differences_on_acas_xu(data):
    """ACAS Xu 1_2 against its float16 copy (NeuroDiff's pair), boxes with 8-40 unstable ReLUs:
    discrepancies of ~1e-5 next to activations of 10-100, which a MILP at the default 1e-7
    tolerances cannot resolve; at LEAF_TOL the MILP bound matches star enumeration to 1e-10."""
    from equivrepair.nets.nnet_io import load_nnet
    from equivrepair.spec.vnnlib import read_vnnlib

    nd = data / "neurodiff"
    kw = dict(input_normalization=False, normalize_output=False)
    orig = load_nnet(nd / "original" / "ACASXU_run2a_1_2_batch_2000.nnet", **kw)
    comp = load_nnet(nd / "compressed16" / "ACASXU_run2a_1_2_batch_2000_16bit.nnet", **kw)
    on, cn = normalise(orig), normalise(comp)
    merged = merge(on, cn)
    full = read_vnnlib(data / "acasxu" / "prop_1.vnnlib").input_box()
    objs = make_objectives([0, 3])
    for r in (0.002, 0.01, 0.02):
        lo, hi = full.center - r * full.radius, full.center + r * full.radius
        n_un = _unstable(on, cn, lo, hi)
        assert 8 <= n_un <= 40
        star, _, _ = exact_leaf(merged, lo, hi, objs)
        true = star - STAR_SLACK * (1 + np.abs(star))
        lr = milp_leaf(on, cn, merged, lo, hi, objs, np.full(4, np.inf), np.full(4, -np.inf), time_limit=20)
        assert lr.settled == 4
        assert np.max(np.abs(true)) < 1e-4  # the scale that needs the tight tolerance
        np.testing.assert_allclose(lr.upper, true, rtol=0, atol=1e-10 + 2 * LEAF_TOL)
        assert np.all(lr.upper >= true - 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_threshold_stops_early_and_soundly(seed):
    """Above the true maximum the MILP may stop early, with a bound between the truth and the
    threshold (the box closes); below it, the bound is the truth. Never below the truth."""
    orig, comp, on, cn, merged, lo, hi = _case(seed)
    objs = make_objectives([0])
    star, _, _ = exact_leaf(merged, lo, hi, objs)
    true = star - STAR_SLACK * (1 + np.abs(star))
    above = true + 0.3 * np.abs(true) + 0.05
    lr = milp_leaf(on, cn, merged, lo, hi, objs, np.full(2, np.inf), above, time_limit=30)
    assert np.all(lr.upper < above) and np.all(lr.upper >= true - 1e-9)
    below = true - 0.3 * np.abs(true) - 0.05
    lr = milp_leaf(on, cn, merged, lo, hi, objs, np.full(2, np.inf), below, time_limit=30)
    assert lr.settled == 2
    np.testing.assert_allclose(lr.upper, true, atol=1e-7 * (1 + np.abs(true).max()))


def test_stop_above_returns_a_counterexample_point():
    """With stop_above under the maximum the leaf stops at a point that reaches it (checked on
    the original networks) and skips the objectives after it."""
    orig, comp, on, cn, merged, lo, hi = _case(1)
    objs = make_objectives([0, 1])
    star, _, _ = exact_leaf(merged, lo, hi, objs)
    k = int(np.argmax(star))
    target = 0.5 * float(star[k])
    assert target > 0
    upper = np.full(4, -np.inf)
    upper[k] = np.inf  # only objective k open
    lr = milp_leaf(on, cn, merged, lo, hi, objs, upper, np.full(4, -np.inf), stop_above=target)
    s, j = objs[k]
    assert s * discrepancy(orig, comp, lr.points[k][None])[0, j] >= target - 1e-12
    assert lr.milps == 1


def test_solver_failure_teaches_nothing(monkeypatch):
    """An 'infeasible' (the box is never empty: presolve numerics) or an error leaves every bound
    at +inf, so the caller keeps its own bound and splits the box."""
    orig, comp, on, cn, merged, lo, hi = _case(2)

    def fail(self, cost, time_limit, stop=None):
        return {"status": "infeasible", "value": np.nan, "bound": 5.0, "gap": np.nan, "x": None, "nodes": 0}

    monkeypatch.setattr(milp_mod._HighsMILP, "solve", fail)
    objs = make_objectives([0])
    lr = milp_leaf(on, cn, merged, lo, hi, objs, np.full(2, np.inf), np.full(2, -np.inf), solver="highs")
    assert np.all(np.isposinf(lr.upper)) and lr.settled == 0


@pytest.mark.parametrize("fault", ["no_solution", "noisy_duals"])
def test_phase_bab_bound_stays_sound_when_the_lp_solver_fails(monkeypatch, fault):
    """The phase branch and bound's bound comes from row multipliers, never from the solver's
    word: with every node LP's result thrown away (no point, no duals) or its duals perturbed, it
    is only weaker — still above the star-enumeration maximum — and a lost LP settles nothing."""
    import equivrepair.reach.phase_bab as pb

    orig, comp, on, cn, merged, lo, hi = _case(2)
    objs = make_objectives([0])
    star, _, _ = exact_leaf(merged, lo, hi, objs)
    true = star - STAR_SLACK * (1 + np.abs(star))
    good = milp_leaf(on, cn, merged, lo, hi, objs, np.full(2, np.inf), np.full(2, -np.inf))
    rng = np.random.default_rng(0)
    if fault == "no_solution":

        def run(h):
            h.run()
            h.clearSolver()  # status "not set", no values, no duals

        monkeypatch.setattr(pb, "run_highs", run)
    else:
        real = pb.SafeBound.multipliers
        calls = []

        def noisy(self, y):
            calls.append(1)
            ys = real(self, y)
            if len(ys) < 3:
                return ys
            y = ys[1] + rng.normal(0, 1e-3 * (1 + np.abs(ys[1]).max()), ys[1].shape)
            return [ys[0], y, -y]

        monkeypatch.setattr(pb.SafeBound, "multipliers", noisy)
    bad = milp_leaf(on, cn, merged, lo, hi, objs, np.full(2, np.inf), np.full(2, -np.inf), time_limit=10)
    assert np.all(bad.upper >= true - 1e-12)
    assert np.all(bad.upper >= good.upper - 1e-9 * (1 + np.abs(good.upper)))
    if fault == "no_solution":
        assert bad.settled == 0 and np.all(bad.upper > good.upper + 1e-3)
    else:
        assert len(calls) >= bad.nodes > 0  # every node's bound went through the noise


@pytest.mark.parametrize("seed", range(4))
def test_branch_and_bound_with_milp_leaves_matches_without(seed):
    """δ_max with MILP leaves (every candidate, so that they are really used) equals δ_max with
    star leaves only, to the engine's tolerance, and stays above 50k samples."""
    orig, comp, on, cn, merged, lo, hi = _case(seed, n=3, width=14, radius=1.0)
    kw = dict(mode="max", time_limit=120)
    a = maximize(orig, comp, lo, hi, leaf_policy="always", **kw)
    b = maximize(orig, comp, lo, hi, leaf_milp=0, **kw)
    assert a.finished and b.finished
    assert a.stats.get("milp_leaves", 0) > 0 and "milp_leaves" not in b.stats
    ua, ub = float(np.max(a.upper)), float(np.max(b.upper))
    assert abs(ua - ub) <= 2 * (1e-6 + 1e-4 * max(ua, ub))
    x = Box(lo, hi).sample(50_000, seed=seed)
    smax = float(np.max(np.abs(discrepancy(orig, comp, x))))
    assert float(np.max(a.lower)) <= ua + 1e-12 and smax <= ua + 1e-9


def test_acas_xu_8bit_sub_box_agrees_with_and_without_milp_leaves(data):
    """ACAS Xu 1_1 against its 8-bit copy on a tenth of the property-1 box: same δ_max both ways."""
    from equivrepair.nets.onnx_io import load_onnx
    from equivrepair.spec.vnnlib import read_vnnlib
    from tests.conftest import round8

    orig = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    comp = round8(orig)
    full = read_vnnlib(data / "acasxu" / "prop_1.vnnlib").input_box()
    lo, hi = full.center - 0.1 * full.radius, full.center + 0.1 * full.radius
    a = maximize(orig, comp, lo, hi, mode="max", leaf_policy="always", time_limit=60)
    b = maximize(orig, comp, lo, hi, mode="max", leaf_milp=0, time_limit=60)
    assert a.finished and b.finished and a.stats.get("milp_leaves", 0) > 0
    ua, ub = float(np.max(a.upper)), float(np.max(b.upper))
    assert abs(ua - ub) <= 2 * (1e-6 + 1e-4 * ub)


def test_designated_boxes_far_above_their_threshold_are_split(data):
    """ACAS Xu 1_1 against its 8-bit copy on the property-1 box: the policy designates MILP leaves;
    with a gap no box can meet, every designated box is split instead, and δ_max is the same."""
    from equivrepair.nets.onnx_io import load_onnx
    from equivrepair.spec.vnnlib import read_vnnlib
    from tests.conftest import round8

    orig = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    comp = round8(orig)
    box = read_vnnlib(data / "acasxu" / "prop_1.vnnlib").input_box()
    a = maximize(orig, comp, box.lower, box.upper, mode="max", time_limit=60)
    b = maximize(orig, comp, box.lower, box.upper, mode="max", leaf_gap=-np.inf, time_limit=60)
    assert a.finished and b.finished and a.stats.get("milp_leaves", 0) > 0
    assert "milp_leaves" not in b.stats and b.stats.get("milp_gated", 0) > 0
    ua, ub = float(np.max(a.upper)), float(np.max(b.upper))
    assert abs(ua - ub) <= 2 * (1e-6 + 1e-4 * ub)


def test_no_milp_leaves_in_decide_mode_or_with_recorded_leaves():
    """Certificates re-prove each leaf with LPs, so recording leaves turns MILP leaves off; a
    decision against ε uses them only when asked."""
    orig, comp, on, cn, merged, lo, hi = _case(0, width=14, radius=1.0)
    r = maximize(orig, comp, lo, hi, mode="max", record_leaves=True, leaf_policy="always", time_limit=60)
    assert r.finished and "milp_leaves" not in r.stats
    top = float(np.max(maximize(orig, comp, lo, hi, mode="max", time_limit=60).upper))
    r = maximize(orig, comp, lo, hi, mode="decide", epsilon=1.001 * top, leaf_policy="always", time_limit=60)
    assert "milp_leaves" not in r.stats
    r = maximize(
        orig, comp, lo, hi, mode="decide", epsilon=1.001 * top, leaf_milp=24, leaf_policy="always", time_limit=60
    )
    assert r.stats.get("milp_leaves", 0) > 0 and float(np.max(r.upper)) < 1.001 * top


def test_leaf_policy_rents_cheap_subtrees_and_buys_expensive_ones():
    """The policy's arithmetic on made-up costs: until subtrees are measured nothing is MILP'd and
    a sample of the candidates is tagged; subtrees that close within the budget make renting
    cheap (still no MILPs); subtrees that reach the budget are capped (their boxes FORCED) and
    make MILPs pay, after which all but the sample are MILP'd."""
    from equivrepair.reach.milp_leaf import FORCED, LeafPolicy

    def run(policy: LeafPolicy, boxes: int, rounds: int) -> None:
        for _ in range(rounds):
            _, tagged, tags = policy.choose(np.arange(64))
            assert tagged.size == tags.size
            for _ in range(boxes):  # each tagged subtree bounds `boxes` boxes ...
                policy.grow(tags)
            capped = boxes >= policy.budget  # ... then it is still open (capped) or has closed
            frontier = policy.settle(tags.copy() if capped else np.zeros(0, np.int64))
            if capped:
                assert np.all(frontier == FORCED)

    def policy() -> LeafPolicy:
        p = LeafPolicy(seed=1)
        p.split_cost(1e-3, 1)  # c_b = 1 ms
        p.milp_cost(20e-3)  # c_m = 20 ms: a budget of 20 boxes
        return p

    fresh = policy()
    assert fresh.budget == pytest.approx(20.0) and not fresh.pays()
    milp, tagged, _ = fresh.choose(np.arange(1000))
    assert milp.size == 0 and 150 < tagged.size < 350  # explore = 0.25
    cheap = policy()
    run(cheap, 2, 4)  # subtrees of 2 boxes: renting costs 2 ms < 20 ms
    assert cheap.rent_cost() == pytest.approx(2e-3) and not cheap.pays()
    assert cheap.choose(np.arange(100))[0].size == 0

    dear = policy()
    run(dear, 25, 4)  # every subtree reaches the budget: renting costs 20 + 2·20 ms > 20 ms
    assert dear.rent_cost() == pytest.approx(60e-3) and dear.pays()
    milp, tagged, _ = dear.choose(np.arange(1000))
    assert 650 < milp.size < 850 and milp.size + tagged.size == 1000
    forced = LeafPolicy(always=True)
    assert forced.choose(np.arange(10))[0].size == 10


def test_leaf_policy_counts_dormant_subtrees_at_their_size_so_far():
    """A tagged subtree whose boxes stay in the frontier but are not bounded for ``dormant``
    iterations (under a time limit they may never be) counts as resolved at its size so far; when
    it grows again it is active and unresolved again."""
    from equivrepair.reach.milp_leaf import LeafPolicy

    p = LeafPolicy(seed=1, explore=1.0, dormant=3)
    p.split_cost(1e-3, 1)
    p.milp_cost(20e-3)  # a budget of 20 boxes
    _, tagged, tags = p.choose(np.arange(4))
    assert tags.size == 4
    for _ in range(5):
        p.grow(tags)  # five boxes each, far under the budget
    p.settle(tags.copy())
    assert p.resolved == [] and np.all(p.state == 0)
    for _ in range(2):
        p.settle(tags.copy())  # still in the frontier, not bounded: not yet dormant
    assert p.resolved == []
    p.settle(tags.copy())
    assert np.all(p.state == 3) and sorted(r[0] for r in p.resolved) == sorted(tags.tolist())
    assert all(not capped and size == 5.0 for _, capped, size in p.resolved)
    p.grow(tags[:1])  # one of them is back at the top
    assert p.state[tags[0]] == 0 and tags[0] not in [r[0] for r in p.resolved] and len(p.resolved) == 3


def test_phase_bab_proves_infeasible_phase_fixings_by_the_farkas_ray():
    """Phase fixings that no input of the box realises get, from the Farkas ray, a bound above
    every value the objective column can take — a certificate of infeasibility, checked here
    against 20k sampled inputs, none of which has such a phase pattern."""
    import equivrepair.reach.phase_bab as pb
    from equivrepair.reach.bounds import merged_pre_bounds
    from equivrepair.reach.compact import build_compact

    orig, comp, on, cn, merged, lo, hi = _case(0)
    _, pre, dl = merged_pre_bounds(on, cn, lo, hi, merged)
    model = build_compact(merged, lo, hi, list(pre), None, None, dl, integer=True)
    solver = pb.PhaseBaB(model, LEAF_TOL)
    seen = []
    real = pb.PhaseBaB._node

    def node(self, fix, cost):
        out = real(self, fix, cost)
        seen.append((fix.copy(), out[0], self.h.getModelStatus() == self.hp.HighsModelStatus.kInfeasible))
        return out

    pb.PhaseBaB._node = node
    try:
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[0]] = -1.0
        r = solver.solve(cost, 30.0)
    finally:
        pb.PhaseBaB._node = real
    assert r["status"] == "optimal"
    ymax = float(model.col_upper[model.y_cols[0]] - model.col_lower[model.y_cols[0]]) + 1.0
    infeasible = [(f, b) for f, b, inf in seen if inf]
    assert infeasible and all(b > ymax for _, b in infeasible)
    # the phases of sampled inputs (the binaries of each unstable neuron, in model order)
    x = Box(lo, hi).sample(20_000, seed=0)
    phases, h = [], x
    for layer, lay in zip(merged.layers, model.layout):
        z = h @ layer.W.T + layer.b
        idx, _ = lay["phase"]
        phases.append(z[:, idx] > 0)
        h = np.maximum(z, 0.0)
    P = np.concatenate(phases, axis=1)
    for fix, _ in infeasible:
        f = fix >= 0
        assert not np.any(np.all(P[:, f] == (fix[f] == 1), axis=1))


def test_both_leaf_solvers_give_the_same_delta_max():
    """maximize's ``leaf_solver``: the phase branch and bound and HiGHS's MIP, MILP'ing every
    candidate, resolve the same δ_max (to the engine's tolerance); a misspelt solver is refused."""
    orig, comp, on, cn, merged, lo, hi = _case(1, n=3, width=14, radius=1.0)
    kw = dict(mode="max", time_limit=120, leaf_policy="always")
    a = maximize(orig, comp, lo, hi, leaf_solver="phase", **kw)
    b = maximize(orig, comp, lo, hi, leaf_solver="highs", **kw)
    assert a.finished and b.finished and a.stats["milp_leaves"] > 0 and b.stats["milp_leaves"] > 0
    ua, ub = float(np.max(a.upper)), float(np.max(b.upper))
    assert abs(ua - ub) <= 2 * (1e-6 + 1e-4 * max(ua, ub))
    with pytest.raises(ValueError, match="leaf_solver"):
        maximize(orig, comp, lo, hi, leaf_solver="cplex", **kw)
