"""The twin-pair hull cuts (reach/pair_hull.py) and the phase branch and bound that uses them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from equivrepair.reach.compact import model_point
from equivrepair.reach.lp import LPModel, highs_model, run_highs
from equivrepair.reach.pair_hull import _pair_facets, pair_hull_cuts
from equivrepair.reach.phase_bab import PhaseBaB
from tests.test_compact import _cutoff_case


def _lp_min(model: LPModel, cost: np.ndarray) -> float:
    h = highs_model(model)
    h.setOptionValue("presolve", "off")
    h.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), cost)
    run_highs(h)
    assert h.getModelStatus() == h.getModelStatus().kOptimal
    return float(h.getInfo().objective_function_value)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_every_cut_holds_on_the_milp_and_at_the_networks_points(seed: int) -> None:
    """Validity, checked two independent ways: at 3,000 random inputs of the box every column of
    the model (its phases included, :func:`model_point`) satisfies every cut; and for 20 random
    cuts HiGHS's MIP solver, maximising the cut's left side over the whole MILP, stays below its
    right side (up to the MIP's tolerances)."""
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(seed)
    pool = pair_hull_cuts(model)
    assert pool.pairs >= 4 and pool.size >= 10 * pool.pairs
    assert np.all(np.diff(pool.A.indptr) <= 6)  # z1, z2 and (a, δ) of the unstable members
    rng = np.random.default_rng(seed)
    g = pool.upper
    for x in rng.uniform(box.lower, box.upper, size=(3000, box.dim)):
        v = model_point(net, model, x)
        assert np.all(pool.A @ v <= g + 1e-9 * (1.0 + np.abs(g)))
    for i in rng.choice(pool.size, size=20, replace=False):
        cost = -pool.A[i].toarray().ravel()
        r = _HighsMILP(model, 1e-9).solve(cost, 60.0)
        assert r["status"] == "optimal"
        assert -r["bound"] <= g[i] + 1e-6 * (1.0 + abs(g[i])), (i, -r["bound"], g[i])


def test_the_facets_are_the_hull_of_the_pieces_and_a_stable_twin_has_no_lift() -> None:
    """One pair built by hand, z1 in [-1, 2], z2 in [-1, 2], z1 − z2 in [-0.1, 0.1]: the facets
    describe exactly the hull of the four lifted pieces (the LP maximum of random directions
    over the facets equals the maximum over the pieces' vertices), every point of the pieces
    satisfies them, and with Φ2's twin stably active (z2 >= 0) only z1, z2, a1, δ1 take part."""
    # columns: z1, z2, a1, d1, a2, d2; one row z1 − z2 in [−0.1, 0.1]
    A = sp.csc_matrix(([1.0, -1.0], ([0, 0], [0, 1])), shape=(1, 6))
    model = LPModel(
        A,
        np.array([-0.1]),
        np.array([0.1]),
        np.array([-1.0, -1, 0, 0, 0, 0]),
        np.array([2.0, 2, 2, 1, 2, 1]),
        np.zeros(0, dtype=int),
        np.zeros(0, dtype=int),
    )
    diff = {(0, 1): (-0.1, 0.1)}
    cols, F, g = _pair_facets(model, diff, (0, 1), (2, 4), (3, 5))
    assert cols.tolist() == [0, 1, 2, 3, 4, 5]  # z1, z2, (a1, δ1), (a2, δ2)
    N = np.zeros((g.size, 6))
    N[:, cols] = F
    rng = np.random.default_rng(0)
    pts = []
    for _ in range(4000):
        z1 = rng.uniform(-1, 2)
        z2 = np.clip(z1 - rng.uniform(-0.1, 0.1), -1, 2)
        if abs(z1 - z2) > 0.1:
            continue
        pts.append([z1, z2, max(z1, 0), float(z1 > 0), max(z2, 0), float(z2 > 0)])
    P = np.array(pts)
    assert np.all(P @ N.T <= g + 1e-12)
    for c in rng.normal(size=(25, 6)):
        res = linprog(-c, A_ub=N, b_ub=g, bounds=[(None, None)] * 6, method="highs")
        assert res.status == 0
        # the hull's maximum is at a vertex of a piece; sampling comes close from below
        assert -res.fun >= (P @ c).max() - 1e-9
        assert -res.fun <= (P @ c).max() + 0.05 * (1 + abs(c).sum())
    # the twin stably active: its activation is its pre-activation, no binary
    model.col_lower[1] = 0.0
    cols, F, g = _pair_facets(model, diff, (0, 1), (2, None), (3, None))
    assert g.size >= 5 and cols.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_cuts_tighten_the_root_and_the_phase_bab_keeps_the_optimum(seed: int) -> None:
    """The root LP with every cut is at least as tight as without (strictly for some output),
    and the phase branch and bound with cuts (the default) and without reaches HiGHS's MIP
    optimum m* with a bound <= m*, also with no incumbent and no cutoff to prune by: infeasible
    nodes are closed by their Farkas bound above the objective's ceiling, and a node whose free
    binaries are integral counts as integral even with a fixed one a tolerance off its bound."""
    from equivrepair.reach.milp import _HighsMILP

    orig, comp, box, net, model = _cutoff_case(seed)
    pool = pair_hull_cuts(model)
    tighter = 0.0
    for k in range(model.y_cols.size):
        for s in (1.0, -1.0):
            cost = np.zeros(model.n_cols)
            cost[model.y_cols[k]] = s
            plain, cut = _lp_min(model, cost), _lp_min(pool.appended_to(model), cost)
            assert cut >= plain - 1e-9 * (1 + abs(plain))
            tighter = max(tighter, cut - plain)
            if s < 0:
                continue
            m_star = _HighsMILP(model, 1e-9).solve(cost, 60.0)["value"]
            for on in (True, False):
                r = PhaseBaB(model, 1e-9, 1e-7, branching="pseudocost", pair_cuts=on).solve(cost, 60.0)
                assert r["status"] == "optimal", (on, r["status"], r["nodes"])
                assert r["bound"] <= m_star + 1e-7 * (1 + abs(m_star))
                assert r["value"] == pytest.approx(m_star, abs=1e-6 * (1 + abs(m_star)))
                assert r["nodes"] < 1000
    assert tighter > 1e-6


@pytest.mark.parametrize("seed", [0, 4])
def test_lazy_separation_finds_every_violated_facet(seed: int) -> None:
    """:meth:`PairHulls.violated` takes the hulls of only the pairs whose LP point is off their
    graph; at the root LP optima of every objective it returns exactly the facets that the whole
    pool, evaluated at the point, says are violated (a point on its pair's graph violates none),
    and the model's own points (the networks at inputs of the box) are on every pair's graph."""
    from equivrepair.reach.pair_hull import PairHulls

    orig, comp, box, net, model = _cutoff_case(seed)
    hulls = PairHulls(model)
    every = [(i, f) for i in range(hulls.size) for f in range(hulls.facets(i)[2].size)]
    pool = hulls.rows(every)
    found = 0
    for k in range(model.y_cols.size):
        for s in (1.0, -1.0):
            cost = np.zeros(model.n_cols)
            cost[model.y_cols[k]] = s
            h = highs_model(model)
            h.setOptionValue("presolve", "off")
            h.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), cost)
            run_highs(h)
            v = np.asarray(h.getSolution().col_value)
            lazy = set(hulls.violated(v, 1e-6, set()))
            g = pool.upper
            full = {every[r] for r in np.flatnonzero(pool.A @ v - g > 1e-6 * (1.0 + np.abs(g)))}
            assert lazy == full
            found += len(full)
    assert found > 0
    x = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(200, box.dim))
    for xi in x:
        assert hulls.off_graph(model_point(net, model, xi), 1e-7).size == 0
