"""What the external backends share: the query interface, bisection for δ_max, result assembly.

A backend answers *queries* on a single network (the merged one): "is there an x in the box whose
output y satisfies one of these conjunctions ``A y <= b``?" (``sat`` with x, ``unsat``, or
``timeout``/``unknown``). From queries we build

* the ε-decision: one query with the unsafe set ``|Y_j| >= ε`` for some j on the merged network
  (``output="diff"``), :func:`decide_by_query`;
* δ_max = max_x |Φ1(x) − Φ2(x)|∞ by bisection on the threshold t (:func:`bisect_delta`): a query
  "some |Y_j| >= t" is ``sat`` (then the witness, re-evaluated on the two original networks,
  raises the lower bound to its value, which is >= t up to the solver's tolerance) or ``unsat``
  (then t is an upper bound). It stops when ``upper − lower <= max(atol, rtol·lower)``;
* top-1 equivalence: the DNF of :func:`~equivrepair.spec.vnnlib.top1_dnf` on the merged network with
  ``output="both"``.

The witness rule of the contract holds for every backend: ``lower`` is always the value at a
concrete x evaluated on Φ1 and Φ2 in float64, never a number reported by the solver. ``upper``
is what the solver proved (``unsat`` at t), so it is as sound as the solver's own arithmetic; the
time spent outside Python (in the solver's C/C++ code or its subprocess) is in ``stats["external_time"]``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...merge import merge
from ...nets.ir import FNN
from ...spec.sets import Box
from ..result import Decision, Discrepancy

DEFAULT_BISECT_ATOL = 1e-4
DEFAULT_BISECT_RTOL = 1e-3


class BackendUnavailable(ImportError):
    """The external tool is not installed (the message is a one-line hint on how to install it)."""


class ExternalError(RuntimeError):
    """The external tool ran but failed (crash, unreadable output)."""


Conj = tuple[np.ndarray, np.ndarray]  # (A, b): A y <= b


@dataclass
class QueryResult:
    """One query's answer: ``sat`` (x in the box, y the solver's output), ``unsat``, ``timeout``, ``unknown``, ``error``."""

    status: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    external_time: float = 0.0  # seconds outside Python (solver C++ code or subprocess)
    wall_time: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class Backend:
    """Interface of a backend; subclasses implement :meth:`query` and may override :meth:`evaluate`."""

    name = "external"

    def version(self) -> str:  # pragma: no cover - overridden
        return "unknown"

    def query(self, net: FNN, box: Box, dnf: Sequence[Conj], time_limit: float | None) -> QueryResult:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "backend_version": self.version()}


def grace_seconds(time_limit: float | None) -> float | None:
    """How long a solver process may overrun its own time limit before it is killed."""
    return None if time_limit is None else float(time_limit) + 2.0 + 0.1 * float(time_limit)


def run_killable(cmd: Sequence[str], timeout: float | None, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a session of its own: at the timeout the whole process group is
    killed (solvers fork workers that would otherwise outlive the call), then TimeoutExpired."""
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:  # an exception on the way out (e.g. KeyboardInterrupt)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def epsilon_dnf(m: int, eps: float, outputs: Sequence[int]) -> list[Conj]:
    """``Y_j >= eps`` or ``Y_j <= -eps`` for each selected j, as conjunctions ``A y <= b``."""
    out = []
    for j in outputs:
        a = np.zeros((1, m))
        a[0, j] = -1.0
        out.append((a, np.array([-eps])))
        a = np.zeros((1, m))
        a[0, j] = 1.0
        out.append((a, np.array([-eps])))
    return out


def top1_conjs(m: int) -> list[Conj]:
    """The top-1 disagreement DNF over [y1, y2] (see :func:`equivrepair.spec.vnnlib.top1_dnf`) as (A, b)."""
    from ...spec.vnnlib import top1_dnf

    return [(np.vstack([c.a for c in conj]), np.array([c.c for c in conj])) for conj in top1_dnf(m)]


def disc(orig: FNN, comp: FNN, x: np.ndarray) -> np.ndarray:
    return orig.forward(x) - comp.forward(x)


def _value(orig: FNN, comp: FNN, x: np.ndarray, outputs: Sequence[int]) -> float:
    return float(np.max(np.abs(disc(orig, comp, x)[list(outputs)])))


def _seed_witness(orig: FNN, comp: FNN, box: Box, outputs: Sequence[int], n: int = 256) -> tuple[np.ndarray, float]:
    """Cheap starting witness: the best of the centre and random points of the box (constraint-respecting)."""
    pts = np.vstack([box.center[None], box.sample(n, seed=0)])
    pts = pts[np.asarray(box.contains(pts), dtype=bool)] if box.has_constraints else pts
    if len(pts) == 0:
        pts = box.center[None]
    d = np.abs(disc(orig, comp, pts)[:, list(outputs)]).max(axis=1)
    k = int(np.argmax(d))
    return pts[k], float(d[k])


def _sound_upper(orig: FNN, comp: FNN, box: Box) -> np.ndarray:
    """(m, 2) sound enclosure of Φ1 − Φ2 on the box from symbolic bounds of the merged network."""
    from ..symbolic import symbolic_bounds

    sym, _ = symbolic_bounds(merge(orig, comp), box.lower[None], box.upper[None])
    lo, hi = sym.lower[0], sym.upper[0]
    slack = 1e-9 * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
    return np.stack([lo - slack, hi + slack], axis=1)


class _Clock:
    def __init__(self, time_limit: float | None) -> None:
        self.t0 = time.perf_counter()
        self.limit = time_limit

    def left(self) -> float | None:
        if self.limit is None:
            return None
        return self.limit - (time.perf_counter() - self.t0)

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def bisect_delta(
    backend: Backend,
    orig: FNN,
    comp: FNN,
    box: Box,
    *,
    outputs: Sequence[int] | None = None,
    time_limit: float | None = None,
    atol: float = DEFAULT_BISECT_ATOL,
    rtol: float = DEFAULT_BISECT_RTOL,
    per_output: bool = False,
    method: str | None = None,
    progress: Callable[[dict], None] | None = None,
) -> Discrepancy:
    """δ_max by bisection on the threshold with ``backend`` queries on the merged network.

    ``per_output=True`` bisects every signed output separately (2m bisections; tight
    ``per_output`` intervals); otherwise one bisection on max_j |Δ_j| and ``per_output`` holds the
    symbolic enclosure intersected with [−upper, upper].
    """
    clock = _Clock(time_limit)
    m = orig.n_outputs
    outputs = list(range(m)) if outputs is None else sorted(set(outputs))
    merged = merge(orig, comp, output="diff")
    enclosure = _sound_upper(orig, comp, box)
    stats: dict[str, Any] = {"queries": 0, "external_time": 0.0, **backend.describe()}
    method = method or backend.name

    def run(dnf: list[Conj], t: float) -> QueryResult:
        left = clock.left()
        r = backend.query(merged, box, dnf, None if left is None else max(left, 0.001))
        stats["queries"] += 1
        stats["external_time"] += r.external_time
        if r.status == "error":
            raise ExternalError(f"{backend.name}: {r.message or 'solver error'}")
        if progress is not None:
            progress({"threshold": t, "status": r.status, "time": clock.elapsed()})
        return r

    def tol(lower: float) -> float:
        return max(atol, rtol * abs(lower))

    objectives = [(s, j) for j in outputs for s in (1, -1)] if per_output else [None]
    x0, v0 = _seed_witness(orig, comp, box, outputs)
    best_x, best_v = x0, v0
    finished = True
    per = enclosure.copy()
    uppers = []
    for obj in objectives:
        if obj is None:
            lower = v0
            upper = float(max(max(-enclosure[j, 0], enclosure[j, 1]) for j in outputs))
            value_at = lambda x: _value(orig, comp, x, outputs)  # noqa: E731
        else:
            s, j = obj
            xs = np.vstack([box.center[None], box.sample(64, seed=1 + j)])
            vals = s * disc(orig, comp, xs)[:, j]
            k = int(np.argmax(vals))
            lower = float(vals[k])
            upper = float(enclosure[j, 1] if s > 0 else -enclosure[j, 0])

            def value_at(x, s=s, j=j):
                return float(s * disc(orig, comp, x)[j])

        weak = 0
        while upper - lower > tol(lower):
            if clock.expired():
                finished = False
                break
            t = 0.5 * (lower + upper)
            if obj is None:
                if t <= 0:  # |Δ| >= t holds everywhere; the max is at least the witness already
                    upper = max(lower, 0.0)
                    break
                dnf = epsilon_dnf(m, t, outputs)
            else:
                s, j = obj
                a = np.zeros((1, m))
                a[0, j] = -float(s)
                dnf = [(a, np.array([-t]))]
            r = run(dnf, t)
            if r.status == "sat" and r.x is not None:
                x = np.clip(np.asarray(r.x, dtype=np.float64), box.lower, box.upper)
                v = value_at(x)
                if v < t:
                    x2 = _polish(merged, box, dnf, x)
                    if value_at(x2) > v and (not box.has_constraints or box.contains(x2)):
                        x, v = x2, value_at(x2)
                cand_v = _value(orig, comp, x, outputs)
                if cand_v > best_v:
                    best_x, best_v = x, cand_v
                if v < t - tol(t):
                    # the solver's witness does not reach t on the original networks (its own
                    # tolerance); it proves nothing about t: keep what it shows and give up after
                    # two such answers in a row rather than loop
                    stats["weak_witnesses"] = stats.get("weak_witnesses", 0) + 1
                    weak += 1
                    if v <= lower or weak >= 2:
                        finished = False
                        break
                else:
                    weak = 0
                lower = max(lower, v)
            elif r.status == "unsat":
                upper = t
            else:
                finished = False
                break
        if obj is None:
            uppers.append(upper)
            for j in outputs:
                per[j, 0] = max(per[j, 0], -upper)
                per[j, 1] = min(per[j, 1], upper)
        else:
            s, j = obj
            if s > 0:
                per[j, 1] = min(per[j, 1], upper)
            else:
                per[j, 0] = max(per[j, 0], -upper)
            uppers.append(upper)
    up = float(max(max(-per[j, 0], per[j, 1]) for j in outputs))
    up = max(up, best_v)
    stats["time"] = clock.elapsed()
    stats["method"] = method
    stats["atol"], stats["rtol"] = atol, rtol
    tolerance = max(atol, rtol * best_v)
    exact = finished and up - best_v <= tolerance * (1 + 1e-9)
    return Discrepancy(
        per_output=per,
        lower=best_v,
        upper=up,
        witness=best_x,
        status="exact" if exact else "bounded",
        method=method,
        delta_max=up if exact else None,
        tolerance=tolerance,
        witness_output=int(outputs[int(np.argmax(np.abs(disc(orig, comp, best_x)[outputs])))]),
        outputs=None if len(outputs) == m else outputs,
        stats=stats,
        message="" if exact else "bisection stopped early (time limit or undecided query): bounds so far",
    )


def _polish(merged: FNN, box: Box, dnf: Sequence[Conj], x: np.ndarray) -> np.ndarray:
    """Push a solver's witness deeper into the unsafe set (sign-gradient steps inside the box).

    Solvers answer ``sat`` up to their own tolerance; re-evaluated in float64 on the original networks
    a witness can fall just short of the threshold. A few local steps usually fix that; the result
    is still checked on the original networks by the caller.
    """
    from ...spec.vnnlib import LinearConstraint
    from ..property import _Case, _local_search

    dnf_lc = tuple(tuple(LinearConstraint(a, c) for a, c in zip(np.atleast_2d(A), np.atleast_1d(b))) for A, b in dnf)
    case = _Case(merged, box, dnf_lc)
    ex = case.conj_excess(case.g(x[None]))[0]
    k = int(np.argmin(ex))
    best, _ = _local_search(case, x[None], np.array([k]), box.lower, box.upper, steps=30)
    return best[0]


def decide_by_query(
    backend: Backend,
    orig: FNN,
    comp: FNN,
    box: Box,
    epsilon: float,
    *,
    outputs: Sequence[int] | None = None,
    time_limit: float | None = None,
    method: str | None = None,
) -> Decision:
    """ε-equivalence with one query "some |Δ_j| >= ε" on the merged network."""
    t0 = time.perf_counter()
    m = orig.n_outputs
    outputs = list(range(m)) if outputs is None else sorted(set(outputs))
    merged = merge(orig, comp, output="diff")
    method = method or backend.name
    x0, v0 = _seed_witness(orig, comp, box, outputs, n=64)
    stats: dict[str, Any] = {"queries": 0, "external_time": 0.0, **backend.describe()}
    if v0 >= epsilon:
        stats["time"] = time.perf_counter() - t0
        return Decision("not_equivalent", epsilon, x0, v0, v0, np.inf, method, "counterexample by sampling", stats)
    r = backend.query(merged, box, epsilon_dnf(m, epsilon, outputs), time_limit)
    stats["queries"] = 1
    stats["external_time"] = r.external_time
    stats.update({f"solver_{k}": v for k, v in r.stats.items()})
    stats["time"] = time.perf_counter() - t0
    if r.status == "sat" and r.x is not None:
        x = np.clip(np.asarray(r.x, dtype=np.float64), box.lower, box.upper)
        v = _value(orig, comp, x, outputs)
        if v < epsilon:
            x2 = _polish(merged, box, epsilon_dnf(m, epsilon, outputs), x)
            v2 = _value(orig, comp, x2, outputs)
            if v2 > v and (not box.has_constraints or box.contains(x2)):
                x, v = x2, v2
                stats["witness_polished"] = True
        if v >= epsilon:
            return Decision("not_equivalent", epsilon, x, v, v, np.inf, method, "counterexample from the solver", stats)
        return Decision(
            "unknown",
            epsilon,
            None,
            None,
            max(v, v0),
            np.inf,
            method,
            f"the solver reported sat but its witness gives |Δ| = {v:.6g} < ε on the original networks "
            "(numerical tolerance); undecided",
            stats,
        )
    if r.status == "unsat":
        return Decision("equivalent", epsilon, None, None, v0, epsilon, method, "proved by the solver", stats)
    if r.status == "error":
        raise ExternalError(f"{backend.name}: {r.message or 'solver error'}")
    return Decision("unknown", epsilon, None, None, v0, np.inf, method, r.message or r.status, stats)


def decide_top1_by_query(
    backend: Backend, orig: FNN, comp: FNN, box: Box, *, time_limit: float | None = None, method: str | None = None
) -> Decision:
    """Top-1 equivalence: ``equivalent`` iff argmax Φ1 = argmax Φ2 (both unique) on the whole box.

    ``Decision.epsilon`` is 0 (no threshold); a counterexample is an x where the argmaxes differ or tie.
    """
    t0 = time.perf_counter()
    m = orig.n_outputs
    both = merge(orig, comp, output="both")
    method = method or backend.name
    stats: dict[str, Any] = {"queries": 0, "external_time": 0.0, **backend.describe()}

    def differs(x: np.ndarray) -> bool:
        y1, y2 = orig.forward(x), comp.forward(x)
        i1, i2 = np.flatnonzero(y1 == y1.max()), np.flatnonzero(y2 == y2.max())
        return not (len(i1) == 1 and len(i2) == 1 and i1[0] == i2[0])

    r = backend.query(both, box, top1_conjs(m), time_limit)
    stats["queries"] = 1
    stats["external_time"] = r.external_time
    stats["time"] = time.perf_counter() - t0
    if r.status == "sat" and r.x is not None:
        x = np.clip(np.asarray(r.x, dtype=np.float64), box.lower, box.upper)
        if differs(x):
            return Decision("not_equivalent", 0.0, x, None, 0.0, np.inf, method, "top-1 classes differ or tie", stats)
        return Decision("unknown", 0.0, None, None, 0.0, np.inf, method, "solver witness does not reproduce", stats)
    if r.status == "unsat":
        return Decision("equivalent", 0.0, None, None, 0.0, 0.0, method, "top-1 equivalent on the box", stats)
    return Decision("unknown", 0.0, None, None, 0.0, np.inf, method, r.message or r.status, stats)
