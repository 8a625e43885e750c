"""``equivrepair info NET``: widths, parameters, hash of a network file."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="describe a network file (.onnx, .nnet, .pt)",
        description="Describe a network: layer widths, parameters, ReLUs, content hash.\n\n"
        "example:\n  equivrepair info ../shared/data/acasxu/ACASXU_run2a_1_1_batch_2000.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("net", help="network file")
    p.add_argument("--json", metavar="OUT", help="write the description as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..nets.load import load_network

    net = load_network(args.net)
    if args.json == "-":
        print(json.dumps(net.info(), indent=2))
    else:
        print(net.summary())
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(net.info(), fh, indent=2)
    return 0
