"""Repair and evaluation boxes: the seed paper's preset, L-inf balls, files; folding of fixed inputs.

Presets (inputs in the network's units; MNIST pixels are ``p / 255`` in [0, 1] by default):

* :func:`paper_boxes`: the seed paper's public code: one image per digit (the first of each class),
  the 2x2 centre pixels (rows/columns 13 and 14 of the 28x28 image) moved by +-0.05 *in [-1, 1]
  units*, i.e. +-0.025 in [0, 1] units (``radius`` is given in the units of ``domain``, as a
  fraction of half its width: ``0.05`` means 5 % of the half-width). Every box is clipped to the
  input domain, so a centre pixel at 0 or 1 moves one way only;
* :func:`linf_boxes`: L-inf balls of ``radius`` around images, clipped to the domain;
* :func:`pixel_boxes`: chosen pixels free (+-delta), the others fixed.

:func:`equivrepair.repair.driver.fold_pair` (in the driver: it uses the engine's folding) removes the
fixed inputs of a box from the two networks. Boxes are written as ``.npz`` (arrays ``lower``, ``upper``, ``labels``) or JSON (a list
of ``{"lower", "upper", "label"}``, or one such object).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..spec.sets import Box, InputSetError, linf_ball

__all__ = [
    "CENTER_2X2",
    "MNIST_DOMAIN",
    "first_per_class",
    "linf_boxes",
    "load_boxes",
    "paper_boxes",
    "pixel_boxes",
    "save_boxes",
    "boxes_from_spec",
]

CENTER_2X2 = (13 * 28 + 13, 13 * 28 + 14, 14 * 28 + 13, 14 * 28 + 14)
MNIST_DOMAIN = (0.0, 1.0)


def _domain(domain: tuple[float, float] | tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(domain[0], dtype=np.float64), (n,)).copy()
    hi = np.broadcast_to(np.asarray(domain[1], dtype=np.float64), (n,)).copy()
    return lo, hi


def first_per_class(y: np.ndarray, per_class: int = 1, classes: Sequence[int] | None = None) -> np.ndarray:
    """Indices of the first ``per_class`` examples of every class (classes in increasing order)."""
    y = np.asarray(y)
    classes = sorted(set(y.tolist())) if classes is None else list(classes)
    out = []
    for c in classes:
        idx = np.flatnonzero(y == c)[:per_class]
        if len(idx) < per_class:
            raise InputSetError(f"class {c}: only {len(idx)} examples, {per_class} wanted")
        out.extend(idx.tolist())
    return np.asarray(out, dtype=np.int64)


def pixel_boxes(
    X: np.ndarray,
    pixels: Sequence[int],
    delta: float,
    domain: tuple[Any, Any] = MNIST_DOMAIN,
    labels: Sequence[str] | None = None,
) -> list[Box]:
    """Boxes where only ``pixels`` move by +-``delta`` around each row of ``X`` (clipped to ``domain``)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    dlo, dhi = _domain(domain, X.shape[1])
    pix = np.asarray(pixels, dtype=np.int64)
    boxes = []
    for k, x in enumerate(X):
        lo, hi = x.copy(), x.copy()
        lo[pix] = np.maximum(x[pix] - delta, dlo[pix])
        hi[pix] = np.minimum(x[pix] + delta, dhi[pix])
        boxes.append(Box(lo, hi, label=labels[k] if labels is not None else f"pixels{len(pix)}±{delta:g}#{k}"))
    return boxes


def paper_boxes(
    X: np.ndarray,
    y: np.ndarray,
    radius: float = 0.05,
    domain: tuple[Any, Any] = MNIST_DOMAIN,
    pixels: Sequence[int] = CENTER_2X2,
    per_class: int = 1,
) -> tuple[list[Box], np.ndarray]:
    """The seed paper's preset: first image of each digit, 2x2 centre pixels +-``radius`` x half-width.

    ``radius`` is in units of half the domain's width (0.05 = +-0.05 on [-1, 1] = +-0.025 on [0, 1]).
    Returns the boxes and the indices of the chosen images.
    """
    idx = first_per_class(y, per_class)
    dlo, dhi = _domain(domain, np.asarray(X).shape[1])
    delta = float(radius) * float(np.mean(dhi - dlo)) / 2.0
    labels = [f"paper#{int(i)}(y={int(y[i])})" for i in idx]
    return pixel_boxes(np.asarray(X)[idx], pixels, delta, domain, labels), idx


def linf_boxes(
    X: np.ndarray, radius: float, domain: tuple[Any, Any] = MNIST_DOMAIN, labels: Sequence[str] | None = None
) -> list[Box]:
    """L-inf balls of ``radius`` around each row of ``X``, clipped to ``domain``."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    dom = _domain(domain, X.shape[1])
    return [
        linf_ball(x, radius, dom, label=labels[k] if labels is not None else f"linf{radius:.4g}#{k}")
        for k, x in enumerate(X)
    ]


def save_boxes(path: str | Path, boxes: Sequence[Box]) -> Path:
    """Write boxes as ``.npz`` (lower, upper, labels) or ``.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez_compressed(
            path,
            lower=np.stack([b.lower for b in boxes]),
            upper=np.stack([b.upper for b in boxes]),
            labels=np.asarray([b.label for b in boxes]),
        )
    else:
        path.write_text(json.dumps([b.to_json() for b in boxes]))
    return path


def load_boxes(path: str | Path, n_inputs: int | None = None) -> list[Box]:
    """Read boxes written by :func:`save_boxes` (or a JSON box / list of boxes)."""
    path = Path(path)
    if not path.is_file():
        raise InputSetError(f"boxes file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            lo, hi = np.atleast_2d(z["lower"]), np.atleast_2d(z["upper"])
            labels = (
                [str(s) for s in z["labels"]] if "labels" in z.files else [f"{path.stem}#{k}" for k in range(len(lo))]
            )
        boxes = [Box(a, b, label=lab) for a, b, lab in zip(lo, hi, labels)]
    else:
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputSetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        items = d if isinstance(d, list) else [d]
        boxes = [Box.from_json(item, label=f"{path.stem}#{k}") for k, item in enumerate(items)]
    if not boxes:
        raise InputSetError(f"{path}: no boxes")
    if n_inputs is not None:
        for b in boxes:
            b.check_dim(n_inputs)
    return boxes


def boxes_from_spec(
    spec: str,
    X: np.ndarray | None,
    y: np.ndarray | None,
    n: int | None = None,
    domain: tuple[Any, Any] = MNIST_DOMAIN,
    pixel_scale: float = 1.0 / 255.0,
) -> tuple[list[Box], np.ndarray | None]:
    """Boxes from a short spec: ``paper``, ``linf:R`` (R in pixel levels, i.e. R/255 in [0, 1] units,
    scaled by ``pixel_scale``), ``pixels:DELTA`` (2x2 centre pixels +-DELTA in input units), or a
    file. ``n`` images are taken from ``X`` (default: 10 for paper, 100 otherwise). Returns the boxes
    and the indices of the images used (``None`` for a file)."""
    if spec == "paper" or spec.startswith("paper:"):
        if X is None or y is None:
            raise InputSetError("--boxes paper needs --data (labelled images)")
        per_class = 1 if n is None else max(1, n // 10)
        radius = float(spec.split(":", 1)[1]) if ":" in spec else 0.05
        return paper_boxes(X, y, radius=radius, domain=domain, per_class=per_class)
    if spec.startswith("linf:") or spec.startswith("pixels:"):
        if X is None:
            raise InputSetError(f"--boxes {spec} needs --data (images)")
        kind, _, val = spec.partition(":")
        try:
            r = float(val)
        except ValueError:
            raise InputSetError(f"--boxes {spec}: {val!r} is not a number") from None
        idx = np.arange(min(100 if n is None else n, len(X)))
        if kind == "linf":
            return linf_boxes(X[idx], r * pixel_scale, domain, [f"linf{r:g}/255#{int(i)}" for i in idx]), idx
        return pixel_boxes(X[idx], CENTER_2X2, r, domain), idx
    return load_boxes(spec), None
