"""``equivrepair check-certificate CERT [--orig ORIG --comp COMP]``: re-check an equivalence certificate.

Exit codes: 0 the certificate is valid, 1 it is rejected (the reasons are printed), 3 usage or
input error (unreadable certificate or network).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import positive

EXAMPLE = """examples:
  equivrepair verify orig.onnx comp.onnx --input-set box.json --certificate cert.json
  equivrepair check-certificate cert.json --orig orig.onnx --comp comp.onnx
  equivrepair check-certificate cert.json.gz            # networks from the paths recorded in it
  equivrepair check-certificate cert.json --orig orig.onnx --comp comp.onnx --lp-all --json report.json

What is checked: format and version, the body digest, the SHA-256 content hashes of both networks,
the input set (and --input-set, if given), the witness (replayed in float64 on both networks), the
consistency of the claim, that the proof's leaves tile the input box (bisection tree), that the
claim is >= every leaf bound, and that every leaf bound is re-established independently (interval and
differential bounds, then fresh triangle LPs with rigorous dual bounds, then ReLU phase splits, then
bisection of the leaf). A certificate without a proof is checked with the MILP instead.
exit codes: 0 valid, 1 rejected, 3 usage or input error"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-certificate",
        help="re-check an equivalence certificate against two networks",
        description="Re-check a certificate written by `verify --certificate`, independently of the run that wrote it.\n\n"
        + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cert", help="certificate file (.json or .json.gz)")
    p.add_argument("--orig", help="original network Φ1 (default: the file recorded in the certificate)")
    p.add_argument("--comp", help="compressed network Φ2 (default: the file recorded in the certificate)")
    p.add_argument("--input-set", metavar="SET", help="also require the certificate's input set to equal this one")
    nn = p.add_mutually_exclusive_group()
    nn.add_argument(
        "--nnet-normalized-inputs",
        dest="nnet_raw_inputs",
        action="store_false",
        default=None,
        help=".nnet networks read normalised inputs (default unless the certificate records otherwise)",
    )
    nn.add_argument(
        "--nnet-raw-inputs", dest="nnet_raw_inputs", action="store_true", help=".nnet networks read raw inputs"
    )
    p.add_argument(
        "--lp-all", action="store_true", help="re-bound every leaf with fresh LPs (skip the interval/differential pass)"
    )
    p.add_argument("--max-bisect", type=int, default=4, metavar="D", help="bisection depth allowed per leaf (4)")
    p.add_argument(
        "--max-phase-lps",
        type=int,
        default=64,
        metavar="N",
        help="LPs for ReLU phase splits per leaf and objective (64)",
    )
    p.add_argument("--timeout", type=positive("timeout"), help="give up (reject) after this many seconds")
    p.add_argument(
        "--fallback",
        choices=("milp", "lp", "none"),
        default="milp",
        help="how a certificate without a proof is re-checked (default milp)",
    )
    p.add_argument("--json", metavar="OUT", help="write the check report as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _pick_path(given: str | None, cert: dict, role: str, cert_path: Path) -> str:
    from ..errors import FormatError

    if given:
        return given
    rec = (cert.get("networks") or {}).get(role) or {}
    f = rec.get("file")
    if not f:
        raise FormatError(f"the certificate records no file for the {role} network: give --{role}")
    for cand in (Path(f), cert_path.parent / f, cert_path.parent / Path(f).name):
        if cand.is_file():
            return str(cand)
    raise FileNotFoundError(f"{role} network {f} (recorded in the certificate) not found: give --{role}")


def _load(path: str, raw: bool | None, recorded: dict | None):
    from ..nets.load import load_network

    if Path(path).suffix.lower() == ".nnet":
        if raw is None:
            opts = (recorded or {}).get("load_options") or {}
            raw = bool(opts.get("input_normalization", opts.get("nnet_raw_inputs", False)))
        return load_network(path, input_normalization=raw)
    return load_network(path)


def run(args: argparse.Namespace) -> int:
    from ..certify import CertificateError, check_certificate, read_certificate
    from ..errors import FormatError
    from ..spec.sets import load_input_set

    cert_path = Path(args.cert)
    try:
        cert = read_certificate(cert_path)
    except CertificateError as exc:
        raise FormatError(str(exc)) from None
    nets = cert.get("networks") or {}
    orig_path = _pick_path(args.orig, cert, "orig", cert_path)
    comp_path = _pick_path(args.comp, cert, "comp", cert_path)
    orig = _load(orig_path, args.nnet_raw_inputs, nets.get("orig"))
    comp = _load(comp_path, args.nnet_raw_inputs, nets.get("comp"))
    box = load_input_set(args.input_set, n_inputs=orig.n_inputs) if args.input_set else None
    progress = None
    if sys.stderr.isatty() and args.json != "-":

        def progress(s: dict) -> None:
            sys.stderr.write(f"\r  leaf {s['leaf']}/{s['of']} needing LPs, {s['lps']} LPs, {s['time']:.1f} s   ")
            sys.stderr.flush()

    rep = check_certificate(
        cert,
        orig,
        comp,
        input_set=box,
        cheap=not args.lp_all,
        max_phase_lps=args.max_phase_lps,
        max_bisect_depth=args.max_bisect,
        time_limit=args.timeout,
        fallback=args.fallback,
        progress=progress,
    )
    if progress is not None:
        sys.stderr.write("\r" + " " * 70 + "\r")
    claim = cert.get("claim") or {}
    payload = dict(rep.to_json(), certificate=str(cert_path), orig=orig_path, comp=comp_path, claim=claim.get("kind"))
    if args.json == "-":
        print(json.dumps(payload, indent=2))
    else:
        print(f"certificate {cert_path}  (claim: {claim.get('kind')}, created {cert.get('created_at')})")
        print(f"  Φ1 {orig_path}\n  Φ2 {comp_path}")
        if claim.get("kind") == "delta_bounds":
            print(f"  claim: max |Φ1 − Φ2|∞ in [{claim.get('delta_lower')}, {claim.get('delta_upper')}]")
        elif claim.get("epsilon") is not None:
            print(f"  claim: {claim.get('kind')} at ε = {claim.get('epsilon')}")
        print(rep.summary())
        t = rep.stats.get("time")
        if t is not None:
            print(f"  checked in {t:.2f} s")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0 if rep.ok else 1
