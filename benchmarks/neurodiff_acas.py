"""ACAS Xu ε-equivalence, the NeuroDiff benchmark (Paulsen, Wang, Wang, Wang; ASE 2020).

Pairs: ``<data>/neurodiff/original/ACASXU_run2a_<a>_<b>_batch_2000.nnet`` (Φ1) vs
``<data>/neurodiff/compressed16/..._16bit.nnet`` (Φ2), 45 pairs, ε = 0.05 and 0.01.

NeuroDiff's instance, exactly: only output 0 (COC) of Δ = Φ2 − Φ1 on raw (not denormalised)
outputs, strictly |Δ_0| < ε, over NeuroDiff's property-1 box given in raw units

    lower [55947.691, −3.141592, −3.141592, 1145, 0], upper [60760, 3.141592, 3.141592, 1200, 60]

normalised with the .nnet header's means and ranges. Units: the networks are loaded with
``input_normalization=False`` (they take normalised inputs, as the .nnet weights are written) and
the raw box is normalised here, ``(x − mean) / range`` in float64; outputs are raw
(``normalize_output=False``). (Loading with ``input_normalization=True`` and the raw box is the same
function, but the engine's input-splitting branch and bound then chooses splits in raw units, where
ρ is ~1000x wider than the angles, and stalls; see the report.)

Columns: ``check(..., outputs=[0])`` (NeuroDiff's instance), ``check(..., outputs=None)`` (all five
outputs, the version our users mean), and the exact δ_max of output 0 and of all outputs from
``evaluate`` (time-limited, status recorded). With ``--neurodiff-bin`` (NeuroDiff's
``delta_network_test``, built from its artifact; never part of this repository) each instance is
also run through NeuroDiff in the same process, one after the other, never concurrently.

    python benchmarks/neurodiff_acas.py --nets 1_1 1_2 2_1 3_3 4_5 5_9 --timeout 300 \\
        --neurodiff-bin /opt/neurodiff-src/DiffNN-Code/delta_network_test
    python benchmarks/neurodiff_acas.py --timeout 60 --skip-neurodiff --skip-all-outputs
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from equivrepair import __version__  # noqa: E402
from equivrepair.nets.nnet_io import load_nnet  # noqa: E402
from equivrepair.provenance import source_revision  # noqa: E402
from equivrepair.reach.api import check, evaluate  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402

LOAD_START = os.getloadavg()
RAW_LOWER = np.array([55947.691, -3.141592, -3.141592, 1145.0, 0.0])
RAW_UPPER = np.array([60760.0, 3.141592, 3.141592, 1200.0, 60.0])
ALL_NETS = [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]


def data_dir() -> Path:
    return Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data")) / "neurodiff"


def pair_paths(name: str) -> tuple[Path, Path]:
    d = data_dir()
    return (
        d / "original" / f"ACASXU_run2a_{name}_batch_2000.nnet",
        d / "compressed16" / f"ACASXU_run2a_{name}_batch_2000_16bit.nnet",
    )


def load_pair(name: str):
    """Φ1, Φ2 on normalised inputs with raw outputs, and NeuroDiff's box normalised with the header."""
    p1, p2 = pair_paths(name)
    orig = load_nnet(p1, input_normalization=False, normalize_output=False)
    comp = load_nnet(p2, input_normalization=False, normalize_output=False)
    means = np.asarray(orig.metadata["means"], dtype=np.float64)[:5]
    ranges = np.asarray(orig.metadata["ranges"], dtype=np.float64)[:5]
    assert np.array_equal(means, np.asarray(comp.metadata["means"])[:5])
    assert np.array_equal(ranges, np.asarray(comp.metadata["ranges"])[:5])
    box = Box((RAW_LOWER - means) / ranges, (RAW_UPPER - means) / ranges, label="neurodiff-prop1")
    return orig, comp, box


def run_ours_check(orig, comp, box, eps: float, timeout: float, outputs) -> dict:
    t0 = time.perf_counter()
    dec = check(orig, comp, box, eps, time_limit=timeout, outputs=outputs)
    wall = time.perf_counter() - t0
    return {
        "verdict": dec.verdict,
        "time": wall,
        "lower": dec.lower,
        "upper": dec.upper,
        "branches": dec.stats.get("branches"),
        "counterexample": None if dec.counterexample is None else np.asarray(dec.counterexample).tolist(),
    }


def run_ours_delta(orig, comp, box, timeout: float, outputs) -> dict:
    t0 = time.perf_counter()
    res = evaluate(orig, comp, box, method="exact", time_limit=timeout, outputs=outputs, delta_only=True)
    wall = time.perf_counter() - t0
    return {
        "status": res.status,
        "delta_max": res.delta_max,
        "lower": res.lower,
        "upper": res.upper,
        "tolerance": res.tolerance,
        "time": wall,
        "witness": None if res.witness is None else np.asarray(res.witness).tolist(),
    }


def run_neurodiff(binary: str, name: str, eps: float, timeout: float) -> dict:
    """NeuroDiff's ``delta_network_test 1 NNET1 NNET2 EPS`` (property 1 = the box above, target 0)."""
    p1, p2 = pair_paths(name)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = ["timeout", "-s", "INT", str(int(timeout)), binary, "1", str(p1), str(p2), repr(eps)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    m = re.search(r"time:\s*([0-9.eE+-]+)", text)
    # on SIGINT NeuroDiff prints its progress and exits 0, so ``timeout`` exits 124
    if proc.returncode == 124 or m is None and wall >= timeout - 1:
        verdict = "unknown"
    elif "No adv!" in text:
        verdict = "equivalent"
    elif m is not None:
        verdict = "not_equivalent"
    else:
        verdict = "error"
    splits = re.search(r"numSplits:\s*(\d+)", text)
    return {
        "verdict": verdict,
        "time": wall,
        "reported_time": float(m.group(1)) if m else None,
        "splits": int(splits.group(1)) if splits else None,
        "returncode": proc.returncode,
        "tail": text[-300:],
    }


def fmt_t(r: dict | None) -> str:
    if not r:
        return "-"
    v = r.get("verdict", r.get("status"))
    mark = {"equivalent": "", "exact": "", "not_equivalent": " (cex)", "unknown": " (TO)", "bounded": " (TO)"}
    return f"{r['time']:.2f}{mark.get(v, ' (' + str(v) + ')')}"


def _verdict(r: dict | None) -> str:
    return r.get("verdict", r.get("status", "-")) if r else "-"


def _time(r: dict | None) -> str:
    return f"{r['time']:.1f}" if r else "-"


def fmt_delta(r: dict | None) -> str:
    if not r:
        return "-"
    if r["status"] == "exact":
        return f"{r['delta_max']:.3e}"
    return f"[{r['lower']:.2e}, {r['upper']:.2e}]"


def summarise(rows: list[dict], eps_list: list[float], have_nd: bool) -> list[str]:
    lines = []
    for eps in eps_list:
        sel = [r for r in rows if r["eps"] == eps]
        for key, label in (
            ("ours_out0", "ours, output 0"),
            ("ours_all", "ours, all outputs"),
            ("neurodiff", "NeuroDiff"),
        ):
            got = [r[key] for r in sel if r.get(key)]
            if not got or (key == "neurodiff" and not have_nd):
                continue
            dec = [g for g in got if g["verdict"] != "unknown"]
            eq = sum(g["verdict"] == "equivalent" for g in got)
            ne = sum(g["verdict"] == "not_equivalent" for g in got)
            tot = sum(g["time"] for g in got)
            med = float(np.median([g["time"] for g in got]))
            lines.append(f"| {eps} | {label} | {len(dec)}/{len(got)} | {eq} | {ne} | {tot:.1f} | {med:.2f} |")
    if lines:
        lines.insert(0, "| ε | tool | decided | equivalent | not equivalent | total time (s) | median (s) |")
        lines.insert(1, "|---|---|---|---|---|---|---|")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="*", help="networks as a_b (default: all 45)")
    ap.add_argument("--eps", nargs="*", type=float, default=[0.05, 0.01])
    ap.add_argument("--timeout", type=float, default=300.0, help="per instance and tool (s)")
    ap.add_argument("--delta-timeout", type=float, default=None, help="for the δ_max columns (default: --timeout)")
    ap.add_argument("--skip-neurodiff", action="store_true")
    ap.add_argument("--neurodiff-bin", default=None, help="NeuroDiff's delta_network_test (skipped if absent)")
    ap.add_argument("--skip-all-outputs", action="store_true", help="only NeuroDiff's instance (output 0)")
    ap.add_argument("--skip-out0", action="store_true", help="only the all-outputs version (no output-0 runs)")
    ap.add_argument("--skip-checks", action="store_true", help="no ε-decisions (only the δ_max columns)")
    ap.add_argument("--skip-delta", action="store_true", help="no δ_max columns")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "neurodiff_acas.json"))
    ap.add_argument("--merge", nargs="*", help="only rebuild the report from these result JSON files")
    args = ap.parse_args(argv)
    if args.merge:
        rows, deltas, metas = merge(args.merge)
        write_report(rows, deltas, metas, Path(args.out), args.eps, any(r.get("neurodiff") for r in rows))
        return 0
    names = args.nets or ALL_NETS
    dt = args.delta_timeout if args.delta_timeout is not None else args.timeout
    nd_bin = None
    if not args.skip_neurodiff and args.neurodiff_bin:
        if Path(args.neurodiff_bin).is_file() and os.access(args.neurodiff_bin, os.X_OK):
            nd_bin = args.neurodiff_bin
        else:
            print(f"NeuroDiff binary {args.neurodiff_bin} not found: skipping NeuroDiff", file=sys.stderr)

    rows = []
    deltas: dict[str, dict] = {}
    for name in names:
        orig, comp, box = load_pair(name)
        if not args.skip_delta:
            deltas[name] = {}
            if not args.skip_out0:
                deltas[name]["out0"] = run_ours_delta(orig, comp, box, dt, [0])
            if not args.skip_all_outputs:
                deltas[name]["all"] = run_ours_delta(orig, comp, box, dt, None)
            print(f"{name:>4} δ_max0 {fmt_delta(deltas[name].get('out0'))}  δ_max {fmt_delta(deltas[name].get('all'))}")
        for eps in [] if args.skip_checks else args.eps:
            row: dict = {"net": name, "eps": eps}
            if nd_bin:
                row["neurodiff"] = run_neurodiff(nd_bin, name, eps, args.timeout)
            if not args.skip_out0:
                row["ours_out0"] = run_ours_check(orig, comp, box, eps, args.timeout, [0])
            if not args.skip_all_outputs:
                row["ours_all"] = run_ours_check(orig, comp, box, eps, args.timeout, None)
            rows.append(row)
            print(
                f"{name:>4} ε={eps:<5} NeuroDiff {fmt_t(row.get('neurodiff')):>12}  ours(out0) "
                f"{fmt_t(row.get('ours_out0')):>12} {_verdict(row.get('ours_out0')):<15}  ours(all) "
                f"{fmt_t(row.get('ours_all')):>12} {_verdict(row.get('ours_all'))}",
                flush=True,
            )

    meta = {
        "benchmark": "neurodiff_acas",
        "equivrepair": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": LOAD_START,
        "loadavg_end": os.getloadavg(),
        "args": vars(args),
        "units": "normalised inputs (raw box normalised with the .nnet means/ranges), raw outputs",
    }
    write_report(rows, deltas, [meta], Path(args.out), args.eps, nd_bin is not None)
    return 0


def merge(paths: list[str]) -> tuple[list[dict], dict, list[dict]]:
    """Rows of several result files; a later file fills what an earlier one lacks for (net, ε)."""
    by_key: dict[tuple, dict] = {}
    deltas: dict[str, dict] = {}
    metas = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        metas += data["meta"] if isinstance(data["meta"], list) else [data["meta"]]
        for r in data["rows"]:
            cur = by_key.setdefault((r["net"], r["eps"]), {"net": r["net"], "eps": r["eps"]})
            for k, v in r.items():
                cur.setdefault(k, v)
        for n, d in data.get("delta_max", {}).items():
            for k, v in d.items():
                deltas.setdefault(n, {}).setdefault(k, v)
    rows = sorted(by_key.values(), key=lambda r: (ALL_NETS.index(r["net"]), -r["eps"]))
    deltas = {n: deltas[n] for n in sorted(deltas, key=ALL_NETS.index)}
    for r in rows:  # re-derive NeuroDiff's verdict from its exit status and output
        nd = r.get("neurodiff")
        if nd:
            text = nd.get("tail", "")
            if nd["returncode"] == 124:
                nd["verdict"] = "unknown"
            elif "No adv!" in text:
                nd["verdict"] = "equivalent"
            elif "time:" in text:
                nd["verdict"] = "not_equivalent"
    return rows, deltas, metas


def write_report(rows, deltas, metas, out: Path, eps_list, have_nd: bool) -> None:
    timeouts = sorted({m["args"]["timeout"] for m in metas})
    dts = sorted({m["args"]["delta_timeout"] or m["args"]["timeout"] for m in metas if not m["args"].get("skip_delta")})
    md = [
        "# NeuroDiff ACAS Xu ε-equivalence",
        "",
        f"Box: NeuroDiff property 1 (raw units) normalised with the .nnet means/ranges; outputs raw; "
        f"timeout {timeouts} s per instance and tool; δ_max timeout {dts} s. Times are wall seconds "
        "(TO = time limit, cex = counterexample).",
        "",
    ]
    if rows:
        md += summarise(rows, eps_list, have_nd)
        md += [""]
        head = "| net | ε | NeuroDiff (s) | ours out0 (s) | ours out0 verdict | ratio ours/ND | ours all (s) | ours all verdict |"
        md += [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nd, o0, al = r.get("neurodiff"), r.get("ours_out0"), r.get("ours_all")
        ratio = f"{o0['time'] / nd['time']:.2f}" if nd and o0 else "-"
        md.append(
            f"| {r['net']} | {r['eps']} | {fmt_t(nd)} | {fmt_t(o0)} | {_verdict(o0)} | "
            f"{ratio} | {fmt_t(al)} | {_verdict(al)} |"
        )
    if deltas:
        md += ["", "| net | δ_max output 0 | status | time (s) | δ_max all outputs | status | time (s) |"]
        md += ["|---|---|---|---|---|---|---|"]
        for name, d in deltas.items():
            o0, a = d.get("out0"), d.get("all")
            md.append(
                f"| {name} | {fmt_delta(o0)} | {_verdict(o0)} | {_time(o0)} | {fmt_delta(a)} | {_verdict(a)} | {_time(a)} |"
            )
    text = "\n".join(md)
    print()
    print(text)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": metas, "rows": rows, "delta_max": deltas}, indent=1, default=float))
    out.with_suffix(".md").write_text(text + "\n")
    plot(rows, out.with_suffix(".png"), max(timeouts))
    print(f"\nwrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")


def plot(rows: list[dict], path: Path, timeout: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows)), 4))
    x = np.arange(len(rows))
    series = [
        ("neurodiff", "NeuroDiff", "o"),
        ("ours_out0", "ours (output 0)", "s"),
        ("ours_all", "ours (all outputs)", "^"),
    ]
    for key, label, mk in series:
        ys = [r[key]["time"] if r.get(key) else np.nan for r in rows]
        if np.all(np.isnan(ys)):
            continue
        ax.scatter(x, ys, marker=mk, label=label)
    ax.axhline(timeout, color="gray", ls="--", lw=0.8, label="time limit")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['net']}\n{r['eps']}" for r in rows], fontsize=6)
    ax.set_ylabel("time (s)")
    ax.set_title("NeuroDiff ACAS Xu ε-equivalence: time per instance")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
