"""``equivrepair verify ORIG COMP --input-set SET``: bounds on Φ1 − Φ2, or the ε-equivalence decision."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..cli import EXIT_NOT_EQUIVALENT, EXIT_OK, EXIT_UNKNOWN
from .common import (
    add_input_set_args,
    add_network_args,
    load_pair,
    non_negative,
    positive,
    positive_int,
    resolve_input_set,
)

EXAMPLE = """examples:
  equivrepair verify orig.onnx comp.onnx --input-set prop_1.vnnlib
  equivrepair verify orig.onnx comp.nnet --input-set box.json --method differential --json out.json
  equivrepair verify orig.onnx comp.onnx --center x0.npy --radius 0.01 --epsilon 0.05 --timeout 60
  equivrepair verify mnist.onnx int8.onnx --center x0.npy --radius 0.004 --activation-rounding model
exit codes: 0 done (with --epsilon: equivalent), 1 not equivalent, 2 unknown/timeout, 3 input error"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="bound or decide the discrepancy of two networks over an input set",
        description="Compute bounds on Φ1(x) − Φ2(x) over an input set (exact δ_max by default), "
        "or decide ε-equivalence with --epsilon.\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_args(p)
    add_input_set_args(p)
    from ..reach.api import METHODS

    p.add_argument("--method", default="exact", choices=METHODS, help="verification method (default: exact)")
    p.add_argument("--epsilon", type=float, help="decide whether |Φ1 − Φ2|_j < ε everywhere on the set")
    p.add_argument("--outputs", help="comma-separated output indices to consider (default: all)")
    p.add_argument("--timeout", type=positive("timeout"), help="time limit in seconds (returns the bounds so far)")
    p.add_argument("--atol", type=non_negative("atol"), default=None, help="absolute tolerance of exact methods")
    p.add_argument("--rtol", type=non_negative("rtol"), default=None, help="relative tolerance of exact methods")
    p.add_argument(
        "--workers",
        type=positive_int("workers"),
        default=1,
        help="worker processes for exact δ_max (the branch-and-bound frontier, or on more than 16 free inputs "
        "the MILPs of the objectives); an --epsilon decision runs in one process",
    )
    p.add_argument(
        "--tight-intervals",
        action="store_true",
        help="exact: also resolve every per-output interval end to 1%% of δ_max (slower); by default "
        "only δ_max is resolved and the intervals are sound but may be loose",
    )
    p.add_argument("--json", metavar="OUT", help="write the result as JSON ('-' for stdout)")
    p.add_argument("--certificate", metavar="OUT", help="write an equivalence certificate (JSON)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--activation-rounding",
        choices=("ignore", "model"),
        default="ignore",
        help="COMP from `compress --method int8-qat` stands for an int8 model that rounds every activation; "
        "'model' bounds that int8 model itself (rounding as a bounded perturbation; grids from COMP.meta.json "
        "or --meta), 'ignore' (default) verifies the FNN in the file",
    )
    p.add_argument("--meta", metavar="FILE", help="COMP's compression metadata (default: COMP.meta.json if present)")
    p.set_defaults(func=run)


def _progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None

    def show(s: dict) -> None:
        sys.stderr.write(
            f"\r  {s['time']:7.1f} s  open {s['open']:7d}  branches {s['branches']:8d}  "
            f"lower {s['lower']:.6g}  upper {s['upper']:.6g}   "
        )
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from ..nets.load import read_metadata_sidecar, with_metadata
    from ..reach.api import check, evaluate

    orig, comp = load_pair(args)
    box = resolve_input_set(args, orig)
    if args.activation_rounding == "model":
        md, meta_file = read_metadata_sidecar(args.comp, args.meta)
        return _run_int8(args, orig, with_metadata(comp, md), box, meta_file)
    try:  # only for a hint: a broken sidecar does not stop plain verification
        md, meta_file = read_metadata_sidecar(args.comp, args.meta)
    except (ValueError, OSError):
        md, meta_file = {}, None
    quant = md.get("quantization")
    if isinstance(quant, dict) and quant.get("activation_rounding") == "ignored":
        print(
            f"note: {meta_file} describes an int8 model whose activation rounding this FNN ignores; "
            "--activation-rounding model bounds the int8 model itself"
        )
    outputs, opts = _engine_options(args)
    progress = _progress(args.quiet)
    print(f"Φ1 {orig.name} ({'-'.join(map(str, orig.widths))})  vs  Φ2 {comp.name} ({'-'.join(map(str, comp.widths))})")
    print(f"input set: {box.label or 'box'} in {box.dim} dimensions ({int((box.upper > box.lower).sum())} free)")
    if args.epsilon is not None:
        if args.workers > 1:
            print(f"note: --workers {args.workers} is for δ_max runs; the ε decision runs in one process")
        dec = check(
            orig,
            comp,
            box,
            args.epsilon,
            method=args.method,
            time_limit=args.timeout,
            outputs=outputs,
            progress=progress,
            **opts,
        )
        if progress:
            sys.stderr.write("\n")
        print(f"ε-equivalence (ε = {args.epsilon:g}): {dec.verdict.upper()}")
        print(f"  max |Φ1 − Φ2|∞ in [{dec.lower:.9g}, {dec.upper:.9g}]   time {dec.stats.get('time', 0):.2f} s")
        if dec.counterexample is not None:
            x = np.asarray(dec.counterexample)
            shown = np.array2string(x[:8], precision=6, separator=", ") + (" ..." if x.size > 8 else "")
            print(f"  counterexample (|Δ| = {dec.counterexample_value:.9g}): {shown} (all of it in --json)")
        payload = dec.to_json()
        code = {"equivalent": EXIT_OK, "not_equivalent": EXIT_NOT_EQUIVALENT}.get(dec.verdict, EXIT_UNKNOWN)
        result = dec
    else:
        res = evaluate(
            orig,
            comp,
            box,
            method=args.method,
            time_limit=args.timeout,
            outputs=outputs,
            workers=args.workers,
            progress=progress,
            **opts,
        )
        if progress:
            sys.stderr.write("\n")
        print(res.summary())
        payload = res.to_json()
        from ..report import plot_data

        payload.update(plot_data(res, orig, comp, box))
        code = EXIT_OK if res.status == "exact" or (res.status == "bounded" and args.timeout is None) else EXIT_UNKNOWN
        if res.status == "error":
            code = EXIT_UNKNOWN
        result = res
    payload["orig"] = {"path": args.orig, "sha256": orig.content_hash}
    payload["comp"] = {"path": args.comp, "sha256": comp.content_hash}
    payload["input_set"] = box.to_json()
    _write_json(args.json, payload)
    if args.certificate:
        from ..certify import CertificateError, make_certificate, write_certificate

        try:
            cert = make_certificate(
                orig,
                comp,
                box,
                result,
                epsilon=args.epsilon,
                outputs=outputs,
                time_limit=args.timeout if args.timeout else "auto",
                orig_path=args.orig,
                comp_path=args.comp,
                load_options={"input_normalization": args.nnet_raw_inputs},
                input_set_path=args.input_set,
            )
        except CertificateError as exc:
            print(f"equivrepair verify: certificate not written: {exc}", file=sys.stderr)
            return EXIT_UNKNOWN
        write_certificate(args.certificate, cert)
        print(f"certificate written to {args.certificate}")
    return code


def _engine_options(args: argparse.Namespace) -> tuple[list[int] | None, dict]:
    """The ``--outputs`` list and the tolerance options given on the command line."""
    outputs = [int(v) for v in args.outputs.split(",")] if args.outputs else None
    return outputs, {k: v for k, v in (("atol", args.atol), ("rtol", args.rtol)) if v is not None}


def _write_json(where: str | None, payload: dict) -> None:
    if where == "-":
        print(json.dumps(payload, indent=2))
    elif where:
        with open(where, "w") as fh:
            json.dump(payload, fh, indent=2)


def _run_int8(args: argparse.Namespace, orig, comp, box, meta_file: str | None) -> int:
    """``--activation-rounding model``: bounds for the int8 model behind COMP (see reach.rounding)."""
    from ..reach.rounding import evaluate_int8

    if args.certificate:
        print("equivrepair verify: certificates do not cover --activation-rounding model yet", file=sys.stderr)
        return 3
    outputs, opts = _engine_options(args)
    print(f"Φ1 {orig.name}  vs  the int8 model behind {comp.name} (grids from {meta_file or 'its metadata'})")
    r = evaluate_int8(
        orig,
        comp,
        box,
        method=args.method,
        time_limit=args.timeout,
        outputs=outputs,
        progress=_progress(args.quiet),
        **opts,
    )
    print(
        f"rounding model: {r.stats['model_inputs']} inputs (x and one error per rounding), "
        f"widths {'-'.join(map(str, r.stats['model_widths']))}; engine status {r.model.status}"
    )
    print(
        f"max |Φ1 − int8|∞ in [{r.lower:.9g}, {r.upper:.9g}]   (lower: the int8 arithmetic at a witness; "
        f"upper: sound)   time {r.stats['time']:.2f} s"
    )
    payload = r.to_json()
    code = EXIT_OK
    if args.epsilon is not None:
        verdict = "equivalent" if r.upper < args.epsilon else "not_equivalent" if r.lower >= args.epsilon else "unknown"
        print(f"ε-equivalence of the int8 model (ε = {args.epsilon:g}): {verdict.upper()}")
        payload["verdict"] = verdict
        code = {"equivalent": EXIT_OK, "not_equivalent": EXIT_NOT_EQUIVALENT}.get(verdict, EXIT_UNKNOWN)
    elif r.model.status != "exact":
        code = EXIT_UNKNOWN
    payload.update(
        orig={"path": args.orig, "sha256": orig.content_hash},
        input_set=box.to_json(),
        comp={"path": args.comp, "sha256": comp.content_hash, "metadata_file": meta_file},
    )
    _write_json(args.json, payload)
    return code
