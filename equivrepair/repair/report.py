"""Repair reports: JSON per run and per round, plots of discrepancy and accuracy against round.

Plain data in, files out (numpy + matplotlib; no verifier, no torch). A *run* is a label and the
list of round records that :func:`equivrepair.repair.driver.repair` logs (``round``,
``delta_upper_max``, ``delta_upper_mean``, ``delta_lower_max``, ``accuracy``, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "draw_accuracy",
    "draw_discrepancy",
    "jsonable",
    "markdown_table",
    "plot_accuracy",
    "plot_discrepancy",
    "plot_runs",
    "write_json",
]


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps`` accepts (arrays to lists, non-finite floats to strings)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, payload: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(payload), indent=1))
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_discrepancy(ax: Any, runs: Mapping[str, Sequence[Mapping[str, Any]]], key: str = "delta_upper_max") -> None:
    """Draw discrepancy-against-round lines (solid: ``key``, dashed: mean over boxes) into ``ax``."""
    for label, rounds in runs.items():
        r = [rec["round"] for rec in rounds]
        ax.plot(r, [rec[key] for rec in rounds], marker="o", ms=3, label=label)
        if key == "delta_upper_max" and rounds and "delta_upper_mean" in rounds[0]:
            ax.plot(r, [rec["delta_upper_mean"] for rec in rounds], ls="--", lw=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("round")
    ax.set_ylabel("bound on max|Φ1 − Φ2|∞, repair boxes")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def draw_accuracy(ax: Any, runs: Mapping[str, Sequence[Mapping[str, Any]]], reference: float | None = None) -> bool:
    """Draw accuracy-against-round lines into ``ax``; False when no run logged an accuracy."""
    drawn = False
    for label, rounds in runs.items():
        pts = [(rec["round"], rec["accuracy"]) for rec in rounds if rec.get("accuracy") is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=label)
            drawn = True
    if reference is not None:
        ax.axhline(reference, color="k", ls=":", lw=1, label="original Φ1")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy (validation data)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return drawn


def _save(fig: Any, path: str | Path) -> Path:
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_discrepancy(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str = "", key: str = "delta_upper_max"
) -> Path:
    """Discrepancy bound on the repair boxes against round, one line per run (e.g. per α)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    draw_discrepancy(ax, runs, key)
    ax.set_title(title or "discrepancy on the repair boxes (solid: max over boxes, dashed: mean)", fontsize=9)
    return _save(fig, path)


def plot_accuracy(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str = "", reference: float | None = None
) -> Path | None:
    """Validation accuracy against round, one line per run; ``None`` (no file) when no run has accuracy."""
    if not any(rec.get("accuracy") is not None for rounds in runs.values() for rec in rounds):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    draw_accuracy(ax, runs, reference)
    ax.set_title(title or "accuracy during repair", fontsize=9)
    return _save(fig, path)


def plot_runs(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], stem: str | Path, title: str = "", reference: float | None = None
) -> list[Path]:
    """Both plots, as ``<stem>_discrepancy.png`` and ``<stem>_accuracy.png``."""
    stem = str(stem)
    out = [plot_discrepancy(runs, stem + "_discrepancy.png", title)]
    acc = plot_accuracy(runs, stem + "_accuracy.png", title, reference)
    if acc is not None:
        out.append(acc)
    return out


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], fmt: Mapping[str, str] | None = None
) -> str:
    """A GitHub markdown table: ``columns`` are (key, header); ``fmt`` maps keys to format specs."""
    fmt = fmt or {}
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---:" if fmt.get(k, "").endswith(("f", "g", "e", "%")) else "---" for k, _ in columns) + "|"
    lines = [head, sep]
    for row in rows:
        cells = []
        for k, _ in columns:
            v = row.get(k)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("–")
            elif k in fmt and isinstance(v, (int, float)):
                cells.append(format(v, fmt[k]))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
