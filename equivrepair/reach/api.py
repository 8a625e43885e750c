"""The verification contract: ``evaluate`` (bounds on Φ1 − Φ2 over X) and ``check`` (ε-equivalence).

Methods (``method=``):
  ``exact``         branch and bound maximising the discrepancy (default; exact to the tolerance)
  ``star-enum``     exact star-set enumeration of the merged network (keeps the output stars)
  ``milp``          big-M MILP of the merged network (cvxpy + HiGHS), an independent exact check
  ``interval``, ``symbolic``, ``differential``, ``lp``: sound over-approximations δ̃
  ``nnenum``, ``marabou``, ``vnncomp-tool``: external solvers behind the same interface
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..nets.ir import FNN
from ..spec.sets import Box, InputSetError
from .align import LOOSE_MATCH, Alignment, alignable, widen_like
from .bab import DEFAULT_ATOL, DEFAULT_RTOL, discrepancy, maximize
from .result import Decision, Discrepancy

STAR_TOL = 1e-8  # relative slack added to LP optima of star-enum (HiGHS tolerances are 1e-9)

EXACT_METHODS = ("exact", "star-enum", "milp")
BOUND_METHODS = ("interval", "symbolic", "differential", "lp")
EXTERNAL_METHODS = ("nnenum", "marabou", "vnncomp-tool")
METHODS = EXACT_METHODS + BOUND_METHODS + EXTERNAL_METHODS


SPLIT_SHARE = 0.75  # check() on many free inputs: ReLU splitting for up to this share of the time limit ...
SPLIT_NODES = 2000  # ... or this many nodes without one, then the compact MILP
HIGH_DIM = 16  # above this many free inputs, ``exact`` splits ReLUs (MILP) instead of inputs


def fold_fixed_inputs(orig: FNN, comp: FNN, box: Box) -> tuple[FNN, FNN, Box, np.ndarray]:
    """Fold inputs with lower == upper into the first layers' biases (exact); returns the reduced
    networks, the box over the free inputs, and the indices of the free inputs."""
    free = np.flatnonzero(box.upper > box.lower)
    if free.size == box.dim or box.has_constraints:
        return orig, comp, box, np.arange(box.dim)
    if free.size == 0:
        free = np.array([0])
    fixed = np.setdiff1d(np.arange(box.dim), free)
    x_fixed = box.lower[fixed]

    def reduce(net: FNN) -> FNN:
        first = net.layers[0]
        from ..nets.ir import Layer

        layer = Layer(first.W[:, free], first.b + first.W[:, fixed] @ x_fixed, first.activation)
        return net.replace(layers=(layer,) + net.layers[1:], input_domain=None)

    small = Box(box.lower[free], box.upper[free], label=box.label)
    return reduce(orig), reduce(comp), small, free


def unfold_inputs(x: np.ndarray | None, box: Box, free: np.ndarray) -> np.ndarray | None:
    """Points of the folded box (one, or a batch of rows) as full inputs of ``box`` (the inverse of
    :func:`fold_fixed_inputs` on points): the fixed inputs take their value, ``free`` the given ones."""
    if x is None:
        return None
    x = np.asarray(x, dtype=np.float64)
    if x.ndim <= 1:
        full = box.lower.copy()
        full[free] = x.ravel()
        return full
    full = np.tile(box.lower, (len(x), 1))
    full[:, free] = x
    return full


def _bab_only(options: dict[str, Any], box: Box) -> None:
    """Refuse MILP-only options on the input-splitting route, naming why (not a TypeError deep down)."""
    if "highs_options" in options:
        raise ValueError(
            f"highs_options applies to the MILP route (more than {HIGH_DIM} free inputs, a constrained set, "
            f"or method='milp' with backend='highs'); this set has {box.dim} free inputs and runs the "
            "input-splitting branch and bound"
        )


def _validate(orig: FNN, comp: FNN, input_set: Box, outputs: list[int] | None) -> list[int]:
    for what, a, b in (("input", orig.n_inputs, comp.n_inputs), ("output", orig.n_outputs, comp.n_outputs)):
        if a != b:
            raise InputSetError(
                f"networks differ in {what} size: Φ1 {orig.name or '(orig)'} has {a} {what}s, "
                f"Φ2 {comp.name or '(comp)'} has {b}"
            )
    if not isinstance(input_set, Box):
        raise InputSetError(f"input set must be a Box (see equivrepair.spec.sets), got {type(input_set).__name__}")
    input_set.check_dim(orig.n_inputs)
    if outputs is None:
        return list(range(orig.n_outputs))
    bad = [j for j in outputs if not 0 <= j < orig.n_outputs]
    if bad or not outputs:
        raise InputSetError(f"outputs {outputs} not in 0..{orig.n_outputs - 1}")
    return sorted(set(outputs))


def _from_objectives(
    orig: FNN,
    comp: FNN,
    outputs: list[int],
    objectives: list[tuple[int, int]],
    lower: np.ndarray,
    upper: np.ndarray,
    witnesses: np.ndarray,
    exact: bool,
    method: str,
    tolerance: float,
    stats: dict,
    message: str = "",
) -> Discrepancy:
    """Assemble a Discrepancy from per-objective bounds; re-evaluates the witness on Φ1 and Φ2."""
    m = orig.n_outputs
    per = np.tile([[-np.inf, np.inf]], (m, 1)).astype(np.float64)
    for k, (s, j) in enumerate(objectives):
        if s > 0:
            per[j, 1] = upper[k]
        else:
            per[j, 0] = -upper[k]
    # witness: the best point over all objectives, re-evaluated on the original networks
    d = discrepancy(orig, comp, witnesses)
    vals = np.abs(d[:, outputs]).max(axis=1)
    best = int(np.argmax(vals))
    wx = witnesses[best]
    lower_val = float(vals[best])
    w_out = int(outputs[int(np.argmax(np.abs(d[best, outputs])))])
    up = float(max(max(-per[j, 0], per[j, 1]) for j in outputs))
    up = max(up, lower_val)
    gaps = np.full((m, 2), np.nan)
    for k, (s, j) in enumerate(objectives):
        gaps[j, 0 if s < 0 else 1] = float(upper[k] - lower[k])
    stats = dict(stats, interval_gaps=gaps.tolist())
    return Discrepancy(
        per_output=per,
        lower=lower_val,
        upper=up,
        witness=wx,
        status="exact" if exact else "bounded",
        method=method,
        delta_max=up if exact else None,
        tolerance=tolerance,
        witness_output=w_out,
        outputs=None if len(outputs) == m else outputs,
        stats=stats,
        message=message,
    )


def _check_limits(time_limit: float | None, workers: int = 1, atol: float = 0.0, rtol: float = 0.0) -> None:
    """A time limit must be a positive number of seconds (or None), workers a positive count,
    tolerances finite and non-negative: anything else is an input error, not a silent default."""
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None, got {time_limit!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    for name, v in (("atol", atol), ("rtol", rtol)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def _one_blas_thread(fn: Callable) -> Callable:
    """Run with one BLAS thread: the bounds are many small matrix products, which BLAS threads
    slow down (measured 5-10x on a loaded 2-core machine); parallelism is ``workers``' job."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


@_one_blas_thread
def evaluate(
    orig: FNN,
    comp: FNN,
    input_set: Box,
    method: str = "exact",
    time_limit: float | None = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    outputs: list[int] | None = None,
    workers: int = 1,
    progress: Callable[[dict], None] | None = None,
    delta_only: bool = True,
    **options: Any,
) -> Discrepancy:
    """Bounds on Φ1(x) − Φ2(x) over ``input_set``; see :class:`Discrepancy` for the guarantees.

    ``exact`` resolves δ_max to ``max(atol, rtol·δ)``; the per-output intervals are always sound,
    and with ``delta_only=False`` each end is also resolved to ``interval_rtol`` (default 1e-2)
    of max(|end|, δ_max) — several times the work. ``stats["interval_gaps"]`` records, per output,
    how far each interval end may still be from the truth.
    """
    _check_limits(time_limit, workers, atol, rtol)
    outputs = _validate(orig, comp, input_set, outputs)
    if method in ("exact", "star-enum") and not input_set.has_constraints:
        o2, c2, small, free = fold_fixed_inputs(orig, comp, input_set)
        if free.size < input_set.dim:
            res = evaluate(
                o2, c2, small, method, time_limit, atol, rtol, outputs, workers, progress, delta_only, **options
            )
            res.witness = unfold_inputs(res.witness, input_set, free)
            res.stats["folded_fixed_inputs"] = int(input_set.dim - free.size)
            if res.witness is not None:  # the witness rule: re-evaluate on the original networks
                d = discrepancy(orig, comp, res.witness)[outputs]
                res.lower = float(np.max(np.abs(d)))
                res.upper = max(res.upper, res.lower)
            return res
    if method == "exact" and not input_set.has_constraints and options.pop("align", True):
        res = _evaluate_aligned(
            orig, comp, input_set, time_limit, atol, rtol, outputs, workers, progress, delta_only, **options
        )
        if res is not None:
            return res
    t0 = time.perf_counter()
    if method == "exact" and input_set.dim > HIGH_DIM:
        milp_opts = dict(compact=True, backend="highs", atol=atol, rtol=rtol)
        if delta_only:
            milp_opts["mode"] = "max"
            milp_opts["workers"] = workers  # the objectives' MILPs side by side
        milp_opts.update(options)
        res = _run_method("milp", orig, comp, input_set, time_limit, outputs, **milp_opts)
        res.method = "exact"
        res.message = (res.message + " " if res.message else "") + (
            f"{input_set.dim} free inputs: exact runs the MILP (ReLU splitting) instead of input splitting"
        )
        return res
    if method == "exact":
        if input_set.has_constraints:
            method_used = "milp"
            res = _run_method("milp", orig, comp, input_set, time_limit, outputs, **options)
            res.message = (res.message + " " if res.message else "") + "exact on a constrained set runs the MILP"
            return res
        _bab_only(options, input_set)
        if delta_only:
            options["mode"] = "max"
        common = dict(outputs=outputs, atol=atol, rtol=rtol, time_limit=time_limit, progress=progress, **options)
        if workers > 1:
            from .parallel import maximize_parallel

            r = maximize_parallel(orig, comp, input_set.lower, input_set.upper, workers=workers, **common)
        else:
            r = maximize(orig, comp, input_set.lower, input_set.upper, **common)
        stats = dict(r.stats, method="exact", atol=atol, rtol=rtol, workers=workers)
        msg = "" if r.finished else f"stopped early ({r.reason}): bounds so far"
        # exact means every objective's upper bound is within the tolerance of its witness
        tol = float(np.max(np.maximum(atol, rtol * np.abs(r.lower))))
        return _from_objectives(
            orig, comp, outputs, r.objectives, r.lower, r.upper, r.witnesses, r.finished, "exact", tol, stats, msg
        )
    if method == "star-enum":
        return _star_enum(orig, comp, input_set, time_limit, outputs, progress, t0)
    method_used = method
    return _run_method(method_used, orig, comp, input_set, time_limit, outputs, **options)


def _aligned_pair(orig: FNN, comp: FNN, box: Box) -> tuple[FNN, FNN, Alignment | None, str | None]:
    """The pair with its narrower network widened to the other's widths (or as it is, ``None``)."""
    side = alignable(orig, comp)
    if side is None:
        return orig, comp, None, None
    narrow, guide = (comp, orig) if side == "b" else (orig, comp)
    # exact matches first; else the nearest directions (still the same function, only less tight)
    a = widen_like(narrow, guide, box.lower, box.upper)
    if a is None:
        a = widen_like(narrow, guide, box.lower, box.upper, tol=LOOSE_MATCH)
    if a is None:
        return orig, comp, None, None
    return (orig, a.net, a, side) if side == "b" else (a.net, comp, a, side)


def _evaluate_aligned(orig, comp, box, time_limit, atol, rtol, outputs, workers, progress, delta_only, **options):
    """``exact`` on a pair of different widths where one is (up to lumping) the other: the narrow
    network is widened to the other's shape (:mod:`align`, same function, round-off bounded), so
    the differential bounds pair matching neurons. ``None`` when the pair does not align."""
    t0 = time.perf_counter()
    o2, c2, a, side = _aligned_pair(orig, comp, box)
    if a is None:
        return None
    res = evaluate(
        o2, c2, box, "exact", time_limit, atol, rtol, outputs, workers, progress, delta_only, align=False, **options
    )
    # sound for the given pair: every bound widened by the widening's round-off bound; the witness
    # re-evaluated on the original networks
    res.per_output = res.per_output + np.array([-a.error, a.error])
    res.upper += a.error
    if res.witness is not None:
        d = discrepancy(orig, comp, res.witness)[outputs]
        res.lower = float(np.max(np.abs(d)))
        res.witness_output = int(outputs[int(np.argmax(np.abs(d)))])
    res.upper = max(res.upper, res.lower)
    if res.status == "exact":
        res.tolerance += a.error
        res.delta_max = res.upper
        if res.upper - res.lower > max(atol, rtol * res.lower) + a.error:
            res.status, res.delta_max = "bounded", None
    res.stats["aligned"] = {
        "widened": "compressed" if side == "b" else "original",
        "widths": a.net.widths,
        "matched": a.matched,
        "constant": a.constant,
        "absent": a.absent,
        "dead": a.dead,
        "roundoff_bound": a.error,
        "time": time.perf_counter() - t0 - res.stats.get("time", 0.0),
    }
    note = (
        f"the {res.stats['aligned']['widened']} network was widened to the other's widths {a.net.widths} "
        f"(exact rewrite: {a.matched} neurons matched, {a.constant} constant, {a.absent} absent; round-off <= {a.error:.2g}, "
        "added to every bound)"
    )
    res.message = (res.message + "; " if res.message else "") + note
    return res


def _star_enum(orig, comp, box, time_limit, outputs, progress, t0) -> Discrepancy:
    from .bab import make_objectives
    from .star import star_enum, star_extremes

    res, _ = star_enum(orig, comp, box.lower, box.upper, box.A, box.c, time_limit, progress)
    if not res.stars:
        if res.finished:
            raise InputSetError("input set is empty (its linear constraints are infeasible)")
    objectives = make_objectives(outputs)
    mins, maxs, argmins, argmaxs, nlp = star_extremes(res, outputs)
    upper = np.empty(len(objectives))
    wit = np.empty((len(objectives), box.dim))
    for k, (s, j) in enumerate(objectives):
        idx = outputs.index(j)
        val = maxs[idx] if s > 0 else -mins[idx]
        upper[k] = val + STAR_TOL * (1.0 + abs(val))
        wit[k] = argmaxs[idx] if s > 0 else argmins[idx]
    stats = dict(res.stats, lps=res.stats["lps"] + nlp, method="star-enum", time=time.perf_counter() - t0)
    if not res.finished:
        # unfinished enumeration: the stars found so far give witnesses only; fall back to a sound bound
        from .bab import _Bounder

        dlo, dhi, _ = _Bounder(orig, comp)(box.lower[None], box.upper[None])
        for k, (s, j) in enumerate(objectives):
            upper[k] = dhi[0, j] if s > 0 else -dlo[0, j]
        if not res.stars:
            wit[:] = box.center
    disc = _from_objectives(
        orig,
        comp,
        outputs,
        objectives,
        upper,
        upper,
        wit,
        res.finished,
        "star-enum",
        STAR_TOL * (1.0 + float(np.max(np.abs(upper)))),
        stats,
        "" if res.finished else "time limit: enumeration unfinished, upper bound from symbolic bounds",
    )
    disc.stars = res.stars
    return disc


def _run_method(method, orig, comp, box, time_limit, outputs, **options) -> Discrepancy:
    if method == "milp":
        from .milp import method_milp

        d = method_milp(orig, comp, box, time_limit=time_limit, **options)
    elif method == "interval":
        from .bounds import method_interval

        d = method_interval(orig, comp, box)
    elif method == "differential":
        from .bounds import method_differential

        d = method_differential(orig, comp, box)
    elif method == "symbolic":
        d = method_symbolic(orig, comp, box)
    elif method == "lp":
        from .lp import method_lp

        d = method_lp(orig, comp, box)
    elif method in EXTERNAL_METHODS:
        from .external import run_external

        d = run_external(method, orig, comp, box, time_limit=time_limit, outputs=outputs, **options)
    else:
        raise InputSetError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return _restrict(d, outputs, orig.n_outputs)


def _restrict(d: Discrepancy, outputs: list[int], m: int) -> Discrepancy:
    """Recompute upper on the selected outputs only (a method may have bounded all of them)."""
    if len(outputs) == m:
        return d
    d.outputs = outputs
    d.upper = float(max(max(-d.per_output[j, 0], d.per_output[j, 1]) for j in outputs))
    d.upper = max(d.upper, d.lower)
    if d.delta_max is not None:
        d.delta_max = d.upper
    return d


def method_symbolic(orig: FNN, comp: FNN, box: Box) -> Discrepancy:
    """Symbolic linear bounds on the merged network (one pass, no branching)."""
    from .bab import _Bounder, make_objectives

    t0 = time.perf_counter()
    b = _Bounder(orig, comp, use_differential=False)
    dlo, dhi, sym = b(box.lower[None], box.upper[None])
    outputs = list(range(orig.n_outputs))
    objectives = make_objectives(outputs)
    upper = np.array([dhi[0, j] if s > 0 else -dlo[0, j] for s, j in objectives])
    cands = np.vstack(
        [
            np.where(sym.Uw[0, j] > 0, box.upper, box.lower)
            if s > 0
            else np.where(sym.Lw[0, j] > 0, box.lower, box.upper)
            for s, j in objectives
        ]
        + [box.center[None]]
    )
    return _from_objectives(
        orig,
        comp,
        outputs,
        objectives,
        upper,
        upper,
        cands,
        False,
        "symbolic",
        0.0,
        {"time": time.perf_counter() - t0, "method": "symbolic"},
    )


@_one_blas_thread
def check(
    orig: FNN,
    comp: FNN,
    input_set: Box,
    epsilon: float,
    method: str = "exact",
    time_limit: float | None = None,
    outputs: list[int] | None = None,
    progress: Callable[[dict], None] | None = None,
    **options: Any,
) -> Decision:
    """Is |Φ1(x) − Φ2(x)|_j < ε for every x in X and every selected output j?

    ``equivalent`` (a sound proof), ``not_equivalent`` (with a counterexample x, re-evaluated on
    the original networks, where some |Δ_j| >= ε), or ``unknown`` (time limit). Stops as soon
    as the answer is known.
    """
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise InputSetError(f"epsilon must be a positive number, got {epsilon!r}")
    _check_limits(time_limit)
    outputs = _validate(orig, comp, input_set, outputs)
    if method == "exact" and not input_set.has_constraints:
        o2, c2, small, free = fold_fixed_inputs(orig, comp, input_set)
        if free.size < input_set.dim:
            dec = check(o2, c2, small, epsilon, method, time_limit, outputs, progress, **options)
            if dec.counterexample is not None:
                dec.counterexample = unfold_inputs(dec.counterexample, input_set, free)
            return dec
    t0 = time.perf_counter()
    o_run, c_run, eps_run, aligned = orig, comp, epsilon, None
    if method == "exact" and not input_set.has_constraints and options.pop("align", True):
        o_run, c_run, aligned, _ = _aligned_pair(orig, comp, input_set)
        if aligned is not None and aligned.error < 0.5 * epsilon:
            eps_run = epsilon - aligned.error  # a proof below it holds for the given pair below ε
        else:
            o_run, c_run, aligned = orig, comp, None
    if method in EXTERNAL_METHODS:
        from .external import decide_external

        return decide_external(
            method, orig, comp, input_set, epsilon, time_limit=time_limit, outputs=outputs, **options
        )
    split = None  # many free inputs: ReLU splitting first
    if method == "exact" and input_set.dim > HIGH_DIM:
        split = _split_stage(o_run, c_run, input_set, eps_run, outputs, time_limit, progress)
    if method == "exact" and not input_set.has_constraints and input_set.dim <= HIGH_DIM:
        _bab_only(options, input_set)
        r = maximize(
            o_run,
            c_run,
            input_set.lower,
            input_set.upper,
            outputs=outputs,
            mode="decide",
            epsilon=eps_run,
            time_limit=time_limit,
            progress=progress,
            **options,
        )
        lower, upper = float(np.max(r.lower)), float(np.max(r.upper))
        k = int(np.argmax(r.lower))
        x = r.witnesses[k]
        stats = dict(r.stats, method="exact")
    elif split is not None and split[4]:
        lower, upper, x, stats = split[:4]
    elif method == "exact" and len(outputs) == orig.n_outputs:
        # many free inputs or a constrained set: the compact MILP, stopped once ε is settled
        from .milp import method_milp

        opts = dict(compact=True, backend="highs", mode="decide", epsilon=eps_run)
        opts.update(options)
        left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        d = method_milp(o_run, c_run, input_set, time_limit=left, **opts)
        lower, upper, x, stats = d.lower, d.upper, d.witness, dict(d.stats, method="exact")
        if split is not None:  # both bounds are sound: keep the tighter, and the better witness
            upper = min(upper, split[1])
            if split[2] is not None and (x is None or split[0] > lower):
                lower, x = split[0], split[2]
            stats["relu_split"] = split[3]
    else:
        d = evaluate(orig, comp, input_set, method=method, time_limit=time_limit, outputs=outputs, **options)
        lower, upper, x, stats = d.lower, d.upper, d.witness, dict(d.stats)
    if aligned is not None:
        upper += aligned.error  # bounds on the widened pair hold for the given one up to its round-off
        stats["aligned"] = {"widths": aligned.net.widths, "roundoff_bound": aligned.error}
    stats["time"] = time.perf_counter() - t0
    if x is not None:
        val = float(np.max(np.abs(discrepancy(orig, comp, x)[outputs])))
        lower = val
    if x is not None and lower >= epsilon:
        return Decision("not_equivalent", epsilon, x, lower, lower, upper, method, stats=stats)
    if upper < epsilon:
        return Decision("equivalent", epsilon, None, None, lower, upper, method, stats=stats)
    return Decision("unknown", epsilon, None, None, lower, upper, method, "undecided within the limits", stats)


def _split_stage(orig, comp, input_set: Box, epsilon: float, outputs: list[int], time_limit, progress):
    """Many free inputs: ReLU splitting on the differential bounds
    (:mod:`.relu_split`) for up to ``SPLIT_SHARE`` of the time limit (``SPLIT_NODES`` nodes
    without one); undecided, the caller goes on with the MILP and keeps the tighter bound. Its
    root bound alone proves ε = 1 on 16 of the first 20 MNIST images at ±4/255, where the MILP
    settled 12 in 20 s. On a constrained set a counterexample must lie in the set. Returns
    (lower, upper, witness, stats, decided), or None when the architectures differ."""
    from .relu_split import decide_relu_split

    limit = None if time_limit is None else SPLIT_SHARE * time_limit
    try:
        r = decide_relu_split(
            orig, comp, input_set.lower, input_set.upper, epsilon, outputs,
            time_limit=limit, max_nodes=None if limit is not None else SPLIT_NODES, progress=progress,
        )  # fmt: skip
    except NotImplementedError:
        return None
    x = r.witness if not input_set.has_constraints or input_set.contains(r.witness) else None
    decided = r.status == "equivalent" or (r.status == "not_equivalent" and x is not None)
    return r.lower, r.upper, x, dict(r.stats, method="exact", engine="relu-split"), decided


@_one_blas_thread
def check_top1(
    orig: FNN,
    comp: FNN,
    input_set: Box,
    method: str = "exact",
    time_limit: float | None = None,
    progress: Callable[[dict], None] | None = None,
    **options: Any,
) -> Decision:
    """Top-1 equivalence: is argmax Φ1(x) = argmax Φ2(x) (both unique) for every x in X?

    ``exact`` splits inputs (see :mod:`equivrepair.reach.top1`); ``marabou`` asks Marabou.
    ``not_equivalent`` comes with a counterexample where the argmaxes differ or tie.
    """
    _validate(orig, comp, input_set, None)
    if method in EXTERNAL_METHODS:
        from .external import decide_top1_external

        return decide_top1_external(method, orig, comp, input_set, time_limit=time_limit, **options)
    if method != "exact":
        raise InputSetError(f"top-1 equivalence supports methods 'exact' and {EXTERNAL_METHODS}, not {method!r}")
    from .top1 import check_top1 as _top1

    o2, c2, small, free = fold_fixed_inputs(orig, comp, input_set)
    dec = _top1(o2, c2, small.lower, small.upper, time_limit=time_limit, progress=progress, **options)
    if dec.counterexample is not None and free.size < input_set.dim:
        dec.counterexample = unfold_inputs(dec.counterexample, input_set, free)
    return dec
