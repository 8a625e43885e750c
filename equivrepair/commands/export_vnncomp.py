"""``equivrepair export-vnncomp``: a self-contained VNN-COMP benchmark folder of equivalence instances.

One pair::

    equivrepair export-vnncomp ORIG COMP --input-set SET --epsilon E [--epsilon E2 ...] -o DIR

or many (``--jobs JOBS.csv``, rows ``orig,comp,input_set,epsilon[,timeout]``; a header row is
allowed; paths relative to the CSV's folder; ``$EQUIVREPAIR_DATA`` expands to the shared data
folder, by default ``../shared/data`` next to the project). ``input_set`` is a VNN-LIB file (its
input region(s)), a JSON box, or ``CENTER.npy:RADIUS`` (an L-inf ball clipped to the networks'
input domain when one is known); ``epsilon`` may list several values separated by ``;``.

The folder::

    DIR/onnx/<pair>.onnx          merged network, output Φ1(x) − Φ2(x) (float32, checked with onnxruntime)
    DIR/onnx/<pair>_both.onnx     merged network, outputs [Φ1(x), Φ2(x)] (for top-1)
    DIR/vnnlib/<pair><r>_eps_<E>.vnnlib            ε-equivalence: SAT iff some |Δ_j| >= E
    DIR/vnnlib/<pair><r>_eps_<E>_y<j>_ge|le.vnnlib one-sided thresholds Δ_j >= E, Δ_j <= −E
    DIR/vnnlib/<pair><r>_top1.vnnlib               top-1 disagreement (on the _both network)
    DIR/instances.csv             onnx,vnnlib,timeout (relative paths, VNN-COMP style)
    DIR/manifest.json             sources, SHA-256 of every network, float32 export errors
    DIR/README.md                 how it was generated and how to regenerate it

``<r>`` is ``_r0``, ``_r1``, ... when the input set has several regions. ``--no-onnx`` writes everything
but the ONNX files (for shipping small benchmark folders; the command regenerates them).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

EXAMPLE = """\
examples:
  equivrepair export-vnncomp ../shared/data/acasxu/ACASXU_run2a_1_1_batch_2000.onnx \\
      ../shared/data/neurodiff/compressed16/ACASXU_run2a_1_1_batch_2000_16bit.nnet \\
      --input-set ../shared/data/acasxu/prop_3.vnnlib --epsilon 0.05 -o out/bench
  equivrepair export-vnncomp --jobs vnnlib_specs/acasxu_equiv/jobs.csv -o vnnlib_specs/acasxu_equiv
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-vnncomp",
        help="write a VNN-COMP benchmark folder (merged ONNX, VNN-LIB, instances.csv) for network pairs",
        description="Export equivalence instances of (original, compressed) pairs as a self-contained VNN-COMP "
        "benchmark: merged float32 ONNX networks, epsilon-equivalence, threshold and top-1 VNN-LIB properties, "
        "instances.csv and a README.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("orig", nargs="?", help="original network (.onnx, .nnet, .pt)")
    p.add_argument("comp", nargs="?", help="compressed network")
    p.add_argument("--input-set", metavar="SET", help="VNN-LIB file, JSON box, or CENTER.npy:RADIUS")
    p.add_argument("--epsilon", type=float, action="append", metavar="E", help="epsilon (repeatable)")
    p.add_argument("--jobs", metavar="JOBS.csv", help="many pairs: rows orig,comp,input_set,epsilon[,timeout]")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="timeout in instances.csv (300)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="benchmark folder to write")
    p.add_argument("--no-onnx", action="store_true", help="do not write the ONNX files (small folders to ship)")
    p.add_argument("--no-thresholds", action="store_true", help="skip the one-sided threshold properties")
    p.add_argument(
        "--nnet-raw-inputs",
        action="store_true",
        help=".nnet networks read raw inputs (default: normalised, the ACAS Xu ONNX units)",
    )
    p.add_argument("--json", metavar="OUT", help="write the manifest also here ('-' for stdout)")
    p.set_defaults(func=run)


class Job:
    def __init__(self, orig: str, comp: str, input_set: str, epsilons: list[float], timeout: float) -> None:
        self.orig, self.comp, self.input_set, self.epsilons, self.timeout = orig, comp, input_set, epsilons, timeout


def _data_default() -> str:
    env = os.environ.get("EQUIVREPAIR_DATA")
    if env:
        return env
    return str(Path(__file__).resolve().parents[2].parent / "shared" / "data")


def _expand(path: str, base: Path) -> str:
    s = path.strip()
    s = s.replace("${EQUIVREPAIR_DATA}", _data_default()).replace("$EQUIVREPAIR_DATA", _data_default())
    s = os.path.expanduser(os.path.expandvars(s))
    if not os.path.isabs(s):
        s = str((base / s).resolve())
    return s


def _positive(v: float, what: str) -> float:
    from ..spec.sets import InputSetError

    if not (math.isfinite(v) and v > 0):
        raise InputSetError(f"{what} must be a positive number, got {v!r}")
    return v


def read_jobs(path: str | Path, default_timeout: float) -> list[Job]:
    from ..errors import FormatError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"jobs file not found: {p}")
    jobs = []
    with open(p, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if len(row) not in (4, 5):
                raise FormatError(
                    f"{p}:{lineno}: expected orig,comp,input_set,epsilon[,timeout], got {len(row)} fields"
                )
            try:
                eps = [float(e) for e in row[3].split(";") if e.strip()]
            except ValueError:
                if lineno == 1:
                    continue  # header
                raise FormatError(f"{p}:{lineno}: epsilon {row[3]!r} is not a number") from None
            try:
                timeout = float(row[4]) if len(row) == 5 and row[4] else default_timeout
            except ValueError:
                raise FormatError(f"{p}:{lineno}: timeout {row[4]!r} is not a number") from None
            for e in eps:
                _positive(e, f"{p}:{lineno}: epsilon")
            _positive(timeout, f"{p}:{lineno}: timeout")
            base = p.parent
            inp = row[2]
            m = re.fullmatch(r"(.+\.npy):([0-9.eE+-]+)", inp)
            inp = f"{_expand(m.group(1), base)}:{m.group(2)}" if m else _expand(inp, base)
            jobs.append(Job(_expand(row[0], base), _expand(row[1], base), inp, eps, timeout))
    if not jobs:
        raise FormatError(f"{p}: no jobs")
    return jobs


def _regions(spec: str, n: int, domain: Any) -> list[tuple[str, Any]]:
    import numpy as np

    from ..errors import FormatError
    from ..spec.sets import linf_ball, load_input_set
    from ..spec.vnnlib import read_vnnlib

    m = re.fullmatch(r"(.+\.npy):([0-9.eE+-]+)", spec)
    if m:
        cp, r = Path(m.group(1)), float(m.group(2))
        if not cp.exists():
            raise FileNotFoundError(f"centre file not found: {cp}")
        try:
            center = np.asarray(np.load(cp, allow_pickle=False), dtype=np.float64).ravel()
        except (ValueError, OSError) as exc:
            raise FormatError(f"{cp}: not a readable .npy array ({exc})") from None
        _positive(r, "radius")
        return [("", linf_ball(center, r, domain, label=f"linf({cp.name}, r={r:g})"))]
    p = Path(spec)
    if p.suffix.lower() == ".vnnlib" or p.name.lower().endswith(".vnnlib.gz"):
        if not p.exists():
            raise FileNotFoundError(f"input set file not found: {p}")
        prop = read_vnnlib(p, n_inputs=n)
        if len(prop.cases) == 1:
            return [("", prop.cases[0].box)]
        return [(f"_r{k}", case.box) for k, case in enumerate(prop.cases)]
    return [("", load_input_set(p, n_inputs=n))]


def _load(path: str, raw_inputs: bool) -> Any:
    from ..nets.load import load_network

    if Path(path).suffix.lower() == ".nnet":
        return load_network(path, input_normalization=raw_inputs)
    return load_network(path)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def export(
    jobs: list[Job],
    out: Path,
    *,
    write_onnx: bool = True,
    thresholds: bool = True,
    raw_inputs: bool = False,
    command: str = "",
) -> dict[str, Any]:
    from .. import __version__
    from ..merge import merge
    from ..nets.onnx_io import save_onnx
    from ..spec.vnncomp import write_instances_csv
    from ..spec.vnnlib import format_number, write_epsilon_equivalence, write_threshold, write_top1

    # load and check everything before writing anything
    loaded = []
    names: dict[str, int] = {}
    for job in jobs:
        orig = _load(job.orig, raw_inputs)
        comp = _load(job.comp, raw_inputs)
        merged = merge(orig, comp, output="diff")
        regions = _regions(job.input_set, merged.n_inputs, merged.input_domain)
        stem = _safe(f"{Path(job.orig).stem}__{Path(job.comp).stem}")
        k = names.get(stem, 0)
        names[stem] = k + 1
        if k:
            stem = f"{stem}_{k}"
        loaded.append((job, orig, comp, merged, regions, stem))

    onnx_dir, vnn_dir = out / "onnx", out / "vnnlib"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    vnn_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, float]] = []
    manifest: dict[str, Any] = {
        "generator": f"equivrepair {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "pairs": [],
    }
    for job, orig, comp, merged, regions, stem in loaded:
        both = merge(orig, comp, output="both")
        diff_rel, both_rel = f"onnx/{stem}.onnx", f"onnx/{stem}_both.onnx"
        rec: dict[str, Any] = {
            "name": stem,
            "orig": {"path": job.orig, "sha256": orig.content_hash, "widths": orig.widths},
            "comp": {"path": job.comp, "sha256": comp.content_hash, "widths": comp.widths},
            "merged": {"onnx": diff_rel, "sha256": merged.content_hash, "widths": merged.widths},
            "merged_both": {"onnx": both_rel, "sha256": both.content_hash, "widths": both.widths},
            "input_set": job.input_set,
            "epsilons": job.epsilons,
            "timeout": job.timeout,
            "regions": [],
            "vnnlib": [],
        }
        if write_onnx:
            rep = save_onnx(merged, out / diff_rel)
            rec["merged"]["float32_max_abs_err"] = rep.get("max_abs_err")
            rep = save_onnx(both, out / both_rel)
            rec["merged_both"]["float32_max_abs_err"] = rep.get("max_abs_err")
        m = merged.n_outputs
        for suffix, box in regions:
            rec["regions"].append({"suffix": suffix, **box.to_json()})
            for eps in job.epsilons:
                tag = f"{stem}{suffix}_eps_{format_number(eps)}"
                f = write_epsilon_equivalence(vnn_dir / f"{tag}.vnnlib", box, m, eps)
                rows.append((diff_rel, f"vnnlib/{f.name}", job.timeout))
                rec["vnnlib"].append({"file": f"vnnlib/{f.name}", "kind": "epsilon", "epsilon": eps, "region": suffix})
                if thresholds:
                    for j in range(m):
                        for sense, nm in ((">=", "ge"), ("<=", "le")):
                            f = write_threshold(vnn_dir / f"{tag}_y{j}_{nm}.vnnlib", box, j, eps, sense, n_outputs=m)
                            rows.append((diff_rel, f"vnnlib/{f.name}", job.timeout))
                            rec["vnnlib"].append(
                                {
                                    "file": f"vnnlib/{f.name}",
                                    "kind": "threshold",
                                    "epsilon": eps,
                                    "output": j,
                                    "sense": sense,
                                    "region": suffix,
                                }
                            )
            f = write_top1(vnn_dir / f"{stem}{suffix}_top1.vnnlib", box, m)
            rows.append((both_rel, f"vnnlib/{f.name}", job.timeout))
            rec["vnnlib"].append({"file": f"vnnlib/{f.name}", "kind": "top1", "region": suffix})
        manifest["pairs"].append(rec)
    write_instances_csv(out / "instances.csv", rows)
    manifest["instances"] = len(rows)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _write_readme(out, manifest, write_onnx)
    return manifest


def _write_readme(out: Path, manifest: dict[str, Any], wrote_onnx: bool) -> None:
    pairs = manifest["pairs"]
    kinds: dict[str, int] = {}
    for p in pairs:
        for v in p["vnnlib"]:
            kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
    lines = [
        f"# {out.name}: equivalence benchmark (VNN-COMP format)",
        "",
        f"Generated by {manifest['generator']} on {manifest['created']} with:",
        "",
        "```",
        manifest["command"] or "equivrepair export-vnncomp ...",
        "```",
        "",
        f"{len(pairs)} network pair(s), {manifest['instances']} instances ({kinds.get('epsilon', 0)} epsilon-equivalence, "
        f"{kinds.get('threshold', 0)} threshold, {kinds.get('top1', 0)} top-1).",
        "",
        "Each pair (Φ1 = original, Φ2 = compressed) is merged into one feed-forward ReLU network:",
        "",
        "* `onnx/<pair>.onnx` outputs `Y_j = Φ1(x)_j − Φ2(x)_j` (float32, opset 13, IR 8, input `[1, n]`);",
        "* `onnx/<pair>_both.onnx` outputs `[Φ1(x), Φ2(x)]` (for the top-1 properties).",
        "",
        "Properties (SAT = counterexample):",
        "",
        "* `*_eps_<E>.vnnlib`: some `|Y_j| >= E`; UNSAT proves ε-equivalence `|Φ1 − Φ2|_j < E` on the whole input set;",
        "* `*_eps_<E>_y<j>_ge.vnnlib` / `_le`: `Y_j >= E` / `Y_j <= −E` (one side of one output);",
        "* `*_top1.vnnlib`: the top-1 classes of Φ1 and Φ2 can differ (ties count); UNSAT proves top-1 equivalence.",
        "",
        "`instances.csv` lists `onnx,vnnlib,timeout` relative to this folder. `manifest.json` records the source",
        "networks with their SHA-256 content hashes, the input regions, and the float32 round-off of each export.",
        "",
    ]
    if not wrote_onnx:
        lines += [
            "The ONNX files are not shipped (they are large); regenerate the whole folder, networks included, with",
            "the command above (without `--no-onnx`). The VNN-LIB files and instances.csv are identical on",
            "regeneration except for the creation time in manifest.json.",
            "",
        ]
    lines.append("| pair | original | compressed | input set | epsilons |")
    lines.append("|---|---|---|---|---|")
    for p in pairs:
        eps = ", ".join(f"{e:g}" for e in p["epsilons"])
        lines.append(
            f"| {p['name']} | {Path(p['orig']['path']).name} | {Path(p['comp']['path']).name} | "
            f"{Path(p['input_set'].split(':')[0]).name} | {eps} |"
        )
    (out / "README.md").write_text("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> int:
    from ..spec.sets import InputSetError

    _positive(args.timeout, "--timeout")
    if args.jobs:
        if args.orig or args.comp or args.input_set or args.epsilon:
            raise InputSetError("give either --jobs JOBS.csv or ORIG COMP --input-set SET --epsilon E, not both")
        jobs = read_jobs(args.jobs, args.timeout)
    else:
        if not (args.orig and args.comp and args.input_set and args.epsilon):
            raise InputSetError("export-vnncomp needs ORIG COMP --input-set SET --epsilon E (or --jobs JOBS.csv)")
        for e in args.epsilon:
            _positive(e, "--epsilon")
        inp = args.input_set
        m = re.fullmatch(r"(.+\.npy):([0-9.eE+-]+)", inp)
        inp = f"{Path(m.group(1)).resolve()}:{m.group(2)}" if m else str(Path(inp).resolve())
        jobs = [Job(str(Path(args.orig).resolve()), str(Path(args.comp).resolve()), inp, args.epsilon, args.timeout)]
    out = Path(args.output)
    command = _reconstruct(args)
    manifest = export(
        jobs,
        out,
        write_onnx=not args.no_onnx,
        thresholds=not args.no_thresholds,
        raw_inputs=args.nnet_raw_inputs,
        command=command,
    )
    if args.json == "-":
        json.dump(manifest, sys.stdout, indent=2)
        print()
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(manifest, indent=2))
    n_pairs = len(manifest["pairs"])
    print(
        f"wrote {out}: {n_pairs} pair(s), {manifest['instances']} instances "
        f"({'no ONNX files' if args.no_onnx else f'{2 * n_pairs} ONNX files'}), instances.csv, README.md"
    )
    return 0


def _reconstruct(args: argparse.Namespace) -> str:
    parts = ["equivrepair", "export-vnncomp"]
    if args.jobs:
        parts += ["--jobs", args.jobs]
    else:
        parts += [args.orig, args.comp, "--input-set", args.input_set]
        for e in args.epsilon or []:
            parts += ["--epsilon", repr(e)]
    if args.timeout != 300.0:
        parts += ["--timeout", repr(args.timeout)]
    if args.no_thresholds:
        parts.append("--no-thresholds")
    if args.nnet_raw_inputs:
        parts.append("--nnet-raw-inputs")
    parts += ["-o", args.output]  # --no-onnx left out: this is the command that regenerates everything
    return " ".join(shlex.quote(p) for p in parts)
