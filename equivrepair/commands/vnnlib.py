"""``equivrepair vnnlib NET PROP.vnnlib [--timeout S] [--result FILE]``: decide any VNN-LIB property on one network.

Our engine (:mod:`equivrepair.reach.property`) on any feed-forward ReLU network (ONNX, .nnet,
torch) and any VNN-LIB property, not only merged networks. ``--result`` writes the VNN-COMP result
file: ``unsat``, ``sat`` followed by the counterexample ``((X_0 v) ... (Y_0 v) ...)``, ``timeout``
or ``unknown``. Exit codes: 0 unsat (the property holds), 1 sat (counterexample), 2 timeout or
unknown, 3 usage or input error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import positive

EXAMPLE = """\
examples:
  equivrepair vnnlib ../shared/data/acasxu/ACASXU_run2a_1_1_batch_2000.onnx ../shared/data/acasxu/prop_1.vnnlib \\
      --timeout 60 --result out/result.txt
  equivrepair vnnlib merged.onnx merged_eps_0.05.vnnlib --json -
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vnnlib",
        help="decide a VNN-LIB property on one network (our engine; VNN-COMP result file)",
        description="Decide whether some input in the property's input region(s) reaches its unsafe output set: "
        "sat (with a counterexample checked in float64 and with onnxruntime), unsat (proved), timeout or unknown.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("network", help="network: .onnx, .nnet, .pt")
    p.add_argument("property", help="VNN-LIB property (.vnnlib or .vnnlib.gz)")
    p.add_argument(
        "--timeout", type=positive("timeout"), default=None, metavar="S", help="time limit in seconds (default: none)"
    )
    p.add_argument("--result", metavar="FILE", help="write the VNN-COMP result file here")
    p.add_argument("--json", metavar="OUT", help="write a machine-readable record ('-' for stdout)")
    p.add_argument("--seed", type=int, default=0, help="seed of the counterexample search (0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import EXIT_NOT_EQUIVALENT, EXIT_OK, EXIT_UNKNOWN
    from ..reach.property import verify_vnnlib_files
    from ..spec.vnncomp import write_result_file

    if args.timeout is not None and not args.timeout > 0:
        from ..spec.sets import InputSetError

        raise InputSetError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not Path(args.network).exists():
        raise FileNotFoundError(f"network file not found: {args.network}")
    res = verify_vnnlib_files(args.network, args.property, args.timeout, seed=args.seed)
    if args.result:
        Path(args.result).parent.mkdir(parents=True, exist_ok=True)
        if res.status == "sat":
            write_result_file(args.result, "sat", res.x, res.y)
        else:
            write_result_file(args.result, res.status if res.status in ("unsat", "timeout") else "unknown")
    record = {
        "command": "vnnlib",
        "network": str(args.network),
        "property": str(args.property),
        "timeout": args.timeout,
        **res.to_json(),
    }
    if args.json == "-":
        json.dump(record, sys.stdout, indent=2)
        print()
    else:
        print(f"{res.status}  ({res.time:.3f} s; {res.message})")
        if res.status == "sat":
            xs = ", ".join(f"{v:.6g}" for v in res.x[:8]) + (" ..." if res.x.size > 8 else "")
            ys = ", ".join(f"{v:.6g}" for v in res.y[:10]) + (" ..." if res.y.size > 10 else "")
            print(f"  counterexample x = [{xs}]")
            print(f"  output         y = [{ys}]")
        st = res.stats
        print(
            f"  engine {st.get('engine')}, boxes bounded {st.get('boxes_bounded', 0)}, "
            f"branches {st.get('branches', 0)}, MILPs {st.get('milps', 0)}"
        )
        if args.result:
            print(f"  wrote {args.result}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(record, indent=2))
    if res.status == "unsat":
        return EXIT_OK
    if res.status == "sat":
        return EXIT_NOT_EQUIVALENT
    return EXIT_UNKNOWN
