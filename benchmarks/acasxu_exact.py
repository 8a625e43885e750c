"""ACAS Xu, exact δ_max: each network vs its 8-bit weight-rounded copy over the property-1 box.

Φ2 = Φ1 with every weight matrix rounded to the symmetric per-tensor 8-bit grid
(w -> round(w/s)·s, s = max|w|/127; biases unchanged). Prints a table, writes JSON and a PNG.

    python benchmarks/acasxu_exact.py                      # all 45 networks
    python benchmarks/acasxu_exact.py --nets 1_1 2_1 --intervals
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
from equivrepair.nets.ir import FNN  # noqa: E402
from equivrepair.nets.onnx_io import load_onnx  # noqa: E402
from equivrepair.provenance import source_revision  # noqa: E402
from equivrepair.reach.api import evaluate  # noqa: E402
from equivrepair.spec.vnnlib import read_vnnlib  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data"))


def round8(net: FNN) -> FNN:
    """The issue's construction: symmetric per-tensor 8-bit rounding of the weights, s = max|w|/127."""
    weights = []
    for layer in net.layers:
        s = np.abs(layer.W).max() / 127.0
        weights.append(np.round(layer.W / s) * s)
    return FNN.from_arrays(
        weights, [layer.b for layer in net.layers], [layer.activation for layer in net.layers], name=net.name + "-8bit"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="*", help="networks as a_b (default: all 45)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--intervals", action="store_true", help="also resolve per-output intervals (1%% tolerance)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "acasxu_exact.json"))
    ap.add_argument(
        "--merge", nargs="*", help="only combine result JSON files (a later file's row replaces a net's row)"
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.out))
    d = data_dir() / "acasxu"
    names = args.nets or [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    box = read_vnnlib(d / "prop_1.vnnlib").input_box()
    rows = []
    print(f"{'net':>5} {'delta_max':>12} {'lower':>12} {'upper':>12} {'status':>8} {'time s':>8} {'branches':>9}")
    for name in names:
        orig = load_onnx(d / f"ACASXU_run2a_{name}_batch_2000.onnx")
        comp = round8(orig)
        t0 = time.perf_counter()
        res = evaluate(orig, comp, box, time_limit=args.timeout, workers=args.workers, delta_only=not args.intervals)
        t = time.perf_counter() - t0
        row = {
            "net": name,
            "delta_max": res.delta_max,
            "lower": res.lower,
            "upper": res.upper,
            "status": res.status,
            "time": t,
            "branches": res.stats.get("branches"),
            "exact_leaves": res.stats.get("exact_leaves", 0),
            "witness": res.witness.tolist(),
            "per_output": res.per_output.tolist(),
        }
        rows.append(row)
        dm = f"{res.delta_max:.6g}" if res.delta_max is not None else "-"
        print(
            f"{name:>5} {dm:>12} {res.lower:12.6g} {res.upper:12.6g} {res.status:>8} {t:8.2f} {row['branches']!s:>9}",
            flush=True,
        )
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "equivrepair": __version__,
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "workers": args.workers,
        "mode": "intervals" if args.intervals else "delta_only",
        "timeout": args.timeout,
    }
    write(rows, meta, Path(args.out))
    return 0


def write(rows: list[dict], meta: dict | list, out: Path) -> None:
    times = np.array([r["time"] for r in rows])
    solved = sum(r["status"] == "exact" for r in rows)
    summary = {
        "solved": solved,
        "total": len(rows),
        "median_time": float(np.median(times)),
        "worst_time": float(times.max()),
        "total_time": float(times.sum()),
    }
    print(f"solved {solved}/{len(rows)}; median {summary['median_time']:.2f} s, worst {summary['worst_time']:.2f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2))
    _plot(rows, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def merge(paths: list[str], out: Path) -> int:
    """One table from several runs: each net's row from the last file that has it."""
    by_net: dict[str, dict] = {}
    metas = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        metas.append({"file": Path(p).name, **data["meta"]})
        for r in data["rows"]:
            by_net[r["net"]] = dict(r, source=Path(p).name)
    order = [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    rows = sorted(by_net.values(), key=lambda r: order.index(r["net"]) if r["net"] in order else len(order))
    write(rows, metas, out)
    return 0


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    names = [r["net"] for r in rows]
    a1.bar(range(len(rows)), [r["time"] for r in rows], color="tab:blue")
    a1.set_xticks(range(len(rows)), names, rotation=90, fontsize=6)
    a1.set_ylabel("time (s)")
    a1.set_title("exact δ_max, 8-bit rounding, prop-1 box")
    a2.bar(range(len(rows)), [r["upper"] for r in rows], color="tab:red")
    a2.set_xticks(range(len(rows)), names, rotation=90, fontsize=6)
    a2.set_ylabel("δ_max")
    a2.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
