"""Command line: parse, call the Python API, print a summary or write JSON. No logic of its own.

Each sub-command lives in ``equivrepair/commands/<name>.py`` with ``add_parser(subparsers)``
and ``run(args) -> int``; exit codes: 0 success/equivalent, 1 not equivalent, 2 unknown or
timeout, 3 usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

COMMANDS = [
    "info",
    "merge",
    "verify",
    "vnnlib",
    "compress",
    "repair",
    "export_vnncomp",
    "check_certificate",
    "campaign",
    "report",
    "demo",
]

EXIT_OK, EXIT_NOT_EQUIVALENT, EXIT_UNKNOWN, EXIT_USAGE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="equivrepair",
        description="Exact equivalence evaluation and repair of compressed ReLU networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"equivrepair {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; our contract says 3
        return EXIT_USAGE if exc.code not in (0, None) else 0
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    from .errors import USER_ERRORS

    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"equivrepair {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
