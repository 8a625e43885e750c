"""Branch and bound over the ReLU phases of a small compact big-M MILP, with safe LP bounds.

Why. The MILP leaves of the input-splitting branch and bound (:mod:`.milp_leaf`) are tiny (on
the NeuroDiff ACAS Xu pairs: ~80 rows, ~50 columns, ~14 binaries, a dozen nodes), and HiGHS's MIP
solver spends 15–40 ms on each, most of it in per-run set-up, root cuts and probing that such a
model does not need: on 2_1's δ column 8,276 leaves took 147 of 214 s. Here the same model is
solved as a sequence of LPs on one ``highspy.Highs`` (dual simplex, warm from the last basis),
fixing one phase binary per branch. The same holds for :func:`.milp.method_milp`'s MILPs on
MNIST balls (20–150 binaries, 784 dense input columns): HiGHS spends most of a second on its root
there, a node LP here takes 2–5 ms, so those of at most 150 binaries come here too.

Warm starts. Each node's LP starts from its parent's optimal basis (kept with the open node),
and so does each strong-branching LP, not from the basis of whatever LP ran last, which best-first
search may have taken anywhere in the tree: on MNIST ±2/255 models (56–60 binaries) 1.4–2.8x
faster, with fewer nodes too (3×100 image 17: 1,053 → 567 nodes, 9.7 → 3.5 s); neutral on the
tiny leaf models of ACAS Xu (NeuroDiff 1_2, 5_4, 1_7 δ columns: 8.2/10.4/18.5 → 7.5/10.2/18.0 s).
The bases cost memory, about one byte per row and column per open node (a kilobyte on these models).

Dual cutoff. Each node's LP runs with HiGHS's ``objective_bound`` at the pruning level (the
incumbent less the gap, or the caller's cutoff): the dual simplex stops as soon as its dual
objective passes it, since such a node is closed whatever its exact LP value. Infeasible nodes
(phase fixings that contradict one another, 17–24 % of the LPs on MNIST ±2/±3 models) took
50–60 iterations to a Farkas ray and now stop after ~15: 11–33 % less time on 3×100 ±2 image 19,
±3 image 1 and 256x4 ±3 image 36. The duals it stopped at bound the node (SafeBound), so a node
is closed only when that rigorous bound reaches the level.

Twin-pair cuts. For a merged network of two same-architecture networks, the root LP is solved
again with the facets of each twin pair's lifted hull that its point violates
(:mod:`.pair_hull`: rows of at most six non-zeros over z1, z2, a1, a2, δ1, δ2), up to
``ROOT_ROUNDS`` times, and the cuts not binding at the last root LP are dropped; the rest stay for
every node (on a face δ = 0 or 1 they describe the pair's remaining pieces exactly). On 13 models
captured from MNIST ±2/±3 runs the node count halves on the 3×100 models (1,700 → 792 on 3×100
±2 image 19) and total time falls 126 → 81 s; adding the cuts violated at every node as well
(hundreds of rows) left as many nodes or more, each LP dearer (256x4 ±2 image 7: 1,306 → 5,474
nodes, 5.7 → 34.1 s). One 256x4 ±3 model (image 36) takes more nodes with the cuts (491 → 945;
branching candidates ordered by fractionality, or reliability at 2 observations, did better
there and worse over the 13). The rigorous bounds include the cuts in the LP (valid
inequalities of the MILP, so the bound stays one of the MILP). The leaf MILPs of
:mod:`.milp_leaf` run without them (``pair_cuts=False``).

Search. Best first on each node's LP value, with the objective's own column bound lifted in the
LP (:meth:`PhaseBaB._uncap`; the rigorous bounds keep it); branching on the most violated
triangle (``"violation"``, the leaves) or by reliability pseudocosts with strong branching
(``"pseudocost"``, :func:`.milp.method_milp`).

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

from .lp import LPModel, SafeBound, highs_model, run_highs, set_time_left
from .pair_hull import PairHulls

INTEGRAL = 1e-9  # a binary within this of 0 or 1 at the LP optimum counts as integral
RAY_SCALES = (1.0, 1e3, 1e6, 1e9)  # multiples of a Farkas ray tried on an "infeasible" node
STRONG = 32  # pseudocost branching: strong-branch at most this many candidates per node
RELIABLE = 1  # ... those with fewer than this many observations of either child's gain
GAIN_CAP = 1e3  # an infeasible child's bound (~1e9) counts as this gain, relative to the parent's
SCORE_EPS = 1e-9
RESTORE_BASIS = True  # each node's LP starts from its parent's optimal basis
DUAL_CUTOFF = True  # each node's LP stops once its dual objective passes the pruning level
CUTOFF_MARGIN = 1e-7  # ... plus this much (relative), so the rigorous bound still reaches it
PAIR_CUTS = True  # twin pairs' hull facets (pair_hull) enter the LP where a node's point violates them
ROOT_ROUNDS = 20  # ... the root LP is solved again after each addition, at most this many times
NODE_ROUNDS = -1  # ... and any other node's this many times (0: added for the nodes after it; -1: none)
PURGE = True  # ... and those not binding at the root's last LP dropped (they slow every LP)
LIFT = True  # the hulls lifted with the phase binaries (unlifted: 1,689 nodes against 945 on a
# 256x4 ±3 model where the plain LP takes 491: that model is the exception, see above)
CUT_VIOLATION = 1e-6  # a cut counts as violated by more than this, relative to 1 + |its rhs|


class PhaseBaB:
    """min cost·v over an :class:`LPModel` with binary ``integer_cols``, by LP branch and bound.

    Same ``solve`` contract as :class:`.milp._HighsMILP` (status, bound, value, x, nodes), so
    :func:`.milp_leaf.milp_leaf` and :func:`.milp.method_milp` can use either. ``bound`` is
    rigorous (see the module docstring). ``value_at(x)``: the objective's true value at an input
    (the caller's networks); ``None`` uses the LP objective at integral LP points only.

    ``branching``: ``"violation"`` branches on the binary whose neuron's triangle is most violated
    at the node's LP point (no extra LPs; the tiny leaf models). ``"pseudocost"``: reliability
    branching, as MIP solvers do: each binary's bound gain per unit of fractionality, learned from
    the nodes solved, and from strong branching (both children's LPs) on up to ``STRONG``
    candidates (the most violated) whose gains are not yet known. On the MNIST ±1/255 models
    (22–40 binaries, 784 dense input columns) it needs 3–10x fewer nodes than ``"violation"``.
    """

    def __init__(
        self,
        model: LPModel,
        tol: float = 1e-9,
        gap: float | None = None,
        max_nodes: int = 2000,
        branching: str = "violation",
        pair_cuts: bool | None = None,
    ) -> None:
        import highspy

        if branching not in ("violation", "pseudocost"):
            raise ValueError(f"branching must be 'violation' or 'pseudocost', not {branching!r}")
        self.hp = highspy
        self.model = model
        self.gap = 0.0 if gap is None else float(gap)
        self.max_nodes = int(max_nodes)
        self.branching = branching
        h = highs_model(model)
        # the LP points must be accurate enough that the inputs in them attain their LP values to
        # within the gap (an integral node is closed at its LP bound, its input is the incumbent)
        feas = min(1e-7, tol, max(0.1 * self.gap, 1e-9))
        for key, val in (
            ("presolve", "off"),
            ("primal_feasibility_tolerance", feas),
            ("dual_feasibility_tolerance", feas),
        ):
            h.setOptionValue(key, val)
        self.h = h
        # the twin pairs whose hull facets may become cuts (none without twin pairs); the LP holds
        # the model's rows then the cuts added so far (``self.added``: (pair, facet) in that order),
        # and so does the model of the rigorous bounds (rebuilt after each change, see _sync_safe)
        use = PAIR_CUTS if pair_cuts is None else pair_cuts
        self.hulls = PairHulls(model, LIFT) if use and model.layout else None
        self.added: list[tuple[int, int]] = []
        self.safe = SafeBound(model)
        self._cuts_version = self._safe_version = 0  # of the LP's cuts and of safe's
        self.ints = np.asarray(model.integer_cols, dtype=np.int32)
        self.idx = np.arange(model.n_cols, dtype=np.int32)
        self.violation = _violation_cols(model)
        self.deadline = np.inf  # of the current solve
        self.last_value = -np.inf  # the LP value of the last node solved (its bound if it has none)
        # a bound that settles the objective, read between nodes: it may fall during a solve (a
        # better witness found by another worker of :func:`.milp.method_milp`), and serves as
        # both the stop's dual threshold and the cutoff
        self.settle_level: Callable[[], float] | None = None
        self.restore_basis = RESTORE_BASIS
        self.dual_cutoff = DUAL_CUTOFF
        self.level = np.inf  # the pruning level of the nodes solved next (see _node)

    def solve(
        self,
        cost: np.ndarray,
        time_limit: float | None,
        stop: tuple[float, float] | None = None,
        start: np.ndarray | None = None,
        value_at: Callable[[np.ndarray], float] | None = None,
        cutoff: float | None = None,
    ) -> dict[str, Any]:
        """Minimise cost·v. ``stop = (dual, primal)``: stop once the bound is >= dual or a point
        is <= primal (status ``interrupted``). ``cutoff``: only a minimum below it matters, so
        nodes bounded at or above it are closed (at their own bound: the returned bound stays
        rigorous). Other statuses: ``optimal`` (every node closed, the bound within ``gap`` of the
        incumbent or at the cutoff), ``incomplete`` (every node closed, some at a weak bound
        because its LP was lost), ``time_limit``, ``node_limit``. ``start`` (a full column
        vector, with ``value_at``): its input part is the first incumbent."""
        deadline = np.inf if time_limit is None else time.perf_counter() + max(float(time_limit), 1e-3)
        self.deadline = deadline
        cost = np.asarray(cost, dtype=np.float64)
        self.h.changeColsCost(self.idx.size, self.idx, cost)
        stop_dual, stop_primal = stop if stop is not None else (np.inf, -np.inf)
        cut = np.inf if cutoff is None else float(cutoff)
        xc = self.model.x_cols
        xl, xu = self.model.col_lower[xc], self.model.col_upper[xc]
        best_val, best_x = np.inf, None
        if start is not None and value_at is not None:
            best_x = np.clip(np.asarray(start, dtype=np.float64)[xc], xl, xu)
            best_val = float(value_at(best_x))
        pc = _Pseudocosts(self.ints.size) if self.branching == "pseudocost" else None
        closed = np.inf  # the smallest bound of the closed nodes
        # open nodes: (key, id, bound, fixing, binary to branch on, its LP value, strong-branching
        # results {phase: (bound, key)}, its optimal basis or None); best first by key, the LP
        # value of the node with the objective's own column bound lifted (see _uncap), its bound
        # the rigorous one
        heap: list[tuple[float, int, float, np.ndarray, int, float, dict, Any]] = []
        nodes = lps = 0
        status = None
        # (fixing: -1 free/0/1, a bound and a key it is known to have, (binary, phase, LP value,
        # parent key) of the branch that made it, for the pseudocosts, the parent's basis or None)
        todo: list[tuple[np.ndarray, float, float, tuple | None, Any]] = [
            (np.full(self.ints.size, -1, dtype=np.int8), -np.inf, -np.inf, None, None)
        ]

        # no point of the model has cost·v above this, so a node bounded above it is infeasible
        # and closed even before there is an incumbent (its Farkas ray's bound, see _node)
        m, nz = self.model, np.flatnonzero(cost)
        ceiling = float(np.sum(np.maximum(cost[nz] * m.col_lower[nz], cost[nz] * m.col_upper[nz])))
        ceiling = ceiling + 1e-9 * (1.0 + abs(ceiling)) if np.isfinite(ceiling) else np.inf

        def prune_at() -> float:
            return min(best_val - self.gap, cut, ceiling)

        restore = self._uncap(cost)
        try:
            while status is None:
                for i, (fix, known, known_key, origin, basis) in enumerate(todo):
                    if time.perf_counter() > deadline or nodes >= self.max_nodes:
                        status = "time_limit" if nodes < self.max_nodes else "node_limit"
                        closed = min([closed] + [t[1] for t in todo[i:]])  # unsolved: the bound known
                        break
                    nodes += 1
                    lps += 1
                    self.level = prune_at()
                    self._start_from(basis)
                    own, v, integral = self._cut_node(fix, cost, ROOT_ROUNDS if nodes == 1 else NODE_ROUNDS, nodes == 1)
                    basis = self._basis() if v is not None else None
                    key = max(self.last_value, known_key)
                    if pc is not None and origin is not None:
                        pc.learn(*origin, key)
                    bound = max(own, known)  # a child's minimum is at least its parent's
                    if v is not None:
                        x = np.clip(v[xc], xl, xu)
                        val = value_at(x) if value_at is not None else (float(cost @ v) if integral else np.inf)
                        if val < best_val:
                            best_val, best_x = val, x
                    free = np.flatnonzero(fix < 0)
                    if integral or free.size == 0 or bound >= prune_at():
                        closed = min(closed, bound)
                        continue
                    strong: dict = {}
                    if v is None:
                        j = int(free[0])
                    elif pc is None:
                        j = self._branch_on(free, v)
                    else:
                        j, strong, n_lp = self._pseudocost_branch(free, v, fix, key, cost, pc, deadline, basis)
                        lps += n_lp
                    d = float(v[self.ints[j]]) if v is not None else np.nan
                    heapq.heappush(heap, (key, nodes, bound, fix, j, d, strong, basis))
                if status is not None:
                    break
                if self.settle_level is not None:
                    level = self.settle_level()
                    cut, stop_dual = min(cut, level), min(stop_dual, level)
                # (the bound over the open nodes is a scan: only where a stop threshold needs it)
                if best_val <= stop_primal or (
                    stop_dual < np.inf and min([closed] + [e[2] for e in heap]) >= stop_dual
                ):
                    status = "interrupted"
                    break
                if not heap:
                    status = "done"
                    break
                key, _, bound, fix, j, d, strong, basis = heapq.heappop(heap)
                todo = []
                if bound >= prune_at():  # it cannot beat the incumbent by more than the gap
                    closed = min(closed, bound)
                    continue
                for phase in (0, 1):
                    b_sb, k_sb = strong.get(phase, (-np.inf, -np.inf))
                    known = max(bound, b_sb)
                    if known >= prune_at():  # strong branching already closed it
                        closed = min(closed, known)
                        continue
                    child = fix.copy()
                    child[j] = phase
                    # a child strong branching solved has taught its gain already
                    origin = None if phase in strong else (j, phase, d, key)
                    todo.append((child, known, max(key, k_sb), origin, basis))
        finally:
            restore()
        lb = min([closed] + [e[2] for e in heap])
        if status == "done":
            # every node closed: optimal when the bound meets the incumbent within the gap or the
            # cutoff (not so when a lost LP closed a node at a weak bound)
            # (no incumbent: the cutoff alone; inf − inf would make the target NaN)
            target = min(best_val - self.gap - 1e-9 * (1.0 + abs(best_val)), cut) if np.isfinite(best_val) else cut
            status = "optimal" if lb >= target else "incomplete"
        return {
            "status": status,
            "value": float(best_val) if np.isfinite(best_val) else np.nan,
            "bound": float(lb),
            "gap": float(best_val - lb) if np.isfinite(best_val) and np.isfinite(lb) else np.nan,
            "x": best_x,
            "nodes": nodes,
            "lps": lps,
        }

    def _uncap(self, cost: np.ndarray) -> Callable[[], None]:
        """Lift the bound of the objective's own column on the side the objective pushes it to,
        in the LP only (returns the undo). With an output column capped by the differential
        bounds (MNIST 256x4 ±1 image 18), every node's LP sits at the cap until many phases are
        fixed: best-first search and the pseudocosts then see no difference between nodes and
        the search goes breadth first. Uncapped, the LP values tell the nodes apart, and the
        cap still enters every rigorous bound (the zero multiplier of :class:`SafeBound`, with
        the model's column bounds, gives it)."""
        nz = np.flatnonzero(cost)
        if nz.size != 1:
            return lambda: None
        c = int(nz[0])
        lo, hi = float(self.model.col_lower[c]), float(self.model.col_upper[c])
        one = np.array([c], dtype=np.int32)
        if cost[c] < 0:
            self.h.changeColsBounds(1, one, np.array([lo]), np.array([np.inf]))
        else:
            self.h.changeColsBounds(1, one, np.array([-np.inf]), np.array([hi]))
        return lambda: self.h.changeColsBounds(1, one, np.array([lo]), np.array([hi]))

    def _basis(self) -> Any:
        """The optimal basis of the LP just solved (a copy) and the version of the LP's cuts then,
        for its children to start from."""
        return (self.h.getBasis(), self._cuts_version) if self.restore_basis else None

    def _start_from(self, basis: Any) -> None:
        """Start the next LP from ``basis`` (a node's parent's), not from the last LP solved,
        which best-first search may have taken anywhere in the tree."""
        if basis is not None:
            basis, version = basis
            if version != self._cuts_version:  # cuts added since it was taken: their slacks start basic
                status = list(basis.row_status)
                short = self.h.getNumRow() - len(status)
                if short < 0:  # cuts purged since (not within a solve): start from the last LP's
                    return
                basis.row_status = status + [self.hp.HighsBasisStatus.kBasic] * short
            self.h.setBasis(basis)

    def _sync_safe(self) -> None:
        """Rebuild :attr:`safe` on the model with the cuts now in the LP, in the LP's row order,
        if they changed (the multipliers the solver returns are over exactly those rows)."""
        if self._safe_version != self._cuts_version:
            self.safe = SafeBound(self.hulls.rows(self.added).appended_to(self.model))
            self._safe_version = self._cuts_version

    def _separate(self, v: np.ndarray) -> int:
        """Add to the LP the hull facets that the LP point v violates; how many."""
        if self.hulls is None or not self.hulls.size:
            return 0
        new = self.hulls.violated(v, CUT_VIOLATION, set(self.added))
        if new:
            rows = self.hulls.rows(new)
            A = rows.A
            self.h.addRows(
                rows.size, np.full(rows.size, -self.hp.kHighsInf), rows.upper, A.nnz, A.indptr[:-1], A.indices, A.data
            )
            self.added += new
            self._cuts_version += 1
        return len(new)

    def _cut_node(
        self, fix: np.ndarray, cost: np.ndarray, rounds: int, purge: bool = False
    ) -> tuple[float, np.ndarray | None, bool]:
        """:meth:`_node`, then the cuts its LP point violates added, and the LP solved again
        after each addition up to ``rounds`` times (the bound kept is the best of them: each is
        rigorous for the same node)."""
        best, v, integral = self._node(fix, cost)
        if rounds < 0 or best >= self.level:  # no cuts here, or the node is closed anyway
            return best, v, integral
        for i in range(rounds + 1):
            # (the last round's cuts are added for the nodes after it, not solved again here)
            if v is None or not self._separate(v) or i == rounds or time.perf_counter() > self.deadline:
                break
            bound, v, integral = self._node(fix, cost)
            best = max(best, bound)
        if purge:
            self._purge()
        return best, v, integral

    def _purge(self) -> None:
        """Drop from the LP the cuts whose slack is basic at the LP just solved (not binding):
        each row slows every later LP, and these have not helped this one."""
        if not (PURGE and self.added):
            return
        m = self.model.n_rows
        st = self.h.getBasis().row_status
        basic = self.hp.HighsBasisStatus.kBasic
        drop = [i for i in range(len(self.added)) if st[m + i] == basic]
        if drop:
            self.h.deleteRows(len(drop), np.asarray([m + i for i in drop], dtype=np.int32))
            gone = set(drop)
            self.added = [c for i, c in enumerate(self.added) if i not in gone]
            self._cuts_version += 1

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
        # no LP runs past the deadline (one stopped early still has a rigorous, weaker bound)
        set_time_left(h, self.deadline - time.perf_counter())
        # nor past the pruning level: the dual simplex stops once its dual objective passes it
        # (an infeasible node's heads for +inf: 4x fewer iterations there), and the duals it
        # stopped at bound the node above the level (SafeBound, rigorous for any multipliers)
        level = self.level if self.dual_cutoff else np.inf
        h.setOptionValue(
            "objective_bound", level + CUTOFF_MARGIN * (1.0 + abs(level)) if np.isfinite(level) else np.inf
        )
        run_highs(h)
        ms = h.getModelStatus()
        sol = h.getSolution()
        # multipliers tried (the bound holds for any): the row duals with both sign conventions,
        # none (the column bounds alone), and for an infeasible node its Farkas ray at growing
        # scales on top of the duals
        self._sync_safe()
        duals = np.asarray(sol.row_dual) if sol.dual_valid else None
        infeasible = ms == hp.HighsModelStatus.kInfeasible
        if infeasible:
            Y = self.safe.multipliers(duals)
            y = Y[1] if len(Y) > 1 else Y[0]  # the duals, or 0 where they are unusable
            _, has_ray, ray = h.getDualRay()
            r = np.asarray(ray, dtype=np.float64)
            if has_ray and r.shape == y.shape and np.all(np.isfinite(r)) and np.any(r != 0):
                r = r / float(np.max(np.abs(r)))
                Y += [y + s * r for s in RAY_SCALES] + [-y - s * r for s in RAY_SCALES]
            bound = float(np.max(self.safe.bounds(cost, np.stack(Y, axis=1), cl, cu)))
        else:
            bound = float(np.max(self.safe.signed_bounds(cost, duals, cl, cu)))
        ok = ms == hp.HighsModelStatus.kOptimal
        self.last_value = float(h.getInfo().objective_function_value) if ok else bound  # the search's key
        if infeasible:
            return bound, None, False
        if ms != hp.HighsModelStatus.kOptimal or not sol.value_valid:
            return bound, None, False
        v = np.asarray(sol.col_value, dtype=np.float64)
        # a fixed binary counts as integral: HiGHS may leave it basic a tolerance off its bound
        d = v[self.ints[fix < 0]]
        integral = bool(np.all(np.minimum(np.abs(d), np.abs(1.0 - d)) <= INTEGRAL))
        return bound, v, integral

    def _branch_on(self, free: np.ndarray, v: np.ndarray) -> int:
        """The free binary whose neuron's triangle is most violated at the LP point (a − relu(z):
        the slack its phase split removes); fractionality breaks ties."""
        d = v[self.ints[free]]
        return int(free[int(np.argmax(self._violations(free, v) + 1e-12 * np.minimum(d, 1.0 - d)))])

    def _violations(self, free: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Per free binary, a − relu(z) of its neuron at the LP point v (>= 0)."""
        z_cols, a_cols = self.violation
        return np.maximum(v[a_cols[free]] - np.maximum(v[z_cols[free]], 0.0), 0.0)

    def _pseudocost_branch(
        self,
        free: np.ndarray,
        v: np.ndarray,
        fix: np.ndarray,
        key: float,
        cost: np.ndarray,
        pc,
        deadline: float,
        basis: Any = None,
    ) -> tuple[int, dict, int]:
        """Reliability branching: the fractional binary with the best product of estimated child
        gains, after strong branching on up to ``STRONG`` of the most violated ones whose gains
        are not known yet (``key``: the node's LP value). Returns it and what strong branching
        found for its children ({phase: (rigorous bound, LP value)}: the bound may close a child
        unsolved), and the number of LPs strong branching solved."""
        d = v[self.ints[free]]
        frac = np.minimum(d, 1.0 - d)
        cand = np.flatnonzero(frac > INTEGRAL)
        if cand.size == 0:  # the free binaries are integral (a fixed one is not): any will do
            return self._branch_on(free, v), {}, 0
        viol = self._violations(free, v)
        order = cand[np.argsort(-viol[cand], kind="stable")]
        tried: dict[int, dict] = {}
        for i in order[~pc.reliable(free[order])][:STRONG]:
            if time.perf_counter() > deadline:
                break
            j = int(free[i])
            tried[j] = {}
            for phase in (0, 1):
                child = fix.copy()
                child[j] = phase
                self._start_from(basis)
                b = self._node(child, cost)[0]
                tried[j][phase] = (b, self.last_value)
                pc.learn(j, phase, float(d[i]), key, max(self.last_value, key))
        j = int(free[cand[int(np.argmax(pc.scores(free[cand], d[cand])))]])
        return j, tried.get(j, {}), 2 * len(tried)


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


class _Pseudocosts:
    """Per binary and phase, the mean bound gain per unit of the distance the branch moved it
    (the LP value d to 0, or to 1): what a branch on it is expected to buy."""

    def __init__(self, n: int) -> None:
        self.total = np.zeros((n, 2))
        self.count = np.zeros((n, 2))

    def learn(self, j: int, phase: int, d: float, parent: float, child: float) -> None:
        """One observation: branching binary j (LP value d at the parent) to ``phase`` took the
        bound from ``parent`` to ``child`` (an infeasible child's huge bound counts as a large gain)."""
        dist = d if phase == 0 else 1.0 - d
        if not (np.isfinite(parent) and np.isfinite(dist) and dist > INTEGRAL):
            return
        gain = min(max(child - parent, 0.0), GAIN_CAP * (1.0 + abs(parent)))
        self.total[j, phase] += gain / dist
        self.count[j, phase] += 1

    def reliable(self, js: np.ndarray) -> np.ndarray:
        """Per binary of ``js``, whether both its phases' gains have been seen ``RELIABLE`` times."""
        return np.all(self.count[js] >= RELIABLE, axis=1)

    def scores(self, js: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The product score of branching each binary of ``js`` (LP values ``d``); an unknown gain
        is the mean of the known ones."""
        known = self.count > 0
        mean = np.where(known, self.total / np.maximum(self.count, 1), 0.0)
        avg = np.array([np.mean(mean[known[:, p], p]) if np.any(known[:, p]) else 1.0 for p in (0, 1)])
        g = np.where(known[js], mean[js], avg)
        return np.maximum(g[:, 0] * d, SCORE_EPS) * np.maximum(g[:, 1] * (1.0 - d), SCORE_EPS)
