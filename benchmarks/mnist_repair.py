"""Reproduction of the seed paper's MNIST repair experiment (Mo et al., arXiv 2402.11737), and a stronger one.

    python benchmarks/mnist_repair.py [--data DIR] [--out benchmarks/results] [--quick] [--threads 1]

Networks
  Φ1: 784-256-64-10 ReLU, ``benchmarks/results/mnist_phi1.onnx`` (trained on the full MNIST training
  set by ``benchmarks/compression.py``; retrained here with the same recipe if missing or < 97.8 %).
  Φ2 (a) ``int8-qat``: PyTorch eager-mode int8 QAT (fbgemm, 2 epochs), as in the paper.
  Φ2 (b) ``ptq2``: 2-bit affine per-channel post-training quantization (the "damaged" network of
  compression.md, -7.3 points).
  Φ2 (c) ``prune80``: global magnitude pruning to 80 % sparsity (-5.4 points), the other compression
  of compression.md that loses 5-8 points.

Protocols (every method of a protocol gets the same images, the same epoch budget and the same
compression constraint: quantized weights on Φ2's grid with Φ2's scales, masks fixed, same widths)
  paper   the authors' code: boxes = the first training image of each digit, 2x2 centre pixels
          +-0.05 in [-1, 1] units (+-0.025 here, pixels in [0, 1], clipped to [0, 1]); training =
          SGD, 3 single-image steps per box image per round, 10 rounds, nothing else.
          Baselines: fine-tuning on the 10 labels, distillation to Φ1's outputs on the 10 images
          (SGD, batch 1, 30 epochs = the same 300 steps).
  mixed   the same boxes, plus 5000 labelled training images: loss = MSE to the targets +
          cross-entropy on the 5000 (Adam, 1 epoch per round, 10 rounds). Baselines: fine-tuning
          (CE on the 5000, 10 epochs), distillation (CE on the 5000 + MSE to Φ1 on the 10 box
          images, 10 epochs). Reference (more teacher data than repair gets): distillation to Φ1
          on all 5000 images.
  linf    L-inf balls of radius 1/255 and 2/255 around the first 100 training images, with the same
          5000 labelled images (Adam, 2 epochs per round, 4 rounds; baselines 8 epochs).

Verification per round: ``evaluate(method="differential")`` per 4-pixel box (fixed pixels folded away
first), ``evaluate(method="symbolic")`` per L-inf ball (tighter and faster than differential there).
Held-out: boxes of the same kind around the first 100 *test* images (never seen by repair).
δ_max there is certified per box: differential bounds, and when their gap exceeds the exact method's
tolerance stated here, max(1e-6, 1e-3 δ) (0.1 % relative, looser than the exact method's default
1e-4), ``evaluate(method="exact", mode="max")`` with the same tolerance and a 5 s limit (4-pixel
boxes); for L-inf balls (all 784 pixels free) only the symbolic bounds are computed (status
"bounded", lower = witnessed value, upper = sound bound), and the MILP runs with a time limit on a
few boxes as a spot check. The target set 𝒪 of every repair run: δ upper bound <= 0.25 (``--tau``) on every
repair box and validation accuracy >= Φ1's - 0.5 points (validation = last 5000 training images).

Writes ``mnist_repair.json``, ``mnist_repair.md`` and ``mnist_repair_<protocol>.png`` to ``--out``
(``mnist_repair_quick.*`` with ``--quick``: Φ2 (b) only, α = 2, 5 rounds, 2000 labelled images,
20 held-out boxes, no L-inf protocol; it finishes in about a minute).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# one BLAS thread (set before numpy loads): the bounds are many small matrix products, which two
# threads slow down on a shared 2-core machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from equivrepair.provenance import source_revision  # noqa: E402

ALPHAS = (2.0, 5.0, 10.0, 20.0)
TAU = 0.25  # 0.5 let int8-qat repairs stop after 1-2 rounds (benchmarks/results/mnist_repair_tau05.md)
ROUNDS_LINF = 4
RTOL = 1e-3  # held-out δ_max is "exact" when upper − lower <= max(1e-6, RTOL · lower)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=None, help="MNIST IDX directory (default: equivrepair.data.mnist.default_data_dir())"
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tau", type=float, default=TAU, help="target set: δ upper bound on every repair box")
    ap.add_argument("--quick", action="store_true", help="CI smoke run (about a minute)")
    ap.add_argument("--heldout", type=int, default=None, help="held-out test boxes (default 100, quick 20)")
    ap.add_argument("--phi2", nargs="*", default=None, help="subset of int8-qat ptq2 prune80")
    ap.add_argument("--protocols", nargs="*", default=None, help="subset of paper mixed linf")
    ap.add_argument("--linf-phi2", nargs="*", default=["ptq2"], help="Φ2 variants run under the linf protocol")
    ap.add_argument("--milp-boxes", type=int, default=2, help="held-out L-inf boxes spot-checked with the MILP")
    ap.add_argument("--milp-time", type=float, default=30.0)
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md from an existing .json (no runs)")
    args = ap.parse_args(argv)
    if args.render_only:
        from equivrepair.repair.report import markdown_table

        prefix = "mnist_repair_quick" if args.quick else "mnist_repair"
        payload = json.loads((Path(args.out) / f"{prefix}.json").read_text())
        payload["verdicts"] = targets_summary(payload["rows"], payload["phi1"]["test_accuracy"])
        (Path(args.out) / f"{prefix}.json").write_text(json.dumps(payload, indent=1))
        (Path(args.out) / f"{prefix}.md").write_text(render_md(payload, markdown_table, payload.get("argv", "")))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    from equivrepair import compress as C
    from equivrepair.compress.torch_train import train_classifier
    from equivrepair.data.mnist import default_data_dir, load_mnist
    from equivrepair.nets.load import load_network
    from equivrepair.repair import boxes as B
    from equivrepair.repair.driver import RepairConfig, RepairData, VerifyConfig, certify_boxes, repair
    from equivrepair.repair.report import draw_accuracy, draw_discrepancy, jsonable, markdown_table
    from equivrepair.repair.targets import TargetSet
    from equivrepair.repair.train import Constraint, TrainConfig, predict_outputs, train_constrained

    log = functools.partial(print, flush=True)
    quick = args.quick
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = "mnist_repair_quick" if quick else "mnist_repair"
    n_held = args.heldout if args.heldout is not None else (20 if quick else 100)
    alphas = (2.0,) if quick else ALPHAS
    rounds_paper = 5 if quick else 10
    phi2_names = args.phi2 if args.phi2 is not None else (["ptq2"] if quick else ["int8-qat", "ptq2", "prune80"])
    protocols = (
        args.protocols if args.protocols is not None else (["paper", "mixed"] if quick else ["paper", "mixed", "linf"])
    )
    stage_times: dict[str, float] = {}
    t_all = time.perf_counter()

    # -- stage 0: data and Φ1 --------------------------------------------------------------------
    t0 = time.perf_counter()
    data_dir = Path(args.data) if args.data else default_data_dir()
    X, y = load_mnist(data_dir, "train")
    Xt, yt = load_mnist(data_dir, "test")
    D = slice(0, 2000 if quick else 5000)  # labelled images for the CE term
    V = slice(55000, 60000)  # validation (accuracy logged each round, target-set floor)
    phi1_path = ROOT / "benchmarks" / "results" / "mnist_phi1.onnx"
    phi1 = load_network(phi1_path) if phi1_path.is_file() else None
    phi1_source = str(phi1_path.relative_to(ROOT)) if phi1 is not None else None
    if phi1 is None or C.accuracy(phi1, Xt, yt) < 0.978:
        log("training Φ1 (784-256-64-10, 12 epochs, as benchmarks/compression.py)")
        phi1 = train_classifier([784, 256, 64, 10], X, y, epochs=12, lr=1e-3, batch_size=128, seed=0)
        phi1_source = "trained here (12 epochs, seed 0)"
    acc1 = C.accuracy(phi1, Xt, yt)
    acc1_val = C.accuracy(phi1, X[V], y[V])
    stage_times["data + Φ1"] = time.perf_counter() - t0
    log(f"Φ1 test accuracy {acc1:.4f} ({phi1_source}) [{stage_times['data + Φ1']:.1f}s]")

    # -- stage 1: the compressed networks ----------------------------------------------------------
    phi2: dict[str, Any] = {}
    phi2_info: dict[str, dict[str, Any]] = {}
    for name in phi2_names:
        t0 = time.perf_counter()
        if name == "int8-qat":
            res = C.int8_qat(phi1, X, y, epochs=2, lr=1e-4, seed=0, X_test=Xt, y_test=yt)
            net = res.net
            desc = f"torch.ao int8 QAT (fbgemm), 2 epochs; int8 torch model {res.accuracy_int8:.4f}"
        elif name == "ptq2":
            net = C.quantize(phi1, 2, "affine", "per-channel")
            desc = "PTQ 2-bit affine per-channel"
        elif name == "prune80":
            net = C.magnitude_prune(phi1, 0.8, "global")
            desc = "global magnitude pruning, 80 % sparsity (mask fixed)"
        else:
            raise SystemExit(f"unknown Φ2 {name!r}")
        phi2[name] = net
        stage_times[f"Φ2 {name}"] = time.perf_counter() - t0
        phi2_info[name] = {
            "description": desc,
            "test_accuracy": C.accuracy(net, Xt, yt),
            "sha256": net.content_hash,
            "constraint": Constraint.of(net).describe(),
        }
        log(f"Φ2 {name}: {desc}: test accuracy {phi2_info[name]['test_accuracy']:.4f}")

    # -- boxes ---------------------------------------------------------------------------------------
    paper_train, paper_idx = B.paper_boxes(X, y)
    held_idx = np.arange(n_held)
    delta4 = 0.025
    held_paper = B.pixel_boxes(Xt[held_idx], B.CENTER_2X2, delta4, (0.0, 1.0), [f"test#{i}" for i in held_idx])
    linf_train_idx = np.arange(100)
    radii = (1.0, 2.0)

    ts = TargetSet(delta_max=args.tau, min_accuracy=acc1_val - 0.005)
    # per-round verification: differential bounds on the (folded) 4-pixel boxes; symbolic (CROWN-style
    # bounds on the merged network) on L-inf balls, where it is both tighter and several times faster
    vconfs = {True: VerifyConfig("differential"), False: VerifyConfig("symbolic")}
    val = {"X_val": X[V], "y_val": y[V]}

    def certify(net: Any, boxes: list, exact: bool) -> dict[str, Any]:
        t = time.perf_counter()
        recs = certify_boxes(
            phi1,
            net,
            boxes,
            "exact" if exact else None,
            time_limit=5.0,
            first="differential" if exact else "symbolic",
            rtol=RTOL,
        )
        up = np.array([r["upper"] for r in recs])
        lo = np.array([r["lower"] for r in recs])
        return {
            "upper_mean": float(up.mean()),
            "upper_max": float(up.max()),
            "lower_mean": float(lo.mean()),
            "lower_max": float(lo.max()),
            "n_exact": int(sum(r["status"] == "exact" for r in recs)),
            "n": len(recs),
            "seconds": time.perf_counter() - t,
            "per_box": [{k: r[k] for k in ("lower", "upper", "status")} for r in recs],
        }

    def measure(net: Any, held: dict[str, Any], comp: Any, train_acc: bool = False) -> dict[str, Any]:
        return {
            "test_accuracy": C.accuracy(net, Xt, yt),
            "train_accuracy": C.accuracy(net, X, y) if train_acc and not quick else None,
            "heldout": held,
            "on_constraint": not Constraint.of(comp).violations(net),
        }

    rows: list[dict[str, Any]] = []
    runs_for_plot: dict[str, dict[str, dict[str, list]]] = {}
    all_runs: dict[str, Any] = {}

    def add_row(
        protocol: str,
        setting: str,
        pname: str,
        method: str,
        alpha: Any,
        net: Any,
        extra: dict,
        held_before: dict,
        exact: bool,
        held_boxes: list,
    ) -> dict:
        held = certify(net, held_boxes, exact)
        m = measure(net, held, phi2[pname], protocol == "paper")
        row = {
            "protocol": protocol,
            "setting": setting,
            "phi2": pname,
            "method": method,
            "alpha": alpha,
            "test_acc": m["test_accuracy"],
            "train_acc": m["train_accuracy"],
            "held_mean": held["upper_mean"],
            "held_max": held["upper_max"],
            "held_lower_mean": held["lower_mean"],
            "held_exact": f"{held['n_exact']}/{held['n']}",
            "held_reduction": 1.0 - held["upper_mean"] / held_before["upper_mean"] if held_before else None,
            "on_constraint": m["on_constraint"],
            **extra,
        }
        rows.append(row)
        log(
            f"  {method:<22} α={alpha!s:<5} test acc {row['test_acc']:.4f}  held-out δ mean {row['held_mean']:.4g} "
            f"(max {row['held_max']:.4g}, {row['held_exact']} exact)  [{extra.get('seconds', 0):.1f}s train+verify, "
            f"{held['seconds']:.1f}s certify]"
        )
        return row

    def protocol_runs(
        protocol: str,
        setting: str,
        pname: str,
        comp: Any,
        train_boxes: list,
        box_images: np.ndarray,
        held_boxes: list,
        exact: bool,
        tc_repair: TrainConfig,
        rounds: int,
        tc_base: TrainConfig,
        labelled: bool,
        strategies: list[tuple[str, float | None]],
    ) -> None:
        key = f"{protocol}:{setting}:{pname}"
        log(f"[{key}] {len(train_boxes)} repair boxes, {len(held_boxes)} held-out boxes")
        t_key = time.perf_counter()
        held_before = certify(comp, held_boxes, exact)
        m0 = measure(comp, held_before, comp, protocol == "paper")
        rows.append(
            {
                "protocol": protocol,
                "setting": setting,
                "phi2": pname,
                "method": "compressed Φ2",
                "alpha": None,
                "test_acc": m0["test_accuracy"],
                "train_acc": m0["train_accuracy"],
                "held_mean": held_before["upper_mean"],
                "held_max": held_before["upper_max"],
                "held_lower_mean": held_before["lower_mean"],
                "held_exact": f"{held_before['n_exact']}/{held_before['n']}",
                "held_reduction": 0.0,
                "on_constraint": True,
            }
        )
        log(
            f"  compressed Φ2: test acc {m0['test_accuracy']:.4f}, held-out δ mean {held_before['upper_mean']:.4g} ({held_before['n_exact']}/{held_before['n']} exact) [{held_before['seconds']:.1f}s]"
        )
        data = RepairData(X[D], y[D], **val) if labelled else RepairData(**val)
        initial = None
        plot_runs: dict[str, list] = {}
        for strategy, alpha in strategies:
            cfg = RepairConfig(
                strategy=strategy,
                alpha=alpha or 1.0,
                rounds=rounds,
                train=tc_repair,
                verify=vconfs[exact],
                target_set=ts,
            )
            t = time.perf_counter()
            res = repair(phi1, comp, train_boxes, cfg, data, initial_bounds=initial)
            secs = time.perf_counter() - t
            if initial is None:
                initial = res.initial_bounds
            first, last = res.rounds[0], res.rounds[-1]
            label = f"repair ({strategy})"
            add_row(
                protocol,
                setting,
                pname,
                label,
                alpha,
                res.net,
                {
                    "rounds": last["round"],
                    "met": res.met,
                    "seconds": secs,
                    "repair_before": first["delta_upper_max"],
                    "repair_after": last["delta_upper_max"],
                    "repair_mean_before": first["delta_upper_mean"],
                    "repair_mean_after": last["delta_upper_mean"],
                },
                held_before,
                exact,
                held_boxes,
            )
            plot_runs[f"{strategy} α={alpha:g}" if alpha else strategy] = res.rounds
            all_runs[f"{key}:{strategy}:{alpha}"] = res.to_json()
        # baselines: same images, same epochs, same constraint
        c = Constraint.of(comp)
        Xb = box_images
        base_epochs = tc_base.epochs
        for method in ("fine-tune (labels)", "distill (Φ1 outputs)") + (
            ("distill, all labelled (ref.)",) if labelled else ()
        ):
            t = time.perf_counter()
            if method.startswith("fine-tune"):
                if labelled:
                    tr = train_constrained(comp, None, None, X[D], y[D], config=tc_base, constraint=c)
                else:
                    tr = train_constrained(comp, None, None, Xb, yb_of(Xb), config=tc_base, constraint=c)
            elif method.startswith("distill (Φ1"):
                if labelled:
                    tr = train_constrained(
                        comp, Xb, predict_outputs(phi1, Xb), X[D], y[D], config=tc_base, constraint=c
                    )
                else:
                    tr = train_constrained(comp, Xb, predict_outputs(phi1, Xb), config=tc_base, constraint=c)
            else:
                tr = train_constrained(
                    comp, X[D], predict_outputs(phi1, X[D]), X[D], y[D], config=tc_base, constraint=c
                )
            secs = time.perf_counter() - t
            add_row(
                protocol,
                setting,
                pname,
                method,
                None,
                tr.net,
                {"rounds": f"{base_epochs} ep", "seconds": secs, "steps": tr.steps},
                held_before,
                exact,
                held_boxes,
            )
        runs_for_plot[key] = plot_runs
        stage_times[key] = time.perf_counter() - t_key

    box_labels = {}

    def yb_of(Xb: np.ndarray) -> np.ndarray:
        return box_labels[Xb.tobytes()]

    # -- protocol paper / mixed ------------------------------------------------------------------------
    paper_imgs = X[paper_idx]
    box_labels[paper_imgs.tobytes()] = y[paper_idx]
    tc_paper = TrainConfig(epochs=3, optimizer="sgd", lr=1e-2, grid_lr=0.05, momentum=0.0, batch_size=1, fit_batch=1)
    tc_paper_base = TrainConfig(**{**tc_paper.to_json(), "epochs": 3 * rounds_paper})
    tc_mixed = TrainConfig(epochs=1)
    tc_mixed_base = TrainConfig(epochs=rounds_paper)
    for pname in phi2_names:
        comp = phi2[pname]
        if "paper" in protocols:
            protocol_runs(
                "paper",
                "10 imgs, 2x2 px ±0.025",
                pname,
                comp,
                paper_train,
                paper_imgs,
                held_paper,
                True,
                tc_paper,
                rounds_paper,
                tc_paper_base,
                False,
                [("paper", a) for a in alphas],
            )
        if "mixed" in protocols:
            strategies = [("paper", a) for a in alphas] + ([] if quick else [("witness", 10.0), ("distill", None)])
            protocol_runs(
                "mixed",
                "10 imgs, 2x2 px ±0.025 + 5000 labelled" if not quick else "10 imgs + 2000 labelled",
                pname,
                comp,
                paper_train,
                paper_imgs,
                held_paper,
                True,
                tc_mixed,
                rounds_paper,
                tc_mixed_base,
                True,
                strategies,
            )
    # -- protocol linf -------------------------------------------------------------------------------
    if "linf" in protocols:
        imgs = X[linf_train_idx]
        box_labels[imgs.tobytes()] = y[linf_train_idx]
        tc_l = TrainConfig(epochs=2)
        tc_l_base = TrainConfig(epochs=2 * ROUNDS_LINF)
        for pname in args.linf_phi2:
            comp = phi2[pname]
            for r in radii:
                train_boxes = B.linf_boxes(imgs, r / 255.0, (0.0, 1.0))
                held = B.linf_boxes(Xt[held_idx], r / 255.0, (0.0, 1.0), [f"test#{i}" for i in held_idx])
                protocol_runs(
                    "linf",
                    f"100 imgs, L∞ {r:g}/255 + 5000 labelled",
                    pname,
                    comp,
                    train_boxes,
                    imgs,
                    held,
                    False,
                    tc_l,
                    ROUNDS_LINF,
                    tc_l_base,
                    True,
                    [("paper", a) for a in alphas],
                )

    # -- MILP spot check on held-out L-inf boxes ---------------------------------------------------------
    milp: list[dict[str, Any]] = []
    if "linf" in protocols and args.milp_boxes > 0:
        from equivrepair.reach.api import evaluate

        t0 = time.perf_counter()
        pname = args.linf_phi2[0]
        box = B.linf_boxes(Xt[: args.milp_boxes], 1.0 / 255.0, (0.0, 1.0))
        for b_i, b in enumerate(box):
            d = evaluate(phi1, phi2[pname], b, method="milp", time_limit=args.milp_time)
            milp.append(
                {
                    "phi2": pname,
                    "box": f"test#{b_i} L∞ 1/255",
                    "status": d.status,
                    "lower": d.lower,
                    "upper": d.upper,
                    "seconds": d.stats.get("time"),
                }
            )
            log(f"  MILP {pname} test#{b_i}: {d.status} [{d.lower:.5g}, {d.upper:.5g}]")
        stage_times["MILP spot check"] = time.perf_counter() - t0

    total = time.perf_counter() - t_all
    stage_times["total"] = total

    # -- plots ---------------------------------------------------------------------------------------------
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    for protocol in protocols:
        keys = [k for k in runs_for_plot if k.startswith(protocol + ":")]
        if not keys:
            continue
        fig, axes = plt.subplots(2, len(keys), figsize=(4.6 * len(keys), 7.0), squeeze=False)
        for j, k in enumerate(keys):
            draw_discrepancy(axes[0, j], runs_for_plot[k])
            axes[0, j].set_title(f"{k.split(':')[2]}: {k.split(':')[1]}", fontsize=8)
            draw_accuracy(axes[1, j], runs_for_plot[k], reference=acc1_val)
        fig.suptitle(
            f"protocol {protocol}: repair-box discrepancy (solid max, dashed mean) and validation accuracy per round",
            fontsize=9,
        )
        fig.tight_layout()
        p = out / f"{prefix}_{protocol}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        plots.append(p.name)

    # -- targets ----------------------------------------------------------------------------------------------
    verdicts = targets_summary(rows, acc1)

    # -- write --------------------------------------------------------------------------------------------------
    env = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "highspy": importlib.metadata.version("highspy"),
        "commit": source_revision(),
        "torch": torch.__version__,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    payload = {
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "env": env,
        "quick": quick,
        "phi1": {"source": phi1_source, "test_accuracy": acc1, "val_accuracy": acc1_val, "sha256": phi1.content_hash},
        "phi2": phi2_info,
        "target_set": ts.to_json(),
        "rows": rows,
        "milp_spot_check": milp,
        "verdicts": verdicts,
        "stage_seconds": stage_times,
        "runs": all_runs,
        "plots": plots,
    }
    (out / f"{prefix}.json").write_text(json.dumps(jsonable(payload), indent=1))
    (out / f"{prefix}.md").write_text(render_md(payload, markdown_table, payload["argv"]))
    log(f"wrote {out / (prefix + '.json')}, {out / (prefix + '.md')}, {', '.join(plots)} in {total:.0f}s")
    for v in verdicts:
        log(f"  {v}")
    return 0


def targets_summary(rows: list[dict[str, Any]], acc1: float) -> list[str]:
    """Plain statements, one per (protocol, setting, Φ2): which of the issue's targets were met."""
    out = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["protocol"], r["setting"], r["phi2"]), []).append(r)
    for (protocol, setting, pname), rs in groups.items():
        comp = next(r for r in rs if r["method"] == "compressed Φ2")
        reps = [r for r in rs if r["method"].startswith("repair (paper)")]
        if not reps:
            continue
        best = min(reps, key=lambda r: r["held_mean"])
        acc_ok = [r for r in reps if r["test_acc"] >= acc1 - 0.005]
        red_ok = [r for r in reps if r["held_reduction"] is not None and r["held_reduction"] >= 0.5]
        s = (
            f"{protocol} / {setting} / Φ2 {pname}: accuracy within 0.5 points of Φ1 ({acc1:.4f}): "
            f"{'met' if acc_ok else 'NOT met'} ({len(acc_ok)}/{len(reps)} α; best repaired {max(r['test_acc'] for r in reps):.4f}, "
            f"compressed {comp['test_acc']:.4f}); held-out δ reduced >= 50 %: {'met' if red_ok else 'NOT met'} "
            f"(best α={best['alpha']:g}: {comp['held_mean']:.4g} -> {best['held_mean']:.4g}, {100 * best['held_reduction']:.0f} %)"
        )
        shrink_rep = all(r["repair_after"] < r["repair_before"] for r in reps)
        shrink_held = all(r["held_mean"] < comp["held_mean"] for r in reps)
        s += (
            f"; discrepancy shrinks for every α: on the repair boxes {'yes' if shrink_rep else 'NO'}, "
            f"on the held-out boxes {'yes' if shrink_held else 'NO'}"
        )
        for b in (r for r in rs if r["method"].startswith(("fine-tune", "distill ("))):
            win = best["held_mean"] <= b["held_mean"]
            gap = 100 * (best["test_acc"] - b["test_acc"])
            acc_note = (
                ""
                if abs(gap) < 0.2
                else f", repair accuracy {'higher' if gap > 0 else 'LOWER'} by {abs(gap):.2f} points"
            )
            s += (
                f"; vs {b['method']}: {'repair as good or better' if win else 'BASELINE WINS'} on held-out δ "
                f"({best['held_mean']:.4g} at acc {best['test_acc']:.4f} vs {b['held_mean']:.4g} at acc "
                f"{b['test_acc']:.4f}{acc_note})"
            )
        s += _other_strategies(rs, comp, acc1)
        out.append(s)
    return out


def _other_strategies(rs: list[dict[str, Any]], comp: dict[str, Any], acc1: float) -> str:
    """The same three targets for the repair strategies other than ``paper`` (witness, distill)."""
    s = ""
    base = [r for r in rs if r["method"].startswith(("fine-tune", "distill ("))]
    for r in rs:
        if not r["method"].startswith("repair (") or r["method"].startswith("repair (paper)"):
            continue
        acc_ok = r["test_acc"] >= acc1 - 0.005
        red_ok = r["held_reduction"] is not None and r["held_reduction"] >= 0.5
        beats = all(r["held_mean"] <= b["held_mean"] for b in base)
        alpha = f" α={r['alpha']:g}" if r.get("alpha") else ""
        s += (
            f"; {r['method']}{alpha}: accuracy {r['test_acc']:.4f} ({'met' if acc_ok else 'NOT met'}), held-out δ "
            f"{comp['held_mean']:.4g} -> {r['held_mean']:.4g}, {100 * (r['held_reduction'] or 0):.0f} % "
            f"({'met' if red_ok else 'NOT met'}), {'as good or better than' if beats else 'NOT better than'} "
            f"every baseline ({'ALL THREE TARGETS MET' if acc_ok and red_ok and beats else 'not all targets'})"
        )
    return s


NOTES = [
    "* *Same data, same budget.* paper protocol: every method trains on the same 10 box images with the same "
    "300 single-image SGD steps (repair: 10 rounds x 3 epochs; baselines: 30 epochs). mixed / linf: every method "
    "has the cross-entropy term on the same 5000 labelled training images and the same number of epochs over "
    "them; repair adds MSE to its verification targets on the box images, distillation adds MSE to Φ1's outputs "
    "on the same box images (centres), fine-tuning adds nothing. The `distill, all labelled (ref.)` row "
    "distils Φ1 on all 5000 images, i.e. uses more teacher information than repair gets; it is a reference, "
    "not a same-data baseline. `time s` is training + per-round verification (held-out certification excluded).",
    "* *Constraint.* Every trained network is checked against Φ2's constraint after training (same grid with the "
    "same scales and zero points, same pruning mask, same widths); all rows passed (`on_constraint` in the JSON). "
    "The latent float weights are carried from round to round (one QAT run interrupted by verification); "
    "without that, α = 1 targets on the 2-bit grid oscillated (validation accuracy 0.72-0.88 per round, test accuracy 0.69, in a first run).",
    "* *Validation data* (accuracy logged every round, accuracy floor of 𝒪) are the last 5000 training images, "
    "which Φ1 was trained on; hence Φ1's validation accuracy 0.998 and a floor that the ptq2/prune80 networks "
    "never reach: those runs always went to the round limit. Test accuracy is measured only at the end.",
    "* *The paper measured accuracy on the training split*; `train acc` (paper protocol) is that number. Its "
    "98 % → 91 % → 98 % is not what we see: int8 QAT loses nothing here (0.9803 → 0.9801), and the 2-bit PTQ "
    "network that does lose 7 points comes back to 0.96-0.97, not 0.98, under every protocol.",
    "* *Held-out δ_max.* 4-pixel boxes: the differential bounds on the folded 4-input problem close the gap to "
    'max(1e-6, 1e-3·δ) on almost every box; the rest go to `evaluate(method="exact", mode="max")` (5 s limit); '
    "all were exact. L∞ balls (784 free pixels): symbolic (CROWN-style) upper bounds and witnessed lower bounds "
    "only, status `bounded` (mean gap in the `held δ mean` / `held low` columns); the MILP spot check did not "
    "finish within its limit either (and ran past it).",
    "* *Per-round verification on L∞ balls uses `symbolic`*, not `differential`: on these balls it is tighter "
    "(mean gap 0.05 vs 0.11 on ten balls) and, since `differential` now refines its witness by local search, "
    "about 4x faster (0.17 s vs 0.78 s per ball).",
]


def render_md(p: dict[str, Any], markdown_table: Any, argv: str) -> str:
    env = p["env"]
    lines = [
        "# Repair on MNIST: reproduction of Mo et al. (arXiv 2402.11737) and a stronger setting",
        "",
        f"Generated by `{('python benchmarks/mnist_repair.py ' + argv).strip()}` on {env['machine']}, python "
        f"{env['python']}, numpy {env['numpy']}, torch {env['torch']} ({env['threads']} torch thread, 1 BLAS thread, "
        f"{env['cpus']} CPUs shared with other jobs; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in env.get('load_average_at_end', []))}). Total wall time "
        f"{p['stage_seconds']['total'] / 60:.1f} min; stage times at the end.",
        "",
        f"Φ1: 784-256-64-10 ReLU, {p['phi1']['source']}, test accuracy {p['phi1']['test_accuracy']:.4f} "
        f"(validation {p['phi1']['val_accuracy']:.4f}).",
        "",
    ]
    for name, info in p["phi2"].items():
        lines.append(f"* Φ2 `{name}`: {info['description']}, test accuracy {info['test_accuracy']:.4f}.")
    lines += [
        "",
        f"Target set 𝒪 of every repair run: δ upper bound ≤ {p['target_set']['delta_max']} on every repair box and "
        f"validation accuracy ≥ {p['target_set']['min_accuracy']:.4f}. `rounds` is the number of rounds run (≤ the limit; fewer when 𝒪 was met).",
        "",
        "Columns: test/train accuracy on the full MNIST test/training split (float64 forward of the network as verified); "
        "`held δ mean`/`max`: mean/max over the held-out boxes (around test images repair never saw) of the certified upper "
        "bound on δ_max = max|Φ1 − Φ2|∞; `exact`: boxes where δ_max is exact to max(1e-6, 1e-3·δ) (the rest are "
        "sound upper bounds with witnessed lower bounds, `held low` = mean witnessed value); `Δ held`: reduction of `held δ "
        "mean` against the compressed network; `repair δ`: max over the repair boxes of the per-round upper bound (differential on 4-pixel boxes, symbolic on L∞ balls), before → after.",
        "",
    ]
    cols = [
        ("method", "method"),
        ("alpha", "α"),
        ("test_acc", "test acc"),
        ("train_acc", "train acc"),
        ("held_mean", "held δ mean"),
        ("held_max", "held δ max"),
        ("held_lower_mean", "held low"),
        ("held_exact", "exact"),
        ("held_reduction", "Δ held"),
        ("repair_change", "repair δ"),
        ("rounds", "rounds"),
        ("seconds", "time s"),
    ]
    fmt = {
        "test_acc": ".4f",
        "train_acc": ".4f",
        "held_mean": ".3f",
        "held_max": ".3f",
        "held_lower_mean": ".3f",
        "held_reduction": ".0%",
        "seconds": ".1f",
        "alpha": "g",
    }
    groups: dict[tuple, list] = {}
    for r in p["rows"]:
        groups.setdefault((r["protocol"], r["setting"], r["phi2"]), []).append(r)
    for (protocol, setting, pname), rs in groups.items():
        for r in rs:
            if "repair_before" in r:
                r["repair_change"] = f"{r['repair_before']:.3g} → {r['repair_after']:.3g}"
        lines += [f"## {protocol}: {setting}, Φ2 `{pname}`", "", markdown_table(rs, cols, fmt), ""]
    if p["milp_spot_check"]:
        lines += ["## MILP spot check (held-out L∞ 1/255 boxes, compressed Φ2)", ""]
        for m in p["milp_spot_check"]:
            lines.append(
                f"* {m['phi2']} {m['box']}: {m['status']}, δ_max in [{m['lower']:.6g}, {m['upper']:.6g}] ({m['seconds']:.0f} s)"
            )
        lines.append("")
    lines += ["## Targets", ""] + [f"* {v}" for v in p["verdicts"]] + ["", "## Notes", ""] + NOTES
    lines += ["", "## Stage times (wall clock, s)", ""]
    lines += [
        f"| {k} | {v:.1f} |" if i else f"| stage | seconds |\n|---|---:|\n| {k} | {v:.1f} |"
        for i, (k, v) in enumerate(p["stage_seconds"].items())
    ]
    lines += ["", "Plots: " + ", ".join(f"`{x}`" for x in p["plots"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
