"""``equivrepair export-vnncomp``: benchmark folders, and the shipped vnnlib_specs/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from equivrepair.cli import main
from equivrepair.merge import merge
from equivrepair.nets.ir import random_fnn
from equivrepair.nets.load import load_network
from equivrepair.nets.onnx_io import save_onnx
from equivrepair.reach.api import check
from equivrepair.reach.property import verify_vnnlib_files
from equivrepair.spec.vnncomp import read_instances_csv
from equivrepair.spec.vnnlib import read_vnnlib

ROOT = Path(__file__).resolve().parents[1]


def _pair(tmp_path):
    o = random_fnn([3, 8, 8, 2], seed=4, name="o")
    c = random_fnn([3, 8, 8, 2], seed=4, name="c", scale=1.0)
    c = c.with_layers([type(L)(np.round(L.W * 8) / 8, L.b, L.activation) for L in c.layers])
    save_onnx(o, tmp_path / "o.onnx")
    save_onnx(c, tmp_path / "c.onnx")
    (tmp_path / "box.json").write_text(json.dumps({"lower": [-1, -1, -1], "upper": [1, 1, 1]}))
    return load_network(tmp_path / "o.onnx"), load_network(tmp_path / "c.onnx")


def test_one_pair_folder(tmp_path):
    o, c = _pair(tmp_path)
    out = tmp_path / "bench"
    rc = main(
        [
            "export-vnncomp",
            str(tmp_path / "o.onnx"),
            str(tmp_path / "c.onnx"),
            "--input-set",
            str(tmp_path / "box.json"),
            "--epsilon",
            "0.05",
            "--epsilon",
            "0.2",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    rows = read_instances_csv(out / "instances.csv")
    assert len(rows) == 2 * (1 + 2 * 2) + 1
    assert (out / "README.md").read_text().count("export-vnncomp") >= 1
    man = json.loads((out / "manifest.json").read_text())
    assert man["pairs"][0]["merged"]["sha256"] == merge(o, c).content_hash
    for inst in rows:
        onnx, vnn, t = inst.resolve(out)
        assert onnx.exists() and vnn.exists() and t == 300
        net = load_network(onnx)
        read_vnnlib(vnn, n_inputs=net.n_inputs, n_outputs=net.n_outputs)
    # the exported ε-equivalence instance answers like check() on the original pair
    box = read_vnnlib(out / "vnnlib" / "o__c_eps_0.05.vnnlib").input_box()
    for eps in (0.05, 0.2):
        dec = check(o, c, box, eps)
        res = verify_vnnlib_files(out / "onnx" / "o__c.onnx", out / "vnnlib" / f"o__c_eps_{eps!r}.vnnlib", 60)
        assert {"equivalent": "unsat", "not_equivalent": "sat"}[dec.verdict] == res.status


def test_jobs_csv_with_header_and_no_onnx(tmp_path):
    _pair(tmp_path)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("orig,comp,input_set,epsilon,timeout\no.onnx,c.onnx,box.json,0.1;0.3,60\n")
    out = tmp_path / "b2"
    assert main(["export-vnncomp", "--jobs", str(jobs), "-o", str(out), "--no-onnx", "--no-thresholds"]) == 0
    rows = read_instances_csv(out / "instances.csv")
    assert len(rows) == 3 and all(r.timeout == 60 for r in rows)
    assert not (out / "onnx").exists() or not any((out / "onnx").iterdir())


def test_usage_errors(tmp_path):
    _pair(tmp_path)
    assert main(["export-vnncomp", str(tmp_path / "o.onnx"), "-o", str(tmp_path / "x")]) == 3
    assert (
        main(
            [
                "export-vnncomp",
                str(tmp_path / "o.onnx"),
                str(tmp_path / "c.onnx"),
                "--input-set",
                str(tmp_path / "box.json"),
                "--epsilon",
                "-1",
                "-o",
                str(tmp_path / "x"),
            ]
        )
        == 3
    )
    (tmp_path / "bad.csv").write_text("o.onnx,c.onnx\n")
    assert main(["export-vnncomp", "--jobs", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "x")]) == 3


def test_shipped_specs_are_consistent():
    for folder in ("acasxu_equiv", "mnist_equiv"):
        d = ROOT / "vnnlib_specs" / folder
        rows = read_instances_csv(d / "instances.csv")
        man = json.loads((d / "manifest.json").read_text())
        assert man["instances"] == len(rows) > 0
        for r in rows[:40]:
            assert (d / r.vnnlib).exists()
            assert r.onnx.startswith("onnx/")
