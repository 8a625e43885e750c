"""Repair targets (numpy only): what the compressed network is retrained towards, from verification.

A strategy turns the result of verifying the repair boxes (plain arrays, see :class:`BoxBounds`)
and the two networks into a training set ``(X, Y)`` for the MSE part of the loss:

* ``paper`` (the seed paper): for box i with centre x_i and per-output discrepancy interval
  [l_ij, u_ij] of Φ1 − Φ2, δ̃_i = (l_i + u_i) / 2 (signed midpoint per output) and the target is
  ŷ_i = Φ2(x_i) + δ̃_i / α;
* ``witness``: the ``paper`` targets, plus the worst-case input x*_i that verification found in
  every box, with target Φ2(x*) + (Φ1(x*) − Φ2(x*)) / α;
* ``distill``: ``n_samples`` points drawn uniformly from every box (and its centre) with target
  Φ1(x) (α is not used).

A target set 𝒪 (:class:`TargetSet`) is data: the largest sound upper bound of max|Φ1 − Φ2|∞ over the
repair boxes must be ``<= delta_max`` and the accuracy on held-out labelled data ``>= min_accuracy``;
a bound left ``None`` is not checked.

This module never imports the verifier or torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nets.ir import FNN

__all__ = [
    "STRATEGIES",
    "BoxBounds",
    "TargetSet",
    "Targets",
    "distill_targets",
    "make_targets",
    "paper_targets",
    "witness_targets",
]


@dataclass
class BoxBounds:
    """What verification said about N boxes, as plain arrays.

    ``lower``/``upper`` (N, n) are the boxes; ``per_output`` (N, m, 2) the signed intervals of
    Φ1 − Φ2 (entries of outputs that were not considered may be infinite); ``delta_lower`` /
    ``delta_upper`` (N,) bounds on max|Φ1 − Φ2|∞; ``witnesses`` (N, n) the inputs that attain
    ``delta_lower``; ``status`` per box (``exact``/``bounded``/``error``).
    """

    lower: np.ndarray
    upper: np.ndarray
    per_output: np.ndarray
    delta_lower: np.ndarray
    delta_upper: np.ndarray
    witnesses: np.ndarray
    status: list[str] = field(default_factory=list)

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.lower + self.upper)

    def __len__(self) -> int:
        return len(self.lower)

    def midpoints(self) -> np.ndarray:
        """δ̃: signed midpoint of every output's interval (0 where the interval is unbounded)."""
        po = np.asarray(self.per_output, dtype=np.float64)
        mid = 0.5 * (po[..., 0] + po[..., 1])
        return np.where(np.isfinite(mid), mid, 0.0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "box_lower": self.lower,
            "box_upper": self.upper,
            "per_output": self.per_output,
            "delta_lower": self.delta_lower,
            "delta_upper": self.delta_upper,
            "witnesses": self.witnesses,
            "status": np.asarray(self.status),
        }

    @classmethod
    def from_arrays(cls, d: Any) -> BoxBounds:
        return cls(
            np.asarray(d["box_lower"]),
            np.asarray(d["box_upper"]),
            np.asarray(d["per_output"]),
            np.asarray(d["delta_lower"]),
            np.asarray(d["delta_upper"]),
            np.asarray(d["witnesses"]),
            [str(s) for s in np.asarray(d["status"])],
        )


@dataclass
class Targets:
    """Training points and their target outputs (``weights``: optional per-point loss weights)."""

    X: np.ndarray
    Y: np.ndarray
    weights: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.X)


def _outputs(net: FNN, X: np.ndarray) -> np.ndarray:
    return net.forward(np.atleast_2d(np.asarray(X, dtype=np.float64)))


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    return a


def paper_targets(orig: FNN, comp: FNN, bounds: BoxBounds, alpha: float = 2.0, **_: Any) -> Targets:
    """ŷ_i = Φ2(x_i) + δ̃_i / α at every box centre x_i (δ̃_i: per-output interval midpoints)."""
    a = _check_alpha(alpha)
    X = bounds.centers
    mid = bounds.midpoints()
    Y = _outputs(comp, X) + mid / a
    return Targets(
        X, Y, info={"strategy": "paper", "alpha": a, "n": len(X), "mean_abs_shift": float(np.mean(np.abs(mid / a)))}
    )


def witness_targets(orig: FNN, comp: FNN, bounds: BoxBounds, alpha: float = 2.0, **_: Any) -> Targets:
    """``paper`` targets plus every box's witness x* with target Φ2(x*) + (Φ1(x*) − Φ2(x*)) / α."""
    a = _check_alpha(alpha)
    base = paper_targets(orig, comp, bounds, a)
    W = np.asarray(bounds.witnesses, dtype=np.float64)
    ok = np.all(np.isfinite(W), axis=1)
    W = W[ok]
    y2 = _outputs(comp, W) if len(W) else np.zeros((0, base.Y.shape[1]))
    y1 = _outputs(orig, W) if len(W) else y2
    X = np.vstack([base.X, W])
    Y = np.vstack([base.Y, y2 + (y1 - y2) / a])
    return Targets(X, Y, info={"strategy": "witness", "alpha": a, "n": len(X), "n_witnesses": int(len(W))})


def distill_targets(
    orig: FNN, comp: FNN, bounds: BoxBounds, alpha: float = 1.0, n_samples: int = 8, seed: int = 0, **_: Any
) -> Targets:
    """Φ1's outputs at every box centre and at ``n_samples`` uniform samples of every box."""
    rng = np.random.default_rng(seed)
    parts = [bounds.centers]
    if n_samples > 0:
        lo, hi = bounds.lower, bounds.upper
        u = rng.random((n_samples,) + lo.shape)
        parts.append((lo[None] + u * (hi - lo)[None]).reshape(-1, lo.shape[1]))
    X = np.vstack(parts)
    return Targets(X, _outputs(orig, X), info={"strategy": "distill", "n": len(X), "n_samples": int(n_samples)})


STRATEGIES: dict[str, Callable[..., Targets]] = {
    "paper": paper_targets,
    "witness": witness_targets,
    "distill": distill_targets,
}


def make_targets(
    strategy: str, orig: FNN, comp: FNN, bounds: BoxBounds, alpha: float = 2.0, n_samples: int = 8, seed: int = 0
) -> Targets:
    """The training set of the named strategy (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown target strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    return STRATEGIES[strategy](orig, comp, bounds, alpha=alpha, n_samples=n_samples, seed=seed)


@dataclass
class TargetSet:
    """The target set 𝒪, stated as data: ``delta_max`` (τ) on every repair box, an accuracy floor.

    ``delta_max`` is checked against the *sound upper* bound of every box (so 'met' is a proof for
    the repair boxes when the verifier is sound); ``min_accuracy`` against the accuracy the driver
    measures on its validation data (skipped when there is none).
    """

    delta_max: float | None = None
    min_accuracy: float | None = None

    def check(self, delta_upper: np.ndarray, accuracy: float | None) -> tuple[bool, list[str]]:
        """(met, reasons it is not met)."""
        why = []
        if self.delta_max is not None:
            worst = float(np.max(delta_upper)) if len(delta_upper) else 0.0
            if not worst <= self.delta_max:
                why.append(f"max upper bound {worst:.4g} > tau {self.delta_max:.4g}")
        if self.min_accuracy is not None and accuracy is not None and accuracy < self.min_accuracy:
            why.append(f"accuracy {accuracy:.4f} < floor {self.min_accuracy:.4f}")
        if self.delta_max is None and self.min_accuracy is None:
            why.append("no target set stated (runs to the round limit)")
        return not why, why

    def to_json(self) -> dict[str, Any]:
        return {"delta_max": self.delta_max, "min_accuracy": self.min_accuracy}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> TargetSet:
        d = d or {}
        return cls(d.get("delta_max"), d.get("min_accuracy"))
