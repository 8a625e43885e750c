"""``equivrepair repair ORIG COMP --data DIR -o REPAIRED --report OUT``: verification-driven repair.

Alternates verify (any ``evaluate`` method) → targets → constrained retraining → re-verify, for each
``--alpha``, and writes the repaired network(s), a JSON report with every round, and plots.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = """\
examples:
  # the seed paper's preset: 10 training images, 2x2 centre pixels +-0.025, alpha 2
  equivrepair repair phi1.onnx phi2.onnx --data ../shared/data/mnist -o repaired.onnx --report rep.json

  # alpha sweep, L-inf balls of radius 2/255 around 100 training images, stop at tau = 1
  equivrepair repair phi1.onnx phi2.onnx --data ../shared/data/mnist --alpha 2 5 10 20 \\
      --boxes linf:2 --n-boxes 100 --rounds 5 --tau 1 -o rep.onnx --report rep.json

  # as in the authors' code: SGD, 3 single-image steps per box image per round, no other data
  equivrepair repair phi1.onnx phi2.onnx --data DIR --training paper -o rep.onnx --report rep.json

Data: --data is an MNIST-style IDX directory (pixels / 255 in [0, 1]; --input-scale pm1 gives
2 p/255 - 1) or an .npz with X, y (X_test, y_test). From the training split: the box images
(paper: the first image of each digit; linf/pixels: the first --n-boxes images), the labelled
images for the cross-entropy term (the first --labelled) and a validation set for the accuracy
logged every round (the last --val). The test split gives the final test accuracy and, with
--heldout N, boxes of the same kind around the first N test images whose delta_max is certified
before and after repair.

Constraint: the repaired network keeps COMP's quantization grid (same bits, scheme, granularity,
scales, zero points), pruning masks and widths. The grid is read from COMP.meta.json (written by
`equivrepair compress`) or --meta FILE, else inferred from the weights, or stated with
--bits/--scheme/--granularity.

Exit status: 0 when the target set (--tau, --min-accuracy) is met by every run or none was
stated, 2 when some run hit the round limit first, 3 on usage or input errors.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "repair",
        help="repair a compressed network towards the original (verify -> targets -> retrain, keeping the compression)",
        description="Repair COMP so that it agrees better with ORIG on input boxes: verify the discrepancy, build "
        "targets y2 + delta/alpha, retrain under the compression constraint, re-verify, until the target set is "
        "met or the round limit.\n\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("orig", help="original network Φ1 (.onnx, .nnet, .pt)")
    p.add_argument("comp", help="compressed network Φ2 (.onnx, .nnet, .pt)")
    p.add_argument("--data", required=True, metavar="DIR", help="IDX directory or .npz with X, y")
    p.add_argument("-o", "--output", required=True, metavar="REPAIRED", help="repaired network file (suffix: format)")
    p.add_argument("--report", required=True, metavar="OUT.json", help="JSON report; plots go next to it")
    g = p.add_argument_group("repair")
    g.add_argument("--alpha", type=float, nargs="+", default=[2.0], help="one or more alpha (default 2)")
    g.add_argument("--targets", choices=("paper", "witness", "distill"), default="paper")
    g.add_argument("--boxes", default="paper", help="paper | linf:R (R/255) | pixels:DELTA | FILE (.npz/.json)")
    g.add_argument("--n-boxes", type=int, default=None, help="images for the boxes (paper: 10, else 100)")
    g.add_argument("--rounds", type=int, default=10)
    g.add_argument("--samples", type=int, default=8, help="distill: samples per box")
    g.add_argument("--tau", type=float, default=None, help="target set: delta_max <= TAU on every repair box")
    g.add_argument("--min-accuracy", type=float, default=None, help="target set: validation accuracy floor")
    t = p.add_argument_group("training")
    t.add_argument(
        "--training",
        choices=("mixed", "paper"),
        default="mixed",
        help="mixed (default): Adam, MSE to the targets + cross-entropy on --labelled images; paper: SGD, "
        "batch 1, 3 epochs per round, box images only",
    )
    t.add_argument("--epochs", type=int, default=None, help="epochs per round (mixed: 1, paper: 3)")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default=None)
    t.add_argument("--lr", type=float, default=None, help="learning rate of float parameters")
    t.add_argument("--grid-lr", type=float, default=None, help="step of quantized weights, in grid steps")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--ce-weight", type=float, default=1.0)
    t.add_argument("--labelled", type=int, default=None, help="labelled training images for CE (mixed: 5000)")
    t.add_argument("--val", type=int, default=5000, help="validation images (end of the training split)")
    t.add_argument("--seed", type=int, default=0)
    v = p.add_argument_group("verification")
    v.add_argument("--method", default="differential", help="evaluate method per round (default differential)")
    v.add_argument("--time-limit", type=float, default=None, help="per box and round")
    v.add_argument("--no-fold", action="store_true", help="do not fold fixed inputs before verifying")
    v.add_argument("--heldout", type=int, default=0, metavar="N", help="certify delta_max on N test boxes")
    v.add_argument("--heldout-method", default="exact")
    v.add_argument("--heldout-time-limit", type=float, default=30.0)
    v.add_argument(
        "--heldout-rtol", type=float, default=1e-3, help="relative tolerance of a held-out delta_max called exact"
    )
    c = p.add_argument_group("compression constraint")
    c.add_argument("--meta", metavar="FILE", help="compression metadata JSON (default: COMP.meta.json if present)")
    c.add_argument("--bits", type=int, default=None)
    c.add_argument("--scheme", choices=("symmetric", "affine"), default=None)
    c.add_argument("--granularity", choices=("per-tensor", "per-channel"), default=None)
    c.add_argument("--masks", choices=("auto", "zeros", "none"), default="auto")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    d.add_argument("--input-scale", choices=("unit", "pm1"), default="unit", help="unit: p/255; pm1: 2p/255 - 1")
    p.add_argument("--log-dir", metavar="DIR", help="round logs and checkpoints (default: REPAIRED.repairlog)")
    p.add_argument("--resume", action="store_true", help="continue from the log in --log-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _output_path(out: Path, alpha: float, several: bool) -> Path:
    return out if not several else out.with_name(f"{out.stem}_a{alpha:g}{out.suffix}")


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..compress.report import accuracy
    from ..nets.load import load_network, save_network
    from ..repair.boxes import CENTER_2X2, boxes_from_spec, pixel_boxes
    from ..repair.driver import RepairConfig, RepairData, VerifyConfig, certify_boxes, load_compressed, sweep
    from ..repair.report import plot_runs, write_json
    from ..repair.targets import TargetSet
    from ..repair.train import Constraint, TrainConfig
    from .compress import load_data

    torch.set_num_threads(1)
    say = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    if args.rounds < 0 or any(a <= 0 for a in args.alpha):
        print("equivrepair repair: error: --rounds must be >= 0 and --alpha > 0", file=sys.stderr)
        return 3
    t_start = time.perf_counter()
    orig = load_network(args.orig)
    comp, meta_file = load_compressed(args.comp, args.meta)
    constraint = Constraint.of(comp, args.bits, args.scheme, args.granularity, args.masks)
    bad = constraint.violations(comp)
    if bad:
        print(f"equivrepair repair: error: {args.comp} is not on its stated grid: {'; '.join(bad)}", file=sys.stderr)
        return 3
    data = load_data(args.data, args.dataset)
    scale = (lambda X: 2.0 * X - 1.0) if args.input_scale == "pm1" else (lambda X: X)
    domain = (-1.0, 1.0) if args.input_scale == "pm1" else (0.0, 1.0)
    X, y = scale(data["X"]), data["y"]
    X_test, y_test = (scale(data["X_test"]), data["y_test"]) if "X_test" in data else (None, None)
    pix = (domain[1] - domain[0]) / 255.0
    boxes, box_idx = boxes_from_spec(args.boxes, X, y, args.n_boxes, domain, pix)
    for b in boxes:
        b.check_dim(orig.n_inputs)

    paper = args.training == "paper"
    n_lab = args.labelled if args.labelled is not None else (0 if paper else 5000)
    n_val = min(args.val, max(0, len(X) - n_lab))
    tc = TrainConfig(
        epochs=args.epochs if args.epochs is not None else (3 if paper else 1),
        lr=args.lr if args.lr is not None else (1e-2 if paper else 1e-3),
        grid_lr=args.grid_lr if args.grid_lr is not None else (0.05 if paper else 0.02),
        optimizer=args.optimizer or ("sgd" if paper else "adam"),
        momentum=0.0 if paper else 0.9,
        batch_size=args.batch_size if args.batch_size is not None else (1 if paper else 128),
        fit_batch=1 if paper and n_lab == 0 else 256,
        ce_weight=args.ce_weight,
        seed=args.seed,
    )
    rdata = RepairData(
        X[:n_lab] if n_lab else None,
        y[:n_lab] if n_lab else None,
        X[len(X) - n_val :] if n_val else None,
        y[len(X) - n_val :] if n_val else None,
    )
    cfg = RepairConfig(
        strategy=args.targets,
        rounds=args.rounds,
        n_samples=args.samples,
        seed=args.seed,
        train=tc,
        verify=VerifyConfig(args.method, args.time_limit, not args.no_fold),
        target_set=TargetSet(args.tau, args.min_accuracy),
    )
    out = Path(args.output)
    log_dir = Path(args.log_dir) if args.log_dir else out.with_name(out.name + ".repairlog")
    say(
        f"repair {args.comp} towards {args.orig}: {len(boxes)} boxes ({args.boxes}), strategy {args.targets}, "
        f"alpha {', '.join(f'{a:g}' for a in args.alpha)}, {args.rounds} rounds, training {args.training}"
    )
    say(f"  constraint: {json.dumps(constraint.describe())}")
    results = sweep(orig, comp, boxes, args.alpha, cfg, rdata, constraint, log_dir, args.resume, say)

    several = len(args.alpha) > 1
    runs: dict[str, Any] = {}
    held_boxes = None
    if args.heldout and X_test is not None:
        spec = args.boxes if args.boxes == "paper" or ":" in args.boxes else "paper"
        if spec.startswith("paper"):
            idx = np.arange(min(args.heldout, len(X_test)))
            r = float(spec.split(":", 1)[1]) if ":" in spec else 0.05
            held_boxes = pixel_boxes(X_test[idx], CENTER_2X2, r * (domain[1] - domain[0]) / 2.0, domain)
        else:
            held_boxes, _ = boxes_from_spec(spec, X_test, y_test, args.heldout, domain, pix)

    def held(net: Any) -> dict[str, Any] | None:
        if held_boxes is None:
            return None
        recs = certify_boxes(
            orig, net, held_boxes, args.heldout_method, args.heldout_time_limit, rtol=args.heldout_rtol
        )
        up = np.array([r["upper"] for r in recs])
        lo = np.array([r["lower"] for r in recs])
        return {
            "n": len(recs),
            "n_exact": int(sum(r["status"] == "exact" for r in recs)),
            "upper_mean": float(up.mean()),
            "upper_max": float(up.max()),
            "lower_mean": float(lo.mean()),
            "boxes": recs,
        }

    held_before = held(comp)
    if held_before:
        say(
            f"held-out before repair: δ_max mean {held_before['upper_mean']:.4g} (max {held_before['upper_max']:.4g}), "
            f"{held_before['n_exact']}/{held_before['n']} exact"
        )
    acc = {}
    if X_test is not None:
        acc = {"original": accuracy(orig, X_test, y_test), "compressed": accuracy(comp, X_test, y_test)}
    for a, res in results.items():
        path = _output_path(out, a, several)
        save_network(res.net, path)
        saved_bad = constraint.violations(load_network(path))
        if saved_bad:  # e.g. float32 export of a grid whose values are not float32 numbers
            print(
                f"equivrepair repair: warning: {path} (as written) is off the grid: {'; '.join(saved_bad[:3])}; "
                "the metadata file describes the float64 network",
                file=sys.stderr,
            )
        meta_path = Path(str(path) + ".meta.json")
        meta_path.write_text(
            json.dumps({"name": res.net.name, "sha256": res.net.content_hash, "metadata": res.net.info()["metadata"]})
        )
        rec = res.to_json()
        rec.update(output=str(path), metadata_file=str(meta_path))
        if X_test is not None:
            rec["test_accuracy"] = accuracy(res.net, X_test, y_test)
        rec["heldout"] = held(res.net)
        runs[f"{a:g}"] = rec
        _print_run(say, a, res, rec, acc)
    stem = Path(args.report).with_suffix("")
    plots = plot_runs(
        {f"α={k}": v["rounds"] for k, v in runs.items()},
        stem,
        f"repair of {Path(args.comp).name}: {args.targets} targets, boxes {args.boxes}",
        reference=accuracy(orig, rdata.X_val, rdata.y_val) if rdata.X_val is not None else None,
    )
    report = {
        "command": "repair",
        "original": {"path": args.orig, "sha256": orig.content_hash},
        "compressed": {"path": args.comp, "sha256": comp.content_hash, "metadata_file": meta_file},
        "constraint": constraint.describe(),
        "data": {
            "path": args.data,
            "input_scale": args.input_scale,
            "labelled": n_lab,
            "validation": n_val,
            "box_images": None if box_idx is None else [int(i) for i in box_idx],
        },
        "boxes": {"spec": args.boxes, "n": len(boxes)},
        "config": cfg.to_json(),
        "test_accuracy": acc,
        "heldout_before": held_before,
        "runs": runs,
        "plots": [str(p) for p in plots],
        "seconds": time.perf_counter() - t_start,
    }
    write_json(args.report, report)
    say(f"wrote {args.report} and {', '.join(str(p) for p in plots)}")
    stated = args.tau is not None or args.min_accuracy is not None
    return 0 if (not stated or all(r.met for r in results.values())) else 2


def _print_run(say: Any, a: float, res: Any, rec: dict[str, Any], acc: dict[str, float]) -> None:
    first, last = res.rounds[0], res.rounds[-1]
    line = (
        f"alpha {a:g}: {last['round']} rounds, {res.reason}; repair boxes δ upper max "
        f"{first['delta_upper_max']:.4g} -> {last['delta_upper_max']:.4g}, mean {first['delta_upper_mean']:.4g} -> "
        f"{last['delta_upper_mean']:.4g}"
    )
    if "test_accuracy" in rec:
        line += (
            f"; test accuracy {acc['compressed']:.4f} -> {rec['test_accuracy']:.4f} (original {acc['original']:.4f})"
        )
    say(line)
    if rec.get("heldout"):
        h = rec["heldout"]
        say(f"  held-out δ_max mean {h['upper_mean']:.4g} (max {h['upper_max']:.4g}), {h['n_exact']}/{h['n']} exact")
    say(f"  wrote {rec['output']}")
