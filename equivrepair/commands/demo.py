"""``equivrepair demo``: the main job end to end on embedded data (no download)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on a bundled ACAS Xu network and its 4-bit quantized copy",
        description="Merge, exact δ_max with a witness, certificate, repair (keeping the quantization "
        "grid), re-verification, summary table and plots, on a bundled ACAS Xu network.\n\n"
        "example:\n  equivrepair demo -o equivrepair-demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--out", default="equivrepair-demo", help="output folder (default: equivrepair-demo)")
    p.add_argument("--bits", type=int, default=4, help="quantization bits of the compressed copy (default 4)")
    p.add_argument("--rounds", type=int, default=3, help="repair rounds (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.out, bits=args.bits, rounds=args.rounds)
    return 0
