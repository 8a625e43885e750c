"""Cross-validation suite and our engine vs Marabou (and nnenum when installed).

The suite (:func:`crossval_instances`, also used by ``tests/test_crossval.py``): random small pairs
(an original and its weights rounded to a grid), ACAS Xu pairs (ONNX original vs NeuroDiff's 16-bit
truncation) on small boxes inside the property regions, MNIST pairs (``mnist_relu_3_100`` vs its 16-bit
truncation) on small L-inf balls around test images. On each instance every method computes δ_max;
the ε-decisions are then asked at ε = 0.8·δ and 1.25·δ (δ from our exact method: a non-equivalent
and an equivalent case) and must agree.

Agreement rule: δ_a and δ_b agree when ``|δ_a − δ_b| <= tol_a + tol_b + 1e-7·(1 + δ)`` (each
method's stated tolerance), and every method's witnessed lower bound is at most every other
method's upper bound plus those tolerances.

    python benchmarks/crossval_marabou.py [--methods exact,milp,marabou[,nnenum]] [--quick] [--acas-equiv]

``--acas-equiv``: also the ACAS Xu ε-equivalence instances of ``vnnlib_specs/acasxu_equiv`` (ε-decision
only: ours (``check``) vs Marabou). Prints tables (solved, time, ratio) and writes
benchmarks/results/crossval_marabou.json.
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
from typing import Any

import numpy as np

from equivrepair.provenance import source_revision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data"))


def _quantize(net, step: float):
    from equivrepair.nets.ir import Layer

    return net.with_layers(
        [
            Layer(np.round(layer.W / step) * step, np.round(layer.b / step) * step, layer.activation)
            for layer in net.layers
        ]
    ).replace(name=net.name + "-q")


ATOL, RTOL = 1e-8, 1e-4  # atol: 10x the float slack (1e-9 relative) every sound bound of ours carries


def random_instances(n: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    from equivrepair.nets.ir import random_fnn
    from equivrepair.spec.sets import Box

    rng = np.random.default_rng(seed)
    shapes = [[2, 6, 6, 2], [3, 8, 2], [3, 6, 6, 3], [4, 8, 6, 2], [2, 10, 3], [3, 5, 5, 5, 2]]
    out = []
    for k in range(n):
        widths = shapes[k % len(shapes)]
        orig = random_fnn(widths, seed=1000 + k, name=f"rand{k}")
        comp = _quantize(orig, [0.25, 0.125, 0.0625][k % 3])
        c = rng.uniform(-1, 1, size=widths[0])
        r = 0.5 * rng.uniform(0.2, 1.0)
        out.append(
            {
                "name": f"random-{k}-{'x'.join(map(str, widths))}",
                "kind": "random",
                "orig": orig,
                "comp": comp,
                "box": Box(c - r, c + r, label=f"box r={r:.2f}"),
            }
        )
    return out


def acas_instances(n: int = 10, seed: int = 1, radius: float = 0.001) -> list[dict[str, Any]]:
    from equivrepair.nets.load import load_network
    from equivrepair.spec.sets import Box
    from equivrepair.spec.vnnlib import read_vnnlib

    rng = np.random.default_rng(seed)
    nets = ["1_1", "2_3", "3_5", "4_7", "5_9", "1_6", "2_8", "3_2", "4_4", "5_1"]
    out = []
    for k in range(n):
        net = nets[k % len(nets)]
        onnx = DATA / "acasxu" / f"ACASXU_run2a_{net}_batch_2000.onnx"
        nnet = DATA / "neurodiff" / "compressed16" / f"ACASXU_run2a_{net}_batch_2000_16bit.nnet"
        if not (onnx.exists() and nnet.exists()):
            continue
        orig = load_network(onnx)
        comp = load_network(nnet, input_normalization=False)
        region = read_vnnlib(DATA / "acasxu" / f"prop_{[1, 3, 4][k % 3]}.vnnlib").cases[0].box
        c = rng.uniform(region.lower, region.upper)
        box = Box(np.maximum(c - radius, region.lower), np.minimum(c + radius, region.upper), label=f"acas {net}")
        out.append({"name": f"acas-{net}-p{[1, 3, 4][k % 3]}", "kind": "acas", "orig": orig, "comp": comp, "box": box})
    return out


def mnist_instances(n: int = 6, radius: float = 0.01) -> list[dict[str, Any]]:
    """L-inf balls of ``radius`` raw pixel values (the network reads pixels 0-255) around test images."""
    from equivrepair.data.mnist import load_mnist
    from equivrepair.nets.load import load_network
    from equivrepair.spec.sets import linf_ball

    o = DATA / "neurodiff" / "original" / "mnist_relu_3_100.nnet"
    c = DATA / "neurodiff" / "compressed16" / "mnist_relu_3_100_16bit.nnet"
    if not (o.exists() and c.exists() and (DATA / "mnist").is_dir()):
        return []
    orig = load_network(o, input_normalization=False)
    comp = load_network(c, input_normalization=False)
    X, _ = load_mnist(DATA / "mnist", split="test", limit=n)
    X = 255.0 * X.reshape(len(X), -1).astype(np.float64)
    return [
        {
            "name": f"mnist-test{i}",
            "kind": "mnist",
            "orig": orig,
            "comp": comp,
            "box": linf_ball(X[i], radius, (np.zeros(784), np.full(784, 255.0)), label=f"mnist test {i}"),
        }
        for i in range(n)
    ]


def crossval_instances(n_random: int = 30, n_acas: int = 10, n_mnist: int = 6) -> list[dict[str, Any]]:
    """46 instances when the shared data is there (30 random, 10 ACAS Xu, 6 MNIST by default)."""
    return random_instances(n_random) + acas_instances(n_acas) + mnist_instances(n_mnist)


def run_method(method: str, inst: dict, time_limit: float) -> dict[str, Any]:
    from equivrepair.reach.api import evaluate

    t0 = time.perf_counter()
    # one tolerance for every method: 1e-4 of δ (absolute 1e-9), so that tiny δ (ACAS Xu pairs:
    # 1e-5) are compared to four digits, not to the default absolute 1e-6
    opts: dict[str, Any] = {"atol": ATOL, "rtol": RTOL}
    if method in ("marabou", "vnncomp-tool"):
        opts = {"bisect_atol": ATOL, "bisect_rtol": RTOL}
    elif method == "nnenum":  # exact star enumeration, LP optima: no tolerance to set
        opts = {}
    elif method == "milp":  # the solver's feasibility tolerance is the stated slack of its bound
        opts["tol"] = 1e-8
    try:
        d = evaluate(inst["orig"], inst["comp"], inst["box"], method=method, time_limit=time_limit, **opts)
    except Exception as exc:  # report, do not stop the suite
        return {
            "method": method,
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "time": time.perf_counter() - t0,
        }
    return {
        "method": method,
        "status": d.status,
        "delta": d.delta_max,
        "lower": d.lower,
        "upper": d.upper,
        "tolerance": d.tolerance,
        "time": time.perf_counter() - t0,
        "external_time": d.stats.get("external_time"),
        "witness": d.witness,
    }


def agree(a: dict, b: dict) -> bool:
    if a["status"] != "exact" or b["status"] != "exact":
        return False
    slack = a["tolerance"] + b["tolerance"] + 1e-7 * (1 + abs(a["delta"]))
    return (
        abs(a["delta"] - b["delta"]) <= slack and a["lower"] <= b["upper"] + slack and b["lower"] <= a["upper"] + slack
    )


def run_decisions(methods: list[str], inst: dict, delta: float, time_limit: float) -> list[dict[str, Any]]:
    from equivrepair.reach.api import check
    from equivrepair.reach.external import decide_external

    out = []
    for factor in (0.8, 1.25):
        eps = max(delta * factor, 1e-9)
        row: dict[str, Any] = {"epsilon": eps, "factor": factor}
        for m in methods:
            t0 = time.perf_counter()
            try:
                if m in ("nnenum", "marabou", "vnncomp-tool"):
                    dec = decide_external(m, inst["orig"], inst["comp"], inst["box"], eps, time_limit=time_limit)
                else:
                    dec = check(inst["orig"], inst["comp"], inst["box"], eps, method=m, time_limit=time_limit)
                row[m] = dec.verdict
            except Exception as exc:
                row[m] = f"error: {exc}"
            row[f"{m}_time"] = time.perf_counter() - t0
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="exact,milp,marabou")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="6 random + 2 ACAS + 1 MNIST instances")
    ap.add_argument("--acas-equiv", action="store_true", help="also vnnlib_specs/acasxu_equiv ε-decisions")
    ap.add_argument("--equiv-time-limit", type=float, default=None, help="per tool per instance (default --time-limit)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "crossval_marabou.json"))
    ap.add_argument(
        "--from-json", default=None, help="only rebuild the tables and the .md from a (partial) result JSON"
    )
    ap.add_argument("--shard", default=None, help="i/n: run every n-th instance from the i-th (parallel runs)")
    ap.add_argument("--merge", nargs="+", default=None, help="combine the (partial) JSONs of shards into --out")
    ap.add_argument("--skip", nargs="*", default=[], help="(partial) JSONs whose instances are not run again")
    args = ap.parse_args()
    if args.merge:
        recs = [json.loads(Path(p).read_text()) for p in args.merge]
        order = [i["name"] for i in crossval_instances()]
        insts = sorted((i for r in recs for i in r["instances"]), key=lambda i: order.index(i["name"]))
        methods = recs[0]["methods"]
        full = next((r for r in recs if r.get("versions")), recs[0])
        rec = dict(full, instances=insts, summary=summarize(insts, methods), merged_from=args.merge)
        Path(args.out).write_text(json.dumps(rec, indent=2, default=float))
        Path(args.out).with_suffix(".md").write_text(report(rec))
        plot(rec, Path(args.out).with_suffix(".png"))
        print(report(rec))
        return
    if args.from_json:
        rec = json.loads(Path(args.from_json).read_text())
        md = report(rec)
        print(md)
        Path(args.out).with_suffix(".md").write_text(md)
        return
    methods = args.methods.split(",")
    partial = Path(args.out).with_suffix(".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    insts = crossval_instances(6, 2, 1) if args.quick else crossval_instances()
    done = {i["name"] for p in args.skip for i in json.loads(Path(p).read_text())["instances"]}
    insts = [i for i in insts if i["name"] not in done]
    if args.shard:
        i, n = (int(v) for v in args.shard.split("/"))
        insts = insts[i::n]
    results = []
    print(f"{'instance':<24} " + " ".join(f"{m:>22}" for m in methods) + "  agree  decisions", flush=True)
    for inst in insts:
        rs = {m: run_method(m, inst, args.time_limit) for m in methods}
        ref = rs[methods[0]]
        ok = all(agree(ref, rs[m]) for m in methods[1:])
        decs = run_decisions(methods, inst, ref["delta"], args.time_limit) if ref.get("delta") else []
        dec_ok = all(len({d[m] for m in methods}) == 1 for d in decs) and bool(decs)
        results.append(
            {
                "name": inst["name"],
                "kind": inst["kind"],
                "results": {m: {k: v for k, v in r.items() if k != "witness"} for m, r in rs.items()},
                "agree": ok,
                "decisions": decs,
                "decisions_agree": dec_ok,
            }
        )
        cells = " ".join(f"{(r.get('delta') or float('nan')):12.6g} {r['time']:8.2f}s" for r in rs.values())
        print(f"{inst['name']:<24} {cells}  {'yes' if ok else 'NO':>5}  {'yes' if dec_ok else 'NO'}", flush=True)
        _write_partial(partial, methods, args, results, None)
    summary = summarize(results, methods)
    equiv = None
    if args.acas_equiv:
        tools = ["marabou"] + (["nnenum"] if "nnenum" in methods else [])
        equiv = acas_equiv(
            args.equiv_time_limit or args.time_limit,
            tools,
            on_row=lambda rows: _write_partial(partial, methods, args, results, {"rows": rows}),
        )
    print()
    for line in summary["table"]:
        print(line)
    if equiv:
        for line in equiv["table"]:
            print(line)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import onnx

    vers = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "onnx": onnx.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    try:
        from importlib.metadata import version

        vers["maraboupy"] = version("maraboupy")
    except Exception:
        pass
    out.write_text(
        json.dumps(
            {
                "versions": vers,
                "methods": methods,
                "time_limit": args.time_limit,
                "equiv_time_limit": args.equiv_time_limit or args.time_limit,
                "instances": results,
                "summary": summary,
                "acas_equiv": equiv,
            },
            indent=2,
            default=float,
        )
    )
    out.with_suffix(".md").write_text(report(json.loads(out.read_text())))
    plot(json.loads(out.read_text()), out.with_suffix(".png"))
    print(f"\nwrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")


DECIDED = ("equivalent", "not_equivalent")


TRIO = ("exact", "milp", "marabou")  # the methods the issue names for the suite


def full_agreement(results: list[dict], methods: list[str]) -> list[str]:
    """Instances on which every one of ``methods`` computed δ_max exactly, every pair agrees, and
    every method decided both ε-questions, identically and on the side δ_exact says."""
    names = []
    for r in results:
        rs = r["results"]
        if not all(rs[m]["status"] == "exact" for m in methods):
            continue
        if not all(agree(rs[a], rs[b]) for i, a in enumerate(methods) for b in methods[i + 1 :]):
            continue
        decs = r["decisions"]
        expected = ["not_equivalent" if d["factor"] < 1 else "equivalent" for d in decs]
        if decs and all(d[m] == e for d, e in zip(decs, expected) for m in methods):
            names.append(r["name"])
    return names


def analyze(results: list[dict], methods: list[str]) -> dict:
    """Unsolved is not disagreement: pairwise δ agreement among the methods that solved, and ε-decision clashes
    (two methods that both decided and differ; a decision against the sign of ε − δ_exact counts too)."""
    pair_checked = 0
    clashes, dec_clashes, dec_wrong = [], [], []
    for r in results:
        rs = r["results"]
        solved = [m for m in methods if rs[m]["status"] == "exact"]
        for i, a in enumerate(solved):
            for b in solved[i + 1 :]:
                pair_checked += 1
                if not agree(rs[a], rs[b]):
                    clashes.append((r["name"], a, b, rs[a]["delta"], rs[b]["delta"]))
        # unsolved methods with bounds: their bracket must still contain every solved method's δ
        for m in methods:
            x = rs[m]
            if x["status"] == "exact" or x.get("lower") is None or x.get("upper") is None:
                continue
            for b in solved:
                y = rs[b]
                slack = (x.get("tolerance") or 0) + y["tolerance"] + 1e-7 * (1 + abs(y["delta"]))
                pair_checked += 1
                if x["lower"] > y["upper"] + slack or y["lower"] > x["upper"] + slack:
                    clashes.append((r["name"], m, b, (x["lower"], x["upper"]), y["delta"]))
        for d in r["decisions"]:
            verdicts = {m: d[m] for m in methods if d[m] in DECIDED}
            if len(set(verdicts.values())) > 1:
                dec_clashes.append((r["name"], d["factor"], verdicts))
            expected = "not_equivalent" if d["factor"] < 1 else "equivalent"
            for m, v in verdicts.items():
                if v != expected:
                    dec_wrong.append((r["name"], d["factor"], m, v))
    all_solved = [r for r in results if all(r["results"][m]["status"] == "exact" for m in methods)]
    all_decided = [
        r for r in results if r["decisions"] and all(d[m] in DECIDED for d in r["decisions"] for m in methods)
    ]
    return {
        "instances": len(results),
        "full_agreement": full_agreement(results, [m for m in TRIO if m in methods]),
        "solved_by_all": len(all_solved),
        "decided_by_all": len(all_decided),
        "pairs_checked": pair_checked,
        "delta_disagreements": clashes,
        "decision_clashes": dec_clashes,
        "decisions_against_exact_delta": dec_wrong,
    }


def plot(rec: dict, path: Path) -> None:
    """Left: δ_max solve times per method (cactus). Right: each method's δ_max against ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods, results = rec["methods"], rec["instances"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for m in methods:
        t = sorted(r["results"][m]["time"] for r in results if r["results"][m]["status"] == "exact")
        a1.step(t, np.arange(1, len(t) + 1), where="post", label=f"{m} ({len(t)}/{len(results)})")
    a1.set_xscale("log")
    a1.set_xlabel(f"time for δ_max (s; limit {rec.get('time_limit')} s per query)")
    a1.set_ylabel("instances with δ_max exact")
    a1.set_title("cross-validation suite: δ_max solved within time")
    a1.legend()
    ours = methods[0]
    for m in methods[1:]:
        pts = [
            (r["results"][ours]["delta"], r["results"][m]["delta"])
            for r in results
            if r["results"][m]["status"] == "exact" and r["results"][ours]["status"] == "exact"
        ]
        if pts:
            x, y = np.array(pts).T
            a2.scatter(x, y, s=12, label=m)
    lim = [min(r["results"][ours]["delta"] or 1 for r in results) / 2, 2]
    a2.plot(lim, lim, "k--", lw=0.8)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel(f"δ_max ({ours})")
    a2.set_ylabel("δ_max (other method)")
    a2.set_title("agreement (on the diagonal)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(rec: dict) -> str:
    methods, results = rec["methods"], rec["instances"]
    a = analyze(results, methods)
    ours = methods[0]
    L = [
        "# Cross-validation suite (benchmarks/crossval_marabou.py)",
        "",
        f"Methods: {', '.join(methods)}; time limit {rec.get('time_limit')} s per method per query.",
        f"Versions: {rec.get('versions', '-')}",
        *([f"Merged from: {', '.join(Path(p).name for p in rec['merged_from'])}"] if rec.get("merged_from") else []),
        "",
        f"- **{len(a['full_agreement'])} instances on which {', '.join(m for m in TRIO if m in methods)} all compute "
        "δ_max exactly, agree on it to their stated tolerances, and decide both ε-questions alike and right**"
        f" ({', '.join(a['full_agreement'])})",
        f"- instances: {a['instances']}; solved (δ_max exact) by every method: {a['solved_by_all']}; "
        f"every ε-decision (ε = 0.8·δ, 1.25·δ) decided by every method: {a['decided_by_all']}",
        f"- δ_max pairs compared (both solved): {a['pairs_checked']}; disagreements: "
        f"{a['delta_disagreements'] or 'none'}",
        f"- ε-decision clashes between methods: {a['decision_clashes'] or 'none'}; decisions against the sign "
        f"of ε − δ_exact: {a['decisions_against_exact_delta'] or 'none'}",
        "",
        f"| method | δ_max solved | median s | total s | median ratio {ours}/method | decisions solved "
        f"| decision median s | decision median ratio {ours}/method |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = np.array([r["results"][ours]["time"] for r in results])
    decs = [d for r in results for d in r["decisions"]]
    dbase = np.array([d[f"{ours}_time"] for d in decs])
    for m in methods:
        t = np.array([r["results"][m]["time"] for r in results])
        dt = np.array([d[f"{m}_time"] for d in decs])
        solved = sum(r["results"][m]["status"] == "exact" for r in results)
        ds = sum(d[m] in DECIDED for d in decs)
        L.append(
            f"| {m} | {solved}/{len(results)} | {np.median(t):.3f} | {t.sum():.1f} | {np.median(base / np.maximum(t, 1e-9)):.3f} "
            f"| {ds}/{len(decs)} | {np.median(dt) if decs else float('nan'):.3f} "
            f"| {np.median(dbase / np.maximum(dt, 1e-9)) if decs else float('nan'):.3f} |"
        )
    L += [
        "",
        "Per kind (median δ_max time, s):",
        "",
        "| kind | n | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for kind in sorted({r["kind"] for r in results}):
        sub = [r for r in results if r["kind"] == kind]
        L.append(
            f"| {kind} | {len(sub)} | "
            + " | ".join(
                f"{np.median([r['results'][m]['time'] for r in sub]):.3f} "
                f"({sum(r['results'][m]['status'] == 'exact' for r in sub)} solved)"
                for m in methods
            )
            + " |"
        )
    L += [
        "",
        "Per instance (δ_max, status, time s):",
        "",
        "| instance | " + " | ".join(methods) + " | decisions 0.8δ / 1.25δ |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for r in results:
        cells = []
        for m in methods:
            x = r["results"][m]
            dv = x.get("delta")
            if dv is None and x.get("lower") is not None:
                cells.append(f"[{x['lower']:.7g}, {x['upper']:.7g}] {x['status']} {x['time']:.2f}")
            else:
                cells.append(
                    f"{dv:.7g} {x['status']} {x['time']:.2f}" if dv is not None else f"{x['status']} {x['time']:.2f}"
                )
        dcell = " / ".join(",".join(f"{m}:{d[m][:3]}" for m in methods) for d in r["decisions"])
        L.append(f"| {r['name']} | " + " | ".join(cells) + f" | {dcell} |")
    for key in ("acas_equiv", "acas_equiv_nnenum"):
        L += _equiv_report(rec.get(key), rec)
    return "\n".join(L) + "\n"


def _equiv_report(eq: dict | None, rec: dict) -> list[str]:
    L: list[str] = []
    if eq and eq.get("rows"):
        rows = eq["rows"]
        tools = eq.get("tools") or ["ours"] + [t for t in ("marabou", "nnenum") if t in rows[0]]
        L += [
            "",
            f"## ACAS Xu ε-equivalence instances (vnnlib_specs/acasxu_equiv), {len(rows)} rows, "
            f"time limit {eq.get('time_limit', rec.get('equiv_time_limit'))} s per tool",
            "",
            "| tool | solved | median s | total s | median ratio ours/tool |",
            "|---|---|---|---|---|",
        ]
        for t in tools:
            tt = np.array([r[f"{t}_time"] for r in rows])
            ot = np.array([r["ours_time"] for r in rows])
            L.append(
                f"| {t} | {sum(r[t] in DECIDED for r in rows)}/{len(rows)} | {np.median(tt):.2f} | {tt.sum():.1f} "
                f"| {np.median(ot / np.maximum(tt, 1e-9)):.3f} |"
            )
        clash = [
            (r["file"], {t: r[t] for t in tools}) for r in rows if len({r[t] for t in tools if r[t] in DECIDED}) > 1
        ]
        L += [
            "",
            f"Contradictory decisions: {clash or 'none'}",
            "",
            "| file | " + " | ".join(tools) + " |",
            "|---|" + "---|" * len(tools),
        ]
        for r in rows:
            L.append(f"| {Path(r['file']).name} | " + " | ".join(f"{r[t]} {r[f'{t}_time']:.2f}" for t in tools) + " |")
    return L


def _write_partial(path: Path, methods: list[str], args, results: list[dict], equiv: dict | None) -> None:
    path.write_text(
        json.dumps(
            {"methods": methods, "time_limit": args.time_limit, "instances": results, "acas_equiv": equiv},
            indent=2,
            default=float,
        )
    )


def summarize(results: list[dict], methods: list[str]) -> dict:
    lines = [
        f"{len(results)} instances; δ_max agreement: {sum(r['agree'] for r in results)}/{len(results)}; "
        f"ε-decisions agree on {sum(r['decisions_agree'] for r in results)}/{len(results)} instances"
    ]
    lines.append(
        f"{'method':>10} | {'solved':>6} | {'median s':>8} {'total s':>8} | median ratio {methods[0]}/method "
        f"| decisions solved, median s, median ratio {methods[0]}/method"
    )
    s: dict[str, Any] = {}
    base = [r["results"][methods[0]]["time"] for r in results]
    for m in methods:
        times = [r["results"][m]["time"] for r in results]
        solved = sum(r["results"][m]["status"] == "exact" for r in results)
        ratio = float(np.median(np.array(times) / np.maximum(base, 1e-9)))
        inv = float(np.median(np.array(base) / np.maximum(times, 1e-9)))
        decs = [d for r in results for d in r["decisions"]]
        dtimes = [d[f"{m}_time"] for d in decs]
        dbase = [d[f"{methods[0]}_time"] for d in decs]
        dsolved = sum(d[m] in ("equivalent", "not_equivalent") for d in decs)
        dinv = float(np.median(np.array(dbase) / np.maximum(dtimes, 1e-9))) if decs else float("nan")
        s[m] = {
            "solved": solved,
            "median_time": float(np.median(times)),
            "total_time": float(np.sum(times)),
            "median_ratio": ratio,
            "median_ratio_ours_over_method": inv,
            "decisions_solved": dsolved,
            "decisions": len(decs),
            "decisions_median_time": float(np.median(dtimes)) if decs else None,
            "decisions_median_ratio_ours_over_method": dinv,
        }
        lines.append(
            f"{m:>10} | {solved:>6} | {np.median(times):8.3f} {np.sum(times):8.1f} | {inv:12.3f} "
            f"| {dsolved}/{len(decs)}, {np.median(dtimes) if decs else float('nan'):.3f}, {dinv:.3f}"
        )
    for kind in sorted({r["kind"] for r in results}):
        sub = [r for r in results if r["kind"] == kind]
        lines.append(
            f"  {kind}: "
            + ", ".join(f"{m} median {np.median([r['results'][m]['time'] for r in sub]):.3f} s" for m in methods)
        )
    s["table"] = lines
    return s


def acas_equiv(time_limit: float, tools: list[str] | None = None, on_row=None) -> dict:
    """ε-equivalence instances of vnnlib_specs/acasxu_equiv (the *_eps_*.vnnlib files, not thresholds): ours vs Marabou."""
    from equivrepair.nets.load import load_network
    from equivrepair.reach.api import check
    from equivrepair.reach.external import decide_external
    from equivrepair.spec.vnnlib import read_vnnlib

    tools = tools or ["marabou"]
    folder = ROOT / "vnnlib_specs" / "acasxu_equiv"
    man = json.loads((folder / "manifest.json").read_text())
    rows = []
    for pair in man["pairs"]:
        orig = load_network(pair["orig"]["path"])
        comp = load_network(pair["comp"]["path"], input_normalization=False)
        for v in pair["vnnlib"]:
            if v["kind"] != "epsilon":
                continue
            box = read_vnnlib(folder / v["file"]).input_box()
            r: dict[str, Any] = {"file": v["file"], "epsilon": v["epsilon"]}
            t0 = time.perf_counter()
            r["ours"] = check(orig, comp, box, v["epsilon"], time_limit=time_limit).verdict
            r["ours_time"] = time.perf_counter() - t0
            for tool in tools:
                t0 = time.perf_counter()
                try:
                    d = decide_external(tool, orig, comp, box, v["epsilon"], time_limit=time_limit)
                    r[tool], r[f"{tool}_external"] = d.verdict, d.stats.get("external_time")
                except Exception as exc:
                    r[tool] = f"error: {exc}"
                r[f"{tool}_time"] = time.perf_counter() - t0
            rows.append(r)
            print(
                f"{Path(v['file']).name[:60]:<60} ours {r['ours']:>15} {r['ours_time']:7.2f}s  "
                + "  ".join(f"{t} {r[t]:>15} {r[f'{t}_time']:7.2f}s" for t in tools),
                flush=True,
            )
            if on_row:
                on_row(rows)
    lines = [f"ACAS Xu ε-equivalence instances (vnnlib_specs/acasxu_equiv), time limit {time_limit:g} s per tool:"]
    for t in ["ours"] + tools:
        solved = sum(r[t] in ("equivalent", "not_equivalent") for r in rows)
        lines.append(
            f"  {t:>8}: solved {solved}/{len(rows)}, median {np.median([r[f'{t}_time'] for r in rows]):.2f} s, "
            f"total {np.sum([r[f'{t}_time'] for r in rows]):.1f} s"
        )
    decided = ("equivalent", "not_equivalent")
    for t in tools:
        ratio = np.median([r["ours_time"] / max(r[f"{t}_time"], 1e-9) for r in rows]) if rows else float("nan")
        clash = [r["file"] for r in rows if r["ours"] in decided and r[t] in decided and r["ours"] != r[t]]
        lines.append(
            f"  median time ratio ours/{t}: {ratio:.2f}; same answer on {sum(r['ours'] == r[t] for r in rows)}/"
            f"{len(rows)}; contradictory decisions: {clash or 'none'}"
        )
    return {"rows": rows, "table": lines, "time_limit": time_limit, "tools": ["ours"] + tools}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
