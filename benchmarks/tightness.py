"""Tightness of the δ̃ upper bounds on real pairs: ACAS Xu 1_1 vs its 16-bit copy and an 8-bit copy.

Pairs: Φ1 = NeuroDiff's ``ACASXU_run2a_1_1_batch_2000.nnet``; Φ2 = its 16-bit copy
(``compressed16/..._16bit.nnet``) and an 8-bit weight-rounded copy made here
(w → round(w/s)·s with s = max|w|/127 per weight tensor, biases unchanged). Inputs in raw units
(normalisation folded into the first layer), outputs raw (not denormalised).

Boxes: ``--points`` points drawn (seed 0) uniformly in the property-1 region
(ρ >= 55947.691, v_own >= 1145, v_int <= 60, other inputs over their full range), and around each
a box of half-width ``r × (input range)`` for each ``r`` in ``--radii``, clipped to the region.

Methods (upper bounds on max_x |Φ1(x) − Φ2(x)|∞): interval (IBP on the merged network), symbolic
(``equivrepair.reach.symbolic.symbolic_bounds`` on the merged network, when that module exists),
differential (NeuroDiff-style, ``reach.bounds``), LP (triangle LP with difference cuts,
``reach.lp``) and MILP (``reach.milp``, mode "max", time-limited; its status is printed). The
sampled column is max over ``--samples`` uniform samples, a lower bound.

    python benchmarks/tightness.py [--data DIR] [--points 4] [--radii 0.005 0.02] [--milp-time 60]
                                   [--milp-tol T] [--samples 20000] [--out benchmarks/results] [--quick]

Writes ``tightness.json`` to ``--out``. BLAS runs single-threaded (OPENBLAS_NUM_THREADS=1, set
before numpy is imported, unless already set): on the shared 2-core machine multi-threaded OpenBLAS
was 10-100x slower on these small matrices (oversubscription).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from equivrepair.merge import merge  # noqa: E402
from equivrepair.nets.ir import FNN  # noqa: E402
from equivrepair.provenance import source_revision  # noqa: E402
from equivrepair.reach.bounds import differential_bounds, interval_bounds  # noqa: E402
from equivrepair.reach.lp import method_lp  # noqa: E402
from equivrepair.reach.milp import method_milp  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402

PROP1_LO = np.array([55947.691, -3.141593, -3.141593, 1145.0, 0.0])
PROP1_HI = np.array([60760.0, 3.141593, 3.141593, 1200.0, 60.0])


def load(path: Path) -> FNN:
    from equivrepair.nets.nnet_io import load_nnet

    return load_nnet(path)


def round8(net: FNN) -> FNN:
    ws, bs = [], []
    for layer in net.layers:
        s = np.abs(layer.W).max() / 127.0
        ws.append(np.round(layer.W / s) * s)
        bs.append(layer.b)
    return FNN.from_arrays(ws, bs, input_domain=net.input_domain, name=net.name + "-8bit")


def symbolic_upper(a: FNN, b: FNN, box: Box) -> tuple[float | None, float]:
    try:
        from equivrepair.reach.symbolic import symbolic_bounds
    except ImportError:
        return None, 0.0
    t0 = time.perf_counter()
    lb, _ = symbolic_bounds(merge(a, b), box.lower, box.upper)
    return float(np.max(np.abs([lb.lower[0], lb.upper[0]]))), time.perf_counter() - t0


def timed(f, *args, **kw):
    t0 = time.perf_counter()
    out = f(*args, **kw)
    return out, time.perf_counter() - t0


def time_differential(a: FNN, b: FNN, boxes_lo: np.ndarray, boxes_hi: np.ndarray, reps: int) -> dict[str, float]:
    differential_bounds(a, b, boxes_lo[0], boxes_hi[0])  # warm-up
    t0 = time.perf_counter()
    for i in range(reps):
        differential_bounds(a, b, boxes_lo[i % len(boxes_lo)], boxes_hi[i % len(boxes_hi)])
    t1 = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    differential_bounds(a, b, boxes_lo, boxes_hi)
    tn = time.perf_counter() - t0
    return {"N=1 (s per call)": t1, f"N={len(boxes_lo)} (s per call)": tn, "per box at N (s)": tn / len(boxes_lo)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("EQUIVREPAIR_DATA", ROOT.parent / "shared" / "data"))
    )
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--radii", type=float, nargs="+", default=[0.005, 0.02])
    ap.add_argument("--milp-time", type=float, default=60.0)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument(
        "--milp-tol",
        type=float,
        default=None,
        help="MILP tolerance (default: 1e-3 x the sampled discrepancy, clipped to [1e-9, 1e-6])",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--quick", action="store_true", help="2 points, one radius, MILP 10 s")
    args = ap.parse_args()
    if args.quick:
        args.points, args.radii, args.milp_time = 2, [0.005], 10.0

    d = args.data / "neurodiff"
    orig = load(d / "original" / "ACASXU_run2a_1_1_batch_2000.nnet")
    pairs = {
        "16bit": load(d / "compressed16" / "ACASXU_run2a_1_1_batch_2000_16bit.nnet"),
        "8bit-rounded": round8(orig),
    }
    rng = np.random.default_rng(0)
    points = rng.uniform(PROP1_LO, PROP1_HI, size=(args.points, 5))
    dom_range = orig.input_domain[1] - orig.input_domain[0]

    rows = []
    header = (
        f"{'pair':13s} {'r':>6s} {'pt':>2s} {'sampled':>10s} {'interval':>10s} {'symbolic':>10s} "
        f"{'differ.':>10s} {'LP':>10s} {'MILP':>10s} {'MILP status':12s} {'t_diff':>7s} {'t_LP':>6s} {'t_MILP':>6s}"
    )
    print(header)
    print("-" * len(header))
    for name, comp in pairs.items():
        for r in args.radii:
            for k, p in enumerate(points):
                box = Box(np.maximum(p - r * dom_range, PROP1_LO), np.minimum(p + r * dom_range, PROP1_HI))
                x = box.sample(args.samples, seed=k)
                samp = float(np.abs(orig(x) - comp(x)).max())
                ib, t_int = timed(interval_bounds, merge(orig, comp), box.lower, box.upper)
                il, iu = ib[-1]
                sym, t_sym = symbolic_upper(orig, comp, box)
                (dl, du), t_diff = timed(differential_bounds, orig, comp, box.lower, box.upper)
                lp, t_lp = timed(method_lp, orig, comp, box)
                # MILP tolerance relative to the discrepancy's size (16-bit pairs differ by ~1e-6)
                tol = args.milp_tol if args.milp_tol else float(np.clip(1e-3 * samp, 1e-9, 1e-6))
                mi, t_mi = timed(method_milp, orig, comp, box, time_limit=args.milp_time, mode="max", tol=tol)
                row = {
                    "pair": name,
                    "radius_frac": r,
                    "point": p.tolist(),
                    "box": box.to_json(),
                    "sampled_lower": samp,
                    "interval": float(np.max(np.abs([il, iu]))),
                    "symbolic": sym,
                    "differential": float(np.max(np.abs([dl, du]))),
                    "lp": lp.upper,
                    "lp_lower": lp.lower,
                    "lp_tolerance": lp.tolerance,
                    "milp_upper": mi.upper,
                    "milp_lower": mi.lower,
                    "milp_status": mi.status,
                    "milp_delta_max": mi.delta_max,
                    "milp_tol_arg": tol,
                    "milp_tolerance": mi.tolerance,
                    "milp_message": mi.message,
                    "times": {
                        "interval": t_int,
                        "symbolic": t_sym,
                        "differential": t_diff,
                        "lp": t_lp,
                        "milp": t_mi,
                    },
                }
                rows.append(row)
                symtxt = f"{sym:10.3e}" if sym is not None else f"{'-':>10s}"
                print(
                    f"{name:13s} {r:6.3f} {k:2d} {samp:10.3e} {row['interval']:10.3e} {symtxt} "
                    f"{row['differential']:10.3e} {lp.upper:10.3e} {mi.upper:10.3e} {mi.status:12s} "
                    f"{t_diff:7.3f} {t_lp:6.2f} {t_mi:6.1f}",
                    flush=True,
                )

    # per-call time of differential_bounds on the 16-bit pair, 1 box and 1000 boxes
    r = args.radii[0]
    pts = rng.uniform(PROP1_LO, PROP1_HI, size=(1000, 5))
    blo = np.maximum(pts - r * dom_range, PROP1_LO)
    bhi = np.minimum(pts + r * dom_range, PROP1_HI)
    timing = {name: time_differential(orig, comp, blo, bhi, reps=50) for name, comp in pairs.items()}
    print("\ndifferential_bounds timing (ACAS Xu pair, boxes of radius", r, "x range):")
    for name, t in timing.items():
        print(f"  {name:13s} " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in t.items()))

    def gmean(key: str, name: str) -> float:
        vals = [row[key] / max(row["sampled_lower"], 1e-300) for row in rows if row["pair"] == name and row[key]]
        return float(np.exp(np.mean(np.log(vals)))) if vals else float("nan")

    print("\ngeometric mean of upper bound / sampled lower bound:")
    for name in pairs:
        print(
            f"  {name:13s} "
            + ", ".join(
                f"{m} {gmean(m, name):.3g}" for m in ("interval", "symbolic", "differential", "lp", "milp_upper")
            )
        )

    from importlib.metadata import version

    import cvxpy

    out = {
        "description": "upper bounds on max |Φ1 − Φ2|∞ over small boxes in ACAS Xu property-1 region",
        "rerun": "python benchmarks/tightness.py " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cvxpy": cvxpy.__version__,
            "highspy": version("highspy"),
            "commit": source_revision(),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "loadavg_at_end": os.getloadavg(),
        },
        "settings": {
            "points": args.points,
            "radii": args.radii,
            "milp_time_limit": args.milp_time,
            "milp_tol": args.milp_tol or "1e-3 x sampled, clipped to [1e-9, 1e-6]",
            "samples": args.samples,
        },
        "rows": rows,
        "differential_timing": timing,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tightness.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out / 'tightness.json'}")


if __name__ == "__main__":
    main()
