"""Branch and bound over the ReLU phases of a small compact big-M MILP, with safe LP bounds.

Why. The MILP leaves of the input-splitting branch and bound (:mod:`.milp_leaf`) are tiny (on
the NeuroDiff ACAS Xu pairs: ~80 rows, ~50 columns, ~14 binaries, a dozen nodes), and HiGHS's MIP
solver spends 15–40 ms on each, most of it in per-run set-up, root cuts and probing that such a
model does not need: on 2_1's δ column 8,276 leaves took 147 of 214 s. Here the same model is
solved as a sequence of LPs on one ``highspy.Highs`` (dual simplex, warm from the last basis),
fixing one phase binary per branch.

Soundness. Every node's bound is the Neumaier–Shcherbina bound of its LP
(:class:`.lp.SafeBound` with the node's column bounds) from whatever row duals the solver
returned: rigorous for any multipliers, so a node the solver solves inaccurately, or not at all,
gets a weaker bound, never a wrong one; a node it calls infeasible is bounded with its Farkas ray
at growing scales, which certifies the infeasibility when it is real (a bound above any value the
objective can take) and proves nothing otherwise. The nodes partition the binaries' values, so the minimum over the
leaves' bounds is a rigorous lower bound of the MILP; no solver tolerance enters it. A node is
closed when its binaries are integral at the LP optimum (the LP point is then a point of the
MILP), when they are all fixed, or when its bound cannot matter (above the stop threshold or
within ``gap`` of the incumbent).

Incumbents are inputs: the x part of each LP solution, clipped to the box and evaluated through
``value_at`` (the caller's own objective on the original networks, e.g. −s·(Φ1 − Φ2)_j), so
the reported value is attained, not a relaxation's.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .lp import LPModel, SafeBound, highs_model, run_highs

INTEGRAL = 1e-9  # a binary within this of 0 or 1 at the LP optimum counts as integral
RAY_SCALES = (1.0, 1e3, 1e6, 1e9)  # multiples of a Farkas ray tried on an "infeasible" node


class PhaseBaB:
    """min cost·v over an :class:`LPModel` with binary ``integer_cols``, by LP branch and bound.

    Same ``solve`` contract as :class:`.milp._HighsMILP` (status, bound, value, x, nodes), so
    :func:`.milp_leaf.milp_leaf` can use either. ``bound`` is rigorous (see the module docstring).
    ``value_at(x)``: the objective's true value at an input (the caller's networks); ``None`` uses
    the LP objective at integral LP points only.
    """

    def __init__(self, model: LPModel, tol: float = 1e-9, gap: float | None = None, max_nodes: int = 2000) -> None:
        import highspy

        self.hp = highspy
        self.model = model
        self.gap = 0.0 if gap is None else float(gap)
        self.max_nodes = int(max_nodes)
        h = highs_model(model)
        for key, val in (
            ("presolve", "off"),
            ("primal_feasibility_tolerance", min(1e-7, tol)),
            ("dual_feasibility_tolerance", min(1e-7, tol)),
        ):
            h.setOptionValue(key, val)
        self.h = h
        self.safe = SafeBound(model)
        self.ints = np.asarray(model.integer_cols, dtype=np.int32)
        self.idx = np.arange(model.n_cols, dtype=np.int32)
        self.violation = _violation_cols(model)

    def solve(
        self,
        cost: np.ndarray,
        time_limit: float | None,
        stop: tuple[float, float] | None = None,
        start: np.ndarray | None = None,
        value_at: Callable[[np.ndarray], float] | None = None,
    ) -> dict[str, Any]:
        """Minimise cost·v. ``stop = (dual, primal)``: stop once the bound is >= dual or a point
        is <= primal (status ``interrupted``). Other statuses: ``optimal`` (bound within ``gap``
        of the incumbent), ``incomplete`` (every node closed, some at a weak bound because its
        LP was lost), ``time_limit``, ``node_limit``; the bound is rigorous in every case.
        ``start`` is accepted for the MILP solver's signature and ignored (incumbents come from
        the LP points)."""
        deadline = np.inf if time_limit is None else time.perf_counter() + max(float(time_limit), 1e-3)
        cost = np.asarray(cost, dtype=np.float64)
        self.h.changeColsCost(self.idx.size, self.idx, cost)
        stop_dual, stop_primal = stop if stop is not None else (np.inf, -np.inf)
        xc = self.model.x_cols
        xl, xu = self.model.col_lower[xc], self.model.col_upper[xc]
        best_val, best_x = np.inf, None
        closed = np.inf  # the smallest bound of the closed nodes
        heap: list[tuple[float, int, np.ndarray, int]] = []  # (bound, id, fixing, branching binary)
        nodes = 0
        status = None
        todo = [(np.full(self.ints.size, -1, dtype=np.int8), -np.inf)]  # (fixing: -1 free/0/1, parent bound)
        while status is None:
            for i, (fix, parent) in enumerate(todo):
                if time.perf_counter() > deadline or nodes >= self.max_nodes:
                    status = "time_limit" if nodes < self.max_nodes else "node_limit"
                    closed = min([closed] + [p for _, p in todo[i:]])  # unsolved: the parent's bound
                    break
                nodes += 1
                bound, v, integral = self._node(fix, cost)
                bound = max(bound, parent)  # a child's minimum is at least its parent's
                if v is not None:
                    x = np.clip(v[xc], xl, xu)
                    val = value_at(x) if value_at is not None else (float(cost @ v) if integral else np.inf)
                    if val < best_val:
                        best_val, best_x = val, x
                free = np.flatnonzero(fix < 0)
                if integral or free.size == 0:
                    closed = min(closed, bound)
                else:
                    j = int(free[0]) if v is None else self._branch_on(free, v)
                    heapq.heappush(heap, (bound, nodes, fix, j))
            if status is not None:
                break
            lb = min(closed, heap[0][0] if heap else np.inf)
            if best_val <= stop_primal or lb >= stop_dual:
                status = "interrupted"
                break
            # open nodes that cannot beat the incumbent by more than the gap close at their bounds
            while heap and heap[0][0] >= best_val - self.gap:
                closed = min(closed, heapq.heappop(heap)[0])
            if not heap:
                status = "done"
                break
            bound, _, fix, j = heapq.heappop(heap)
            todo = []
            for phase in (0, 1):
                child = fix.copy()
                child[j] = phase
                todo.append((child, bound))
        lb = min([closed] + [b for b, _, _, _ in heap])
        if status == "done":
            # every node closed: optimal when the bound meets the incumbent within the gap (not so
            # when a lost LP closed a node at a weak bound)
            status = "optimal" if lb >= best_val - self.gap - 1e-9 * (1.0 + abs(best_val)) else "incomplete"
        return {
            "status": status,
            "value": float(best_val) if np.isfinite(best_val) else np.nan,
            "bound": float(lb),
            "gap": float(best_val - lb) if np.isfinite(best_val) and np.isfinite(lb) else np.nan,
            "x": best_x,
            "nodes": nodes,
        }

    def _node(self, fix: np.ndarray, cost: np.ndarray) -> tuple[float, np.ndarray | None, bool]:
        """Solve the node's LP: (rigorous bound, LP solution or None, binaries integral)."""
        hp, h, m = self.hp, self.h, self.model
        lo = m.col_lower[self.ints].copy()
        hi = m.col_upper[self.ints].copy()
        f = fix >= 0
        lo[f] = np.maximum(lo[f], fix[f])
        hi[f] = np.minimum(hi[f], fix[f])
        h.changeColsBounds(self.ints.size, self.ints, lo, hi)
        cl, cu = m.col_lower.copy(), m.col_upper.copy()
        cl[self.ints], cu[self.ints] = lo, hi
        run_highs(h)
        ms = h.getModelStatus()
        sol = h.getSolution()
        # multipliers tried (the bound holds for any): the row duals with both sign conventions,
        # none (the column bounds alone), and for an infeasible node its Farkas ray at growing
        # scales on top of the duals
        Y = self.safe.multipliers(np.asarray(sol.row_dual) if sol.dual_valid else None)
        y = Y[1] if len(Y) > 1 else Y[0]  # the duals, or 0 where they are unusable
        infeasible = ms == hp.HighsModelStatus.kInfeasible
        if infeasible:
            _, has_ray, ray = h.getDualRay()
            r = np.asarray(ray, dtype=np.float64)
            if has_ray and r.shape == y.shape and np.all(np.isfinite(r)) and np.any(r != 0):
                r = r / float(np.max(np.abs(r)))
                Y += [y + s * r for s in RAY_SCALES] + [-y - s * r for s in RAY_SCALES]
        bound = float(np.max(self.safe.bounds(cost, np.stack(Y, axis=1), cl, cu)))
        if infeasible:
            return bound, None, False
        if ms != hp.HighsModelStatus.kOptimal or not sol.value_valid:
            return bound, None, False
        v = np.asarray(sol.col_value, dtype=np.float64)
        d = v[self.ints]
        integral = bool(np.all(np.minimum(np.abs(d), np.abs(1.0 - d)) <= INTEGRAL))
        return bound, v, integral

    def _branch_on(self, free: np.ndarray, v: np.ndarray) -> int:
        """The free binary whose neuron's triangle is most violated at the LP point (a − relu(z):
        the slack its phase split removes); fractionality breaks ties."""
        z_cols, a_cols = self.violation
        viol = np.maximum(v[a_cols[free]] - np.maximum(v[z_cols[free]], 0.0), 0.0)
        d = v[self.ints[free]]
        return int(free[int(np.argmax(viol + 1e-12 * np.minimum(d, 1.0 - d)))])


def _violation_cols(model: LPModel) -> tuple[np.ndarray, np.ndarray]:
    """Per binary of a compact model, the columns of its neuron's z and a (from ``layout``)."""
    n = model.integer_cols.size
    z_cols = np.zeros(n, dtype=np.int64)
    a_cols = np.zeros(n, dtype=np.int64)
    pos = {int(c): i for i, c in enumerate(model.integer_cols)}
    for lay in model.layout or []:
        zk, zc = lay["z"]
        ak, ac = lay["a"]
        pk, pc = lay["phase"]
        zmap = dict(zip(zk.tolist(), zc.tolist()))
        amap = dict(zip(ak.tolist(), ac.tolist()))
        for k, c in zip(pk.tolist(), pc.tolist()):
            i = pos[int(c)]
            z_cols[i], a_cols[i] = zmap[k], amap[k]
    return z_cols, a_cols
