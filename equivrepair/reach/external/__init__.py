"""External solvers behind the evaluate/check interface: ``nnenum``, ``marabou``, ``vnncomp-tool``.

* :func:`run_external` (``evaluate(..., method=M)``) -> :class:`~equivrepair.reach.result.Discrepancy`:
  nnenum gives exact δ_max from its exact star enumeration; marabou and vnncomp-tool bisect on
  the threshold (tolerance ``bisect_atol``/``bisect_rtol``, default 1e-4 absolute, 1e-3 relative).
* :func:`decide_external` (``check(..., method=M)``) -> :class:`~equivrepair.reach.result.Decision`
  with one query "some |Φ1 − Φ2|_j >= ε".
* :func:`decide_top1_external`: top-1 equivalence.

Every result's ``stats`` names the backend and its version (``backend``, ``backend_version``) and
the time spent outside Python (``external_time``). A backend that is not installed raises
:class:`BackendUnavailable` (an ImportError) whose message says how to install it.
"""

from __future__ import annotations

from typing import Any

from ...nets.ir import FNN
from ...spec.sets import Box
from ..result import Decision, Discrepancy
from .common import (
    DEFAULT_BISECT_ATOL,
    DEFAULT_BISECT_RTOL,
    Backend,
    BackendUnavailable,
    ExternalError,
    bisect_delta,
    decide_by_query,
    decide_top1_by_query,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "ExternalError",
    "available",
    "decide_external",
    "decide_top1_external",
    "get_backend",
    "run_external",
]

BACKENDS = ("nnenum", "marabou", "vnncomp-tool")

_BISECT_KEYS = ("bisect_atol", "bisect_rtol", "per_output", "progress")


def get_backend(method: str, **options: Any) -> Backend:
    """The backend object for ``method`` (options go to its constructor)."""
    if method == "marabou":
        from .marabou import MarabouBackend

        return MarabouBackend(**options)
    if method == "nnenum":
        from .nnenum import NnenumBackend

        return NnenumBackend(**options)
    if method == "vnncomp-tool":
        from .vnncomp_tool import VnncompToolBackend

        return VnncompToolBackend(**options)
    raise ValueError(f"unknown external method {method!r}; choose from {', '.join(BACKENDS)}")


def available(method: str) -> tuple[bool, str]:
    """``(True, "")`` when the backend can run here, else ``(False, one-line reason with install hint)``."""
    try:
        get_backend(method)
    except BackendUnavailable as exc:
        return False, str(exc)
    return True, ""


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    bis = {k: options.pop(k) for k in list(options) if k in _BISECT_KEYS}
    return options, bis


def run_external(
    method: str,
    orig: FNN,
    comp: FNN,
    box: Box,
    time_limit: float | None = None,
    outputs: list[int] | None = None,
    **options: Any,
) -> Discrepancy:
    """δ_max and per-output bounds of Φ1 − Φ2 on ``box`` with an external solver."""
    opts, bis = _split(dict(options))
    backend = get_backend(method, **opts)
    if method == "nnenum" and not bis.get("per_output"):
        return backend.evaluate(orig, comp, box, outputs=outputs, time_limit=time_limit)
    return bisect_delta(
        backend,
        orig,
        comp,
        box,
        outputs=outputs,
        time_limit=time_limit,
        atol=bis.get("bisect_atol", DEFAULT_BISECT_ATOL),
        rtol=bis.get("bisect_rtol", DEFAULT_BISECT_RTOL),
        per_output=bool(bis.get("per_output", False)),
        progress=bis.get("progress"),
        method=method,
    )


def decide_external(
    method: str,
    orig: FNN,
    comp: FNN,
    box: Box,
    epsilon: float,
    time_limit: float | None = None,
    outputs: list[int] | None = None,
    **options: Any,
) -> Decision:
    """ε-equivalence (is |Φ1 − Φ2|_j < ε on all of the box?) with one external query."""
    opts, _ = _split(dict(options))
    backend = get_backend(method, **opts)
    return decide_by_query(backend, orig, comp, box, epsilon, outputs=outputs, time_limit=time_limit, method=method)


def decide_top1_external(
    method: str, orig: FNN, comp: FNN, box: Box, time_limit: float | None = None, **options: Any
) -> Decision:
    """Top-1 equivalence (same unique argmax everywhere on the box) with an external solver."""
    opts, _ = _split(dict(options))
    backend = get_backend(method, **opts)
    return decide_top1_by_query(backend, orig, comp, box, time_limit=time_limit, method=method)
