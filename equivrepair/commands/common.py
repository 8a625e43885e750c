"""Arguments and loading shared by the commands that take two networks and an input set."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any


def _number(kind: str, ok: Any, requirement: str, convert: Any = float, noun: str = "a number"):
    """argparse type: a finite ``convert(text)`` for which ``ok(v)`` holds."""

    def parse(text: str) -> Any:
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be {noun}, got {text!r}") from None
        if not (math.isfinite(v) and ok(v)):
            raise argparse.ArgumentTypeError(f"{kind} must be {requirement}, got {text!r}")
        return v

    return parse


def positive(kind: str):
    """argparse type: a finite number > 0."""
    return _number(kind, lambda v: v > 0, "a positive number")


def non_negative(kind: str):
    """argparse type: a finite number >= 0."""
    return _number(kind, lambda v: v >= 0, "a number >= 0")


def positive_int(kind: str):
    """argparse type: an integer >= 1."""
    return _number(kind, lambda v: v >= 1, "at least 1", int, "an integer")


def add_network_args(p: argparse.ArgumentParser) -> None:
    """ORIG, COMP and the .nnet input-units switch."""
    p.add_argument("orig", help="original (reference) network Φ1: .onnx, .nnet, .pt")
    p.add_argument("comp", help="compressed network Φ2: .onnx, .nnet, .pt")
    nn = p.add_mutually_exclusive_group()
    nn.add_argument(
        "--nnet-normalized-inputs",
        dest="nnet_raw_inputs",
        action="store_false",
        help=".nnet networks read normalised inputs (default; the units of the ACAS Xu ONNX networks)",
    )
    nn.add_argument(
        "--nnet-raw-inputs",
        dest="nnet_raw_inputs",
        action="store_true",
        help=".nnet networks read raw inputs (their means/ranges are folded into the first layer)",
    )
    p.set_defaults(nnet_raw_inputs=False)


def add_input_set_args(p: argparse.ArgumentParser, title: str = "input set") -> None:
    src = p.add_argument_group(title)
    src.add_argument("--input-set", metavar="SET", help="a VNN-LIB file (its input constraints) or a JSON box")
    src.add_argument("--center", metavar="FILE.npy", help="centre of an L-inf ball (with --radius)")
    src.add_argument(
        "--radius",
        type=positive("radius"),
        metavar="R",
        help="radius of the L-inf ball around --center, clipped to the network's input domain if known",
    )


def load_pair(args: argparse.Namespace) -> tuple[Any, Any]:
    return load_net(args.orig, args.nnet_raw_inputs), load_net(args.comp, args.nnet_raw_inputs)


def resolve_input_set(args: argparse.Namespace, net: Any) -> Any:
    """The one input set the arguments describe (an error if there is none or several regions)."""
    from ..spec.sets import InputSetError

    regions = input_regions(args, net)
    if not regions:
        raise InputSetError("no input set: give --input-set SET or --center FILE.npy --radius R")
    if len(regions) > 1:
        raise InputSetError(
            f"{args.input_set} has {len(regions)} disjoint input regions; verify each region separately "
            "(equivrepair merge --vnnlib-dir writes one file per region)"
        )
    return regions[0][1]


def is_nnet(path: str) -> bool:
    return Path(path).suffix.lower() == ".nnet"


def load_net(path: str, raw_inputs: bool) -> Any:
    """Load a network; a .nnet one reads normalised inputs unless ``raw_inputs``.

    ``load_nnet(input_normalization=True)`` folds the .nnet means/ranges into the first layer (raw
    inputs); ``False`` keeps the first layer as written (normalised inputs, as the ACAS Xu ONNX files).
    """
    from ..nets.load import load_network

    if is_nnet(path):
        return load_network(path, input_normalization=raw_inputs)
    return load_network(path)


def input_regions(args: argparse.Namespace, merged: Any) -> list[tuple[str, Any]]:
    """``[(suffix, Box)]``: one region, or one per input region of a disjunctive VNN-LIB file."""
    import numpy as np

    from ..errors import FormatError
    from ..spec.sets import InputSetError, linf_ball, load_input_set
    from ..spec.vnnlib import read_vnnlib

    n = merged.n_inputs
    if args.input_set and (args.center or args.radius is not None):
        raise InputSetError("give either --input-set or --center/--radius, not both")
    if args.input_set:
        p = Path(args.input_set)
        if p.suffix.lower() == ".vnnlib" or p.name.lower().endswith(".vnnlib.gz"):
            if not p.exists():
                raise FileNotFoundError(f"input set file not found: {p}")
            prop = read_vnnlib(p, n_inputs=n)
            if len(prop.cases) == 1:
                return [("", prop.cases[0].box)]
            return [(f"_r{k}", case.box) for k, case in enumerate(prop.cases)]
        return [("", load_input_set(p, n_inputs=n))]
    if args.center or args.radius is not None:
        if not (args.center and args.radius is not None):
            raise InputSetError("--center and --radius go together")
        cp = Path(args.center)
        if not cp.exists():
            raise FileNotFoundError(f"centre file not found: {cp}")
        try:
            center = np.load(cp, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FormatError(f"{cp}: not a readable .npy array ({exc})") from None
        center = np.asarray(center, dtype=np.float64).ravel()
        if center.size != n:
            raise InputSetError(f"{cp}: centre has {center.size} values but the networks have {n} inputs")
        box = linf_ball(center, args.radius, merged.input_domain, label=f"linf({cp.name}, r={args.radius:g})")
        return [("", box)]
    return []
