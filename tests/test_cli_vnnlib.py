"""``equivrepair vnnlib`` and the VNN-COMP scripts (vnncomp_scripts/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from equivrepair.cli import main
from equivrepair.nets.load import load_network
from equivrepair.nets.onnx_io import onnx_runtime_forward
from equivrepair.spec.vnncomp import read_result_file
from equivrepair.spec.vnnlib import read_vnnlib

ROOT = Path(__file__).resolve().parents[1]


def test_sat_writes_a_checkable_counterexample(data, tmp_path, capsys):
    onnx, vnn = data / "acasxu" / "ACASXU_run2a_2_2_batch_2000.onnx", data / "acasxu" / "prop_2.vnnlib"
    res = tmp_path / "r.txt"
    assert main(["vnnlib", str(onnx), str(vnn), "--timeout", "60", "--result", str(res)]) == 1
    assert "sat" in capsys.readouterr().out
    r = read_result_file(res)
    assert r.status == "sat" and r.x.shape == (5,) and r.y.shape == (5,)
    prop = read_vnnlib(vnn)
    net = load_network(onnx)
    assert prop.is_counterexample(r.x, net.forward(r.x), input_tol=0.0)
    y32 = onnx_runtime_forward(onnx, r.x)
    assert prop.is_counterexample(r.x, y32, input_tol=0.0)
    np.testing.assert_allclose(r.y, y32, rtol=1e-6, atol=1e-7)


def test_unsat_and_json(data, tmp_path):
    onnx, vnn = data / "acasxu" / "ACASXU_run2a_1_9_batch_2000.onnx", data / "acasxu" / "prop_1.vnnlib"
    res, js = tmp_path / "r.txt", tmp_path / "r.json"
    assert main(["vnnlib", str(onnx), str(vnn), "--result", str(res), "--json", str(js)]) == 0
    assert read_result_file(res).status == "unsat"
    assert '"status": "unsat"' in js.read_text()


def test_input_errors_exit_3(data, tmp_path):
    onnx = data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"
    assert main(["vnnlib", str(tmp_path / "missing.onnx"), str(data / "acasxu" / "prop_1.vnnlib")]) == 3
    assert main(["vnnlib", str(onnx), str(data / "mnistfc" / "prop_0_0.03.vnnlib")]) == 3
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0 1.0)\n")
    assert main(["vnnlib", str(onnx), str(bad)]) == 3


def test_timeout_gives_timeout_result(data, tmp_path):
    onnx, vnn = data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx", data / "acasxu" / "prop_1.vnnlib"
    res = tmp_path / "r.txt"
    rc = main(["vnnlib", str(onnx), str(vnn), "--timeout", "0.001", "--result", str(res)])
    assert rc in (0, 2)  # a tiny budget may still be enough for the root bound
    assert read_result_file(res).status in ("timeout", "unsat")


def test_vnncomp_scripts(data, tmp_path):
    onnx, vnn = data / "acasxu" / "ACASXU_run2a_2_2_batch_2000.onnx", data / "acasxu" / "prop_2.vnnlib"
    scripts = ROOT / "vnncomp_scripts"
    env = dict(os.environ, EQUIVREPAIR_PYTHON=sys.executable)
    p = subprocess.run(
        ["bash", str(scripts / "prepare_instance.sh"), "v1", "acasxu", str(onnx), str(vnn)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    res = tmp_path / "out.txt"
    p = subprocess.run(
        ["bash", str(scripts / "run_instance.sh"), "v1", "acasxu", str(onnx), str(vnn), str(res), "60"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert read_result_file(res).status == "sat"
    p = subprocess.run(
        ["bash", str(scripts / "run_instance.sh"), "v2", "acasxu", str(onnx), str(vnn), str(res), "60"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode != 0
