"""δ_max of the MNIST compressions over small L∞ balls: how far does each compression move Φ1 locally?

Φ1 = benchmarks/results/mnist_phi1.onnx (784-256-64-10, trained by benchmarks/compression.py).
Compressions, recreated with equivrepair.compress exactly as benchmarks/compression.py builds them:
  ptq {8,4,3,2}b      quantize(Φ1, bits, "symmetric", "per-tensor")   (weights only)
  prune global {0.5,0.8}  magnitude_prune(Φ1, sparsity, "global")
  neuron keep 0.5     neuron_prune(Φ1, 0.5, "l1-in")                  (no data needed)
Balls: the first ``--images`` MNIST test images x ∈ [0, 1]^784, box [max(0, x − r/255), min(1, x + r/255)]
for r in ``--radii`` (default 1 2). Per instance: the differential bound (cheap, sound) and the exact
δ_max = max |Φ1 − Φ2|∞ by ``evaluate(method="exact", time_limit=--timeout)``, which on 784 free
inputs runs the compact big-M MILP through highspy (stable neurons substituted away; resolves
δ_max to max(1e-6, 1e-4·δ));
status exact, or bounded with [lower, upper] at the time limit.

    python benchmarks/compression_delta.py --images 20 --radii 1 --timeout 60
    python benchmarks/compression_delta.py --images 20 --radii 2 --timeout 30 --append

Writes benchmarks/results/compression_delta.{json,md} (JSON rewritten after every instance).
"""

from __future__ import annotations

import argparse
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
from equivrepair import compress as C  # noqa: E402
from equivrepair.data.mnist import load_mnist  # noqa: E402
from equivrepair.nets.onnx_io import load_onnx  # noqa: E402
from equivrepair.reach.api import evaluate  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402

COMPRESSIONS = {
    "ptq 8b": lambda n: C.quantize(n, 8, "symmetric", "per-tensor"),
    "ptq 4b": lambda n: C.quantize(n, 4, "symmetric", "per-tensor"),
    "ptq 3b": lambda n: C.quantize(n, 3, "symmetric", "per-tensor"),
    "ptq 2b": lambda n: C.quantize(n, 2, "symmetric", "per-tensor"),
    "prune global 0.5": lambda n: C.magnitude_prune(n, 0.5, "global"),
    "prune global 0.8": lambda n: C.magnitude_prune(n, 0.8, "global"),
    "neuron keep 0.5": lambda n: C.neuron_prune(n, 0.5, "l1-in"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phi1", default=str(ROOT / "benchmarks" / "results" / "mnist_phi1.onnx"))
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--radii", type=int, nargs="*", default=[1, 2], help="radii in pixel values (r/255)")
    ap.add_argument("--compressions", nargs="*", default=list(COMPRESSIONS), choices=list(COMPRESSIONS))
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compression_delta.json"))
    ap.add_argument("--report", action="store_true", help="only rewrite the markdown from --out")
    ap.add_argument("--append", action="store_true", help="add to the rows already in --out (e.g. another radius)")
    args = ap.parse_args(argv)
    if args.report:
        d = json.loads(Path(args.out).read_text())
        write_md(d["rows"], d["meta"], Path(args.out).with_suffix(".md"))
        return 0
    phi1 = load_onnx(args.phi1)
    X, y = load_mnist(split="test", limit=args.images)
    out = Path(args.out)
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "python": platform.python_version(),
        "equivrepair": __version__,
        "phi1": args.phi1,
        "phi1_hash": phi1.content_hash,
        "args": vars(args),
    }
    rows = []
    if args.append and out.exists():
        old = json.loads(out.read_text())
        rows = old["rows"]
        meta["earlier_runs"] = old["meta"].get("earlier_runs", []) + [
            {k: v for k, v in old["meta"].items() if k != "earlier_runs"}
        ]
    print(
        f"{'compression':>17} {'r':>2} {'img':>3} {'diff up':>9} {'status':>8} {'lower':>9} {'upper':>9} {'time':>7} bin"
    )
    for cname in args.compressions:
        phi2 = COMPRESSIONS[cname](phi1)
        acc = float((phi2.forward(X).argmax(1) == y).mean())
        for r in args.radii:
            for i in range(args.images):
                box = Box(np.clip(X[i] - r / 255, 0, 1), np.clip(X[i] + r / 255, 0, 1), label=f"linf {r}/255")
                t0 = time.perf_counter()
                diff = evaluate(phi1, phi2, box, method="differential")
                td = time.perf_counter() - t0
                t0 = time.perf_counter()
                res = evaluate(phi1, phi2, box, method="exact", time_limit=args.timeout)
                t = time.perf_counter() - t0
                row = {
                    "compression": cname,
                    "radius": r,
                    "image": i,
                    "label": int(y[i]),
                    "acc_first_images": acc,
                    "differential_upper": diff.upper,
                    "differential_time": td,
                    "status": res.status,
                    "delta_max": res.delta_max,
                    "lower": res.lower,
                    "upper": res.upper,
                    "time": t,
                    "binaries": res.stats.get("binaries"),
                    "milps": res.stats.get("milps"),
                    "milp_status": res.stats.get("milp_status"),
                    "lp_upper": res.stats.get("lp_upper"),
                }
                rows.append(row)
                print(
                    f"{cname:>17} {r:>2} {i:>3} {diff.upper:9.4g} {res.status:>8} {res.lower:9.4g} {res.upper:9.4g} "
                    f"{t:7.2f} {row['binaries']}",
                    flush=True,
                )
                meta["load_avg_now"] = os.getloadavg()
                out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    write_md(rows, meta, out.with_suffix(".md"))
    return 0


def write_md(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# δ_max of MNIST compressions over L∞ balls",
        "",
        "Generated by `benchmarks/compression_delta.py`. Φ1 = mnist_phi1.onnx; box = clip(x ± r/255, 0, 1)"
        " around the first test images; exact = compact big-M MILP (highspy) finished within the time limit"
        " (per run: "
        + "; ".join(
            f"radii {m['args']['radii']}: {m['args']['timeout']} s per instance, load average at start"
            f" {tuple(round(v, 1) for v in m['load_avg_start'])}"
            for m in meta.get("earlier_runs", []) + [meta]
        )
        + "); shared 2-core machine. The commands: `python benchmarks/compression_delta.py --images 20 --radii 1"
        " --timeout 60` then `... --radii 2 --timeout 30 --append`.",
        "",
        "| compression | r | images | exact | median δ_max (exact) | median lower | median upper | max upper | median differential"
        " upper | median binaries | median t (s) | max t (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["compression"], r["radius"]), []).append(r)
    for (c, rad), rs in groups.items():
        ex = [r["delta_max"] for r in rs if r["status"] == "exact"]
        t = [r["time"] for r in rs]
        md = f"{np.median(ex):.4g}" if ex else "-"
        lines.append(
            f"| {c} | {rad}/255 | {len(rs)} | {len(ex)} | {md} | {np.median([r['lower'] for r in rs]):.4g}"
            f" | {np.median([r['upper'] for r in rs]):.4g} | {max(r['upper'] for r in rs):.4g} | {np.median([r['differential_upper'] for r in rs]):.4g}"
            f" | {np.median([r['binaries'] or 0 for r in rs]):.0f} | {np.median(t):.2f} | {max(t):.2f} |"
        )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
