"""MNIST local equivalence: exact δ_max and the ε = 1 decision around MNIST test images.

Pairs (Φ1 vs Φ2):
  ``3x100``  neurodiff ``original/mnist_relu_3_100.nnet`` vs ``compressed16/mnist_relu_3_100_16bit.nnet``
             (the ReluDiff/NeuroDiff pair). The .nnet header has means 0, ranges 1 and min/max
             ±3.4e38, i.e. no normalisation: the network reads RAW pixel values 0..255.
  ``256x4``  VNN-COMP ``mnistfc/mnist-net_256x4.onnx`` (inputs in [0, 1]) vs its 8-bit weight-
             quantized copy: symmetric per-tensor, w -> round(w/s)·s with s = max|w|/127 per weight
             matrix, biases unchanged.

Images: the first ``--images`` MNIST test images (IDX file order), as bytes v in {0..255}.

Perturbations (each pixel's domain is [0, 255] raw, or [0, 1] in unit scale):
  ``p``  every pixel free: raw box [max(0, v − p), min(255, v + p)] for 3x100; unit box
         [max(0, v/255 − p/255), min(1, v/255 + p/255)] for 256x4. (±p/255 in [0, 1] units is ±p
         pixel values; both are clipped to the pixel domain.) Pixels whose box collapses (never:
         p >= 1) would be folded away.
  ``k``  k random pixels free over their whole domain ([0, 255] or [0, 1]), the other 784 − k
         fixed at their value. Pixels: for each k separately, rng = np.random.default_rng(seed)
         (``--seed``, default 0), then for image i = 0, 1, 2, ... in order,
         rng.choice(784, size=k, replace=False). Both pairs use the same pixels.

Per instance two questions are answered and recorded:
  exact    evaluate(..., method="exact", time_limit=--timeout): δ_max = max_x |Φ1 − Φ2|∞ to
           max(1e-6, 1e-4·δ), with status exact, or bounds [lower, upper] (status bounded) at the
           time limit. With more than 16 free inputs the engine runs the compact big-M MILP
           (highspy); otherwise input-splitting BaB.
  decide   ε = --epsilon (default 1): is |Φ1 − Φ2|∞ < ε on the box?
           ``check(..., epsilon, time_limit=--timeout)``, which on more than 16 free inputs splits
           ReLUs on the differential bounds (its root bound first) for three quarters of the
           time, then runs the compact MILP in decision mode (objectives whose bound is under ε
           skipped, every MILP stopped once its bound is under ε or an incumbent reaches ε), and
           otherwise the input-splitting BaB. (Before 2026-12-06 a separate differential-bound
           stage ran first and its time was added; ``check`` now starts with a tighter bound.)
           ``--decide-only`` skips the exact δ_max run. ``--workers N``: the exact run's
           objectives' MILPs in N worker processes (the decision runs in one).

    python benchmarks/mnist_local.py --nets 3x100 --images 20 --p 1 2 3 --k 3 15 27 --timeout 30
    python benchmarks/mnist_local.py --report benchmarks/results/mnist_local_*.json

Writes JSON (incrementally, after every instance), a markdown table and a PNG under
benchmarks/results/ (``--out``).
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

from equivrepair import __version__  # noqa: E402
from equivrepair.data.mnist import load_mnist  # noqa: E402
from equivrepair.nets.ir import FNN  # noqa: E402
from equivrepair.nets.nnet_io import load_nnet  # noqa: E402
from equivrepair.nets.onnx_io import load_onnx  # noqa: E402
from equivrepair.provenance import source_revision  # noqa: E402
from equivrepair.reach.api import HIGH_DIM, check, evaluate  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from acasxu_exact import data_dir, round8  # noqa: E402

NETS = ("3x100", "256x4")


def load_pair(name: str) -> tuple[FNN, FNN, float]:
    """(Φ1, Φ2, pixel scale): the network reads v·scale for a pixel byte v (scale 1 or 1/255)."""
    d = data_dir()
    if name == "3x100":
        o = load_nnet(d / "neurodiff" / "original" / "mnist_relu_3_100.nnet")
        c = load_nnet(d / "neurodiff" / "compressed16" / "mnist_relu_3_100_16bit.nnet")
        return o, c, 1.0
    if name == "256x4":
        o = load_onnx(d / "mnistfc" / "mnist-net_256x4.onnx")
        return o, round8(o), 1.0 / 255.0
    raise SystemExit(f"unknown net {name!r}; choose from {NETS}")


def p_box(v: np.ndarray, p: int, scale: float) -> Box:
    """Every pixel free by ±p pixel values, clipped to [0, 255], then scaled to the net's units."""
    lo = np.clip(v - p, 0.0, 255.0) * scale
    hi = np.clip(v + p, 0.0, 255.0) * scale
    return Box(lo, hi, label=f"linf p={p}/255")


def k_pixels(n_images: int, k: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(784, size=k, replace=False)) for _ in range(n_images)]


def k_box(v: np.ndarray, idx: np.ndarray, scale: float) -> Box:
    lo = v.astype(np.float64) * scale
    hi = lo.copy()
    lo[idx] = 0.0
    hi[idx] = 255.0 * scale
    return Box(lo, hi, label=f"{idx.size} free pixels")


def run_instance(
    orig: FNN,
    comp: FNN,
    box: Box,
    timeout: float,
    eps: float,
    decide_only: bool = False,
    use_differential: bool = False,
    highs_options: dict | None = None,
    workers: int = 1,
    mip_solver: str = "auto",
) -> dict:
    row: dict = {}
    # the ε decision: check(), which on many free inputs splits ReLUs on the differential bounds
    # and then runs the compact MILP, stopping as soon as ε is settled
    t0 = time.perf_counter()
    d = check(orig, comp, box, eps, time_limit=timeout)
    dec_time = time.perf_counter() - t0
    verdict = d.verdict
    stages = [
        {"method": "check", "engine": d.stats.get("engine"), "lower": d.lower, "upper": d.upper, "time": dec_time}
    ]
    row.update(decision=verdict, decision_time=dec_time, decision_method="check", stages=stages)
    if decide_only:
        # the decision stage's sound bounds (not resolved to δ_max)
        lo = max(st["lower"] for st in stages)
        up = min(st["upper"] for st in stages)
        row.update(status="skipped", delta_max=None, lower=lo, upper=up, time=0.0, engine=None)
        return row
    # exact δ_max
    t0 = time.perf_counter()
    opts: dict = {}
    free = int(np.sum(box.upper > box.lower))
    if use_differential and free <= HIGH_DIM:  # input-splitting BaB only
        opts["use_differential"] = True
    if highs_options and free > HIGH_DIM:  # the MILP route only
        opts["highs_options"] = highs_options
    if mip_solver != "auto" and free > HIGH_DIM:
        opts["mip_solver"] = mip_solver
    res = evaluate(orig, comp, box, method="exact", time_limit=timeout, workers=workers, **opts)
    t = time.perf_counter() - t0
    st = res.stats
    row.update(
        status=res.status,
        delta_max=res.delta_max,
        lower=res.lower,
        upper=res.upper,
        time=t,
        engine=st.get("method") + ("+diff" if opts.get("use_differential") else ""),
        free_inputs=int(box.dim - st.get("folded_fixed_inputs", 0)),
        binaries=st.get("binaries"),
        milps=st.get("milps"),
        workers=st.get("workers", 1),
        milp_status=st.get("milp_status"),
        mip_solver=st.get("mip_solver"),
        milp_solver_kept=st.get("milp_solver_kept") or None,
        portfolio_copies=st.get("portfolio_copies"),
        branches=st.get("branches"),
        tightening_stabilised=st.get("tightening_stabilised"),
        tightening_lps=st.get("tightening_lps"),
        tightening_time=st.get("tightening_time"),
        message=res.message,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="*", default=list(NETS), choices=NETS)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--first-image", type=int, default=0, help="start at this test image (pixels stay image-indexed)")
    ap.add_argument("--p", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6, 7, 8])
    ap.add_argument("--k", type=int, nargs="*", default=[3, 15, 27])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="time limit of the exact run per instance (s)")
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mnist_local.json"))
    ap.add_argument("--decide-only", action="store_true", help="skip the exact δ_max run (ε decision only)")
    ap.add_argument(
        "--use-differential",
        action="store_true",
        help="input-splitting BaB (<= 16 free inputs) intersects its bounds with the differential ones"
        " (maximize(use_differential=True); off by default in the engine)",
    )
    ap.add_argument(
        "--highs-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a HiGHS option for the MILPs of the exact runs (repeatable), e.g. mip_pscost_minreliable=0",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes of the exact runs (the MILP route: objectives side by side)",
    )
    ap.add_argument(
        "--mip-solver",
        default="auto",
        choices=("auto", "highs", "phase"),
        help="the exact runs' MILP solver (evaluate(..., mip_solver=)); auto: the phase B&B up to 150 binaries",
    )
    ap.add_argument("--report", nargs="*", help="only rebuild the table/PNG from these JSON files")
    args = ap.parse_args(argv)
    highs = {}
    for item in args.highs_option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            ap.error(f"--highs-option wants NAME=VALUE, got {item!r}")
        highs[name] = value
    out = Path(args.out)
    if args.report:
        rows = []
        meta = []
        for f in args.report:
            d = json.loads(Path(f).read_text())
            rows += d["rows"]
            meta += d["meta"] if isinstance(d["meta"], list) else [d["meta"]]  # a merged report's list
        seen: dict[tuple, dict] = {}
        for r in rows:  # several runs may overlap: keep the first row of each instance
            if str(r.get("engine", "")).endswith("+diff"):  # a separate variant, its own table rows
                r["net"] = r["net"] + " BaB+diff"
            seen.setdefault((r["net"], r["kind"], r["value"], r["image"], r["status"] == "skipped"), r)
        rows = list(seen.values())
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
        write_report(rows, meta, out)
        return 0
    X, y = load_mnist(split="test", scale="byte", limit=args.first_image + args.images)
    rows: list[dict] = []
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
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    hdr = f"{'net':>6} {'pert':>5} {'img':>4} {'status':>8} {'delta_max':>10} {'lower':>9} {'upper':>9} {'time':>7}"
    print(hdr + f" {'eng':>5} {'dec(ε)':>14} {'t_dec':>6}", flush=True)
    settings = [("p", p) for p in args.p] + [("k", k) for k in args.k]
    for name in args.nets:
        orig, comp, scale = load_pair(name)
        pix = {k: k_pixels(args.first_image + args.images, k, args.seed) for k in args.k}
        for kind, val in settings:
            for i in range(args.first_image, args.first_image + args.images):
                v = X[i]
                box = p_box(v, val, scale) if kind == "p" else k_box(v, pix[val][i], scale)
                row = {"net": name, "kind": kind, "value": val, "image": i, "label": int(y[i])}
                if kind == "k":
                    row["pixels"] = pix[val][i].tolist()
                row.update(
                    run_instance(
                        orig,
                        comp,
                        box,
                        args.timeout,
                        args.epsilon,
                        args.decide_only,
                        args.use_differential,
                        highs,
                        args.workers,
                        args.mip_solver,
                    )  # fmt: skip
                )
                rows.append(row)
                dm, lo, up = (f"{row[k]:.5g}" if row[k] is not None else "-" for k in ("delta_max", "lower", "upper"))
                print(
                    f"{name:>6} {kind}={val:<3} {i:>4} {row['status']:>8} {dm:>10} {lo:>9} "
                    f"{up:>9} {row['time']:7.2f} {row['engine']!s:>5} {row['decision']:>14} "
                    f"{row['decision_time']:6.2f}",
                    flush=True,
                )
                meta["load_avg_now"] = os.getloadavg()
                out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    write_report(rows, [meta], out)
    return 0


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["net"], r["kind"], r["value"], r["status"] == "skipped"), []).append(r)
    summ = []
    for (net, kind, val, dec_only), rs in sorted(groups.items()):
        t = np.array([r["time"] for r in rs])
        td = np.array([r["decision_time"] for r in rs])
        ex = [r for r in rs if r["status"] == "exact"]
        summ.append(
            {
                "net": net,
                "kind": kind,
                "value": val,
                "run": "decide-only" if dec_only else "exact+decide",
                "n": len(rs),
                "exact": None if dec_only else len(ex),
                "median_time": float(np.median(t)),
                "max_time": float(t.max()),
                "median_delta": float(np.median([r["delta_max"] for r in ex])) if ex else None,
                "max_upper": float(max(r["upper"] for r in rs)),
                "equivalent": sum(r["decision"] == "equivalent" for r in rs),
                "not_equivalent": sum(r["decision"] == "not_equivalent" for r in rs),
                "unknown": sum(r["decision"] == "unknown" for r in rs),
                "median_decision_time": float(np.median(td)),
                "max_decision_time": float(td.max()),
                "engines": sorted({str(r["engine"]) for r in rs}),
            }
        )
    return summ


def write_report(rows: list[dict], metas: list[dict], out: Path) -> None:
    summ = summarize(rows)
    lines = [
        "# MNIST local equivalence",
        "",
        "Generated by `benchmarks/mnist_local.py` (see its docstring for the exact perturbations).",
        "`exact`: instances with status exact (δ_max within tolerance) inside the time limit; times are"
        " wall-clock per instance on the shared 2-core machine. `ε=1`: equivalent / not equivalent / unknown.",
        "",
        "| net | perturbation | run | images | exact δ_max | median t (s) | max t (s) | median δ_max | max upper"
        " | ε=1 eq / neq / unk | median t_dec (s) | max t_dec (s) | engine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summ:
        pert = f"±{s['value']}/255" if s["kind"] == "p" else f"{s['value']} pixels"
        md = f"{s['median_delta']:.4g}" if s["median_delta"] is not None else "-"
        lines.append(
            f"| {s['net']} | {pert} | {s['run']} | {s['n']} | {s['exact'] if s['exact'] is not None else '-'}"
            + (" | - | -" if s["exact"] is None else f" | {s['median_time']:.2f} | {s['max_time']:.2f}")
            + f" | {md}"
            f" | {s['max_upper']:.4g} | {s['equivalent']} / {s['not_equivalent']} / {s['unknown']}"
            f" | {s['median_decision_time']:.2f} | {s['max_decision_time']:.2f} | {', '.join(s['engines'])} |"
        )
    lines += ["", "Runs:"]
    for m in metas:
        a = m.get("args", {})
        lines.append(
            f"- nets {a.get('nets')}, images {a.get('first_image')}..+{a.get('images')}, p {a.get('p')}, "
            f"k {a.get('k')}, timeout {a.get('timeout')} s; load average at start {m.get('load_avg_start')}, "
            f"last {m.get('load_avg_now')}"
        )
    md_path = out.with_suffix(".md")
    md_path.write_text("\n".join(lines) + "\n")
    out.with_name(out.stem + "_summary.json").write_text(json.dumps(summ, indent=1))
    print("\n".join(lines))
    _plot(summ, out.with_suffix(".png"))
    print(f"wrote {md_path} and {out.with_suffix('.png')}")


def _plot(summ: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for net, color in zip(NETS, ("tab:blue", "tab:red")):
        ex = sorted(
            [s for s in summ if s["net"] == net and s["kind"] == "p" and s["exact"] is not None],
            key=lambda s: s["value"],
        )
        if ex:
            ax.plot(
                [s["value"] for s in ex],
                [100.0 * s["exact"] / s["n"] for s in ex],
                "o-",
                color=color,
                label=f"{net}: exact δ_max (n = {'/'.join(str(s['n']) for s in ex)} images)",
            )
        # ε decisions: per p the run with the most images (exact+decide or decide-only)
        best: dict[int, dict] = {}
        for s in summ:
            if s["net"] == net and s["kind"] == "p" and s["n"] > best.get(s["value"], {}).get("n", 0):
                best[s["value"]] = s
        ss = [best[k] for k in sorted(best)]
        if not ss:
            continue
        ax.plot(
            [s["value"] for s in ss],
            [100.0 * (s["equivalent"] + s["not_equivalent"]) / s["n"] for s in ss],
            "s--",
            color=color,
            label=f"{net}: ε=1 decided (n = {'/'.join(str(s['n']) for s in ss)} images)",
        )
    ax.set_xlabel("p (every pixel ±p/255)")
    ax.set_ylabel("solved images (%)")
    ax.set_ylim(-3, 103)
    ax.set_title("MNIST local equivalence: solved images vs p")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
