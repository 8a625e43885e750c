"""``equivrepair compress ORIG --method M [options] -o COMP``: quantize, prune or lump a network."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("quantize", "prune", "neuron-prune", "lump", "qat", "int8-qat", "curvature-prune")

EXAMPLES = """\
examples:
  equivrepair compress mnist.onnx --method quantize --bits 3 -o mnist-q3.onnx
  equivrepair compress mnist.onnx --method quantize --bits 4 --scheme affine --granularity per-channel --biases -o q.onnx
  equivrepair compress mnist.onnx --method prune --sparsity 0.9 --scope global -o p90.onnx
  equivrepair compress mnist.onnx --method neuron-prune --keep 0.25 --criterion mean-activation --data DIR -o n.onnx
  equivrepair compress wide.onnx --method lump -o lumped.onnx
  equivrepair compress mnist.onnx --method qat --bits 2 --data ../shared/data/mnist --epochs 2 -o qat2.onnx
  equivrepair compress mnist.onnx --method int8-qat --data ../shared/data/mnist -o int8.onnx

--data is an MNIST/Fashion-MNIST IDX directory (train split for training, test split for the
reported accuracy) or an .npz file with arrays X, y (and optionally X_test, y_test).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress",
        help="compress a network (quantize, prune, neuron-prune, lump, QAT)",
        description="Compress a network and print its size report (parameters, non-zeros, widths, bits, bytes).\n\n"
        + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("net", help="original network file (.onnx, .nnet, .pt)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("-o", "--output", required=True, help="where to write the compressed network")
    q = p.add_argument_group("quantize / qat")
    q.add_argument("--bits", type=int, default=8, help="bit width 2..16 (default 8)")
    q.add_argument("--scheme", choices=("symmetric", "affine"), default="symmetric")
    q.add_argument("--granularity", choices=("per-tensor", "per-channel"), default="per-tensor")
    q.add_argument("--biases", action="store_true", help="quantize biases too (default: weights only)")
    pr = p.add_argument_group("prune")
    pr.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights set to zero")
    pr.add_argument("--scope", choices=("layer", "global"), default="layer")
    npg = p.add_argument_group("neuron-prune / curvature-prune")
    npg.add_argument("--keep", type=float, default=0.5, help="fraction of each hidden layer's neurons kept")
    npg.add_argument(
        "--criterion",
        choices=("l1-in", "l1-out", "l1-in-out", "mean-activation", "random"),
        default="l1-in",
    )
    npg.add_argument(
        "--compensate", action="store_true", help="fold removed neurons' mean activation into the next bias"
    )
    npg.add_argument("--gamma", type=float, default=1e-3, help="curvature penalty weight (curvature-prune)")
    lp = p.add_argument_group("lump")
    lp.add_argument("--tolerance", type=float, default=None, help="approximate lumping tolerance (default: exact)")
    lp.add_argument(
        "--input-box", metavar="JSON", help='box {"lower": [...], "upper": [...]} to drop provably dead neurons'
    )
    tr = p.add_argument_group("training (qat, int8-qat, curvature-prune, --fine-tune-epochs)")
    tr.add_argument("--data", metavar="DIR", help="IDX directory or .npz with X, y")
    tr.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    tr.add_argument("--epochs", type=int, default=2)
    tr.add_argument("--lr", type=float, default=None, help="learning rate (method-specific default)")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--fine-tune-epochs", type=int, default=0, help="retrain after prune/neuron-prune (masks kept)")
    tr.add_argument("--train-limit", type=int, default=None, help="use only the first N training examples")
    tr.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write the size reports (and accuracies) as JSON ('-' for stdout)")
    p.add_argument(
        "--no-meta",
        action="store_true",
        help="do not write OUTPUT.meta.json (the compression metadata: grids and scales, masks, kept neurons, "
        "activation scales; network files do not carry it)",
    )
    p.set_defaults(func=run)


def load_data(path: str, dataset: str = "mnist", limit: int | None = None) -> dict[str, np.ndarray]:
    """Training (and, when present, test) arrays from an IDX directory or an .npz file."""
    from ..errors import FormatError

    pth = Path(path)
    if not pth.exists():
        raise FileNotFoundError(f"--data {path}: no such file or directory")
    out: dict[str, np.ndarray] = {}
    if pth.is_file():
        try:
            with np.load(pth) as z:
                if "X" not in z or "y" not in z:
                    raise FormatError(f"--data {path}: .npz must hold arrays X and y (has {sorted(z.files)})")
                out = {k: np.asarray(z[k]) for k in z.files if k in ("X", "y", "X_test", "y_test")}
        except (OSError, ValueError) as exc:
            raise FormatError(f"--data {path}: cannot read as .npz ({exc})") from exc
        out["X"] = out["X"].reshape(len(out["X"]), -1).astype(np.float64)
        if "X_test" in out:
            out["X_test"] = out["X_test"].reshape(len(out["X_test"]), -1).astype(np.float64)
    else:
        from ..data.mnist import load_mnist

        out["X"], out["y"] = load_mnist(pth, "train", kind=dataset)
        try:
            out["X_test"], out["y_test"] = load_mnist(pth, "test", kind=dataset)
        except FormatError:
            pass
    if limit is not None:
        out["X"], out["y"] = out["X"][:limit], out["y"][:limit]
    return out


def _box(path: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    if path is None:
        return None
    from ..errors import FormatError

    try:
        with open(path) as fh:
            d = json.load(fh)
        return np.asarray(d["lower"], dtype=np.float64), np.asarray(d["upper"], dtype=np.float64)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise FormatError(f"--input-box {path}: expected JSON {{'lower': [...], 'upper': [...]}} ({exc})") from exc


def compress_network(
    net: Any, args: argparse.Namespace, data: dict[str, np.ndarray] | None
) -> tuple[Any, dict[str, Any]]:
    """Apply ``args.method`` to ``net``; returns the compressed FNN and extra facts for the report."""
    from .. import compress as C

    m = args.method
    extra: dict[str, Any] = {}
    needs_data = m in ("qat", "int8-qat", "curvature-prune") or args.fine_tune_epochs > 0
    needs_data = needs_data or (m == "neuron-prune" and (args.criterion == "mean-activation" or args.compensate))
    if needs_data and data is None:
        raise ValueError(f"--method {m} with these options needs --data")
    if m == "quantize":
        out = C.quantize(net, args.bits, args.scheme, args.granularity, args.biases)
    elif m == "prune":
        out = C.magnitude_prune(net, args.sparsity, args.scope)
    elif m == "neuron-prune":
        X = data["X"] if data is not None else None
        out = C.neuron_prune(net, args.keep, args.criterion, X=X, compensate=args.compensate, seed=args.seed)
    elif m == "lump":
        out = C.lump(net, tolerance=args.tolerance, input_box=_box(args.input_box))
    elif m == "qat":
        out = C.qat_train(
            net,
            data["X"],
            data["y"],
            bits=args.bits,
            scheme=args.scheme,
            granularity=args.granularity,
            biases=args.biases,
            epochs=args.epochs,
            lr=args.lr or 3e-4,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    elif m == "int8-qat":
        res = C.int8_qat(
            net,
            data["X"],
            data["y"],
            epochs=args.epochs,
            lr=args.lr or 1e-4,
            batch_size=args.batch_size,
            seed=args.seed,
            X_test=data.get("X_test"),
            y_test=data.get("y_test"),
        )
        out = res.net
        extra.update(accuracy_fnn=res.accuracy_fnn, accuracy_int8=res.accuracy_int8, argmax_agreement=res.agreement)
    elif m == "curvature-prune":
        res = C.curvature_prune(
            net,
            data["X"],
            data["y"],
            keep=args.keep,
            gamma=args.gamma,
            epochs=args.epochs,
            lr=args.lr or 3e-4,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        out = res.net
    else:  # pragma: no cover - argparse restricts choices
        raise ValueError(f"unknown method {m}")
    if args.fine_tune_epochs > 0 and m in ("prune", "neuron-prune"):
        out = C.fine_tune(out, data["X"], data["y"], epochs=args.fine_tune_epochs, lr=args.lr or 3e-4, seed=args.seed)
    if data is not None and "X_test" in data and "y_test" in data:
        extra.setdefault("accuracy_original", C.accuracy(net, data["X_test"], data["y_test"]))
        extra.setdefault("accuracy_fnn", C.accuracy(out, data["X_test"], data["y_test"]))
    return out, extra


def run(args: argparse.Namespace) -> int:
    from ..compress.report import size_report
    from ..nets.load import load_network, save_network

    try:
        net = load_network(args.net)
        data = load_data(args.data, args.dataset, args.train_limit) if args.data else None
        comp, extra = compress_network(net, args, data)
    except ValueError as exc:
        from ..errors import USER_ERRORS

        if isinstance(exc, USER_ERRORS):
            raise
        print(f"equivrepair compress: error: {exc}", file=sys.stderr)
        return 3
    save_network(comp, args.output)
    meta_path = None
    if not args.no_meta:
        meta_path = str(args.output) + ".meta.json"
        with open(meta_path, "w") as fh:
            json.dump({"name": comp.name, "sha256": comp.content_hash, "metadata": comp.info()["metadata"]}, fh)
    before, after = size_report(net), size_report(comp)
    result = {
        "method": args.method,
        "input": str(args.net),
        "output": str(args.output),
        "original": before.to_dict(),
        "compressed": after.to_dict(),
        "original_sha256": net.content_hash,
        "compressed_sha256": comp.content_hash,
        "metadata_file": meta_path,
        **{k: v for k, v in extra.items() if v is not None},
    }
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(before.format())
    print(after.format())
    for k, v in extra.items():
        if v is not None:
            print(f"  {k:<17} {v:.4f}")
    print(f"wrote {args.output}" + (f" (metadata: {meta_path})" if meta_path else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0
