"""The demo runs end to end on the embedded data and writes its artefacts (slow: a few minutes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from equivrepair.demo import asset


def test_assets_are_bundled():
    assert asset("ACASXU_run2a_1_1_batch_2000.onnx").is_file()
    assert asset("prop_1.vnnlib").is_file()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    from equivrepair.demo import run_demo
    from equivrepair.nets.onnx_io import load_onnx, onnx_runtime_forward

    res = run_demo(tmp_path, rounds=2, progress=None)
    summary = json.loads((tmp_path / "summary.json").read_text())
    before, after = summary["rows"]
    assert before["status"] == "exact" and before["lower"] <= before["upper"]
    assert after["upper"] >= after["lower"] >= 0
    for key in ("merged_onnx", "certificate", "repaired_onnx", "plot"):
        assert (tmp_path / res.files[key].split("/")[-1]).exists() or res.files[key]
    orig = load_onnx(asset("ACASXU_run2a_1_1_batch_2000.onnx"))
    x = np.array(before["witness"])
    merged = onnx_runtime_forward(res.files["merged_onnx"], x[None])
    repaired = load_onnx(res.files["repaired_onnx"])
    assert np.abs(orig(x) - repaired(x)).max() <= after["upper"] + 1e-6
    assert np.abs(merged).max() == pytest.approx(before["lower"], rel=1e-3)
