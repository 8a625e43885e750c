"""``equivrepair merge ORIG COMP -o merged.onnx``: the merged network Φ1 − Φ2 as ONNX, plus VNN-LIB.

With an input set it also writes, into ``--vnnlib-dir`` (default: the folder of ``-o``):

* ``<stem>_eps_<E>.vnnlib``: ε-equivalence for each ``--epsilon`` (SAT = some |Φ1 − Φ2|_j >= ε);
* ``<stem>_eps_<E>_y<j>_ge.vnnlib`` / ``_le``: one-sided thresholds Y_j >= ε and Y_j <= −ε per output;
* ``<stem>_top1.vnnlib``: top-1 disagreement, on ``<stem>_both.onnx`` (outputs [Φ1, Φ2]), written
  next to ``-o``;
* ``instances.csv``: VNN-COMP rows (onnx, vnnlib, timeout), paths relative to the VNN-LIB folder.

A VNN-LIB input set with several input regions (e.g. ACAS Xu property 6) gives one set of files
per region (``_r0``, ``_r1``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .common import add_input_set_args, add_network_args, input_regions, is_nnet, load_net, positive

EXAMPLE = """\
examples:
  equivrepair merge ../shared/data/acasxu/ACASXU_run2a_1_1_batch_2000.onnx \\
      ../shared/data/neurodiff/compressed16/ACASXU_run2a_1_1_batch_2000_16bit.nnet \\
      -o out/merged.onnx --input-set ../shared/data/acasxu/prop_1.vnnlib \\
      --vnnlib-dir out/vnnlib --epsilon 0.05 --epsilon 0.01 --timeout 300 --json out/merge.json

  equivrepair merge a.onnx b.onnx -o merged.onnx --center x0.npy --radius 0.01

.nnet input units: by default (--nnet-normalized-inputs) a .nnet network keeps its first layer as
written, so it reads *normalised* inputs (x - mean) / range: the units of the ACAS Xu ONNX networks
and of the VNN-COMP ACAS Xu properties, so an ONNX and a .nnet network can be merged. This differs
from load_network's default for .nnet (raw inputs). --nnet-raw-inputs folds the .nnet means and
ranges into the first layer instead (raw units); use it only when both networks are .nnet files and
the input set is in raw units.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge an original and a compressed network into one ONNX network computing their difference",
        description="Build the merged network whose output is Phi1(x) - Phi2(x) (ORIG minus COMP), export it "
        "as float32 ONNX (checked with onnxruntime), and optionally write VNN-LIB properties and a VNN-COMP "
        "instances.csv for an input set.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_args(p)
    p.add_argument("-o", "--output", required=True, metavar="MERGED.onnx", help="merged ONNX file to write")
    add_input_set_args(p, "input set (for the VNN-LIB files)")
    p.add_argument("--vnnlib-dir", metavar="DIR", help="where to write the VNN-LIB files (default: folder of -o)")
    p.add_argument(
        "--epsilon",
        type=positive("epsilon"),
        action="append",
        metavar="E",
        help="epsilon for the equivalence and threshold properties (repeatable; default 0.05)",
    )
    p.add_argument(
        "--timeout", type=positive("timeout"), default=300.0, metavar="S", help="timeout in instances.csv (300)"
    )
    p.add_argument("--json", metavar="OUT", help="write a machine-readable record ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..merge import merge
    from ..nets.onnx_io import save_onnx
    from ..spec.sets import InputSetError
    from ..spec.vnncomp import write_instances_csv
    from ..spec.vnnlib import format_number, write_epsilon_equivalence, write_threshold, write_top1

    if args.vnnlib_dir and not (args.input_set or args.center):
        raise InputSetError("--vnnlib-dir needs an input set: --input-set SET or --center FILE.npy --radius R")
    epsilons = args.epsilon or [0.05]

    if args.nnet_raw_inputs and is_nnet(args.orig) != is_nnet(args.comp):
        print(
            "equivrepair merge: warning: --nnet-raw-inputs with one .nnet and one other network: the .nnet one "
            "reads raw inputs, the other one whatever its file says (ACAS Xu ONNX: normalised inputs)",
            file=sys.stderr,
        )
    orig = load_net(args.orig, args.nnet_raw_inputs)
    comp = load_net(args.comp, args.nnet_raw_inputs)
    merged = merge(orig, comp, output="diff")
    regions = input_regions(args, merged)  # before writing anything: bad sets fail early

    out = Path(args.output)
    stem = out.name[: -len(".onnx")] if out.name.lower().endswith(".onnx") else out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    report = save_onnx(merged, out)
    record: dict[str, Any] = {
        "command": "merge",
        "orig": {"path": str(args.orig), **_net_record(orig)},
        "comp": {"path": str(args.comp), **_net_record(comp)},
        "merged": {**_net_record(merged), "onnx": report},
        "nnet_inputs": "raw" if args.nnet_raw_inputs else "normalized",
        "epsilons": epsilons,
        "timeout": args.timeout,
        "input_regions": [],
        "vnnlib": [],
        "instances_csv": None,
    }

    if regions:
        both = merge(orig, comp, output="both")
        both_path = out.with_name(f"{stem}_both.onnx")
        record["merged_both"] = {**_net_record(both), "onnx": save_onnx(both, both_path)}
        vdir = Path(args.vnnlib_dir) if args.vnnlib_dir else out.parent
        vdir.mkdir(parents=True, exist_ok=True)
        m = merged.n_outputs
        rows = []
        files = record["vnnlib"]

        def add(path: Path, onnx_path: Path, **what: Any) -> None:
            rows.append((os.path.relpath(onnx_path.resolve(), vdir.resolve()), path.name, args.timeout))
            files.append({"path": str(path), "onnx": str(onnx_path), **what})

        for suffix, box in regions:
            record["input_regions"].append({"suffix": suffix, **box.to_json()})
            for eps in epsilons:
                tag = f"{stem}{suffix}_eps_{format_number(eps)}"
                f = write_epsilon_equivalence(vdir / f"{tag}.vnnlib", box, m, eps)
                add(f, out, kind="epsilon", epsilon=eps, region=suffix)
                for j in range(m):
                    for sense, name in ((">=", "ge"), ("<=", "le")):
                        f = write_threshold(vdir / f"{tag}_y{j}_{name}.vnnlib", box, j, eps, sense, n_outputs=m)
                        add(f, out, kind="threshold", epsilon=eps, output=j, sense=sense, region=suffix)
            f = write_top1(vdir / f"{stem}{suffix}_top1.vnnlib", box, m)
            add(f, both_path, kind="top1", region=suffix)
        csv = write_instances_csv(vdir / "instances.csv", rows)
        record["instances_csv"] = str(csv)

    if args.json == "-":
        json.dump(record, sys.stdout, indent=2)
        print()
        return 0
    _print_summary(record)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(record, fh, indent=2)
    return 0


def _net_record(net: Any) -> dict[str, Any]:
    return {"name": net.name, "widths": net.widths, "sha256": net.content_hash, "n_relu": net.n_relu}


def _fmt_err(rep: dict[str, Any]) -> str:
    if rep.get("max_abs_err") is None:
        return "not checked"
    return f"max abs {rep['max_abs_err']:.3g}, max rel {rep['max_rel_err']:.3g} (float32 vs float64, {rep['n_samples']} samples)"


def _print_summary(r: dict[str, Any]) -> None:
    w = lambda d: "-".join(map(str, d["widths"]))  # noqa: E731
    print(f"original    {w(r['orig'])}  {r['orig']['path']}")
    print(f"compressed  {w(r['comp'])}  {r['comp']['path']}")
    print(f"merged      {w(r['merged'])}  (output y1 - y2)")
    print(f"wrote       {r['merged']['onnx']['path']}  ONNX error: {_fmt_err(r['merged']['onnx'])}")
    if "merged_both" in r:
        b = r["merged_both"]
        print(f"wrote       {b['onnx']['path']}  ({w(b)}, outputs [y1, y2]) ONNX error: {_fmt_err(b['onnx'])}")
    if r["nnet_inputs"] == "raw":
        print("note        .nnet networks read raw (unnormalised) inputs")
    if r["vnnlib"]:
        kinds: dict[str, int] = {}
        for f in r["vnnlib"]:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
        folder = Path(r["vnnlib"][0]["path"]).parent
        eps = ", ".join(f"{e:g}" for e in r["epsilons"])
        print(
            f"wrote       {len(r['vnnlib'])} VNN-LIB files in {folder} "
            f"({kinds.get('epsilon', 0)} epsilon-equivalence, {kinds.get('threshold', 0)} threshold, "
            f"{kinds.get('top1', 0)} top-1; epsilon {eps}; {len(r['input_regions'])} input region(s))"
        )
        print(f"wrote       {r['instances_csv']}  (timeout {r['timeout']:g} s)")
    else:
        print("note        no input set given: no VNN-LIB files written (use --input-set or --center/--radius)")
