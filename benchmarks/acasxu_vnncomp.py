"""ACAS Xu (VNN-COMP instances) through our ``vnnlib`` command, side by side with nnenum when installed.

Instances: the 45 networks x properties 1-4, plus property 5 on N1,1, 6 on N1,1, 7 on N1,9, 8 on
N2,9, 9 on N3,3, 10 on N4,5 (the networks they apply to). Each instance runs as a fresh process
(what a competition does): ``python -m equivrepair.cli vnnlib NET PROP --timeout T --result F``, and
``python -m nnenum.nnenum NET PROP T F`` in nnenum's interpreter (``$EQUIVREPAIR_NNENUM_PYTHON``).
The two tools run interleaved, instance by instance, so both see the same machine load. Times are
wall-clock seconds of the whole process (start-up included).

Correctness: every ``sat`` of ours carries a counterexample, re-checked here (float64 and onnxruntime,
against the property); answers of the two tools are compared (``holds``/``violated`` of nnenum
read as unsat/sat).

    python benchmarks/acasxu_vnncomp.py [--timeout 60] [--props 1,2,3,4,5,...] [--nets 1_1,2_3] [--no-nnenum]

Prints a table and writes benchmarks/results/acasxu_vnncomp.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data"))
EXTRA = {5: ["1_1"], 6: ["1_1"], 7: ["1_9"], 8: ["2_9"], 9: ["3_3"], 10: ["4_5"]}


def instances(props: list[int], nets: list[str] | None) -> list[tuple[str, int]]:
    all_nets = [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    out = []
    for p in props:
        ns = all_nets if p <= 4 else EXTRA.get(p, [])
        out += [(n, p) for n in ns if nets is None or n in nets]
    return out


def run_ours(onnx: Path, vnn: Path, timeout: float, res: Path) -> tuple[str, float, dict]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    js = res.with_suffix(".json")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "equivrepair.cli",
            "vnnlib",
            str(onnx),
            str(vnn),
            "--timeout",
            str(timeout),
            "--result",
            str(res),
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout + 120,
    )
    wall = time.perf_counter() - t0
    if not res.exists():
        return "error", wall, {"stderr": p.stderr[-500:]}
    status = res.read_text().split()[0]
    rec = json.loads(js.read_text()) if js.exists() else {}
    return status, wall, {"engine_time": rec.get("time"), "boxes": rec.get("stats", {}).get("boxes_bounded")}


def run_nnenum(py: str, onnx: Path, vnn: Path, timeout: float, res: Path) -> tuple[str, float]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    try:
        subprocess.run(
            [py, "-m", "nnenum.nnenum", str(onnx), str(vnn), str(timeout), str(res)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout + 120,
            cwd=tempfile.gettempdir(),
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    wall = time.perf_counter() - t0
    if not res.exists():
        return "error", wall
    s = res.read_text().strip().split()[0] if res.read_text().strip() else "error"
    return {"holds": "unsat", "violated": "sat"}.get(s, s), wall


def check_counterexample(onnx: Path, vnn: Path, res: Path) -> bool:
    from equivrepair.nets.load import load_network
    from equivrepair.nets.onnx_io import onnx_runtime_forward
    from equivrepair.spec.vnncomp import read_result_file
    from equivrepair.spec.vnnlib import read_vnnlib

    r = read_result_file(res)
    if r.status != "sat" or r.x is None:
        return False
    net = load_network(onnx)
    prop = read_vnnlib(vnn, n_inputs=net.n_inputs, n_outputs=net.n_outputs)
    y64 = net.forward(r.x)
    y32 = onnx_runtime_forward(onnx, r.x)
    return bool(prop.is_counterexample(r.x, y64, input_tol=0.0)) and bool(
        prop.is_counterexample(r.x, y32, input_tol=0.0)
    )


def versions(nnenum_py: str | None) -> dict:
    import onnx
    import onnxruntime

    from equivrepair.provenance import source_revision

    v = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cpu": _cpu(),
    }
    if nnenum_py:
        out = subprocess.run(
            [
                nnenum_py,
                "-c",
                "import importlib.metadata as m, onnx, onnxruntime, numpy;"
                "print(m.version('nnenum'), onnx.__version__, onnxruntime.__version__, numpy.__version__)",
            ],
            capture_output=True,
            text=True,
        )
        v["nnenum"] = out.stdout.strip()
    return v


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--props", default="1,2,3,4,5,6,7,8,9,10")
    ap.add_argument("--nets", default=None, help="comma-separated a_b (default: all)")
    ap.add_argument("--instances", default=None, help="comma-separated net:prop pairs (instead of --props/--nets)")
    ap.add_argument("--no-nnenum", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "acasxu_vnncomp.json"))
    ap.add_argument(
        "--from-json", default=None, help="only rebuild the tables and the .md from a (partial) result JSON"
    )
    args = ap.parse_args()
    if args.from_json:
        rec = json.loads(Path(args.from_json).read_text())
        md = report(rec)
        print(md)
        Path(args.out).with_suffix(".md").write_text(md)
        plot(rec, Path(args.out).with_suffix(".png"))
        return
    nnenum_py = None if args.no_nnenum else os.environ.get("EQUIVREPAIR_NNENUM_PYTHON")
    insts = instances([int(p) for p in args.props.split(",")], args.nets.split(",") if args.nets else None)
    if args.instances:
        insts = [(a, int(b)) for a, b in (item.split(":") for item in args.instances.split(","))]
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="acasxu-bench-"))
    print(f"{'net':>5} {'prop':>4} | {'ours':>8} {'time':>7} | {'nnenum':>8} {'time':>7} | note", flush=True)
    for k, (net, p) in enumerate(insts):
        onnx = DATA / "acasxu" / f"ACASXU_run2a_{net}_batch_2000.onnx"
        vnn = DATA / "acasxu" / f"prop_{p}.vnnlib"
        res = tmp / f"ours_{k}.txt"
        st, wall, extra = run_ours(onnx, vnn, args.timeout, res)
        row = {"net": net, "prop": p, "ours": st, "ours_time": wall, **{f"ours_{a}": b for a, b in extra.items()}}
        if st == "sat":
            row["ours_cex_ok"] = check_counterexample(onnx, vnn, res)
        if nnenum_py:
            st2, wall2 = run_nnenum(nnenum_py, onnx, vnn, args.timeout, tmp / f"nnenum_{k}.txt")
            row.update(nnenum=st2, nnenum_time=wall2)
        note = ""
        if st == "sat" and not row.get("ours_cex_ok"):
            note = "BAD COUNTEREXAMPLE"
        if nnenum_py and {st, row["nnenum"]} == {"sat", "unsat"}:
            note += " DISAGREE"
        row["note"] = note.strip()
        rows.append(row)
        print(
            f"{net:>5} {p:>4} | {st:>8} {wall:7.2f} | {row.get('nnenum', '-'):>8} "
            f"{row.get('nnenum_time', float('nan')):7.2f} | {note}",
            flush=True,
        )
        partial = Path(args.out).with_suffix(".partial.json")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"timeout": args.timeout, "rows": rows}, indent=2))
    summary = summarize(rows, args.timeout, bool(nnenum_py))
    print()
    for line in summary["table"]:
        print(line)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"versions": versions(nnenum_py), "timeout": args.timeout, "rows": rows, "summary": summary}, indent=2
        )
    )
    out.with_suffix(".md").write_text(report(json.loads(out.read_text())))
    plot(json.loads(out.read_text()), out.with_suffix(".png"))
    print(f"\nwrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")


def plot(rec: dict, path: Path) -> None:
    """Cactus plot (instances solved within t) and, with nnenum, per-instance times ours vs nnenum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, timeout = rec["rows"], rec["timeout"]
    tools = [("ours", "ours_time", "equivrepair"), ("nnenum", "nnenum_time", "nnenum")]
    tools = [t for t in tools if any(t[0] in r for r in rows)]
    fig, axes = plt.subplots(1, 2 if len(tools) > 1 else 1, figsize=(11 if len(tools) > 1 else 5.5, 4))
    axes = np.atleast_1d(axes)
    for key, tkey, label in tools:
        t = sorted(r[tkey] for r in rows if r.get(key) in ("sat", "unsat"))
        axes[0].step(t, np.arange(1, len(t) + 1), where="post", label=f"{label} ({len(t)}/{len(rows)})")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("time per instance (s, process wall time)")
    axes[0].set_ylabel("instances solved within time")
    axes[0].set_title(f"ACAS Xu VNN-COMP instances, timeout {timeout:g} s")
    axes[0].legend()
    if len(tools) > 1:
        a = axes[1]
        for st, color in (("unsat", "tab:blue"), ("sat", "tab:red")):
            sel = [r for r in rows if r["ours"] == st or (r["ours"] not in ("sat", "unsat") and r["nnenum"] == st)]
            a.scatter([r["nnenum_time"] for r in sel], [r["ours_time"] for r in sel], s=10, c=color, label=st)
        lim = [0.1, timeout * 1.2]
        a.plot(lim, lim, "k--", lw=0.8, label="equal time")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlim(lim)
        a.set_ylim(lim)
        a.set_xlabel("nnenum (s)")
        a.set_ylabel("equivrepair (s)")
        a.set_title("per instance (below the line: ours faster)")
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(rec: dict) -> str:
    rows, timeout = rec["rows"], rec["timeout"]
    nn = any("nnenum" in r for r in rows)
    s = summarize(rows, timeout, nn)
    L = ["# ACAS Xu VNN-COMP instances: ours (`equivrepair vnnlib`) vs nnenum", ""]
    if rec.get("versions"):
        L += [f"Versions: {rec['versions']}", ""]
    L += ["```"] + s["table"] + ["```", ""]
    if nn:
        both = [r for r in rows if r["ours"] in ("sat", "unsat") and r["nnenum"] in ("sat", "unsat")]
        ratio = [r["ours_time"] / max(r["nnenum_time"], 1e-9) for r in rows]
        L += [
            f"- median over all instances of time ours/nnenum: {np.median(ratio):.3f} "
            f"(unsolved counted at their wall time, i.e. about the timeout)",
            f"- solved by both: {len(both)}; median ours {np.median([r['ours_time'] for r in both]) if both else float('nan'):.2f} s, "
            f"nnenum {np.median([r['nnenum_time'] for r in both]) if both else float('nan'):.2f} s, median ratio "
            f"{np.median([r['ours_time'] / r['nnenum_time'] for r in both]) if both else float('nan'):.3f}",
            f"- solved by nnenum only: {[(r['net'], r['prop']) for r in rows if r['nnenum'] in ('sat', 'unsat') and r['ours'] not in ('sat', 'unsat')]}",
            f"- solved by ours only: {[(r['net'], r['prop']) for r in rows if r['ours'] in ('sat', 'unsat') and r['nnenum'] not in ('sat', 'unsat')]}",
            "",
            "| net | prop | ours | s | nnenum | s | ratio | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            L.append(
                f"| {r['net']} | {r['prop']} | {r['ours']} | {r['ours_time']:.2f} | {r['nnenum']} | {r['nnenum_time']:.2f} "
                f"| {r['ours_time'] / max(r['nnenum_time'], 1e-9):.2f} | {r.get('note', '')} |"
            )
    return "\n".join(L) + "\n"


def summarize(rows: list[dict], timeout: float, with_nnenum: bool) -> dict:
    def stats(key: str, tkey: str) -> dict:
        solved = [r for r in rows if r.get(key) in ("sat", "unsat")]
        times = [r[tkey] for r in rows]
        return {
            "solved": len(solved),
            "sat": sum(r.get(key) == "sat" for r in rows),
            "unsat": sum(r.get(key) == "unsat" for r in rows),
            "of": len(rows),
            "median_time": float(np.median(times)) if times else None,
            "mean_time": float(np.mean(times)) if times else None,
            "total_time": float(np.sum(times)) if times else None,
            "median_time_solved": float(np.median([r[tkey] for r in solved])) if solved else None,
        }

    s = {"ours": stats("ours", "ours_time")}
    bad = [r for r in rows if r.get("ours") == "sat" and not r.get("ours_cex_ok")]
    s["ours"]["bad_counterexamples"] = len(bad)
    lines = [
        f"instances: {len(rows)}, timeout {timeout:g} s (wall time per process, start-up included)",
        f"{'tool':>8} | {'solved':>6} {'sat':>4} {'unsat':>5} | {'median s':>8} {'mean s':>7} {'total s':>8}",
    ]
    tools = ["ours"] + (["nnenum"] if with_nnenum else [])
    if with_nnenum:
        s["nnenum"] = stats("nnenum", "nnenum_time")
        s["disagreements"] = [(r["net"], r["prop"]) for r in rows if {r["ours"], r["nnenum"]} == {"sat", "unsat"}]
    for t in tools:
        d = s[t]
        lines.append(
            f"{t:>8} | {d['solved']:>6} {d['sat']:>4} {d['unsat']:>5} | {d['median_time']:8.2f} "
            f"{d['mean_time']:7.2f} {d['total_time']:8.1f}"
        )
    if with_nnenum:
        lines.append(f"disagreements: {s['disagreements'] or 'none'}")
    lines.append(f"our counterexamples failing the float64/onnxruntime re-check: {len(bad)}")
    for p in sorted({r["prop"] for r in rows}):
        sub = [r for r in rows if r["prop"] == p]
        o = sum(r["ours"] in ("sat", "unsat") for r in sub)
        txt = f"  prop {p:>2}: ours solved {o}/{len(sub)}, median {np.median([r['ours_time'] for r in sub]):.2f} s"
        if with_nnenum:
            nn = sum(r["nnenum"] in ("sat", "unsat") for r in sub)
            txt += f"; nnenum solved {nn}/{len(sub)}, median {np.median([r['nnenum_time'] for r in sub]):.2f} s"
        lines.append(txt)
    s["table"] = lines
    return s


if __name__ == "__main__":
    main()
