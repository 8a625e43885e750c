"""``equivrepair compress``: every method through the CLI, ONNX in and out, size report, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from equivrepair.cli import main
from equivrepair.compress import widen
from equivrepair.nets.ir import random_fnn

load = pytest.importorskip("equivrepair.nets.load")
pytest.importorskip("onnx")


@pytest.fixture
def orig(tmp_path):
    net = random_fnn([6, 16, 12, 3], seed=0, name="orig")
    path = tmp_path / "orig.onnx"
    load.save_network(net, path)
    return path, load.load_network(path)


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_quantize_three_bits(orig, tmp_path, capsys):
    path, net = orig
    out = tmp_path / "q3.onnx"
    code, text, err = _run(["compress", str(path), "--method", "quantize", "--bits", "3", "-o", str(out)], capsys)
    assert code == 0, err
    assert "bits per weight   3" in text and "bytes" in text
    comp = load.load_network(out)
    assert comp.widths == net.widths
    for layer in comp.layers:  # survives float32 ONNX: at most 8 values per weight matrix
        assert np.unique(layer.W).size <= 8
    meta = json.loads((tmp_path / "q3.onnx.meta.json").read_text())
    assert meta["metadata"]["quantization"]["bits"] == 3


def test_quantize_options_and_json(orig, tmp_path, capsys):
    path, _ = orig
    out = tmp_path / "q.onnx"
    argv = ["compress", str(path), "--method", "quantize", "--bits", "4", "--scheme", "affine"]
    argv += ["--granularity", "per-channel", "--biases", "-o", str(out), "--json", "-"]
    code, text, err = _run(argv, capsys)
    assert code == 0, err
    res = json.loads(text)
    assert res["compressed"]["bits_per_weight"] == 4 and res["compressed"]["bits_per_bias"] == 4
    assert res["compressed"]["bytes"] < res["original"]["bytes"]
    comp = load.load_network(out)
    assert max(np.unique(row).size for layer in comp.layers for row in layer.W) <= 16


def test_prune_global(orig, tmp_path, capsys):
    path, net = orig
    out = tmp_path / "p.onnx"
    code, text, err = _run(
        ["compress", str(path), "--method", "prune", "--sparsity", "0.75", "--scope", "global", "-o", str(out)], capsys
    )
    assert code == 0, err
    comp = load.load_network(out)
    n_w = sum(layer.W.size for layer in net.layers)
    zeros = sum(int((layer.W == 0).sum()) for layer in comp.layers)
    assert zeros == round(0.75 * n_w)


def test_neuron_prune_with_npz_data(orig, tmp_path, capsys):
    path, _ = orig
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 6))
    np.savez(tmp_path / "d.npz", X=X, y=rng.integers(0, 3, 64), X_test=X[:20], y_test=rng.integers(0, 3, 20))
    out = tmp_path / "n.onnx"
    argv = ["compress", str(path), "--method", "neuron-prune", "--keep", "0.5", "--criterion", "mean-activation"]
    argv += ["--data", str(tmp_path / "d.npz"), "-o", str(out)]
    code, text, err = _run(argv, capsys)
    assert code == 0, err
    assert load.load_network(out).widths == [6, 8, 6, 3]
    assert "accuracy_fnn" in text


def test_lump_recovers_width(tmp_path, capsys):
    net = random_fnn([5, 10, 7, 2], seed=3)
    wide = widen(net, extra=4, seed=1)
    path = tmp_path / "wide.onnx"
    load.save_network(wide, path)
    out = tmp_path / "lumped.onnx"
    code, text, err = _run(["compress", str(path), "--method", "lump", "-o", str(out)], capsys)
    assert code == 0, err
    assert load.load_network(out).widths == net.widths


def test_lump_with_box(orig, tmp_path, capsys):
    path, net = orig
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lower": [-1.0] * 6, "upper": [1.0] * 6}))
    out = tmp_path / "l.onnx"
    code, _, err = _run(["compress", str(path), "--method", "lump", "--input-box", str(box), "-o", str(out)], capsys)
    assert code == 0, err


def test_qat_cli(orig, tmp_path, capsys):
    pytest.importorskip("torch")
    path, _ = orig
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 6))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    out = tmp_path / "qat.onnx"
    argv = ["compress", str(path), "--method", "qat", "--bits", "2", "--epochs", "1", "--data", str(tmp_path / "d.npz")]
    code, _, err = _run(argv + ["-o", str(out)], capsys)
    assert code == 0, err
    assert all(np.unique(layer.W).size <= 4 for layer in load.load_network(out).layers)


@pytest.mark.parametrize(
    "extra",
    [
        ["--method", "quantize", "--bits", "1"],
        ["--method", "prune", "--sparsity", "2"],
        ["--method", "qat"],  # needs --data
        ["--method", "nope"],
        ["--method", "lump", "--input-box", "missing.json"],
    ],
)
def test_usage_errors_exit_3(orig, tmp_path, capsys, extra):
    path, _ = orig
    code, _, _ = _run(["compress", str(path), *extra, "-o", str(tmp_path / "x.onnx")], capsys)
    assert code == 3


def test_missing_input_exit_3(tmp_path, capsys):
    code, _, err = _run(
        ["compress", str(tmp_path / "none.onnx"), "--method", "lump", "-o", str(tmp_path / "x.onnx")], capsys
    )
    assert code == 3
