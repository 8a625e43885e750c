"""The --quick mode of benchmarks/mnist_repair.py on real MNIST: repair reduces the discrepancy, keeps accuracy.

Needs the MNIST IDX files (../shared/data/mnist or $EQUIVREPAIR_DATA) and the trained Φ1
(benchmarks/results/mnist_phi1.onnx); skipped otherwise. About a minute on a shared 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("EQUIVREPAIR_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def test_quick_reproduction_repairs(tmp_path):
    mnist = data_dir() / "mnist"
    if not (mnist / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {mnist}")
    if not (ROOT / "benchmarks" / "results" / "mnist_phi1.onnx").is_file():
        pytest.skip("benchmarks/results/mnist_phi1.onnx missing (run benchmarks/compression.py)")
    spec = importlib.util.spec_from_file_location("mnist_repair", ROOT / "benchmarks" / "mnist_repair.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--data", str(mnist), "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "mnist_repair_quick.json").read_text())
    rows = [r for r in res["rows"] if r["protocol"] == "paper"]
    comp = next(r for r in rows if r["method"] == "compressed Φ2")
    rep = next(r for r in rows if r["method"] == "repair (paper)")
    # the discrepancy shrinks on the repair boxes and on held-out boxes repair never saw
    assert rep["repair_after"] < rep["repair_before"]
    assert rep["held_mean"] < comp["held_mean"]
    # accuracy is not lowered, and the compression is kept
    assert rep["test_acc"] >= comp["test_acc"]
    assert rep["on_constraint"]
    assert (tmp_path / "mnist_repair_quick.md").is_file() and (tmp_path / "mnist_repair_quick_paper.png").is_file()
