"""The end-to-end demo on embedded data: a bundled ACAS Xu network and its 4-bit quantized copy.

merge -> exact δ_max with a witness -> certificate (written and checked) -> repair on boxes
sampled from the input domain, keeping the quantization grid -> re-verification -> summary
table and plots. Needs no data download; runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .nets.ir import FNN
from .spec.sets import Box

ASSET_NET = "ACASXU_run2a_1_1_batch_2000.onnx"
ASSET_PROP = "prop_1.vnnlib"
CORE = 0.25  # the demo's input set: this fraction of the property-1 box's radius around its centre


def asset(name: str) -> Path:
    """Path of a file bundled with the package (``equivrepair/assets``)."""
    return Path(str(resources.files("equivrepair") / "assets" / name))


@dataclass
class DemoResult:
    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress is not None:
        progress(text)


def run_demo(
    out_dir: str | Path = "equivrepair-demo",
    bits: int = 4,
    rounds: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = print,
) -> DemoResult:
    """Run every stage and write the artefacts into ``out_dir``; returns the summary rows."""
    from .certify import check_certificate, make_certificate, write_certificate
    from .compress import quantize
    from .merge import merge
    from .nets.onnx_io import load_onnx, save_onnx
    from .reach.api import evaluate
    from .spec.vnnlib import read_vnnlib, write_epsilon_equivalence

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out)

    orig = load_onnx(asset(ASSET_NET))
    prop = read_vnnlib(asset(ASSET_PROP)).input_box()
    # the central quarter (by radius) of the property-1 region, so that every stage takes seconds
    box = Box(prop.center - CORE * prop.radius, prop.center + CORE * prop.radius, label="core of ACAS Xu property 1")
    _say(progress, f"[1/6] Φ1 = ACAS Xu 1_1 ({'-'.join(map(str, orig.widths))}); Φ2 = {bits}-bit quantized copy")
    comp = quantize(orig, bits)

    _say(progress, "[2/6] merged network Φ1 − Φ2 -> ONNX + VNN-LIB")
    rep = save_onnx(merge(orig, comp), out / "merged.onnx")
    write_epsilon_equivalence(out / "merged_eps_0.05.vnnlib", box, orig.n_outputs, 0.05)
    res.files.update(merged_onnx=str(out / "merged.onnx"), vnnlib=str(out / "merged_eps_0.05.vnnlib"))
    _say(progress, f"      float32 export checked with onnxruntime: max error {rep['max_abs_err']:.2g}")

    _say(progress, f"[3/6] exact δ_max over the {box.label} (branch and bound)")
    before = evaluate(orig, comp, box, method="exact", time_limit=120)
    _say(progress, "      " + before.summary().replace("\n", "\n      "))
    res.rows.append(_row("compressed Φ2", orig, comp, before))

    _say(progress, "[4/6] certificate (δ bounds proved to 1%): recorded proof, then an independent check")
    t_cert = time.perf_counter()
    cert = make_certificate(orig, comp, box, before, time_limit=120, rtol=1e-2)
    write_certificate(out / "certificate.json", cert)
    report = check_certificate(out / "certificate.json", orig, comp, time_limit=120)
    res.files["certificate"] = str(out / "certificate.json")
    n_ok = sum(c["ok"] for c in report.checks)
    verdict = "VALID" if report.ok else "REJECTED: " + "; ".join(report.reasons)
    _say(
        progress,
        f"      certified δ ≤ {cert['claim']['delta_upper']:.6g} with {cert['proof']['n_leaves']} leaves; "
        f"check: {verdict} ({n_ok}/{len(report.checks)} checks passed) [{time.perf_counter() - t_cert:.1f} s]",
    )

    _say(progress, f"[5/6] repair on the {2**box.dim} cells that cover the input set (quantization grid kept)")
    _say(progress, "      (per round: interval upper bounds, cheap and loose, and the best witnessed |Φ1 − Φ2|)")
    repaired, rep_json = _repair(orig, comp, box, rounds, seed, out, progress)
    res.files["repair_log"] = rep_json

    _say(progress, "[6/6] re-verification of the repaired network")
    after = evaluate(orig, repaired, box, method="exact", time_limit=120)
    res.rows.append(_row("repaired Φ2'", orig, repaired, after))
    save_onnx(repaired, out / "repaired.onnx")
    res.files["repaired_onnx"] = str(out / "repaired.onnx")

    res.files["plot"] = str(_plot(before, after, out / "discrepancy.png"))
    res.seconds = time.perf_counter() - t0
    (out / "summary.json").write_text(
        json.dumps({"rows": res.rows, "files": res.files, "seconds": res.seconds}, indent=2)
    )
    _say(progress, "\n" + summary_table(res.rows))
    _say(
        progress,
        f"\nwrote {out}/ (merged.onnx, VNN-LIB, certificate.json, repaired.onnx, discrepancy.png, summary.json)",
    )
    _say(progress, f"total {res.seconds:.1f} s")
    return res


def _repair(orig: FNN, comp: FNN, box: Box, rounds: int, seed: int, out: Path, progress) -> tuple[FNN, str]:
    from .repair.driver import RepairConfig, VerifyConfig, repair
    from .repair.train import TrainConfig

    # a cover of the input set: every dimension halved (2^n boxes), so repairing all of them
    # targets the whole set rather than a sample of it
    grid = np.array(np.meshgrid(*[[0, 1]] * box.dim, indexing="ij")).reshape(box.dim, -1).T
    half = 0.5 * (box.upper - box.lower)
    boxes = [Box(box.lower + g * half, box.lower + (g + 1) * half, label=f"cell {i}") for i, g in enumerate(grid)]
    # distillation towards Φ1 on samples from every cell; small steps, because the ACAS Xu outputs
    # are small and its weights large (the per-round verification only logs: interval bounds)
    cfg = RepairConfig(
        strategy="distill",
        rounds=rounds,
        n_samples=32,
        seed=seed,
        verify=VerifyConfig(method="interval"),
        train=TrainConfig(lr=1e-4, grid_lr=0.005, epochs=5),
    )
    result = repair(orig, comp, boxes, cfg, log_dir=out / "repair", progress=lambda s: _say(progress, "      " + s))
    path = out / "repair" / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, default=float))
    return result.net, str(path)


def _row(label: str, orig: FNN, comp: FNN, d: Any) -> dict[str, Any]:
    return {
        "network": label,
        "sha256": comp.content_hash[:12],
        "delta_max": d.delta_max,
        "lower": d.lower,
        "upper": d.upper,
        "status": d.status,
        "time_s": d.stats.get("time"),
        "witness": None if d.witness is None else d.witness.tolist(),
        "per_output": d.per_output.tolist(),
    }


def summary_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'network':<16} {'δ_max (exact)':>14} {'lower':>12} {'upper':>12} {'status':>8} {'time s':>8}"]
    for r in rows:
        dm = "-" if r["delta_max"] is None else f"{r['delta_max']:.6g}"
        t = r["time_s"] or 0.0
        lines.append(f"{r['network']:<16} {dm:>14} {r['lower']:12.6g} {r['upper']:12.6g} {r['status']:>8} {t:8.2f}")
    return "\n".join(lines)


def _plot(before: Any, after: Any, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    m = before.per_output.shape[0]
    for k, (d, label, color) in enumerate([(before, "compressed", "tab:red"), (after, "repaired", "tab:green")]):
        x = np.arange(m) + (k - 0.5) * 0.3
        lo, hi = d.per_output[:, 0], d.per_output[:, 1]
        ax.vlines(x, lo, hi, color=color, lw=6, label=f"{label} (δ_max ≤ {d.upper:.3g})")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(m), [f"y{j}" for j in range(m)])
    ax.set_ylabel("Φ1(x) − Φ2(x) over the box")
    ax.set_title("per-output discrepancy intervals (sound bounds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
