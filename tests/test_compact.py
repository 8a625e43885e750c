"""The compact LP/MILP (stable neurons substituted away) against the full formulation.

The compact model is an exact reformulation, so its MILP optimum must equal the full model's (and
the cvxpy MILP's) and contain every sampled value; its LP may lose only the difference cuts of
pairs where both neurons are stable, so it is never tighter than the full LP. Ground truth is
sampling and the independent formulations; no number is copied into a test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equivrepair.reach.api import HIGH_DIM, evaluate
from equivrepair.reach.bounds import merged_pre_bounds
from equivrepair.reach.compact import build_compact, model_point
from equivrepair.reach.lp import build_relaxation, lp_bounds_merged
from equivrepair.reach.milp import method_milp
from equivrepair.spec.sets import Box
from tests.test_bounds import KINDS, make_pair

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sampled_max(orig, comp, box: Box, n: int = 20000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(box.lower, box.upper, size=(n, box.dim))
    return np.abs(orig.forward(x) - comp.forward(x)).max(axis=0)


def _highdim_pair(outputs: int, radius: float):
    """A random pair on HIGH_DIM + 14 inputs (the compact MILP route of ``exact``): Φ2 = Φ1 with
    weights rounded to multiples of 1/64, and an L∞ box of ``radius`` around a random centre."""
    from equivrepair.nets.ir import FNN, random_fnn

    n = HIGH_DIM + 14
    orig = random_fnn([n, 12, 10, outputs], seed=4)
    comp = FNN.from_arrays([np.round(layer.W * 64) / 64 for layer in orig.layers], [layer.b for layer in orig.layers])
    c = np.random.default_rng(0).uniform(-1, 1, n)
    return orig, comp, Box(c - radius, c + radius)


@SETTINGS
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(KINDS), radius=st.floats(0.05, 1.0))
def test_compact_lp_contains_samples_and_is_no_tighter_than_full(seed: int, kind: str, radius: float) -> None:
    orig, comp = make_pair(seed, kind)
    box = Box(-radius * np.ones(orig.n_inputs), radius * np.ones(orig.n_inputs))
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    full = lp_bounds_merged(net, box.lower, box.upper, pre, delta_bounds=delta)
    comp_lp = lp_bounds_merged(net, box.lower, box.upper, pre, delta_bounds=delta, compact=True)
    x = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(2000, box.dim))
    d = orig.forward(x) - comp.forward(x)
    tol = 1e-7 * (1.0 + np.abs(d).max())
    assert np.all(d.max(axis=0) <= comp_lp.upper + tol)
    assert np.all(d.min(axis=0) >= comp_lp.lower - tol)
    assert np.all(comp_lp.upper >= full.upper - 1e-6 * (1 + np.abs(full.upper)))
    assert np.all(comp_lp.lower <= full.lower + 1e-6 * (1 + np.abs(full.lower)))


@pytest.mark.parametrize("kind", ["perturbed", "rounded", "wider", "deeper"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compact_milp_agrees_with_full_cvxpy_milp(kind: str, seed: int) -> None:
    orig, comp = make_pair(seed, kind)
    box = Box(-np.ones(orig.n_inputs), np.ones(orig.n_inputs))
    full = method_milp(orig, comp, box, time_limit=60)
    fast = method_milp(orig, comp, box, time_limit=60, compact=True, backend="highs")
    assert full.status == fast.status == "exact"
    tol = 1e-5 * (1.0 + full.upper)
    assert abs(full.upper - fast.upper) <= tol
    np.testing.assert_allclose(fast.per_output, full.per_output, atol=tol)
    smax = _sampled_max(orig, comp, box)
    assert smax.max() <= fast.upper + 1e-9
    w = fast.witness
    assert np.isclose(np.abs(orig.forward(w) - comp.forward(w)).max(), fast.lower, rtol=0, atol=1e-12)
    assert fast.upper - fast.lower <= tol
    assert fast.stats["formulation"] == "compact" and "direct" in fast.stats["backend"]


def test_compact_model_has_columns_only_for_needed_neurons() -> None:
    orig, comp = make_pair(5, "rounded")
    box = Box(-0.3 * np.ones(orig.n_inputs), 0.3 * np.ones(orig.n_inputs))
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    full = build_relaxation(net, box.lower, box.upper, pre, None, None, delta, integer=True)
    small = build_compact(net, box.lower, box.upper, pre, None, None, delta, integer=True)
    assert small.integer_cols.size == full.integer_cols.size == full.n_unstable
    assert small.n_cols <= full.n_cols
    unstable = sum(int(((lo < 0) & (hi > 0)).sum()) for lo, hi in pre[:-1])
    # per needed neuron at most z, a and a binary; plus the inputs and the outputs
    assert small.n_cols <= box.dim + 3 * 2 * unstable + net.n_outputs


def test_high_dimensional_exact_runs_the_compact_milp_and_is_sound() -> None:
    orig, comp, box = _highdim_pair(3, 0.05)
    res = evaluate(orig, comp, box, method="exact", time_limit=60)
    ref = method_milp(orig, comp, box, time_limit=60, mode="max")
    assert res.status == "exact" and ref.status == "exact"
    assert res.stats["formulation"] == "compact"
    smax = _sampled_max(orig, comp, box, n=50000).max()
    assert smax <= res.upper + 1e-9
    assert abs(res.delta_max - ref.delta_max) <= max(1e-6, 1e-4 * ref.delta_max) + 1e-6 * (1 + ref.delta_max)
    # the witness is a real input whose discrepancy is the reported lower bound
    w = res.witness
    assert np.all(w >= box.lower) and np.all(w <= box.upper)
    assert np.isclose(np.abs(orig.forward(w) - comp.forward(w)).max(), res.lower, rtol=0, atol=1e-12)


@pytest.mark.parametrize("factor", [0.5, 0.98, 1.02, 2.0])
def test_high_dimensional_check_decides_like_the_exact_delta(factor: float) -> None:
    from equivrepair.nets.ir import FNN, random_fnn
    from equivrepair.reach.api import check

    n = HIGH_DIM + 10
    orig = random_fnn([n, 10, 8, 3], seed=11)
    comp = FNN.from_arrays([np.round(layer.W * 32) / 32 for layer in orig.layers], [layer.b for layer in orig.layers])
    c = np.random.default_rng(1).uniform(-1, 1, n)
    box = Box(c - 0.05, c + 0.05)
    ref = method_milp(orig, comp, box, time_limit=60, mode="max")
    assert ref.status == "exact"
    eps = factor * ref.delta_max
    dec = check(orig, comp, box, eps, time_limit=60)
    if factor < 1:
        assert dec.verdict == "not_equivalent"
        x = dec.counterexample
        assert np.all(x >= box.lower) and np.all(x <= box.upper)
        assert np.abs(orig.forward(x) - comp.forward(x)).max() >= eps
    else:
        assert dec.verdict == "equivalent"
        assert dec.upper < eps


@pytest.mark.parametrize("mip_solver", ["highs", "phase"])
@pytest.mark.parametrize("loosen", [0.0, 1.0])
def test_mode_max_labels_a_time_limited_milp_by_its_bound(monkeypatch, loosen: float, mip_solver: str) -> None:
    """A MILP stopped at its time share still settles its objective when its sound bound is within
    the tolerance of the best witness (exact); a bound further away leaves the result bounded.
    With either MILP solver."""
    from equivrepair.nets.ir import FNN, random_fnn
    from equivrepair.reach import milp as milp_mod
    from equivrepair.reach.phase_bab import PhaseBaB

    n = HIGH_DIM + 14
    orig = random_fnn([n, 12, 10, 3], seed=4)
    comp = FNN.from_arrays([np.round(layer.W * 64) / 64 for layer in orig.layers], [layer.b for layer in orig.layers])
    c = np.random.default_rng(0).uniform(-1, 1, n)
    box = Box(c - 0.05, c + 0.05)
    cls = PhaseBaB if mip_solver == "phase" else milp_mod._HighsMILP
    real = cls.solve

    def stopped_early(self, cost, time_limit, *args, **kw):
        out = real(self, cost, time_limit, *args, **kw)
        assert out["status"] in ("optimal", "interrupted")  # interrupted: settled by the cutoff
        out["status"] = "time_limit"  # same bound and incumbent, as if the share had run out
        out["bound"] -= loosen  # a minimisation's dual bound: lower is looser
        return out

    ref = evaluate(orig, comp, box, method="exact", time_limit=60, mip_solver=mip_solver)
    monkeypatch.setattr(cls, "solve", stopped_early)
    res = evaluate(orig, comp, box, method="exact", time_limit=60, mip_solver=mip_solver)
    assert res.stats["milps"] >= 1 and "time_limit" in res.stats["milp_status"].values()
    assert res.lower <= res.upper
    if loosen == 0.0:
        assert ref.status == res.status == "exact"
        assert res.delta_max == pytest.approx(ref.delta_max, abs=1e-9)
    else:
        assert res.status == "bounded" and res.delta_max is None
        assert "time limit reached" in res.message  # said from the objectives' kept records
        # the loosened MILP bound leaves the objective at its (sound, looser) LP bound
        assert res.upper > ref.delta_max + 1e-3


def test_highs_milp_runs_after_another_library_sized_the_thread_scheduler() -> None:
    """HiGHS keeps one thread scheduler per process, sized by its first run; since highspy 1.16 an
    instance asking for another thread count afterwards does not run at all (model status "Not
    Set"), which silently turned every compact MILP into a 'bounded' LP result whenever cvxpy's
    HiGHS had run first. After a 2-thread HiGHS run, the compact MILP must still solve to optimality
    and agree with the cvxpy MILP."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 2)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = 1, 0
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.array([1.0]), np.array([0.0]), np.array([1.0])
    h.passModel(lp)
    h.run()
    orig, comp = make_pair(2, "rounded")
    box = Box(-np.ones(orig.n_inputs), np.ones(orig.n_inputs))
    fast = method_milp(orig, comp, box, time_limit=60, compact=True, backend="highs")
    full = method_milp(orig, comp, box, time_limit=60)
    assert fast.status == full.status == "exact"
    assert abs(fast.delta_max - full.delta_max) <= 1e-5 * (1 + full.delta_max)


def test_highs_options_are_typed_applied_and_checked() -> None:
    from equivrepair.reach.lp import new_highs, set_highs_options

    h = new_highs()
    set_highs_options(h, {"mip_pscost_minreliable": "0", "mip_detect_symmetry": "off", "mip_rel_gap": "1e-6"})
    assert h.getOptionValue("mip_pscost_minreliable")[1] == 0
    assert h.getOptionValue("mip_detect_symmetry")[1] is False
    assert h.getOptionValue("mip_rel_gap")[1] == 1e-6
    set_highs_options(h, {"presolve": "off", "mip_detect_symmetry": True})
    assert h.getOptionValue("presolve")[1] == "off" and h.getOptionValue("mip_detect_symmetry")[1] is True
    with pytest.raises(ValueError, match="mip_pscost_minreliablee"):
        set_highs_options(h, {"mip_pscost_minreliablee": 0})
    with pytest.raises(ValueError, match="mip_pscost_minreliable.*not a valid int"):
        set_highs_options(h, {"mip_pscost_minreliable": "eight"})
    with pytest.raises(ValueError, match="mip_detect_symmetry"):
        set_highs_options(h, {"mip_detect_symmetry": "maybe"})
    with pytest.raises(ValueError, match="threads"):
        set_highs_options(h, {"threads": 2})
    with pytest.raises(ValueError, match="objective_bound"):  # the MILPs' cutoff, not the user's
        set_highs_options(h, {"objective_bound": 0.0})


def test_exact_with_highs_options_gives_the_same_delta_and_rejects_bad_options() -> None:
    orig, comp, box = _highdim_pair(3, 0.05)
    base = evaluate(orig, comp, box, method="exact", time_limit=60)
    opts = {"mip_pscost_minreliable": 0, "presolve": "on"}
    tuned = evaluate(orig, comp, box, method="exact", time_limit=60, highs_options=opts)
    assert base.status == tuned.status == "exact"
    assert abs(base.delta_max - tuned.delta_max) <= max(1e-6, 1e-4 * base.delta_max) + 1e-6
    with pytest.raises(ValueError, match="no_such_option"):
        evaluate(orig, comp, box, method="exact", time_limit=60, highs_options={"no_such_option": 1})
    with pytest.raises(ValueError, match="backend='highs'"):
        method_milp(orig, comp, box, time_limit=60, highs_options=opts)


def test_highs_options_on_the_input_splitting_route_raise_naming_why() -> None:
    from equivrepair.nets.ir import random_fnn
    from equivrepair.reach.api import check

    orig, comp = random_fnn([3, 8, 2], seed=1), random_fnn([3, 8, 2], seed=2)
    box = Box(-np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="highs_options applies to the MILP route.*3 free inputs"):
        evaluate(orig, comp, box, method="exact", highs_options={"presolve": "off"})
    with pytest.raises(ValueError, match="highs_options applies to the MILP route"):
        check(orig, comp, box, 0.1, highs_options={"presolve": "off"})


@SETTINGS
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(KINDS), radius=st.floats(0.05, 1.0))
def test_model_point_is_a_feasible_mip_solution(seed: int, kind: str, radius: float) -> None:
    """The MIP start at an input x (every column of the compact MILP: pre-activations,
    activations, phases, outputs) satisfies every row and bound of the model and carries
    Φ1(x) − Φ2(x) in its output columns, so HiGHS can take it as an incumbent."""
    from equivrepair.reach.compact import model_point

    orig, comp = make_pair(seed, kind)
    box = Box(-radius * np.ones(orig.n_inputs), radius * np.ones(orig.n_inputs))
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    model = build_compact(net, box.lower, box.upper, pre, delta_bounds=delta, integer=True)
    xs = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(20, box.dim))
    xs = np.vstack([xs, box.lower, box.upper])
    for x in xs:
        v = model_point(net, model, x)
        scale = 1.0 + np.abs(v).max()
        act = model.A @ v
        assert np.all(act >= model.row_lower - 1e-9 * scale) and np.all(act <= model.row_upper + 1e-9 * scale)
        assert np.all(v >= model.col_lower) and np.all(v <= model.col_upper)
        assert np.all(np.isin(v[model.integer_cols], (0.0, 1.0)))
        np.testing.assert_allclose(v[model.y_cols], orig.forward(x) - comp.forward(x), atol=1e-9 * scale)
    assert model_point(net, build_relaxation(net, box.lower, box.upper, pre, integer=True), xs[0]) is None


def test_a_mip_start_changes_no_result() -> None:
    """With or without the MIP starts (the best known point per objective), the compact MILP
    finds the same δ_max on pairs of every kind."""
    for seed, kind in ((1, "perturbed"), (2, "rounded"), (3, "wider"), (4, "deeper")):
        orig, comp = make_pair(seed, kind)
        box = Box(-np.ones(orig.n_inputs), np.ones(orig.n_inputs))
        runs = [
            method_milp(orig, comp, box, time_limit=60, compact=True, backend="highs", mip_start=ms)
            for ms in (False, True)
        ]
        assert runs[0].status == runs[1].status == "exact"
        assert abs(runs[0].upper - runs[1].upper) <= 1e-6 * (1.0 + runs[0].upper)
        assert runs[1].lower <= runs[1].upper


def _cutoff_case(seed: int):
    """A random high-dimensional pair, its 1/32-rounded copy and the compact MILP of a 0.2 box."""
    from equivrepair.nets.ir import FNN, random_fnn

    n = HIGH_DIM + 6
    orig = random_fnn([n, 8, 6, 3], seed=seed)
    comp = FNN.from_arrays([np.round(layer.W * 32) / 32 for layer in orig.layers], [layer.b for layer in orig.layers])
    c0 = np.random.default_rng(seed).uniform(-1, 1, n)
    box = Box(c0 - 0.2, c0 + 0.2)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    model = build_compact(net, box.lower, box.upper, pre, None, None, delta, integer=True)
    return orig, comp, box, net, model


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_highs_milp_cutoff_bound_is_sound_on_both_sides_of_the_optimum(seed: int) -> None:
    """``_HighsMILP.solve(cutoff=c)``: HiGHS prunes every node that cannot go below c, so its own
    dual bound says nothing about them and the returned bound is min(dual bound, c). Against the
    uncut optimum m*: a cutoff above m* still finds m* (and bounds it); one below m* returns a
    bound that is <= m* yet settles the question, i.e. >= c up to the gap tolerance."""
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(seed)
    assert model.integer_cols.size >= 4  # a real branch and bound, not one LP
    tol = 1e-6
    full = method_milp(orig, comp, box, time_limit=120)  # the cvxpy MILP of the full network
    assert full.status == "exact"
    for k in range(3):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -1.0  # the maximum of output k of Φ1 − Φ2
        ref = _HighsMILP(model, tol).solve(cost, 60.0)
        assert ref["status"] == "optimal"
        m_star = ref["value"]
        assert ref["bound"] <= m_star + 1e-9 * (1 + abs(m_star))
        # the independent formulation agrees on the uncut optimum
        assert -m_star == pytest.approx(full.per_output[k, 1], abs=1e-5 * (1 + abs(m_star)))
        # the attained maximum is also seen by sampling (no sample above it)
        x = box.sample(20_000, seed=seed)
        assert np.max(orig.forward(x)[:, k] - comp.forward(x)[:, k]) <= -m_star + 1e-6 * (1 + abs(m_star))
        span = 0.2 * (1.0 + abs(m_star))
        x0 = x[int(np.argmin(comp.forward(x)[:, k] - orig.forward(x)[:, k]))]
        start = model_point(net, model, x0)  # a feasible MIP start, from the best sample
        for c, x_start in itertools.product(
            (m_star + span, m_star + 1e-3 * span, m_star - 1e-3 * span, m_star - span), (None, start)
        ):
            r = _HighsMILP(model, tol).solve(cost, 60.0, start=x_start, cutoff=c)
            assert r["status"] in ("optimal", "interrupted")
            assert r["bound"] <= m_star + 1e-7 * (1 + abs(m_star)), (c, r)  # sound
            if c > m_star:  # a solution below the cutoff exists: found, optimal
                assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
            else:  # nothing below c: the bound says so
                assert r["bound"] >= c - 1e-6 * (1 + abs(c))


@pytest.mark.parametrize("solver_name", ["highs", "phase"])
def test_a_better_witness_from_another_worker_stops_a_milp_soundly(solver_name: str, monkeypatch) -> None:
    """``settle_level`` (both MILP solvers): a MILP of mode max also stops once its bound settles
    the objective against the best witness any worker has found since it started (read from a
    shared value, as in a worker). Its bound stays sound (never above the optimum); with no
    witness shared it runs to the optimum."""
    import multiprocessing as mp

    from equivrepair.nets.ir import FNN, random_fnn
    from equivrepair.reach import milp

    n = HIGH_DIM + 6
    orig = random_fnn([n, 8, 6, 3], seed=1)
    comp = FNN.from_arrays([np.round(layer.W * 32) / 32 for layer in orig.layers], [layer.b for layer in orig.layers])
    c0 = np.random.default_rng(1).uniform(-1, 1, n)
    box = Box(c0 - 0.2, c0 + 0.2)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    model = build_compact(net, box.lower, box.upper, pre, None, None, delta, integer=True)
    tol = 1e-6
    for k in range(3):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -1.0
        ref = milp._HighsMILP(model, tol).solve(cost, 60.0)
        assert ref["status"] == "optimal"
        opt = -ref["value"]  # the maximum of output k of Φ1 − Φ2
        for best, settles in (
            (-np.inf, False),
            (opt - 0.2 * (1 + abs(opt)), False),
            (opt + 0.2 * (1 + abs(opt)), True),
            (1e3, True),
        ):
            solver = milp._new_solver(model, tol, None, None, solver_name == "phase")
            monkeypatch.setattr(milp, "_SHARED_BEST", mp.Value("d", best))  # as in a worker
            solver.settle_level = lambda: milp._shared_settling_level(tol)
            r = solver.solve(cost, 60.0)
            assert r["bound"] <= -opt + 1e-7 * (1 + abs(opt))  # sound
            if settles:  # a witness above this objective's maximum: settled, maybe before the optimum
                assert r["status"] in ("optimal", "interrupted")
                assert r["bound"] >= milp._settling_dual_bound(best, tol) - 1e-9 or r["status"] == "optimal"
                if best == 1e3:  # settled by the root's bound: stopped there, not solved on
                    assert r["status"] == "interrupted" and r["nodes"] <= 1
            else:  # nothing settles it short of the optimum
                assert r["status"] == "optimal"
                assert -r["value"] == pytest.approx(opt, abs=1e-6 * (1 + abs(opt)))


@pytest.mark.parametrize("mip_solver", ["highs", "phase"])
@pytest.mark.parametrize("kind", ["rounded", "perturbed", "highdim"])
def test_workers_solve_the_objectives_side_by_side_with_the_same_delta(kind: str, mip_solver: str) -> None:
    """``workers=2`` (mode max): the objectives' MILPs run in two worker processes, each pruning
    against the best witness so far, with either MILP solver (the phase solver values its
    incumbents on the networks the workers inherit). Same δ_max as one process to the
    tolerance; the witness is a real input attaining ``lower``; no sample beats ``upper``."""
    if kind == "highdim":
        orig, comp, box = _highdim_pair(4, 0.1)
    else:
        orig, comp = make_pair(2, kind)
        box = Box(-np.ones(orig.n_inputs), np.ones(orig.n_inputs))
    opts = dict(time_limit=60, compact=True, backend="highs", mode="max", atol=1e-6, rtol=1e-4)
    one = method_milp(orig, comp, box, **opts)
    two = method_milp(orig, comp, box, workers=2, mip_solver=mip_solver, **opts)
    assert one.status == two.status == "exact"
    assert two.stats["mip_solver"] == {"highs": "_HighsMILP", "phase": "PhaseBaB"}[mip_solver]
    assert one.stats["workers"] == 1
    assert two.stats["workers"] == 2 and two.stats["milps"] >= 2  # more than one objective needed a MILP
    assert abs(one.delta_max - two.delta_max) <= max(1e-6, 1e-4 * one.delta_max) + 1e-6 * (1 + one.delta_max)
    w = two.witness
    assert np.all(w >= box.lower) and np.all(w <= box.upper)
    assert np.isclose(np.abs(orig.forward(w) - comp.forward(w)).max(), two.lower, rtol=0, atol=1e-12)
    assert _sampled_max(orig, comp, box).max() <= two.upper + 1e-9


def test_idle_workers_run_the_other_solver_on_a_running_objective() -> None:
    """``workers=2`` with ``mip_solver="auto"``: a worker with no objective left to start solves a
    running objective's MILP with the other solver (the portfolio); the first copy to settle it
    stops the other. Same δ_max as one process; an explicit solver gets no second copy."""
    orig, comp, box = _highdim_pair(4, 0.1)
    opts = dict(time_limit=60, compact=True, backend="highs", mode="max", atol=1e-6, rtol=1e-4)
    one = method_milp(orig, comp, box, **opts)
    two = method_milp(orig, comp, box, workers=2, **opts)
    assert one.status == two.status == "exact" and two.stats["workers"] == 2
    assert two.stats["portfolio_copies"] >= 1
    kept = two.stats["milp_solver_kept"]
    assert kept.keys() == two.stats["milp_status"].keys() and set(kept.values()) <= {"phase", "highs"}
    assert abs(one.delta_max - two.delta_max) <= max(1e-6, 1e-4 * one.delta_max) + 1e-6 * (1 + one.delta_max)
    assert _sampled_max(orig, comp, box).max() <= two.upper + 1e-9
    fixed = method_milp(orig, comp, box, workers=2, mip_solver="highs", **opts)
    assert fixed.stats["portfolio_copies"] == 0 and set(fixed.stats["milp_solver_kept"].values()) == {"highs"}


@pytest.mark.parametrize("phase", [False, True])
def test_a_copy_stops_once_the_other_has_settled_its_objective(phase: bool, monkeypatch) -> None:
    """The portfolio's stop flag: a worker's MILP whose objective another copy has settled stops at
    its next check (HiGHS's callback, the phase solver's next node) as ``interrupted``, with a
    bound that is still sound; with the flag clear it runs to the optimum."""
    import multiprocessing as mp

    from equivrepair.reach import milp

    orig, comp, box, net, model = _cutoff_case(0)
    tol = 1e-6
    cost = np.zeros(model.n_cols)
    cost[model.y_cols[0]] = -1.0
    ref = milp._HighsMILP(model, tol).solve(cost, 60.0)
    assert ref["status"] == "optimal"
    for flag in (0, 1):
        stop = mp.Array("b", 2 * orig.n_outputs)
        stop[milp._objective_index((0, 1))] = flag
        monkeypatch.setattr(milp, "_STOP", stop)
        monkeypatch.setattr(milp, "_NETS", (orig, comp))
        monkeypatch.setattr(milp, "_SHARED_BEST", None)
        r = milp._milp_job(model, tol, None, None, cost, None, {}, (0, 1), phase)
        assert r["solver"] == ("phase" if phase else "highs")
        assert r["bound"] <= ref["value"] + 1e-7 * (1 + abs(ref["value"]))  # sound either way
        if flag:
            assert r["status"] == "interrupted" and r["nodes"] <= 1
        else:
            assert r["status"] == "optimal"
            assert r["value"] == pytest.approx(ref["value"], abs=1e-6 * (1 + abs(ref["value"])))


def test_exact_passes_workers_to_the_milp_route() -> None:
    """``evaluate(..., workers=2)`` on more than HIGH_DIM free inputs runs the objectives' MILPs
    in worker processes when more than one needs a MILP, and gives the same δ_max."""
    orig, comp, box = _highdim_pair(4, 0.1)
    one = evaluate(orig, comp, box, method="exact", time_limit=60)
    two = evaluate(orig, comp, box, method="exact", time_limit=60, workers=2)
    assert one.status == two.status == "exact"
    assert two.stats["workers"] == 2
    assert abs(one.delta_max - two.delta_max) <= max(1e-6, 1e-4 * one.delta_max) + 1e-6 * (1 + one.delta_max)


def _die(*args) -> None:
    import os

    os._exit(3)


def test_a_failed_worker_leaves_the_milps_to_this_process(monkeypatch) -> None:
    """A worker process that dies (here: exits at its first MILP) breaks the pool; the run goes on
    in this process, says so, and still finds the exact δ_max."""
    import equivrepair.reach.milp as milp_mod

    orig, comp = make_pair(2, "rounded")
    box = Box(-np.ones(orig.n_inputs), np.ones(orig.n_inputs))
    opts = dict(time_limit=60, compact=True, backend="highs", mode="max", atol=1e-6, rtol=1e-4)
    one = method_milp(orig, comp, box, **opts)
    monkeypatch.setattr(milp_mod, "_milp_job", _die)
    two = method_milp(orig, comp, box, workers=2, **opts)
    assert two.status == "exact" and two.stats["workers"] == 1
    assert "worker processes failed" in two.message
    assert abs(one.delta_max - two.delta_max) <= max(1e-6, 1e-4 * one.delta_max) + 1e-6 * (1 + one.delta_max)


def test_workers_on_a_real_mnist_pair_keep_every_bound_in_order(data) -> None:
    """mnist_relu_3_100 vs its 16-bit copy, ±1 pixel around test image 4, where three objectives
    need a MILP: with two workers (actually used) and with one, lower <= δ_max, every sample <=
    δ_max <= the differential and LP over-approximations, the witness attains lower on the
    original networks, and the two exact runs agree to the tolerance."""
    from tests.test_relu_split import _mnist_pair

    orig, comp, X = _mnist_pair(data, 5)
    v = X[4].reshape(-1).astype(float)
    box = Box(np.clip(v - 1, 0, 255), np.clip(v + 1, 0, 255))
    one = evaluate(orig, comp, box, time_limit=60)
    two = evaluate(orig, comp, box, time_limit=60, workers=2)
    assert two.stats["workers"] == 2 and two.stats["milps"] >= 2
    assert two.stats["mip_solver"] == "PhaseBaB"  # a small model: the workers run the phase solver
    overs = [evaluate(orig, comp, box, method=m).upper for m in ("differential", "lp")]
    smax = _sampled_max(orig, comp, box, n=20000).max()
    for r in (one, two):
        assert r.status == "exact"
        attained = np.abs(orig.forward(r.witness) - comp.forward(r.witness)).max()
        assert attained == pytest.approx(r.lower, rel=1e-12)
        assert r.lower <= r.delta_max and smax <= r.delta_max
        assert all(r.delta_max <= u for u in overs)
    tol = max(1e-6, 1e-4 * one.delta_max)
    assert abs(one.delta_max - two.delta_max) <= 2 * tol


def _mnist_256x4_ball(data, image: int, p: int):
    """mnist-net_256x4 (inputs in [0, 1]), its 8-bit copy (the benchmark's round8) and the ±p/255
    ball around MNIST test image ``image``, clipped to [0, 1]."""
    from equivrepair.data.mnist import load_mnist
    from equivrepair.nets.onnx_io import load_onnx
    from tests.conftest import round8

    orig = load_onnx(data / "mnistfc" / "mnist-net_256x4.onnx")
    X, _ = load_mnist(data / "mnist", split="test", scale="byte", limit=image + 1)
    v = X[image].reshape(-1).astype(float)
    return orig, round8(orig), Box(np.clip(v - p, 0, 255) / 255, np.clip(v + p, 0, 255) / 255)


def test_a_stalled_primal_simplex_lp_is_finished_by_dual_simplex(data) -> None:
    """mnist-net_256x4 vs 8-bit, ±1/255 around test image 97: HiGHS's warm primal simplex stalls on
    the first settling LP (hundreds of thousands of iterations on 110 rows; this instance used to
    spend its whole time limit there). The iteration cap hands it to dual simplex: every LP of the
    compact model is optimal within seconds, with the values of a cold dual-simplex solve, and the
    exact δ_max follows well inside the limit."""
    import time

    from equivrepair.reach.bounds import differential_output_bounds
    from equivrepair.reach.lp import _HighsLP, highs_model

    orig, comp, box = _mnist_256x4_ball(data, 97, 1)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    d = differential_output_bounds(orig, comp, box.lower, box.upper)
    pre[-1] = (np.maximum(pre[-1][0], d[0]), np.minimum(pre[-1][1], d[1]))
    model = build_compact(net, box.lower, box.upper, pre, None, None, delta, integer=False)
    t0 = time.perf_counter()
    lp = _HighsLP(model, 60.0, t0)
    cold = highs_model(model)
    cold.setOptionValue("simplex_strategy", 1)
    for k in range(model.y_cols.size):
        for s in (1.0, -1.0):
            cost = np.zeros(model.n_cols)
            cost[model.y_cols[k]] = s
            st, val, _, _ = lp(cost)
            cold.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), cost)
            cold.run()
            assert st == "optimal"
            ref = cold.getInfo().objective_function_value
            assert val == pytest.approx(ref, abs=1e-9 * (1 + abs(ref)))
    assert lp.stalls >= 1  # the instance still stalls primal simplex: the cap is what is tested
    assert time.perf_counter() - t0 < 20.0
    r = evaluate(orig, comp, box, time_limit=60)
    assert r.status == "exact" and r.stats["time"] < 30.0
    attained = np.abs(orig.forward(r.witness) - comp.forward(r.witness)).max()
    assert attained == pytest.approx(r.lower, rel=1e-12)
    x = np.random.default_rng(0).uniform(box.lower, box.upper, size=(20000, box.dim))
    assert np.abs(orig.forward(x) - comp.forward(x)).max() <= r.delta_max


def test_every_primal_run_capped_at_once_gives_the_same_lp_values(monkeypatch) -> None:
    """With an iteration cap of one, the first settling LP is handed from primal to dual simplex,
    which the model then keeps: every value is that of the uncapped primal runs (the fallback
    changes the path, not the optimum)."""
    import time

    import equivrepair.reach.lp as lpmod

    orig, comp = make_pair(7, "rounded")
    box = Box(-0.5 * np.ones(orig.n_inputs), 0.5 * np.ones(orig.n_inputs))
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    model = build_compact(net, box.lower, box.upper, pre, None, None, delta, integer=False)
    plain = lpmod._HighsLP(model, None, time.perf_counter())
    monkeypatch.setattr(lpmod, "_primal_iteration_cap", lambda rows, cols: 1)
    capped = lpmod._HighsLP(model, None, time.perf_counter())
    for k in range(model.y_cols.size):
        for s in (1.0, -1.0):
            cost = np.zeros(model.n_cols)
            cost[model.y_cols[k]] = s
            (st_a, a, _, _), (st_b, b, _, _) = plain(cost), capped(cost)
            assert st_a == st_b == "optimal"
            assert b == pytest.approx(a, abs=1e-9 * (1 + abs(a)))
    assert plain.stalls == 0 and capped.stalls == 1


def test_mode_max_skips_the_lps_the_differential_bounds_settle_and_keeps_delta(data, monkeypatch) -> None:
    """The real 3x100 pair at ±1 around test image 0 (36 unstable neurons): mode max solves only
    the settling LPs that the differential bounds and the sampled witness leave open (fewer than
    the 20 of mode all), and its δ_max is the largest exact per-output bound of mode all (every LP
    and MILP solved); with the unstable-neuron limit below 36 it solves all 20 LPs again for
    HiGHS's MIP solver, and still skips them for the phase branch and bound (36 <= 60 binaries)."""
    import equivrepair.reach.milp as milpmod
    from tests.test_relu_split import _mnist_pair

    orig, comp, X = _mnist_pair(data, 1)
    v = X[0].reshape(-1).astype(float)
    box = Box(np.clip(v - 1, 0, 255), np.clip(v + 1, 0, 255))
    kw = dict(time_limit=120, compact=True, backend="highs")
    fast = method_milp(orig, comp, box, mode="max", atol=1e-6, rtol=1e-4, **kw)
    full = method_milp(orig, comp, box, mode="all", **kw)
    assert fast.status == full.status == "exact"
    assert fast.stats["lps"] < 20 == full.stats["lps"]
    ref = float(np.max(np.abs(full.per_output)))
    assert abs(fast.delta_max - ref) <= max(1e-6, 1e-4 * ref) + 1e-6 * (1 + ref)
    # the skipped objectives keep sound (looser) per-output bounds: every sample lies inside
    x = np.random.default_rng(0).uniform(box.lower, box.upper, size=(20000, box.dim))
    d = orig.forward(x) - comp.forward(x)
    assert np.all(d >= fast.per_output[:, 0] - 1e-9) and np.all(d <= fast.per_output[:, 1] + 1e-9)
    assert np.all(fast.per_output[:, 0] <= full.per_output[:, 0] + 1e-6)
    assert np.all(fast.per_output[:, 1] >= full.per_output[:, 1] - 1e-6)
    assert fast.stats["mip_solver"] == "PhaseBaB"
    monkeypatch.setattr(milpmod, "LP_SKIP_MAX_UNSTABLE", 0)
    every = method_milp(orig, comp, box, mode="max", atol=1e-6, rtol=1e-4, mip_solver="highs", **kw)
    assert every.stats["lps"] == 20 and every.status == "exact"
    assert abs(every.delta_max - ref) <= max(1e-6, 1e-4 * ref) + 1e-6 * (1 + ref)
    phase = method_milp(orig, comp, box, mode="max", atol=1e-6, rtol=1e-4, **kw)
    assert phase.stats["mip_solver"] == "PhaseBaB" and phase.stats["lps"] == fast.stats["lps"] < 20
    assert phase.status == "exact" and abs(phase.delta_max - ref) <= max(1e-6, 1e-4 * ref) + 1e-6 * (1 + ref)


@pytest.mark.parametrize("branching", ["violation", "pseudocost"])
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_phase_bab_cutoff_and_start_are_sound_on_both_sides_of_the_optimum(seed: int, branching: str) -> None:
    """``PhaseBaB.solve(cutoff=c, start=...)`` against HiGHS's MIP optimum m* of the same model:
    without a cutoff it finds m* (both branchings); a cutoff above m* still finds it; one below
    m* returns a bound <= m* that settles the question (>= c), with status optimal. The start's
    value, taken on the networks, is the first incumbent: never worse than what is returned."""
    from equivrepair.reach.milp import _HighsMILP
    from equivrepair.reach.phase_bab import PhaseBaB

    orig, comp, box, net, model = _cutoff_case(seed)
    assert model.integer_cols.size >= 4
    for k in range(3):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -1.0  # the maximum of output k of Φ1 − Φ2

        def value_at(x, k=k):
            return -float(orig.forward(x)[k] - comp.forward(x)[k])

        m_star = _HighsMILP(model, 1e-9).solve(cost, 60.0)["value"]
        r = PhaseBaB(model, 1e-9, branching=branching).solve(cost, 60.0, value_at=value_at)
        assert r["status"] == "optimal"
        assert r["bound"] <= m_star + 1e-7 * (1 + abs(m_star))
        assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
        x = box.sample(2000, seed=seed)
        x0 = x[int(np.argmin(comp.forward(x)[:, k] - orig.forward(x)[:, k]))]
        start = model_point(net, model, x0)
        span = 0.2 * (1.0 + abs(m_star))
        for c in (m_star + span, m_star + 1e-3 * span, m_star - 1e-3 * span, m_star - span):
            r = PhaseBaB(model, 1e-9, branching=branching).solve(cost, 60.0, start=start, value_at=value_at, cutoff=c)
            assert r["status"] == "optimal"
            assert r["bound"] <= m_star + 1e-7 * (1 + abs(m_star)), (c, r)  # sound
            assert r["value"] <= value_at(x0) + 1e-12  # the start was an incumbent
            if c > m_star:
                assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
            else:
                assert r["bound"] >= c


def test_phase_route_without_binaries_still_solves_the_settling_lps(monkeypatch) -> None:
    """On the phase route the settling LPs are left to the phase solver's root; should the compact
    model then have no binary (its own interval bounds stabilised the neurons the pre-activation
    bounds left open), the network is linear on the box and the LPs are the answer: they must
    run, not the output bounds so far be reported as exact. Forced here on a box where every
    neuron is stable, by a mask that claims one unstable neuron and output bounds widened by 1
    (still sound), which no witness settles."""
    import equivrepair.reach.milp as milpmod

    orig, comp, box0, _, _ = _cutoff_case(0)
    c0 = 0.5 * (box0.lower + box0.upper)
    kw = dict(mode="max", compact=True, backend="highs", atol=1e-9, rtol=1e-7, time_limit=60)
    for r in (0.01, 1e-3, 1e-4, 1e-5, 1e-6):
        box = Box(c0 - r, c0 + r)
        ref = method_milp(orig, comp, box, **kw)
        if ref.stats["binaries"] == 0:
            break
    assert ref.stats["binaries"] == 0 and ref.status == "exact"

    def one_unstable(pre):
        masks = [np.zeros(lo.size, dtype=bool) for lo, _ in pre[:-1]]
        masks[0][0] = True
        return masks

    real_pre, real_diff = milpmod.merged_pre_bounds, milpmod.differential_output_bounds

    def wide_pre(*a, **k):
        net, pre, delta = real_pre(*a, **k)
        pre[-1] = (pre[-1][0] - 1.0, pre[-1][1] + 1.0)
        return net, pre, delta

    def wide_diff(*a, **k):
        out = real_diff(*a, **k)
        return None if out is None else (out[0] - 1.0, out[1] + 1.0)

    monkeypatch.setattr(milpmod, "unstable_mask", one_unstable)
    monkeypatch.setattr(milpmod, "merged_pre_bounds", wide_pre)
    monkeypatch.setattr(milpmod, "differential_output_bounds", wide_diff)
    res = method_milp(orig, comp, box, **kw)
    assert res.stats["binaries"] == 0 and res.stats["mip_solver"] is None
    assert res.stats["lps"] > 0  # the LPs the phase root would have solved ran here
    assert res.status == "exact"
    assert abs(res.delta_max - ref.delta_max) <= 1e-7 * (1 + ref.delta_max)
    assert res.delta_max - res.lower <= 1e-7 * (1 + res.delta_max)
    x = box.sample(5000, seed=1)
    d = np.max(np.abs(orig.forward(x) - comp.forward(x)))
    assert d <= res.delta_max + 1e-9 and res.lower <= res.delta_max + 1e-12


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_phase_bab_starts_each_lp_from_its_parents_basis(seed: int, monkeypatch) -> None:
    """With ``restore_basis`` (the default) every node and strong-branching LP after the root is
    started from a stored basis, which must be a basis of this LP (as many statuses as columns
    and rows, the pair-hull cuts in the LP included); with it off none is. Both reach HiGHS's MIP optimum m* with a sound bound:
    the start only changes the simplex path."""
    import equivrepair.reach.phase_bab as pb
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(seed)
    for k in range(2):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -1.0
        m_star = _HighsMILP(model, 1e-9).solve(cost, 60.0)["value"]
        for restore in (True, False):
            solver = pb.PhaseBaB(model, 1e-9, branching="pseudocost")
            solver.restore_basis = restore
            started: list = []
            real = solver.h.setBasis

            def spy(basis, real=real, started=started, solver=solver):
                # the LP's rows: the model's and the pair-hull cuts in it now
                started.append((len(basis.col_status), len(basis.row_status) - solver.h.getNumRow()))
                return real(basis)

            monkeypatch.setattr(solver.h, "setBasis", spy, raising=False)
            r = solver.solve(cost, 60.0)
            assert r["status"] == "optimal"
            assert r["bound"] <= m_star + 1e-7 * (1 + abs(m_star))
            assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
            if restore and r["lps"] > 1:
                assert started and set(started) == {(model.n_cols, 0)}
                assert len(started) == r["lps"] - 1  # every LP but the root's
            if not restore:
                assert started == []


def test_pseudocost_branching_stays_sound_on_noisy_duals(monkeypatch) -> None:
    """The pseudocost branching's strong-branching LPs feed the children's bounds: with every
    node's multipliers perturbed (the bound rigorous for any), the bound it returns is still below
    the true optimum, and so is every strong-branching bound it used."""
    import equivrepair.reach.phase_bab as pb
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(1)
    rng = np.random.default_rng(0)
    real = pb.SafeBound.multipliers

    def noisy(self, y):
        ys = real(self, y)
        if len(ys) < 3:
            return ys
        y = ys[1] + rng.normal(0, 1e-2 * (1 + np.abs(ys[1]).max()), ys[1].shape)
        return [ys[0], y, -y]

    for k in range(3):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = 1.0  # the minimum of output k
        m_star = _HighsMILP(model, 1e-9).solve(cost, 60.0)["value"]
        monkeypatch.setattr(pb.SafeBound, "multipliers", noisy)
        r = pb.PhaseBaB(model, 1e-9, max_nodes=300, branching="pseudocost").solve(cost, 10.0)
        monkeypatch.setattr(pb.SafeBound, "multipliers", real)
        assert r["nodes"] > 0 and r["bound"] <= m_star + 1e-9 * (1 + abs(m_star))


def test_phase_bab_rejects_an_unknown_branching_and_milp_an_unknown_solver() -> None:
    from equivrepair.reach.phase_bab import PhaseBaB

    orig, comp, box, net, model = _cutoff_case(0)
    with pytest.raises(ValueError, match="branching"):
        PhaseBaB(model, branching="random")
    with pytest.raises(ValueError, match="mip_solver"):
        method_milp(orig, comp, box, compact=True, backend="highs", mip_solver="gurobi")
    with pytest.raises(ValueError, match="compact=True"):
        method_milp(orig, comp, box, mip_solver="phase")


def test_phase_and_highs_mip_solvers_agree_on_real_mnist(data) -> None:
    """The real 3x100 pair at ±1 around test images 0 and 2 (36 and 38 binaries): the exact δ_max
    of the phase branch and bound (what ``mip_solver="auto"`` picks there) and of HiGHS's MIP
    agree to the engine's resolution, and lower <= sampled maximum <= δ_max on each."""
    from tests.test_relu_split import _mnist_pair

    orig, comp, X = _mnist_pair(data, 3)
    for i in (0, 2):
        v = X[i].reshape(-1).astype(float)
        box = Box(np.clip(v - 1, 0, 255), np.clip(v + 1, 0, 255))
        runs = {s: evaluate(orig, comp, box, time_limit=60, mip_solver=s) for s in ("phase", "highs")}
        assert runs["phase"].stats["mip_solver"] == "PhaseBaB" and runs["highs"].stats["mip_solver"] == "_HighsMILP"
        x = np.random.default_rng(i).uniform(box.lower, box.upper, size=(20000, box.dim))
        smax = np.abs(orig.forward(x) - comp.forward(x)).max()
        for r in runs.values():
            assert r.status == "exact"
            attained = np.abs(orig.forward(r.witness) - comp.forward(r.witness)).max()
            assert attained == pytest.approx(r.lower, rel=1e-12)
            assert r.lower <= r.delta_max and smax <= r.delta_max
        tol = max(1e-6, 1e-4 * runs["highs"].delta_max)
        assert abs(runs["phase"].delta_max - runs["highs"].delta_max) <= 2 * tol


def test_a_reused_highs_lp_keeps_its_time_limit_per_run() -> None:
    """HiGHS's simplex compares ``time_limit`` with the run time its object has accumulated over
    all runs: a plain per-run limit stops every later LP at once (iteration 0, "time limit"), as
    the control shows. ``set_time_left`` gives each run its own seconds on top of that run time."""
    import highspy
    import scipy.sparse as sp

    from equivrepair.reach.lp import new_highs, set_time_left

    rng = np.random.default_rng(0)
    n, m = 200, 150
    A = sp.csc_matrix(rng.normal(size=(m, n)))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = rng.normal(size=n), -np.ones(n), np.ones(n)
    lp.row_lower_, lp.row_upper_ = -5 * np.ones(m), 5 * np.ones(m)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    idx = np.arange(n, dtype=np.int32)

    def statuses(limit_with) -> list[str]:
        h = new_highs()
        h.passModel(lp)
        out = []
        while h.getRunTime() < 0.5 or len(out) < 3:  # until the runs add up to more than the limit
            limit_with(h)
            h.changeColsCost(n, idx, rng.normal(size=n))
            h.run()
            out.append(h.modelStatusToString(h.getModelStatus()))
            if len(out) > 500:
                break
        return out

    ours = statuses(lambda h: set_time_left(h, 0.2))
    assert len(ours) >= 3 and all(s == "Optimal" for s in ours), ours
    plain = statuses(lambda h: h.setOptionValue("time_limit", 0.2))
    assert plain[-1] == "Time limit reached", "HiGHS now limits each run: set_time_left may go"


@pytest.mark.parametrize("seed", [0, 1])
def test_signed_safe_bounds_equal_the_generic_bounds_and_stay_below_the_lp(seed: int) -> None:
    """``SafeBound.signed_bounds`` (one product for y and −y on the two-sided rows, what every
    feasible phase branch-and-bound node uses) gives the bounds of ``SafeBound.bounds`` on the
    multipliers (0, y, −y) up to the sums' order, for random multipliers of every scale and node
    column bounds (binaries fixed); with HiGHS's duals of the LP relaxation its bound is at most
    the LP optimum and within 1e-6 of it; unusable duals (None, NaN, wrong size) leave the
    zero multiplier alone."""
    import highspy

    from equivrepair.reach.lp import SafeBound, highs_model, run_highs

    orig, comp, box, net, model = _cutoff_case(seed)
    sb = SafeBound(model)
    assert 0 < int(sb.two.sum()) < model.n_rows  # both kinds of rows, so the split is exercised
    rng = np.random.default_rng(seed)
    ints = model.integer_cols
    for trial in range(30):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[trial % model.y_cols.size]] = rng.choice([-1.0, 1.0])
        y = rng.normal(size=model.n_rows) * 10.0 ** rng.integers(-3, 4)
        cl, cu = model.col_lower.copy(), model.col_upper.copy()
        fixed = rng.random(ints.size) < 0.3
        cl[ints[fixed]] = cu[ints[fixed]] = rng.integers(0, 2, int(fixed.sum()))
        a = sb.signed_bounds(cost, y, cl, cu)
        b = sb.bounds(cost, np.stack(sb.multipliers(y), axis=1), cl, cu)
        assert a.shape == (3,)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * (1.0 + np.abs(b).max()))
    for bad in (None, np.full(model.n_rows, np.nan), np.ones(model.n_rows + 1)):
        only_zero = sb.bounds(cost, np.zeros((model.n_rows, 1)))
        np.testing.assert_array_equal(sb.signed_bounds(cost, bad), only_zero)
    h = highs_model(model)  # the LP relaxation (binaries continuous)
    for j in range(model.y_cols.size):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[j]] = 1.0
        h.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), cost)
        run_highs(h)
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        opt = h.getInfo().objective_function_value
        bound = sb(cost, np.asarray(h.getSolution().row_dual))
        assert opt - 1e-6 * (1 + abs(opt)) <= bound <= opt + 1e-9 * (1 + abs(opt))


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_phase_bab_dual_cutoff_stops_lps_early_and_keeps_the_optimum(seed: int, monkeypatch) -> None:
    """With ``dual_cutoff`` (the default) each node LP runs with HiGHS's ``objective_bound`` at
    the pruning level, so LPs of nodes that cannot matter (infeasible ones above all) stop early
    with status ObjectiveBound; the search reaches HiGHS's MIP optimum m* with a bound at most m*
    either way, with and without an incumbent to prune against, and with a cutoff below m* the
    bound still settles the question (>= the cutoff, <= m*)."""
    import highspy

    import equivrepair.reach.phase_bab as pb
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(seed)
    stopped = []
    real = pb.run_highs

    def spy(h):
        out = real(h)
        stopped.append(h.getModelStatus() == highspy.HighsModelStatus.kObjectiveBound)
        return out

    monkeypatch.setattr(pb, "run_highs", spy)
    for k in range(2):
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -1.0
        m_star = _HighsMILP(model, 1e-9).solve(cost, 60.0)["value"]
        slack = 1e-7 * (1 + abs(m_star))
        for on in (True, False):
            solver = pb.PhaseBaB(model, 1e-9, branching="pseudocost")
            solver.dual_cutoff = on
            stopped.clear()
            r = solver.solve(cost, 60.0)
            assert r["status"] == "optimal"
            assert r["bound"] <= m_star + slack
            assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
            if not on:
                assert not any(stopped)
            cut = m_star + 0.1 * (1 + abs(m_star))  # a cutoff above m*: m* is still found
            r = pb.PhaseBaB(model, 1e-9, branching="pseudocost").solve(cost, 60.0, cutoff=cut)
            assert r["status"] == "optimal" and r["bound"] <= m_star + slack
            assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
            low = m_star - 0.05 * (1 + abs(m_star))  # below m*: settled without m*
            stopped.clear()
            solver = pb.PhaseBaB(model, 1e-9, branching="pseudocost")
            solver.dual_cutoff = on
            r = solver.solve(cost, 60.0, cutoff=low)
            assert r["status"] == "optimal"
            assert low - slack <= r["bound"] <= m_star + slack
            if on:
                assert any(stopped)  # the root LP's dual objective passes the cutoff at once
