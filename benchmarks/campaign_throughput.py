"""Campaign throughput with 1, 2, ... Dask workers (LocalCluster, one thread per worker process).

Jobs: the ACAS Xu networks (ONNX) against their 16-bit truncations (NeuroDiff .nnet, normalised
inputs), ε-equivalence at ε on a small box (radius r, around a random point of the normalised
domain) per pair, with a per-job time limit. Every worker count runs the same jobs into a fresh
SQLite store. Reported: wall time including the cluster start, the time from the first to the
last stored result (steady state), jobs/s, speed-up, verdict counts, and the machine (cores, load
average: the numbers mean little on a machine shared with other work).

    python benchmarks/campaign_throughput.py                       # 45 pairs, workers 1 and 2
    python benchmarks/campaign_throughput.py --pairs 20 --workers 1 2 4 --radius 0.02 --timeout 10

Writes benchmarks/results/campaign_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "benchmarks" / "results"


def make_jobs(folder: Path, pairs: int, radius: float, epsilon: float, timeout: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = ["orig,comp,input_set,epsilon,timeout"]
    k = 0
    for a in range(1, 6):
        for b in range(1, 10):
            if k >= pairs:
                break
            orig = DATA / "acasxu" / f"ACASXU_run2a_{a}_{b}_batch_2000.onnx"
            comp = DATA / "neurodiff" / "compressed16" / f"ACASXU_run2a_{a}_{b}_batch_2000_16bit.nnet"
            c = rng.uniform(-0.3, 0.3, 5)
            box = folder / f"box_{a}_{b}.json"
            box.write_text(json.dumps({"lower": (c - radius).tolist(), "upper": (c + radius).tolist()}))
            rows.append(f"{orig},{comp},{box},{epsilon},{timeout}")
            k += 1
    p = folder / "jobs.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def machine() -> dict:
    info = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    for pkg in ("equivrepair", "numpy", "dask", "distributed", "highspy"):
        info[pkg] = version(pkg)
    from equivrepair.provenance import source_revision

    info["commit"] = source_revision()
    return info


def run_one(jobs_csv: Path, workers: int, db: Path) -> dict:
    from equivrepair.campaign import read_jobs, run_campaign

    jobs = read_jobs(jobs_csv)
    times: list[float] = []
    t0 = time.perf_counter()
    s = run_campaign(
        jobs, db, workers=workers, progress=False, on_result=lambda rec, c: times.append(time.perf_counter())
    )
    wall = time.perf_counter() - t0
    steady = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "workers": workers,
        "jobs": s.jobs,
        "ran": s.ran,
        "errors": s.errors,
        "wall_s": wall,
        "first_result_s": times[0] - t0 if times else None,
        "steady_s": steady,
        "jobs_per_s": s.ran / wall,
        "steady_jobs_per_s": (len(times) - 1) / steady if len(times) > 1 and steady > 0 else None,
        "verdicts": s.verdicts,
        "loadavg_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=45)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--radius", type=float, default=0.02)
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not (DATA / "acasxu").is_dir():
        print(f"ACAS Xu data not found under {DATA} (set EQUIVREPAIR_DATA)", file=sys.stderr)
        return 3
    info = machine()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs_csv = make_jobs(tmp, args.pairs, args.radius, args.epsilon, args.timeout, args.seed)
        for w in args.workers:
            r = run_one(jobs_csv, w, tmp / f"results_{w}.sqlite")
            runs.append(r)
            print(
                f"workers {w}: {r['ran']} jobs in {r['wall_s']:.1f} s (first result after {r['first_result_s']:.1f} s) "
                f"= {r['jobs_per_s']:.2f} jobs/s; steady {r['steady_jobs_per_s'] or float('nan'):.2f} jobs/s; "
                f"verdicts {r['verdicts']}",
                flush=True,
            )
    base = runs[0]
    for r in runs:
        r["speedup"] = base["wall_s"] / r["wall_s"]
    record = {
        "benchmark": "campaign_throughput",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setup": {k: getattr(args, k) for k in ("pairs", "radius", "epsilon", "timeout", "seed")},
        "jobs": "ACAS Xu run2a networks (ONNX) vs their 16-bit truncations (NeuroDiff .nnet), check(epsilon) on a box",
        "machine": info,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "campaign_throughput.json").write_text(json.dumps(record, indent=2))
    md = [
        "# Campaign throughput",
        "",
        f"{args.pairs} jobs: ACAS Xu pair (ONNX vs 16-bit .nnet), ε = {args.epsilon:g}-equivalence on a box of "
        f"radius {args.radius:g}, time limit {args.timeout:g} s per job; Dask LocalCluster, 1 thread per worker process.",
        "",
        f"Machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, load average before {tuple(round(v, 2) for v in info['loadavg_before'])} "
        f"(shared machine); Python {info['python']}, dask/distributed {info['distributed']}.",
        "",
        "| workers | wall (s) | first result (s) | jobs/s (wall) | jobs/s (steady) | speed-up | load after | verdicts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        md.append(
            f"| {r['workers']} | {r['wall_s']:.1f} | {r['first_result_s']:.1f} | {r['jobs_per_s']:.2f} | "
            f"{(r['steady_jobs_per_s'] or float('nan')):.2f} | {r['speedup']:.2f} | {r['loadavg_after'][0]:.1f} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(r['verdicts'].items()))} |"
        )
    md += ["", "Rerun: `python benchmarks/campaign_throughput.py` (options: --pairs, --workers, --radius, --timeout)."]
    (args.out / "campaign_throughput.md").write_text("\n".join(md) + "\n")
    print(f"wrote {args.out / 'campaign_throughput.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
