"""Results of discrepancy evaluation: :class:`Discrepancy` (bounds on Φ1 − Φ2) and :class:`Decision`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Status = Literal["exact", "bounded", "error"]
Verdict = Literal["equivalent", "not_equivalent", "unknown"]


@dataclass
class Discrepancy:
    """What is known about Φ1(x) − Φ2(x) over an input set X.

    ``per_output[j] = (lo_j, hi_j)`` encloses {(Φ1(x) − Φ2(x))_j : x in X} (sound; tight to
    ``tolerance`` when ``status == "exact"``). ``lower <= max_x |Φ1(x) − Φ2(x)|_inf <= upper``;
    ``lower`` is the value at ``witness``, re-evaluated on the two original networks in float64.
    ``delta_max`` is set only when the method is exact and finished (it equals ``upper``: the
    sound side). ``tolerance`` is the absolute slack the upper bound may carry beyond the truth.
    """

    per_output: np.ndarray  # (m, 2)
    lower: float
    upper: float
    witness: np.ndarray | None
    status: Status
    method: str
    delta_max: float | None = None
    tolerance: float = 0.0
    witness_output: int | None = None
    outputs: list[int] | None = None  # which outputs were considered (None: all)
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    stars: list[Any] | None = None  # star-enum keeps the reachable output set here

    def __post_init__(self) -> None:
        # + 0.0 turns a −0.0 (from negating a zero bound) into 0.0: "delta_max = -0" misleads
        self.per_output = np.asarray(self.per_output, dtype=np.float64).reshape(-1, 2) + 0.0
        self.lower, self.upper = float(self.lower) + 0.0, float(self.upper) + 0.0
        if self.delta_max is not None:
            self.delta_max = float(self.delta_max) + 0.0
        if self.witness is not None:
            self.witness = np.asarray(self.witness, dtype=np.float64)

    @property
    def gap(self) -> float:
        return float(self.upper - self.lower)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("stars")
        d["per_output"] = self.per_output.tolist()
        d["witness"] = None if self.witness is None else self.witness.tolist()
        d["n_stars"] = None if self.stars is None else len(self.stars)
        return _clean(d)

    def summary(self) -> str:
        lines = [f"method {self.method}: status {self.status}"]
        if self.delta_max is not None:
            lines.append(f"  delta_max = {self.delta_max:.9g}  (tolerance {self.tolerance:.2g})")
        lines.append(f"  max |Φ1 − Φ2|∞ in [{self.lower:.9g}, {self.upper:.9g}]")
        for j, (lo, hi) in enumerate(self.per_output):
            if self.outputs is None or j in self.outputs:
                lines.append(f"  output {j}: Φ1 − Φ2 in [{lo:+.9g}, {hi:+.9g}]")
        if self.witness is not None:
            w = np.array2string(self.witness[:8], precision=6, separator=", ")
            more = " ..." if self.witness.size > 8 else ""
            lines.append(f"  witness (output {self.witness_output}): {w}{more}")
        t = self.stats.get("time")
        if t is not None:
            lines.append(
                f"  time {t:.3f} s"
                + "".join(f", {k} {v}" for k, v in self.stats.items() if k in ("branches", "stars", "lps", "nodes"))
            )
        if self.message:
            lines.append(f"  note: {self.message}")
        return "\n".join(lines)


@dataclass
class Decision:
    """Answer of the ε-equivalence (or top-1) decision: is |Φ1 − Φ2|∞ < ε on all of X?"""

    verdict: Verdict
    epsilon: float
    counterexample: np.ndarray | None = None
    counterexample_value: float | None = None
    lower: float = 0.0
    upper: float = float("inf")
    method: str = ""
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["counterexample"] = None if self.counterexample is None else np.asarray(self.counterexample).tolist()
        return _clean(d)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(obj.to_json() if hasattr(obj, "to_json") else _clean(obj), indent=2)
