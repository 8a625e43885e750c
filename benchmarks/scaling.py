"""Scaling of the exact engine: wall time and branches against input-box radius and network width.

Every point runs ``evaluate(orig, comp, box, method="exact", time_limit=--timeout)`` (δ_max only,
input-splitting branch and bound, one worker) and records wall time, status (exact / bounded),
δ_max or [lower, upper], and the engine's counters from ``Discrepancy.stats`` (``branches``: boxes
split, ``boxes_bounded``, ``exact_leaves``, ``open`` boxes left at a time limit, ...). A bounded
run's counters are what it did before the limit, i.e. a lower bound on what it would need.

Sweeps:
  radius  ACAS Xu ``ACASXU_run2a_<net>_batch_2000.onnx`` (``--acas-nets``, default 1_1 1_2 1_3, the
          spread over networks gives the min/max bars) vs its 8-bit weight-rounded copy
          (``round8`` of benchmarks/acasxu_exact.py: w -> round(w/s)·s, s = max|w|/127 per weight
          matrix, biases unchanged). Box: centre c and half-width h of the property-1 box
          (prop_1.vnnlib), [c − r·h, c + r·h] for r in ``--radii`` (default 0.05 0.1 0.2 0.4 0.7 1).
  width   ``equivrepair.nets.ir.random_fnn([5] + [w] * depth + [5], seed)`` for w in ``--widths``
          (default 8 16 32 64 128), depth in ``--depths`` (default 2 3), seed in ``--seeds``
          (default 0 1 2), vs ``equivrepair.compress.quantize(net, 8)`` (symmetric per-tensor 8-bit
          weights, s = max|w|/127.5 rounded up to a float32-exact scale; biases unchanged). Box:
          [-ρ, ρ]^5, ρ = ``--width-radius`` (default 0.01: the random networks' ReLU hyperplanes all
          pass near the origin, and at ρ = 0.02 most runs of width >= 32 already hit a 60 s limit;
          at ρ = 1 even width 8 does).

Soundness check per instance: ``--samples`` (default 10 000) uniform points of the box (seed 0);
their max |Φ1 − Φ2|∞ must be <= upper (a failure is printed as ANOMALY, recorded in the JSON as
``sample_ok: false`` and makes the script exit 1). Also recorded: whether the witness lies in the
box, and for exact runs whether sampling beat the witness by more than the tolerance
(``witness_beaten``; not a soundness failure, but it would say the witness search missed the max).

    python benchmarks/scaling.py                      # full run, 48 instances: ~5 min on the shared 2-core machine
    python benchmarks/scaling.py --quick              # ~1 min smoke run -> benchmarks/results/scaling.quick.*
    python benchmarks/scaling.py --report benchmarks/results/scaling.json   # table + PNG from the JSON

Writes (``--out``, default benchmarks/results/scaling.json) the JSON incrementally (after every
instance), a markdown table (``.md``) and a plot (``.png``): median over seeds/networks with min/max
bars, time on a log scale, bounded runs marked with red crosses, the time limit dotted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from acasxu_exact import data_dir, round8  # noqa: E402

from equivrepair import __version__  # noqa: E402
from equivrepair.compress import quantize  # noqa: E402
from equivrepair.nets.ir import FNN, random_fnn  # noqa: E402
from equivrepair.nets.onnx_io import load_onnx  # noqa: E402
from equivrepair.provenance import source_revision  # noqa: E402
from equivrepair.reach.api import evaluate  # noqa: E402
from equivrepair.reach.bab import discrepancy  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402
from equivrepair.spec.vnnlib import read_vnnlib  # noqa: E402

STAT_KEYS = ("branches", "boxes_bounded", "bound_calls", "exact_leaves", "leaf_lps", "max_frontier", "open")


def run_instance(orig: FNN, comp: FNN, box: Box, timeout: float, samples: int) -> dict:
    t0 = time.perf_counter()
    res = evaluate(orig, comp, box, method="exact", time_limit=timeout)
    t = time.perf_counter() - t0
    st = res.stats
    row = {
        "status": res.status,
        "delta_max": res.delta_max,
        "lower": res.lower,
        "upper": res.upper,
        "rel_gap": (res.upper - res.lower) / res.upper if res.upper > 0 else 0.0,
        "tolerance": res.tolerance,
        "time": t,
        "engine_time": st.get("time"),
        "message": res.message,
        "witness": None if res.witness is None else res.witness.tolist(),
        "witness_in_box": bool(res.witness is not None and box.contains(res.witness)),
    }
    row.update({k: st.get(k, 0) for k in STAT_KEYS})
    row["stats"] = {k: v for k, v in st.items() if isinstance(v, (int, float, str, bool))}
    # independent check: uniform sampling never exceeds the sound upper bound
    x = box.sample(samples, seed=0)
    smax = float(np.abs(discrepancy(orig, comp, x)).max()) if samples else float("nan")
    row["sample_n"] = samples
    row["sample_max"] = smax
    row["sample_ok"] = bool(not samples or smax <= res.upper)
    row["witness_beaten"] = bool(res.status == "exact" and samples and smax > res.lower + res.tolerance)
    row["load_avg"] = os.getloadavg()[0]
    return row


def engine_fingerprint() -> dict:
    """SHA-256 over the engine's sources (equivrepair/reach/*.py): the engine changes under active
    development, and counters such as branches are only comparable between runs of the same code."""
    import hashlib

    h = hashlib.sha256()
    files = sorted((ROOT / "equivrepair" / "reach").glob("*.py"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    newest = max(f.stat().st_mtime for f in files)
    return {"reach_sources_sha256": h.hexdigest()[:16], "reach_newest_mtime": time.ctime(newest)}


def acas_instances(nets: list[str], radii: list[float]):
    d = data_dir() / "acasxu"
    full = read_vnnlib(d / "prop_1.vnnlib").input_box()
    c, h = full.center, full.radius
    for name in nets:
        orig = load_onnx(d / f"ACASXU_run2a_{name}_batch_2000.onnx")
        comp = round8(orig)
        for r in radii:
            box = Box(c - r * h, c + r * h, label=f"prop_1 r={r}")
            yield {"sweep": "radius", "x": r, "series": "ACAS Xu 8-bit", "net": name, "seed": None}, orig, comp, box


def width_instances(widths: list[int], depths: list[int], seeds: list[int], rho: float):
    box = Box(-rho * np.ones(5), rho * np.ones(5), label=f"[-{rho},{rho}]^5")
    for depth in depths:
        for w in widths:
            for seed in seeds:
                orig = random_fnn([5] + [w] * depth + [5], seed=seed)
                comp = quantize(orig, 8)
                key = {"sweep": "width", "x": w, "series": f"{depth} hidden layers"}
                key.update(net=f"{depth}x{w} seed {seed}", seed=seed, depth=depth, radius=rho)
                yield key, orig, comp, box


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweeps", nargs="*", default=["radius", "width"], choices=["radius", "width"])
    ap.add_argument("--acas-nets", nargs="*", default=["1_1", "1_2", "1_3"])
    ap.add_argument("--radii", type=float, nargs="*", default=[0.05, 0.1, 0.2, 0.4, 0.7, 1.0])
    ap.add_argument("--widths", type=int, nargs="*", default=[8, 16, 32, 64, 128])
    ap.add_argument("--depths", type=int, nargs="*", default=[2, 3], help="hidden layers of the random nets")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--width-radius", type=float, default=0.01, help="box [-ρ, ρ]^5 of the width sweep")
    ap.add_argument("--timeout", type=float, default=60.0, help="time limit per exact run (s)")
    ap.add_argument("--samples", type=int, default=10_000, help="uniform samples per instance (soundness check)")
    ap.add_argument("--quick", action="store_true", help="small smoke run, written to scaling.quick.*")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scaling.json)")
    ap.add_argument("--report", nargs="*", help="only rebuild the table/PNG from these JSON files")
    args = ap.parse_args(argv)
    if args.quick:
        args.acas_nets, args.radii = ["1_1"], [0.1, 0.4, 1.0]
        args.widths, args.depths, args.seeds = [8, 32], [2], [0, 1]
        args.timeout, args.samples = min(args.timeout, 10.0), min(args.samples, 2000)
    results = ROOT / "benchmarks" / "results"
    out = Path(args.out or results / ("scaling.quick.json" if args.quick else "scaling.json"))
    if args.report:
        rows, metas = [], []
        for f in args.report:
            d = json.loads(Path(f).read_text())
            rows += d["rows"]
            metas.append(d["meta"])
        write_report(rows, metas, out)
        return 0 if all(r["sample_ok"] for r in rows) else 1
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "python": platform.python_version(),
        "equivrepair": __version__,
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "args": vars(args),
        "engine": engine_fingerprint(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    instances = []
    if "radius" in args.sweeps:
        instances.append(acas_instances(args.acas_nets, args.radii))
    if "width" in args.sweeps:
        instances.append(width_instances(args.widths, args.depths, args.seeds, args.width_radius))
    print(
        f"{'sweep':>6} {'x':>6} {'net':>14} {'status':>8} {'delta_max':>10} {'lower':>10} {'upper':>10}"
        f" {'time s':>7} {'branches':>8} {'open':>6} {'sample max':>10} {'ok':>3}",
        flush=True,
    )
    t_all = time.perf_counter()
    for gen in instances:
        for key, orig, comp, box in gen:
            row = dict(key)
            row.update(run_instance(orig, comp, box, args.timeout, args.samples))
            rows.append(row)
            dm = f"{row['delta_max']:.5g}" if row["delta_max"] is not None else "-"
            flag = "yes" if row["sample_ok"] else "NO"
            print(
                f"{row['sweep']:>6} {row['x']:>6} {row['net']:>14} {row['status']:>8} {dm:>10} {row['lower']:10.5g}"
                f" {row['upper']:10.5g} {row['time']:7.2f} {row['branches']:>8} {row['open']:>6}"
                f" {row['sample_max']:10.5g} {flag:>3}",
                flush=True,
            )
            if not row["sample_ok"]:
                print(f"ANOMALY: sampled max {row['sample_max']!r} > upper {row['upper']!r}", flush=True)
            if row["witness_beaten"]:
                print(f"note: sampling beat the exact witness ({row['sample_max']!r} > {row['lower']!r})", flush=True)
            meta["load_avg_now"] = os.getloadavg()
            meta["elapsed"] = time.perf_counter() - t_all
            out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    end = engine_fingerprint()
    if end["reach_sources_sha256"] != meta["engine"]["reach_sources_sha256"]:
        meta["engine_end"] = end
        print(
            f"note: the engine sources changed on disk during the run (at {end['reach_newest_mtime']});"
            " this process kept the modules imported at its start",
            flush=True,
        )
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    write_report(rows, [meta], out)
    bad = [r for r in rows if not r["sample_ok"]]
    print(f"total {time.perf_counter() - t_all:.0f} s; sampling check: {len(rows) - len(bad)}/{len(rows)} ok")
    return 1 if bad else 0


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["sweep"], r["series"], r["x"]), []).append(r)
    summ = []
    for (sweep, series, x), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "radius", kv[0][1], kv[0][2])):
        t = np.array([r["time"] for r in rs])
        b = np.array([r["branches"] for r in rs], dtype=float)
        ex = [r for r in rs if r["status"] == "exact"]
        summ.append(
            {
                "sweep": sweep,
                "series": series,
                "x": x,
                "n": len(rs),
                "exact": len(ex),
                "median_time": float(np.median(t)),
                "min_time": float(t.min()),
                "max_time": float(t.max()),
                "median_branches": float(np.median(b)),
                "min_branches": float(b.min()),
                "max_branches": float(b.max()),
                "median_delta": float(np.median([r["delta_max"] for r in ex])) if ex else None,
                "max_rel_gap": float(max(r["rel_gap"] for r in rs)),
                "sample_ok": sum(r["sample_ok"] for r in rs),
                "witness_beaten": sum(r["witness_beaten"] for r in rs),
                "nets": [r["net"] for r in rs],
            }
        )
    return summ


def write_report(rows: list[dict], metas: list[dict], out: Path) -> None:
    summ = summarize(rows)
    lines = [
        "# Scaling of the exact engine: time and branches vs input-box radius and network width",
        "",
        "Generated by `benchmarks/scaling.py` (its docstring says how the networks and boxes are built).",
        "`exact`: runs with status exact inside the time limit. Times are wall-clock per run on a shared"
        " 2-core machine (load averages below). Branches of a bounded run count only what it did before the"
        " limit. `gap`: largest (upper − lower)/upper. `sampled ≤ upper`: instances whose max over uniform"
        " samples stays below the sound upper bound.",
        "",
        "| sweep | series | x | runs | exact | median t (s) | min–max t (s) | median branches | min–max branches"
        " | median δ_max | gap | sampled ≤ upper |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summ:
        xlab = f"r={s['x']}" if s["sweep"] == "radius" else f"w={s['x']}"
        md = f"{s['median_delta']:.4g}" if s["median_delta"] is not None else "-"
        lines.append(
            f"| {s['sweep']} | {s['series']} | {xlab} | {s['n']} | {s['exact']} | {s['median_time']:.2f}"
            f" | {s['min_time']:.2f}–{s['max_time']:.2f} | {s['median_branches']:.0f}"
            f" | {s['min_branches']:.0f}–{s['max_branches']:.0f} | {md} | {s['max_rel_gap']:.2g}"
            f" | {s['sample_ok']}/{s['n']} |"
        )
    lines += [
        "",
        "Per run:",
        "",
        "| sweep | x | net | status | δ_max or [lower, upper] | time (s) | branches | exact leaves | open"
        " | sampled max | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        val = f"{r['delta_max']:.6g}" if r["delta_max"] is not None else f"[{r['lower']:.6g}, {r['upper']:.6g}]"
        lines.append(
            f"| {r['sweep']} | {r['x']} | {r['net']} | {r['status']} | {val} | {r['time']:.2f} | {r['branches']}"
            f" | {r['exact_leaves']} | {r['open']} | {r['sample_max']:.6g}{'' if r['sample_ok'] else ' (> upper!)'}"
            f" | {r['load_avg']:.1f} |"
        )
    lines += ["", "Runs:"]
    for m in metas:
        a = m.get("args", {})
        lines.append(
            f"- {m.get('started')}, {m.get('machine')}, {m.get('cpus')} CPUs, equivrepair {m.get('equivrepair')}"
            f" (reach sources {m.get('engine', {}).get('reach_sources_sha256')}),"
            f" numpy {m.get('numpy')}; timeout {a.get('timeout')} s, samples {a.get('samples')},"
            f" width box ρ = {a.get('width_radius')}; load average at start {m.get('load_avg_start')},"
            f" last {m.get('load_avg_now')}; elapsed {m.get('elapsed', 0):.0f} s"
        )
    md_path = out.with_suffix(".md")
    md_path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    timeout = max((m.get("args", {}).get("timeout") or 0) for m in metas) or None
    _plot(rows, summ, out.with_suffix(".png"), timeout)
    print(f"wrote {out}, {md_path} and {out.with_suffix('.png')}")


def _plot(rows: list[dict], summ: list[dict], path: Path, timeout: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = [s for s in ("radius", "width") if any(r["sweep"] == s for r in rows)]
    fig, axes = plt.subplots(len(sweeps), 2, figsize=(11, 4.0 * len(sweeps)), squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for row_ax, sweep in zip(axes, sweeps):
        series = sorted({s["series"] for s in summ if s["sweep"] == sweep})
        for k, name in enumerate(series):
            ss = [s for s in summ if s["sweep"] == sweep and s["series"] == name]
            xs = np.array([s["x"] for s in ss], dtype=float)
            # small horizontal offset so the series' bars do not overlap
            xo = xs * (1.0 + 0.04 * (k - (len(series) - 1) / 2))
            for ax, what in zip(row_ax, ("time", "branches")):
                med = np.array([s[f"median_{what}"] for s in ss])
                lo = np.array([s[f"min_{what}"] for s in ss])
                hi = np.array([s[f"max_{what}"] for s in ss])
                n = ss[0]["n"]
                label = f"{name}: median, min–max over {n} {'networks' if sweep == 'radius' else 'seeds'}"
                ax.errorbar(xo, med, yerr=[med - lo, hi - med], fmt="o-", color=colors[k % 4], capsize=3, label=label)
                bnd = [r for r in rows if r["sweep"] == sweep and r["series"] == name and r["status"] != "exact"]
                if bnd:
                    bx = np.array([r["x"] for r in bnd], dtype=float) * (1.0 + 0.04 * (k - (len(series) - 1) / 2))
                    ax.scatter(
                        bx,
                        [r[what] for r in bnd],
                        marker="x",
                        s=60,
                        color="red",
                        zorder=5,
                        label="bounded (time limit)" if k == 0 else None,
                    )
        for ax, what in zip(row_ax, ("time", "branches")):
            ax.set_yscale("log")
            ax.set_xscale("log", base=2 if sweep == "width" else 10)
            if sweep == "width":
                xs = sorted({r["x"] for r in rows if r["sweep"] == "width"})
                ax.set_xticks(xs, [str(x) for x in xs])
                ax.set_xlabel("hidden width w (random nets, 5 inputs, box [-ρ, ρ]^5)")
            else:
                xs = sorted({r["x"] for r in rows if r["sweep"] == "radius"})
                ax.set_xticks(xs, [f"{x:g}" for x in xs])
                ax.set_xlabel("radius r (fraction of the prop-1 box half-width)")
            ax.minorticks_off()
            if what == "time":
                ax.set_ylabel("wall time (s)")
                if timeout:
                    ax.axhline(timeout, ls=":", color="gray", label=f"time limit {timeout:g} s")
            else:
                ax.set_ylabel("branches (boxes split)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        rho = next((r.get("radius") for r in rows if r["sweep"] == "width"), None)
        title = (
            "ACAS Xu vs 8-bit rounded copy, prop-1 box × r"
            if sweep == "radius"
            else f"random nets vs quantize(net, 8), box [-{rho}, {rho}]^5"
        )
        row_ax[0].set_title(f"time: {title}", fontsize=9)
        row_ax[1].set_title(f"branches: {title}", fontsize=9)
        for ax in row_ax:  # headroom above the data (and the time limit) for the legend
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * 12)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
