"""Exact δ̃ by mixed-integer programming: the big-M MILP of the merged network (cvxpy + HiGHS).

Model (see :func:`equivrepair.reach.lp.build_relaxation` with ``integer=True``): the input box
(and A x <= c), per hidden layer z = W a + b with z within the tightest known pre-activation
bounds [l, u] (interval ∩ symbolic ∩ differential; from :data:`TIGHTEN_MIN_UNSTABLE` unstable
neurons on, also the LP bounds of :mod:`.tighten` where they can fix a phase, and its LP bounds
on z1 − z2 of the last hidden layer's twins), stable neurons fixed (a = z or a = 0, no
binary), and for each unstable neuron one binary δ with a >= 0, a >= z, a <= z − l(1 − δ),
a <= u δ; the difference cuts of the LP are kept (valid, they tighten the relaxation); the output
columns y = Φ1 − Φ2 are boxed by the settling LPs' bounds where they ran (on the phase route,
:func:`_use_phase`, by the differential and forward output bounds).

For every output j we minimise and maximise y_j (2m MILPs; ``mode="max"`` skips the objectives
whose LP bound cannot beat the best |Φ1 − Φ2| found so far, which is enough for δ_max, and gives
each MILP it runs that best value as a cutoff: nodes that cannot beat it are pruned at once, not
solved, and the objective's bound is then the cutoff, not HiGHS's dual bound). The
*upper* side always comes from HiGHS's dual (best) bound, never the incumbent, widened by
``tol · (1 + |bound|)`` for the solver's feasibility/integrality tolerances (this slack is a
stated tolerance, not a proof: an integrality violation ε of a binary lets a ReLU move by up to
ε·M) and intersected with the LP bounds (which are rigorous). The witness is the argmax input,
re-evaluated on the two original networks in float64: ``lower`` is that value, never the MILP
objective. The time limit covers the whole method; when it runs out the remaining objectives keep
their LP bounds and the result is labelled ``bounded``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from ..nets.ir import FNN
from ..spec.sets import Box
from .bounds import (
    best_witness,
    default_candidates,
    differential_output_bounds,
    discrepancy_at,
    hidden_bounds,
    merged_pre_bounds,
    points_in_set,
)
from .compact import build_compact, model_point
from .lp import LPModel, build_relaxation, highs_model, lp_bounds_merged, run_highs, set_highs_options
from .phase_bab import PhaseBaB
from .result import Discrepancy
from .tighten import tighten_pre_bounds, unstable_mask


class _CvxpyMILP:
    def __init__(self, model: LPModel, tol: float) -> None:
        import cvxpy as cp

        self.cp = cp
        self.model = model
        n = model.n_cols
        is_int = np.zeros(n, dtype=bool)
        is_int[model.integer_cols] = True
        cont = np.nonzero(~is_int)[0]
        ints = np.nonzero(is_int)[0]
        self.cont = cont
        self.pos = np.empty(n, dtype=int)
        self.pos[cont] = np.arange(cont.size)
        A = model.A.tocsr()
        Ac, Ai = A[:, cont], A[:, ints]
        v = cp.Variable(cont.size)
        d = cp.Variable(ints.size, boolean=True) if ints.size else None
        rl, ru = model.row_lower, model.row_upper
        eq = np.isfinite(rl) & np.isfinite(ru) & (rl == ru)
        le = np.isfinite(ru) & ~eq
        ge = np.isfinite(rl) & ~eq

        def expr(rows: np.ndarray) -> Any:
            e = Ac[rows] @ v
            if d is not None:
                e = e + Ai[rows] @ d
            return e

        cons = []
        for mask, kind in ((eq, "eq"), (le, "le"), (ge, "ge")):
            rows = np.nonzero(mask)[0]
            if rows.size == 0:
                continue
            if kind == "eq":
                cons.append(expr(rows) == rl[rows])
            elif kind == "le":
                cons.append(expr(rows) <= ru[rows])
            else:
                cons.append(expr(rows) >= rl[rows])
        cons += [v >= model.col_lower[cont], v <= model.col_upper[cont]]
        self.cost = cp.Parameter(cont.size)
        self.v = v
        self.prob = cp.Problem(cp.Minimize(self.cost @ v), cons)
        self.opts = {
            "mip_rel_gap": 1e-9,
            "mip_abs_gap": 0.1 * tol,
            "mip_feasibility_tolerance": min(1e-6, tol),
            "primal_feasibility_tolerance": min(1e-7, tol),
            "dual_feasibility_tolerance": min(1e-7, tol),
        }

    def solve(self, cost_full: np.ndarray, time_limit: float | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        out = self._solve(cost_full, time_limit, {})
        if out["status"] == "infeasible":
            # the set is not empty (a witness exists), so this is HiGHS presolve being fooled by
            # tiny difference bounds next to large activations (seen on 16-bit ACAS Xu): retry
            if time_limit is not None:
                time_limit -= time.perf_counter() - t0
            if time_limit is None or time_limit > 0:
                out = self._solve(cost_full, time_limit, {"presolve": "off"})
                out["retried"] = True
        return out

    def _solve(self, cost_full: np.ndarray, time_limit: float | None, extra: dict[str, Any]) -> dict[str, Any]:
        cp = self.cp
        self.cost.value = cost_full[self.cont]
        opts = dict(self.opts)
        opts.update(extra)
        if time_limit is not None:
            opts["time_limit"] = float(max(time_limit, 1e-3))
        out: dict[str, Any] = {"status": "error", "value": np.nan, "bound": -np.inf, "gap": np.nan, "x": None}
        try:
            with warnings.catch_warnings():
                # "solution may be inaccurate" on time limits: the status says so already
                warnings.simplefilter("ignore", UserWarning)
                self.prob.solve(solver=cp.HIGHS, **opts)
        except cp.error.SolverError as exc:
            out["status"] = f"error: {exc}"
            return out
        st = self.prob.status
        info = getattr(self.prob.solver_stats, "extra_stats", None)
        val = self.prob.value
        val = float(val) if val is not None and np.isfinite(val) else np.nan
        bound = -np.inf
        nodes = -1
        if info is not None:
            nodes = int(getattr(info, "mip_node_count", -1))
            b = float(getattr(info, "mip_dual_bound", -np.inf))
            raw = float(getattr(info, "objective_function_value", np.nan))
            offset = val - raw if np.isfinite(val) and np.isfinite(raw) else 0.0
            # the dual bound is meaningful only when HiGHS ran its MIP solver (node count >= 0)
            # and it cannot exceed the incumbent (a minimisation) beyond round-off
            if nodes >= 0 and np.isfinite(b) and not (np.isfinite(val) and b + offset > val + 1e-9 * (1 + abs(val))):
                bound = b + offset
            out["gap"] = float(getattr(info, "mip_gap", np.nan))
            out["nodes"] = max(nodes, 0)
        if not np.isfinite(bound) and st == cp.OPTIMAL and np.isfinite(val) and nodes < 0:
            bound = val  # solved as a plain LP: its optimum (the caller adds the tolerance)
        if st == cp.OPTIMAL:
            out["status"] = "optimal"
        elif st == cp.USER_LIMIT:
            out["status"] = "time_limit"
        else:
            out["status"] = str(st)
        if st in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.USER_LIMIT) and self.v.value is not None:
            x = np.asarray(self.v.value, dtype=np.float64).ravel()
            if np.all(np.isfinite(x)):
                out["x"] = x[self.pos[self.model.x_cols]]
        out["value"] = val
        out["bound"] = bound
        return out


class _HighsMILP:
    """The same MILP handed to highspy directly: no modelling layer, warm objective swaps.

    Used by ``exact`` on high-dimensional sets with the compact model; ``method="milp"`` keeps the
    cvxpy route as the independent check. Sub-MIP heuristics are off: on these models (few
    binaries, hundreds of box-bounded inputs) they cost more than the branching they save.
    ``presolve`` is HiGHS's setting unless ``options`` names one. :func:`method_milp` turns it
    off: HiGHS's MIP presolve ignores the time limit (3.8-4 s per objective on the
    174k-non-zero model of an MNIST ball at ±8/255, given 0.6 s) and removes almost nothing
    there (7 of 1,165 rows); without it the exact runs at ±1/255 on the first 10 MNIST images
    took 32 s in all against 36 s. The small leaf MILPs of :mod:`.milp_leaf` keep it on.
    """

    def __init__(
        self,
        model: LPModel,
        tol: float,
        gap: float | None = None,
        options: dict[str, Any] | None = None,
        presolve: str = "on",
    ) -> None:
        import highspy

        self.hp = highspy
        self.model = model
        h = highs_model(model, integer=True)
        for key, val in (
            ("mip_rel_gap", 1e-9),
            ("mip_abs_gap", float(gap) if gap is not None else 0.1 * tol),
            ("mip_feasibility_tolerance", min(1e-6, tol)),
            ("primal_feasibility_tolerance", min(1e-7, tol)),
            ("dual_feasibility_tolerance", min(1e-7, tol)),
            ("mip_heuristic_effort", 0.0),
        ):
            h.setOptionValue(key, float(val))
        for key in (
            "mip_heuristic_run_rins",
            "mip_heuristic_run_rens",
            "mip_heuristic_run_root_reduced_cost",
            "mip_heuristic_run_feasibility_jump",
        ):
            h.setOptionValue(key, False)
        options = dict(options or {})
        self.presolve = str(options.pop("presolve", presolve))
        set_highs_options(h, options)  # the user's options, after (and over) these defaults
        self.h = h
        self.idx = np.arange(model.n_cols, dtype=np.int32)
        self.stop: tuple[float, float] | None = None
        # mode max in a worker: the settling level of the best witness of all workers (it falls)
        self.settle_level: Callable[[], float] | None = None
        h.cbMipInterrupt.subscribe(self._interrupt)

    def _interrupt(self, event: Any) -> None:
        """Stop as soon as the dual bound reaches stop[0] or an incumbent reaches stop[1]."""
        out = event.data_out
        # the flag lives on in HiGHS between runs, so it is written every time
        stop = self.stop is not None and (out.mip_dual_bound >= self.stop[0] or out.mip_primal_bound <= self.stop[1])
        if self.settle_level is not None and not stop:
            # another worker's witness may have settled this objective since it started
            stop = bool(out.mip_dual_bound >= self.settle_level())
        event.interrupt(bool(stop))

    def solve(
        self,
        cost_full: np.ndarray,
        time_limit: float | None,
        stop: tuple[float, float] | None = None,
        start: np.ndarray | None = None,
        cutoff: float | None = None,
    ) -> dict[str, Any]:
        """Minimise cost·v over the MILP (HiGHS's dual bound is what the caller may trust).

        ``stop = (dual, primal)``: interrupt once the dual bound is >= dual (the minimum is known
        to be at least that) or an incumbent is <= primal (a solution that good exists); the
        status is then ``interrupted`` with the bound and incumbent at that moment.

        ``cutoff``: only a minimum below it matters to the caller. HiGHS then prunes every node
        whose bound is not below it (its ``objective_bound``) instead of closing them one by one,
        and the returned bound is min(HiGHS's dual bound, cutoff): a node pruned by the cutoff
        holds no solution below it (up to HiGHS's gap tolerance, allowed for), while HiGHS's
        own dual bound then says nothing about those nodes. Without an incumbent (no MIP start)
        HiGHS calls a model with nothing below the cutoff infeasible, which is also what its
        numerical failures look like, so that case is solved once more without the cutoff."""
        self.stop = stop
        t0 = time.perf_counter()
        out = self._solve(cost_full, time_limit, self.presolve, start, cutoff)
        if out["status"] == "infeasible" and cutoff is not None:
            if time_limit is not None:
                time_limit = max(time_limit - (time.perf_counter() - t0), 1e-3)
            cutoff = None
            out = self._solve(cost_full, time_limit, self.presolve, start, cutoff)
        if out["status"] == "infeasible" and self.presolve != "off":
            # never true (a witness exists): presolve numerics, retry
            out = self._solve(cost_full, time_limit, "off", start, cutoff)
            out["retried"] = True
        return out

    def _solve(
        self,
        cost: np.ndarray,
        time_limit: float | None,
        presolve: str,
        start: np.ndarray | None = None,
        cutoff: float | None = None,
    ) -> dict[str, Any]:
        hp, h = self.hp, self.h
        h.setOptionValue("presolve", presolve)
        credit = np.inf  # what the cutoff proves about the pruned nodes
        if cutoff is not None and np.isfinite(cutoff):
            # HiGHS prunes a node once its bound is within its gap tolerances of the limit: set the
            # limit that much higher, so that what the pruning proves is still >= cutoff
            gap = float(h.getOptionValue("mip_abs_gap")[1])
            rel = float(h.getOptionValue("mip_rel_gap")[1])
            limit = cutoff + gap + rel * (1.0 + abs(cutoff))
            h.setOptionValue("objective_bound", float(limit))
            credit = limit - gap - rel * (1.0 + abs(limit)) - 1e-12 * (1.0 + abs(limit))
        else:
            h.setOptionValue("objective_bound", float("inf"))
        h.setOptionValue("time_limit", float(max(time_limit, 1e-3)) if time_limit is not None else float("inf"))
        h.changeColsCost(self.idx.size, self.idx, np.asarray(cost, dtype=np.float64))
        if start is not None:
            # a complete solution (every column: a partial one makes HiGHS solve the whole MIP
            # once more to complete it); HiGHS checks it and keeps it as the first incumbent if
            # it is feasible
            sol = hp.HighsSolution()
            sol.col_value = np.asarray(start, dtype=np.float64)
            sol.value_valid = True
            h.setSolution(sol)
        run_highs(h)
        ms = h.getModelStatus()
        info = h.getInfo()
        out: dict[str, Any] = {"status": "error", "value": np.nan, "bound": -np.inf, "gap": np.nan, "x": None}
        nodes = int(info.mip_node_count)
        out["nodes"] = max(nodes, 0)
        if ms == hp.HighsModelStatus.kOptimal:
            out["status"] = "optimal"
        elif ms == hp.HighsModelStatus.kTimeLimit:
            out["status"] = "time_limit"
        elif ms == hp.HighsModelStatus.kInfeasible:
            out["status"] = "infeasible"
        elif ms == hp.HighsModelStatus.kInterrupt:
            out["status"] = "interrupted"
        else:
            out["status"] = h.modelStatusToString(ms)
        val = float(info.objective_function_value)
        b = float(info.mip_dual_bound)
        if out["status"] in ("optimal", "time_limit", "interrupted"):
            # the dual bound of a minimisation never exceeds the incumbent beyond round-off
            if np.isfinite(b) and not (np.isfinite(val) and b > val + 1e-9 * (1 + abs(val))):
                out["bound"] = min(b, credit)
            out["gap"] = float(info.mip_gap)
        sol = h.getSolution()
        if sol.value_valid and out["status"] in ("optimal", "time_limit", "interrupted"):
            x = np.asarray(sol.col_value, dtype=np.float64)
            if np.all(np.isfinite(x)):
                out["x"] = x[self.model.x_cols]
                out["value"] = val
        h.clearSolver()
        return out


_SHARED_BEST: Any = None  # in a worker process of _MilpPool: the best witness value of the run
_NETS: tuple[FNN, FNN] | None = None  # ... the two networks, for the phase solver's incumbents
_STOP: Any = None  # ... and per objective a flag: another copy of its MILP has settled it


def _init_milp_worker(best: Any, nets: tuple[FNN, FNN] | None = None, stop: Any = None) -> None:
    global _SHARED_BEST, _NETS, _STOP
    _SHARED_BEST, _NETS, _STOP = best, nets, stop


def _objective_index(o: tuple[int, int]) -> int:
    """The flag of objective (output k, sense s) in :class:`_MilpPool`'s stop array."""
    return 2 * o[0] + (o[1] < 0)


def _milp_job(
    model: LPModel, tol: float, gap: float | None, options: dict | None, cost, deadline, kw, o=None, phase=False
) -> dict:
    """One objective's MILP in a worker process (the model travels, the solver is set up here), until
    ``deadline`` (``time.time()``, or None): HiGHS's MIP solver, or with ``phase`` the phase
    branch and bound, whose incumbents are valued on the networks the worker inherited. In mode
    max (a cutoff at the best witness) it also stops once its bound settles the objective
    against a better witness found meanwhile (a bound >= the settling level of a higher witness
    is >= that of the one it started with: the same proof, earlier), and at once when another
    copy of objective ``o`` (the other solver, :meth:`_MilpPool.portfolio`) has settled it."""
    solver = _new_solver(model, tol, gap, options, phase)
    kw = dict(kw)
    if phase:
        kw["value_at"] = _objective_value(*_NETS, *o)
    flag = None if o is None or _STOP is None else _objective_index(o)
    cut = kw.get("cutoff") is not None and _SHARED_BEST is not None
    if flag is not None or cut:
        solver.settle_level = lambda: (
            -np.inf if flag is not None and _STOP[flag] else (_shared_settling_level(tol) if cut else np.inf)
        )
    r = solver.solve(cost, None if deadline is None else max(deadline - time.time(), 1e-3), **kw)
    return dict(r, solver="phase" if phase else "highs")


def _shared_settling_level(tol: float) -> float:
    """The settling dual bound of the best witness of all workers (+inf before there is one)."""
    best = _SHARED_BEST.value
    return _settling_dual_bound(best, tol) if np.isfinite(best) else np.inf


def _new_solver(model: LPModel, tol: float, gap: float | None, options: dict | None, phase: bool) -> Any:
    """The MILP solver of a compact highspy model: the phase branch and bound (with HiGHS's
    absolute gap, its default 0.1·tol where the tolerances allow none) or HiGHS's MIP solver."""
    if phase:
        gap = 0.1 * tol if gap is None else gap
        return PhaseBaB(model, tol, gap, max_nodes=PHASE_MAX_NODES, branching="pseudocost")
    return _HighsMILP(model, tol, gap, options, presolve="off")


def _objective_value(orig: FNN, comp: FNN, k: int, s: int) -> Callable[[np.ndarray], float]:
    """The phase solver's objective at an input: −s·(Φ1 − Φ2)_k on the original networks."""
    return lambda x: -float(s) * float(discrepancy_at(orig, comp, x)[0, k])


class _MilpPool:
    """Worker processes that each solve one objective's MILP at a time (``method_milp(workers=)``).

    Forked, as the branch and bound's workers (:mod:`.parallel`): no main-module import, so a
    caller's script needs no ``__main__`` guard (the networks reach the workers by the fork).
    Every HiGHS of the project runs on one thread, so HiGHS's scheduler has no worker threads
    for a child to miss. With ``portfolio``, a worker that would sit idle (no objective left to
    start) solves a running objective's MILP again with the other solver, within the same
    deadline; the first copy to settle it stops the other."""

    def __init__(
        self,
        workers: int,
        tol: float,
        options: dict | None,
        nets: tuple[FNN, FNN] | None = None,
        portfolio: bool = False,
    ) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork")
        self.best = ctx.Value("d", -np.inf)
        n_obj = 2 * (nets[0].n_outputs if nets is not None else 0)
        self.stop = ctx.Array("b", max(n_obj, 1))
        self.ex = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_milp_worker, initargs=(self.best, nets, self.stop)
        )
        for _ in range(workers):  # start the processes now, while the caller computes its bounds
            self.ex.submit(int)
        self.workers = workers
        self.tol, self.options = tol, options
        self.portfolio_on = portfolio and nets is not None
        self.running: dict[tuple[tuple[int, int], bool], Any] = {}  # (objective, phase) -> future
        self.jobs: dict[tuple[int, int], tuple] = {}  # objective -> its MILP's (model, gap, cost, deadline, kw)
        self.duplicated: set[tuple[int, int]] = set()  # objectives the portfolio has given a second copy
        self.copies_started = 0

    @property
    def free(self) -> bool:
        return len(self.running) < self.workers

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def copies(self, o: tuple[int, int]) -> list[bool]:
        """The solvers (phase or not) of the running copies of objective ``o``."""
        return [ph for (q, ph) in self.running if q == o]

    def submit(
        self,
        o: tuple[int, int],
        model: LPModel,
        gap: float | None,
        cost: np.ndarray,
        rem: float | None,
        kw: dict,
        phase: bool = False,
    ) -> None:
        deadline = None if rem is None else time.time() + rem  # its setup in the worker counts too
        self.stop[_objective_index(o)] = 0
        self.jobs[o] = (model, gap, cost, deadline, kw)
        self.duplicated.discard(o)  # (a rerun of an objective may be copied again)
        self._start(o, phase)

    def _start(self, o: tuple[int, int], phase: bool) -> None:
        model, gap, cost, deadline, kw = self.jobs[o]
        self.running[(o, phase)] = self.ex.submit(
            _milp_job, model, self.tol, gap, self.options, cost, deadline, kw, o, phase
        )

    def portfolio(self) -> None:
        """Idle workers take a running objective with the other solver (longest running first)."""
        if not self.portfolio_on:
            return
        for o, phase in list(self.running):
            if not self.free:
                return
            if o not in self.duplicated:
                self.duplicated.add(o)
                self.copies_started += 1
                self._start(o, not phase)

    def finished(self) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        """Wait for at least one running MILP; the (objective, result) of each that has ended. One
        that settled its objective (optimal, interrupted) stops the other copy, if any."""
        from concurrent.futures import FIRST_COMPLETED, wait

        if not self.running:
            return []
        done, _ = wait(list(self.running.values()), return_when=FIRST_COMPLETED)
        out = [(key, f.result()) for key, f in self.running.items() if f in done]
        for key, r in out:
            del self.running[key]
            if r["status"] in ("optimal", "interrupted"):
                self.stop[_objective_index(key[0])] = 1
        return [(key[0], r) for key, r in out]

    def close(self) -> None:
        self.ex.shutdown(wait=True, cancel_futures=True)


class _StartPool:
    """Points of the set seen so far (candidates, LP optima, MILP incumbents) with their Φ1 − Φ2,
    so that each MILP starts from the best known point for its own objective (a MIP start)."""

    def __init__(self, orig: FNN, comp: FNN, box: Box, points: np.ndarray) -> None:
        self.orig, self.comp, self.box = orig, comp, box
        self.x = np.zeros((0, box.dim))
        self.d = np.zeros((0, orig.n_outputs))
        self.add(points)

    def add(self, points: np.ndarray) -> None:
        x = points_in_set(self.box, points)
        if x.shape[0]:
            self.x = np.vstack([self.x, x])
            self.d = np.vstack([self.d, discrepancy_at(self.orig, self.comp, x)])

    def best_for(self, k: int, s: int) -> np.ndarray | None:
        """The known point with the largest s·(Φ1 − Φ2)_k."""
        return self.x[int(np.argmax(s * self.d[:, k]))] if self.x.shape[0] else None


def method_milp(
    orig: FNN,
    comp: FNN,
    box: Box,
    time_limit: float | None = None,
    tol: float = 1e-6,
    *,
    mode: str = "all",
    delta_cuts: bool = True,
    n_samples: int = 64,
    seed: int = 0,
    compact: bool = False,
    backend: str = "cvxpy",
    atol: float | None = None,
    rtol: float | None = None,
    epsilon: float | None = None,
    highs_options: dict[str, Any] | None = None,
    mip_start: bool = True,
    workers: int = 1,
    mip_solver: str = "auto",
) -> Discrepancy:
    """δ̃ = max_x |Φ1(x) − Φ2(x)|∞ over ``box`` by big-M MILP (see the module docstring).

    ``mode="all"`` solves min and max of every output (exact per-output intervals);
    ``mode="max"`` only what δ_max needs (each MILP cut off at the best witness so far, highspy
    backend). Status ``exact`` (with ``delta_max``) when every MILP
    that was needed finished optimally within the time limit, else ``bounded``.

    ``compact=True`` builds the model with stable neurons substituted away (:mod:`compact`),
    ``backend="highs"`` hands it to highspy directly instead of cvxpy. With ``atol``/``rtol`` (mode ``max``) an objective is settled
    once its bound is within ``max(atol, rtol·best)`` of the best witness, the resolution the
    ``exact`` method promises, instead of the solver's own tolerance.

    ``highs_options`` (highspy backend): HiGHS options for every MILP, e.g.
    ``{"mip_pscost_minreliable": 0}``, applied over the defaults of :class:`_HighsMILP`.

    ``mip_start`` (highspy backend, compact model): each MILP starts from the best point known for
    its objective (candidates, LP optima, earlier incumbents; :func:`.compact.model_point` fills
    in every column), so HiGHS prunes against it from the root. Only an incumbent: the bound is
    still HiGHS's own, and every point is re-evaluated on the original networks.

    ``mode="decide"`` (with ``epsilon``) only settles whether |Φ1 − Φ2|∞ < ε: objectives whose
    LP bound is below ε are skipped, every MILP stops once its bound is below ε or an incumbent
    reaches ε (highspy backend), and the run stops at the first witness >= ε. The result is
    ``bounded``; :func:`equivrepair.reach.api.check` reads the decision off lower and upper.

    ``workers`` (mode ``max``, highspy backend): up to that many objectives' MILPs at once, each in
    a worker process (:class:`_MilpPool`), cut off at the best witness when it starts and stopped
    once a better witness from any of them settles it; the time is shared among the objectives
    left as if each worker took its turn at them. With ``mip_solver="auto"`` (and a compact model)
    a worker with no objective left to start solves a running one again with the other MILP
    solver, in the same time window, and the first copy to settle it stops the other (a
    portfolio: neither solver wins on every model); so even one objective goes to the workers.
    With an explicit solver and fewer than two objectives to solve the MILP runs here, as
    without workers; should a worker die, the rest runs here too.

    From :data:`TIGHTEN_MIN_UNSTABLE` unstable neurons on, the pre-activation bounds are first
    tightened by the LPs that can fix a phase (:func:`.tighten.tighten_pre_bounds`, at most
    :data:`TIGHTEN_TIME_SHARE` of the time left); ``stats["tightening_*"]`` say what it did.

    ``mip_solver`` (highspy backend, compact model): ``"highs"`` solves each MILP with HiGHS's
    MIP solver; ``"phase"`` with :class:`.phase_bab.PhaseBaB` (LP branch and bound over the ReLU
    phases, pseudocost branching, bounds rigorous from the LP duals); ``"auto"`` takes the phase
    branch and bound for a model of at most :data:`PHASE_MAX_BINARIES` binaries, where HiGHS's
    root work (cuts, probing, strong branching on a dense LP) costs more than the whole search,
    and HiGHS otherwise (and both, with workers to spare).
    """
    if mip_solver not in ("auto", "highs", "phase"):
        raise ValueError(f"mip_solver must be 'auto', 'highs' or 'phase', not {mip_solver!r}")
    if mip_solver == "phase" and not (backend == "highs" and compact):
        raise ValueError("mip_solver='phase' needs backend='highs' and compact=True")
    if backend not in ("cvxpy", "highs"):
        raise ValueError(f"backend must be 'cvxpy' or 'highs', not {backend!r}")
    if mode not in ("all", "max", "decide"):
        raise ValueError(f"mode must be 'all', 'max' or 'decide', not {mode!r}")
    if highs_options and backend != "highs":
        raise ValueError("highs_options needs backend='highs' (cvxpy's HiGHS interface takes its own options)")
    if highs_options:
        from .lp import new_highs

        set_highs_options(new_highs(), highs_options)  # a misspelt option fails now, not after the LPs
    if mode == "decide" and (epsilon is None or not epsilon > 0):
        raise ValueError(f"mode 'decide' needs a positive epsilon, got {epsilon!r}")
    t0 = time.perf_counter()
    box.check_dim(orig.n_inputs)
    pool = None
    if workers > 1 and backend == "highs" and mode == "max":
        pool = _MilpPool(workers, tol, highs_options, (orig, comp), portfolio=mip_solver == "auto" and compact)
    try:
        return _method_milp(
            orig, comp, box, time_limit, tol, mode, delta_cuts, n_samples, seed, compact, backend,
            atol, rtol, epsilon, highs_options, mip_start, t0, pool, mip_solver,
        )  # fmt: skip
    finally:
        if pool is not None:
            pool.close()


def _method_milp(
    orig, comp, box, time_limit, tol, mode, delta_cuts, n_samples, seed, compact, backend,
    atol, rtol, epsilon, highs_options, mip_start, t0, pool, mip_solver,
) -> Discrepancy:  # fmt: skip
    """The body of :func:`method_milp` (``pool``: its worker processes, or None)."""

    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    cand = [default_candidates(box, n_samples, seed)]
    tightening = None
    n_unstable = sum(int(u.sum()) for u in unstable_mask(pre))
    if n_unstable >= TIGHTEN_MIN_UNSTABLE:  # fewer binaries: the LPs would cost more than they save
        rem = left()
        tightening = tighten_pre_bounds(
            net, box.lower, box.upper, pre, box.A, box.c, delta,
            candidates=cand[0], time_limit=None if rem is None else TIGHTEN_TIME_SHARE * rem,
        )  # fmt: skip
        pre, delta = tightening.pre, tightening.delta
        cand.append(tightening.points)
    diff_out = None
    if delta is not None:  # the back-substitution starts from these bounds (no second forward pass)
        diff_out = differential_output_bounds(orig, comp, box.lower, box.upper, hidden_bounds(orig, pre, delta))
    if diff_out is not None:  # tighter output bounds settle objectives without a MILP
        pre[-1] = (np.maximum(pre[-1][0], diff_out[0]), np.minimum(pre[-1][1], diff_out[1]))
        pre[-1] = (pre[-1][0], np.maximum(pre[-1][1], pre[-1][0]))
    deltas = delta if delta_cuts else None
    # on a small model (few unstable neurons), or one the phase branch and bound will solve, a
    # witness first: the LPs of objectives that the bounds so far already settle against it (mode
    # max) or against ε (mode decide) are not solved (at ±1/255 on MNIST, 19 of 20). On larger
    # HiGHS models every LP is solved, then the witness searched among their optima, as before: the
    # LP bounds are the MILP's output column bounds, which save HiGHS more nodes than the LPs cost
    # (the phase branch and bound lifts its objective's column bound anyway, see PhaseBaB._uncap)
    skip = np.zeros((pre[-1][0].size, 2), dtype=bool)
    if tightening is not None:
        n_unstable = sum(tightening.unstable_after)
    phase_route = backend == "highs" and _use_phase(mip_solver, compact, n_unstable)
    small = (n_unstable <= LP_SKIP_MAX_UNSTABLE or phase_route) and mode in ("max", "decide")
    best, w, j = -np.inf, None, None
    if small:
        best, w, j, _ = best_witness(orig, comp, box, np.vstack(cand))
        sides = np.stack([-pre[-1][0], pre[-1][1]], axis=1)  # the (min, max) objectives' bounds
        skip = _settles(sides, mode, best, _slack(best, atol, rtol), epsilon)
    # the phase branch and bound's root LP is the settling LP itself (the big-M LP projects onto
    # the triangle relaxation): what that LP would settle, the root settles, so none is solved here
    # (unless the model turns out to have no binaries, below: the LP is then the answer)
    lp_later = small and phase_route and n_unstable > 0
    settled_first = skip

    def settling_lps(skip: np.ndarray) -> None:
        """The settling LPs not in ``skip``: the output bounds, their optima as candidates."""
        nonlocal lp, lo_b, hi_b, best, w, j
        lp = lp_bounds_merged(
            net, box.lower, box.upper, pre, box.A, box.c, delta_bounds=deltas, time_limit=left(), compact=compact,
            skip=skip,
        )  # fmt: skip
        lo_b = np.maximum(lp.lower, pre[-1][0])
        hi_b = np.maximum(np.minimum(lp.upper, pre[-1][1]), lo_b)
        lp_x = np.vstack([lp.x_lower, lp.x_upper])
        cand.append(lp_x[np.all(np.isfinite(lp_x), axis=1)])
        pts = cand[-1] if small else np.vstack(cand)
        v, w2, j2, _ = best_witness(orig, comp, box, np.vstack([pts] + ([w[None]] if w is not None else [])))
        if w2 is not None and v > best:
            best, w, j = v, w2, j2

    lp = None
    lo_b, hi_b = pre[-1]  # the output bounds so far, until an LP tightens them
    if not lp_later:
        settling_lps(skip)
    m = lo_b.size

    def _milp_model(lvl: int) -> Any:
        if lvl < 2:
            bounds = list(pre[:-1]) + [(lo_b, hi_b)]
        else:
            bounds = [(lo - 10 * tol * (1 + np.abs(lo)), hi + 10 * tol * (1 + np.abs(hi))) for lo, hi in pre]
        build = build_compact if compact else build_relaxation
        return build(net, box.lower, box.upper, bounds, box.A, box.c, deltas if lvl == 0 else None, integer=True)

    def slack() -> float:
        """How far above the best witness an objective may stay and still count as settled."""
        return _slack(best, atol, rtol)

    def milp_gap() -> float | None:
        """HiGHS's absolute gap: half the slack the tolerances allow, or its own default."""
        return 0.5 * slack() if slack() > 0 else None

    def make_solver(mdl: LPModel) -> Any:
        if backend != "highs":
            return _CvxpyMILP(mdl, tol)
        return _new_solver(mdl, tol, milp_gap(), highs_options, _use_phase(mip_solver, compact, mdl.integer_cols.size))

    level = 0
    model = _milp_model(0)
    no_binaries = model.integer_cols.size == 0
    if no_binaries and lp_later:  # (the compact model's own interval bounds stabilised the rest)
        settling_lps(settled_first)
    starts = _StartPool(orig, comp, box, np.vstack(cand + ([w[None]] if w is not None else [])))
    # with no unstable ReLU the network is linear on the box and the (rigorous) LP is exact
    solver = None if no_binaries else make_solver(model)

    # objectives: (output, sense) with sense +1 = maximise, −1 = minimise; largest LP bound first
    objs = [(k, s) for k in range(m) for s in (1, -1)]
    objs.sort(key=lambda o: -(hi_b[o[0]] if o[1] > 0 else -lo_b[o[0]]))
    per = np.stack([lo_b, hi_b], axis=1)  # refined in place, always sound
    solved: dict[tuple[int, int], dict[str, Any]] = {}
    skipped: list[tuple[int, int]] = []
    timed_out = False

    def side_of(o: tuple[int, int]) -> float:
        return float(hi_b[o[0]] if o[1] > 0 else -lo_b[o[0]])

    def settled(o: tuple[int, int], side: float | None = None) -> bool:
        side = side_of(o) if side is None else side
        return bool(_settles(side, mode, best, slack(), epsilon))

    def settled_now(o: tuple[int, int]) -> bool:
        """Settled by the refined bound (the MILP's, where one ran)."""
        return settled(o, float(per[o[0], 1] if o[1] > 0 else -per[o[0], 0]))

    def prepare(k: int, s: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The cost vector of objective s·y_k and the solve options (stop, start, cutoff)."""
        cost = np.zeros(model.n_cols)
        cost[model.y_cols[k]] = -float(s)  # minimise −y for the max, y for the min
        if backend != "highs":
            return cost, {}
        stop = None
        cutoff = None
        if mode == "decide":
            # settled once the bound (after the tolerance added below) is under ε, or s·y_k >= ε
            cutoff = _settling_dual_bound(epsilon, tol)
            stop = (cutoff, -epsilon)
            cutoff += 1e-11 * (1.0 + epsilon)  # what it proves then stays clear of ε
        elif mode == "max" and slack() > 0:
            # settled once the bound says s·y_k cannot beat the best witness of *any* objective:
            # nodes that cannot are pruned, not solved (at the witness itself, not within the
            # slack of it, so that δ_max, the largest bound, stays as close to it as before)
            cutoff = _settling_dual_bound(best, tol)
            stop = (cutoff, -np.inf)
        x0 = starts.best_for(k, s) if mip_start else None
        start = None if x0 is None else model_point(net, model, x0)
        kw = {"stop": stop, "start": start, "cutoff": cutoff}
        if isinstance(solver, PhaseBaB):  # its incumbents are valued on the networks themselves
            # (a worker process values them on the networks it inherited)
            if pool is None:
                kw["value_at"] = _objective_value(orig, comp, k, s)
        return cost, kw

    def attempt(k: int, s: int, rem: float | None) -> None:
        """One MILP for objective s·y_k with ``rem`` seconds, in this process."""
        nonlocal level, model, solver
        cost, kw = prepare(k, s)
        r = solver.solve(cost, rem, **kw)
        while r["status"] == "infeasible" and level < 2:
            # still "infeasible" without presolve: a feasible model (the box is not empty) beyond
            # HiGHS's MIP numerics — bounds of ~1e-7 next to activations of ~1e+1 (16-bit pairs).
            # Level 1 drops the difference cuts, level 2 also widens every column bound by
            # 10·tol·(1 + |bound|) and uses the differential output bounds; both only loosen.
            level += 1
            model = _milp_model(level)
            solver = make_solver(model)
            cost = np.zeros(model.n_cols)
            cost[model.y_cols[k]] = -float(s)
            r = solver.solve(cost, rem)
        fold(k, s, r)

    def fold(k: int, s: int, r: dict[str, Any]) -> None:
        """Fold one MILP's bound and incumbent into the per-output bounds and the best witness
        (of two copies of one objective, the portfolio's, the record kept is the one that settled it)."""
        nonlocal best, w, j
        kept = solved.get((k, s))
        rank = _RANK.get(r["status"], 0)
        if kept is None or rank > _RANK.get(kept["status"], 0) or rank == _RANK.get(kept["status"], 0) == 0:
            solved[(k, s)] = r
        bound = r["bound"]  # lower bound of min(−s·y_k)
        if np.isfinite(bound):
            side = -bound + tol * (1.0 + abs(bound))  # upper bound of s·y_k
            if s > 0:
                per[k, 1] = min(per[k, 1], side)
            else:
                per[k, 0] = max(per[k, 0], -side)
        if r["x"] is not None:
            v, wx, wj, _ = best_witness(orig, comp, box, r["x"][None])
            starts.add(np.vstack([r["x"], wx]) if wx is not None else r["x"][None])
            if wx is not None and v > best:
                best, w, j = v, wx, wj

    if pool is not None and (solver is None or sum(not settled(o) for o in objs) < (1 if pool.portfolio_on else 2)):
        pool.close()  # one objective to solve (and no second solver for it), or none: here
        pool = None

    def run(todo: list[tuple[int, int]], first: bool) -> None:
        """The MILPs of the objectives in ``todo`` (in this process, or on the pool's workers): each,
        when it is its turn and if it is not settled by then, gets an even share of the time left
        (the objectives left, taken in turns by the workers). ``first``: the first pass over every
        objective (settled ones are recorded as skipped); else a rerun of those that hit their
        share, while at least a second is left. An "infeasible" from a worker is solved again
        here, where the model can be rebuilt."""
        nonlocal timed_out
        is_settled = settled if first else settled_now
        queue = list(todo)
        while queue or (pool is not None and pool.busy):
            while queue and (pool is None or pool.free):
                o = queue.pop(0)
                if solver is None or (mode == "decide" and best >= epsilon):
                    queue.clear()
                    break
                if first and (o in solved or o in skipped):  # (a rerun after the pool failed)
                    continue
                if is_settled(o):
                    if first:
                        skipped.append(o)
                    continue
                rem = left()
                if rem is not None:
                    if rem <= (0.0 if first else 1.0):
                        timed_out = timed_out or first
                        queue.clear()
                        break
                    pending = 1 + sum(not is_settled(q) for q in queue)
                    rem = rem / max(1, -(-pending // (1 if pool is None else pool.workers)))
                if pool is None:
                    attempt(*o, rem)
                    continue
                cost, kw = prepare(*o)
                pool.submit(o, model, milp_gap(), cost, rem, kw, isinstance(solver, PhaseBaB))
            if pool is not None and not queue:
                pool.portfolio()  # workers with nothing left to start: the other solver
            for o, r in pool.finished() if pool is not None else []:
                if r["status"] != "infeasible":
                    fold(*o, r)
                elif not pool.copies(o) and solved.get(o, {}).get("status") not in _SETTLED:
                    attempt(*o, left())
                pool.best.value = best

    def run_all() -> None:
        run(objs, True)
        # time left over (objectives settled by a better witness on the way): rerun the MILPs that
        # hit their share of the limit and are still open, sharing what is left
        run([o for o in solved if solved[o]["status"] == "time_limit" and not settled_now(o)], False)

    pool_note = ""
    try:
        if pool is not None:
            pool.best.value = best
        run_all()
    except BrokenProcessPool as e:  # a worker died (killed, out of memory): go on here
        pool_note = f"; worker processes failed ({e}), the MILPs left were solved in this process"
        pool = None
        run_all()
    per[:, 1] = np.maximum(per[:, 1], per[:, 0])
    note = ""
    if w is not None:
        # a witness value is attained, so a sound enclosure contains it; if round-off in the
        # solver said otherwise, widen to the observed value and say so
        dw = orig.forward(w) - comp.forward(w)
        if np.any(dw < per[:, 0]) or np.any(dw > per[:, 1]):
            note = "; solver bound was below an attained value (round-off), widened to the witness"
            per[:, 0] = np.minimum(per[:, 0], dw)
            per[:, 1] = np.maximum(per[:, 1], dw)
    needed = [o for o in objs if o not in skipped]
    if solver is None:
        all_optimal = all(st in ("optimal", "skipped") for st in lp.status)
    else:
        # mode max also counts an objective whose MILP stopped early (time share, interrupt) once
        # its sound bound is within the slack of the best witness: δ_max is then resolved
        all_optimal = all(
            o in solved and (solved[o]["status"] == "optimal" or (mode == "max" and settled_now(o))) for o in needed
        )
    upper = float(np.max(np.abs(per)))
    status = "exact" if all_optimal else "bounded"
    # the slack of the upper bound over the truth is at most upper − lower (rigorous, since the
    # witness value is attained) and nominally tol·(1 + upper): report the larger
    tolerance = max(float(tol * (1.0 + upper)), upper - float(best))
    gaps = [solved[o]["gap"] for o in solved if np.isfinite(solved[o]["gap"])]
    msg = f"big-M MILP on the merged network ({model.integer_cols.size} binaries, {model.n_unstable} unstable ReLUs)"
    if mode == "max":
        msg += f"; mode max: {len(skipped)} objectives settled by the LP or differential bounds"
        if skipped:
            msg += " (their per-output entries are those bounds)"
    if not all_optimal:
        # (an objective's kept record: a copy that timed out does not count once the other settled it)
        timed_out = timed_out or any(r["status"] == "time_limit" for r in solved.values())
        msg += "; time limit reached" if timed_out else "; some MILPs did not finish optimally"
        msg += " — bounds are the best known, not exact"
    if tightening is not None:
        msg += (
            f"; LP bound tightening fixed the phase of {tightening.stabilised} of"
            f" {sum(tightening.unstable_before)} unstable ReLUs ({tightening.n_lps} LPs, {tightening.time:.2f} s"
            + ("" if tightening.complete else ", stopped at its time share")
            + ")"
        )
    if level > 0:
        msg += "; HiGHS called a feasible MILP infeasible: " + (
            "difference cuts dropped" if level == 1 else "difference cuts dropped and bounds widened"
        )
    msg += note + pool_note
    return Discrepancy(
        per_output=per,
        lower=float(best),
        upper=upper,
        witness=w,
        status=status,
        method="milp",
        delta_max=upper if status == "exact" else None,
        tolerance=tolerance if status == "exact" else float(tol * (1.0 + upper)),
        witness_output=j,
        message=msg,
        stats={
            "time": time.perf_counter() - t0,
            "method": "milp",
            "backend": _version(backend),
            "formulation": "compact" if compact else "full",
            "milps": len(solved),
            "workers": pool.workers if pool is not None else 1,
            "portfolio_copies": pool.copies_started if pool is not None else 0,
            "skipped": len(skipped),
            "binaries": int(model.integer_cols.size),
            "nodes": int(sum(r.get("nodes", 0) for r in solved.values())),
            "mip_solver": type(solver).__name__ if solver is not None else None,
            "max_mip_gap": float(max(gaps)) if gaps else None,
            "milp_status": {f"y{k}{'+' if s > 0 else '-'}": r["status"] for (k, s), r in solved.items()},
            # in worker processes: which solver's result each objective kept (the portfolio's winner)
            "milp_solver_kept": {
                f"y{k}{'+' if s > 0 else '-'}": r["solver"] for (k, s), r in solved.items() if "solver" in r
            },
            "lps": lp.n_lps if lp is not None else 0,
            "tightening_lps": tightening.n_lps if tightening is not None else 0,
            "tightening_stabilised": tightening.stabilised if tightening is not None else 0,
            "tightening_time": tightening.time if tightening is not None else 0.0,
            "lp_upper": float(np.max(np.abs(np.stack([lo_b, hi_b])))),
        },
    )


_RANK = {"optimal": 2, "interrupted": 1}  # which of two copies' results an objective keeps
_SETTLED = tuple(_RANK)

PHASE_MAX_BINARIES = 150
"""Up to this many binaries, ``mip_solver="auto"`` solves the MILPs by :class:`.phase_bab.PhaseBaB`.
60 until each node's LP started from its parent's basis; then, against HiGHS on MNIST ±2/255
models (one process each, side by side), the phase solver won 7 of 8 models of 62–74 binaries
(by 1.5–6x; HiGHS took 18.8 s against 28.5 s on 256x4 image 7), was about even at 82–96 (and
left the narrower bracket on the two it did not close) and lost at 149: 90. Then on 13 MNIST
±2/±3 models of 94–119 binaries (60 s each, side by side) it won 10: the narrower bracket on 9
(3×100 ±3 image 18: 0.13 % against 31 %; 256x4 ±3 image 38: 40 % against 161 %) and 3×100 ±3
image 13 exact in 38.8 s where HiGHS was open; HiGHS won 256x4 ±2 image 29 (exact in 23.4 s
against 45.4 s), image 31 (0.58 % against 0.63 %) and 256x4 ±3 image 7 (119 binaries): 115.
With the twin-pair hull cuts (fourteenth session), on the 7 open ±3 models of 119–149 binaries
(60 s, side by side) it left the narrower bracket on 5: every 3×100 one (images 2, 7, 8, 12 at
124–146 binaries: upper bounds 0.315/0.595/0.553/0.691 against 0.426/0.715/0.709/0.887) and
256x4 image 29 (141: 0.00989 against 0.01031); HiGHS on 256x4 images 7 (119) and 2 (149): 150."""
PHASE_MAX_NODES = 10**7  # the phase branch and bound's node limit: the time limit is the real one


def _use_phase(mip_solver: str, compact: bool, binaries: int) -> bool:
    """Whether a MILP of ``binaries`` binaries goes to the phase branch and bound (highspy backend)."""
    if mip_solver == "phase":
        return True
    return mip_solver == "auto" and compact and binaries <= PHASE_MAX_BINARIES


TIGHTEN_MIN_UNSTABLE = 64
"""From this many unstable neurons on, :func:`method_milp` first tightens their bounds by LP
(:func:`.tighten.tighten_pre_bounds`); below it the MILP is solved in about the time the LPs take."""
TIGHTEN_TIME_SHARE = 0.25
"""The largest share of the time left that the LP bound tightening may take."""

LP_SKIP_MAX_UNSTABLE = 40
"""Up to this many unstable neurons, :func:`method_milp` skips the settling LPs that the
differential bounds and a sampled witness already settle; above it, it solves them all, unless
the MILPs go to the phase branch and bound (:func:`_use_phase`), which gains nothing from their
bounds (it lifts its own objective's column bound in every node LP). On that route the LPs the
witness leaves open are not solved either: the phase solver's root LP is the same relaxation."""


def _settles(side: Any, mode: str, best: float, slack: float, epsilon: float | None) -> Any:
    """Whether an objective bounded above by ``side`` (a number or an array) needs no more work:
    mode max, at most the best witness plus the slack; mode decide, strictly below ε; else never."""
    if mode == "max":
        return np.asarray(side) <= best + slack
    if mode == "decide":
        return np.asarray(side) < epsilon
    return np.zeros(np.shape(side), dtype=bool)


def _slack(best: float, atol: float | None, rtol: float | None) -> float:
    """How far above the best witness ``best`` an objective may stay and still count as settled:
    max(atol, rtol·best), or 0 when neither tolerance is given (the solver's own resolution)."""
    if atol is None and rtol is None:
        return 0.0
    return max(atol or 0.0, (rtol or 0.0) * best)


def _settling_dual_bound(target: float, tol: float) -> float:
    """The least bound b of min(−s·y) that settles s·y <= target once ``attempt`` has added the
    tolerance (−b + tol·(1 + |b|) <= target), a little higher for round-off."""
    if target >= tol:
        b = -(target - tol) / (1.0 + tol)
    else:
        b = (tol - target) / (1.0 - tol)
    return b + 1e-12 * (1.0 + abs(target))


def _version(backend: str = "cvxpy") -> str:
    try:
        from importlib.metadata import version

        hv = version("highspy")
    except Exception:  # pragma: no cover
        hv = "?"
    if backend == "highs":
        return f"HiGHS (highspy {hv}, direct)"
    import cvxpy

    return f"cvxpy {cvxpy.__version__} / HiGHS (highspy {hv})"
