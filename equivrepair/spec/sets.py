"""Input sets: boxes, L-infinity balls (clipped to a domain), optional linear constraints ``A x <= c``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class InputSetError(ValueError):
    """An input set that is empty, malformed, or the wrong size for a network."""


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box ``lower <= x <= upper``, optionally cut by ``A x <= c``.

    The box is always the bounding box of the set: verifiers may use it alone (sound, since the
    set is a subset), and exact methods add the constraints ``A x <= c`` to their LPs.
    """

    lower: np.ndarray
    upper: np.ndarray
    A: np.ndarray | None = None
    c: np.ndarray | None = None
    label: str = ""

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64, copy=True).ravel()
        hi = np.array(self.upper, dtype=np.float64, copy=True).ravel()
        where = f" ({self.label})" if self.label else ""
        if lo.shape != hi.shape:
            raise InputSetError(f"input set{where}: lower has {lo.size} entries, upper has {hi.size}")
        if lo.size == 0:
            raise InputSetError(f"input set{where}: no dimensions")
        for name, arr in (("lower", lo), ("upper", hi)):
            if np.any(np.isnan(arr)):
                raise InputSetError(f"input set{where}: NaN in {name} bound at index {int(np.argmax(np.isnan(arr)))}")
            if np.any(np.isinf(arr)):
                raise InputSetError(
                    f"input set{where}: infinite {name} bound at index {int(np.argmax(np.isinf(arr)))}; "
                    "verification needs a bounded set"
                )
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise InputSetError(
                f"input set{where} is empty: dimension {i} has lower {float(lo[i]):.17g} > upper {float(hi[i]):.17g}"
            )
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        if (self.A is None) != (self.c is None):
            raise InputSetError(f"input set{where}: linear constraints need both A and c")
        if self.A is not None:
            A = np.array(self.A, dtype=np.float64, copy=True)
            c = np.array(self.c, dtype=np.float64, copy=True).ravel()
            if A.ndim != 2 or A.shape[1] != lo.size or A.shape[0] != c.size:
                raise InputSetError(
                    f"input set{where}: constraint matrix shape {A.shape} does not fit "
                    f"{lo.size} inputs and {c.size} right-hand sides"
                )
            if not (np.all(np.isfinite(A)) and np.all(np.isfinite(c))):
                raise InputSetError(f"input set{where}: non-finite linear constraint")
            if A.shape[0] == 0:
                A, c = None, None
            object.__setattr__(self, "A", A)
            object.__setattr__(self, "c", c)

    @property
    def dim(self) -> int:
        return int(self.lower.size)

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (self.lower + self.upper)

    @property
    def radius(self) -> np.ndarray:
        return 0.5 * (self.upper - self.lower)

    @property
    def has_constraints(self) -> bool:
        return self.A is not None

    def check_dim(self, n_inputs: int, what: str = "network") -> None:
        """Raise a clear error when the set does not fit a network's input size."""
        if self.dim != n_inputs:
            where = f" ({self.label})" if self.label else ""
            raise InputSetError(f"input set{where} has {self.dim} dimensions but the {what} has {n_inputs} inputs")

    def contains(self, x: np.ndarray, tol: float = 1e-9) -> np.ndarray | bool:
        """Membership test for one point or a batch."""
        x = np.asarray(x, dtype=np.float64)
        ok = np.all((x >= self.lower - tol) & (x <= self.upper + tol), axis=-1)
        if self.A is not None:
            ok = ok & np.all(x @ self.A.T <= self.c + tol, axis=-1)
        return ok

    def sample(self, n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
        """Uniform samples from the box (rejection against the constraints, best effort)."""
        rng = np.random.default_rng(seed)
        pts = rng.uniform(self.lower, self.upper, size=(n, self.dim))
        if self.A is not None:
            pts = pts[self.contains(pts)]
        return pts

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)

    def intersect(self, lower: Sequence[float], upper: Sequence[float]) -> Box:
        """This set cut to a domain box (an error if nothing is left)."""
        return Box(np.maximum(self.lower, lower), np.minimum(self.upper, upper), self.A, self.c, self.label)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"lower": self.lower.tolist(), "upper": self.upper.tolist()}
        if self.A is not None:
            d["A"] = self.A.tolist()
            d["c"] = self.c.tolist()
        if self.label:
            d["label"] = self.label
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], label: str = "") -> Box:
        if "lower" not in d or "upper" not in d:
            raise InputSetError(f"input set {label or ''}: JSON needs 'lower' and 'upper' lists")
        return cls(d["lower"], d["upper"], d.get("A"), d.get("c"), d.get("label", label))


def linf_ball(
    center: Sequence[float],
    radius: float | Sequence[float],
    domain: tuple[Sequence[float], Sequence[float]] | None = None,
    label: str = "",
) -> Box:
    """The L-infinity ball around ``center``, clipped to ``domain`` when one is given."""
    c = np.asarray(center, dtype=np.float64).ravel()
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), c.shape)
    if np.any(r < 0) or np.any(np.isnan(r)):
        raise InputSetError(f"L-inf ball {label}: radius must be >= 0, got {radius!r}")
    lo, hi = c - r, c + r
    if domain is not None:
        lo = np.maximum(lo, np.asarray(domain[0], dtype=np.float64))
        hi = np.minimum(hi, np.asarray(domain[1], dtype=np.float64))
    return Box(lo, hi, label=label or f"linf(r={float(np.max(r)):g})")


def load_input_set(path: str | Path, n_inputs: int | None = None) -> Box:
    """Read an input set from a VNN-LIB file (its input constraints) or a JSON box."""
    p = Path(path)
    if not p.exists():
        raise InputSetError(f"input set file not found: {p}")
    if p.suffix.lower() == ".vnnlib":
        from .vnnlib import read_vnnlib

        box = read_vnnlib(p, n_inputs=n_inputs).input_box()
    else:
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise InputSetError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        box = Box.from_json(d, label=p.name)
    if n_inputs is not None:
        box.check_dim(n_inputs)
    return box
