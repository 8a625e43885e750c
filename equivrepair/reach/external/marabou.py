"""Marabou backend (maraboupy, a complete SMT-based verifier): ε-decision, δ_max by bisection, top-1.

The network goes to Marabou as equations built directly from our IR (no ONNX parsing, so any
FNN works): one variable per input, per pre-activation and per ReLU output, an equation
``z = W a + b`` per neuron, a ReLU constraint per hidden neuron, and the outputs. The input box
gives the input bounds; the box's linear constraints ``A x <= c`` become inequalities.

A query with a disjunction of conjunctions ``A y <= b`` runs one Marabou solve per conjunction
(the simple shape Marabou is best at), stopping at the first ``sat``; strictness is dropped (a
closed set), which is what the contract's ``>= ε`` asks for. Marabou's answers are as sound as its
own floating-point arithmetic (its tolerances are around 1e-6 on bounds); witnesses are always
re-evaluated on our side.

Time outside Python: the wall time spent inside ``MarabouCore.solve`` (C++).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...nets.ir import FNN
from ...spec.sets import Box
from .common import Backend, BackendUnavailable, Conj, QueryResult

INSTALL_HINT = "Marabou backend needs maraboupy: pip install 'maraboupy>=2.0' (or pip install 'equivrepair[marabou]')"


def _core():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from maraboupy import MarabouCore
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailable(INSTALL_HINT) from exc
    return MarabouCore


def available() -> tuple[bool, str]:
    try:
        _core()
    except BackendUnavailable as exc:
        return False, str(exc)
    return True, ""


class MarabouBackend(Backend):
    name = "marabou"

    def __init__(self, verbosity: int = 0, **options: Any) -> None:
        self.core = _core()
        self.verbosity = verbosity
        self.options = options

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return f"maraboupy {version('maraboupy')}"
        except Exception:  # pragma: no cover
            return "maraboupy (version unknown)"

    # -- encoding ------------------------------------------------------------------------------
    def _encode(self, net: FNN, box: Box) -> tuple[Any, list[int], list[int]]:
        core = self.core
        q = core.InputQuery()
        n = net.n_inputs
        nvar = n
        xs = list(range(n))
        bounds: list[tuple[int, float, float]] = [(i, float(box.lower[i]), float(box.upper[i])) for i in xs]
        eqs: list[tuple[list[tuple[float, int]], float]] = []  # sum a_i v_i = scalar
        relus: list[tuple[int, int]] = []
        prev = xs
        # interval bounds help Marabou's preprocessing; they are implied, so they are safe to state
        lo, hi = box.lower.copy(), box.upper.copy()
        for layer in net.layers:
            W, b = layer.W, layer.b
            Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
            zl = Wp @ lo + Wn @ hi + b
            zu = Wp @ hi + Wn @ lo + b
            zs = list(range(nvar, nvar + layer.n_out))
            nvar += layer.n_out
            for i, zv in enumerate(zs):
                nz = np.flatnonzero(W[i])
                eqs.append(([(float(W[i, k]), prev[k]) for k in nz] + [(-1.0, zv)], -float(b[i])))
            if layer.activation == "relu":
                hs = list(range(nvar, nvar + layer.n_out))
                nvar += layer.n_out
                for i in range(layer.n_out):
                    relus.append((zs[i], hs[i]))
                    bounds.append((hs[i], 0.0, max(float(zu[i]), 0.0)))
                lo, hi = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
                prev = hs
            else:
                lo, hi = zl, zu
                prev = zs
        q.setNumberOfVariables(nvar)
        for v, lb, ub in bounds:
            q.setLowerBound(v, lb)
            q.setUpperBound(v, ub)
        for terms, scalar in eqs:
            e = core.Equation()
            for a, v in terms:
                e.addAddend(a, v)
            e.setScalar(scalar)
            q.addEquation(e)
        for zv, hv in relus:
            core.addReluConstraint(q, zv, hv)
        if box.A is not None:
            for row, c in zip(box.A, box.c):
                e = core.Equation(core.Equation.LE)
                for k in np.flatnonzero(row):
                    e.addAddend(float(row[k]), xs[k])
                e.setScalar(float(c))
                q.addEquation(e)
        for i, v in enumerate(xs):
            q.markInputVariable(v, i)
        for j, v in enumerate(prev):
            q.markOutputVariable(v, j)
        return q, xs, prev

    def _add_conj(self, q: Any, ys: list[int], A: np.ndarray, b: np.ndarray) -> None:
        core = self.core
        for row, c in zip(np.atleast_2d(A), np.atleast_1d(b)):
            nz = np.flatnonzero(row)
            if len(nz) == 1:
                k = nz[0]
                bound = float(c) / float(row[k])
                v = ys[k]
                if row[k] > 0:
                    q.setUpperBound(v, min(q.getUpperBound(v), bound))
                else:
                    q.setLowerBound(v, max(q.getLowerBound(v), bound))
                continue
            e = core.Equation(core.Equation.LE)
            for k in nz:
                e.addAddend(float(row[k]), ys[k])
            e.setScalar(float(c))
            q.addEquation(e)

    # -- queries -------------------------------------------------------------------------------
    def query(self, net: FNN, box: Box, dnf: Sequence[Conj], time_limit: float | None) -> QueryResult:
        core = self.core
        t0 = time.perf_counter()
        ext = 0.0
        stats: dict[str, Any] = {"solves": 0}
        any_timeout = False
        for A, b in dnf:
            left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
            if left is not None and left <= 0:
                any_timeout = True
                break
            q, xs, ys = self._encode(net, box)
            # a conjunction that contradicts the interval bounds is refuted right away
            try:
                self._add_conj(q, ys, A, b)
            except Exception as exc:  # pragma: no cover
                return QueryResult("error", message=f"encoding failed: {exc}")
            if any(q.getLowerBound(v) > q.getUpperBound(v) for v in ys):
                continue
            opts = core.Options()
            opts._verbosity = int(self.verbosity)
            # Marabou's timeout is whole seconds; 0 means none
            opts._timeoutInSeconds = 0 if left is None else max(1, int(np.ceil(left)))
            for k, v in self.options.items():
                setattr(opts, f"_{k}", v)
            s0 = time.perf_counter()
            with _quiet(self.verbosity):
                code, vals, st = core.solve(q, opts, "")
            ext += time.perf_counter() - s0
            stats["solves"] += 1
            code = str(code).lower()
            if code == "sat":
                x = np.array([vals[v] for v in xs], dtype=np.float64)
                y = np.array([vals[v] for v in ys], dtype=np.float64)
                return QueryResult("sat", x, y, ext, time.perf_counter() - t0, stats)
            if code == "unsat":
                continue
            if code in ("timeout", "quit_requested"):
                any_timeout = True
                break
            return QueryResult(
                "error" if code == "error" else "unknown",
                None,
                None,
                ext,
                time.perf_counter() - t0,
                stats,
                f"marabou exit code {code}",
            )
        status = "timeout" if any_timeout else "unsat"
        return QueryResult(status, None, None, ext, time.perf_counter() - t0, stats)


class _quiet:
    """Silence Marabou's C++ stdout (it prints even at verbosity 0) unless verbose."""

    def __init__(self, verbosity: int) -> None:
        self.on = verbosity <= 0

    def __enter__(self) -> None:
        if not self.on:
            return
        import sys

        sys.stdout.flush()
        self.saved = os.dup(1)
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.devnull, 1)

    def __exit__(self, *exc: Any) -> None:
        if not self.on:
            return
        os.dup2(self.saved, 1)
        os.close(self.saved)
        os.close(self.devnull)
