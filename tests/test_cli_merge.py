"""``equivrepair merge``: ACAS Xu ONNX vs the NeuroDiff 16-bit .nnet, checked with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from equivrepair.cli import main
from equivrepair.spec.vnncomp import read_instances_csv
from equivrepair.spec.vnnlib import read_vnnlib

ONNX = "acasxu/ACASXU_run2a_1_1_batch_2000.onnx"
NNET16 = "neurodiff/compressed16/ACASXU_run2a_1_1_batch_2000_16bit.nnet"
NNET_ORIG = "neurodiff/original/ACASXU_run2a_1_1_batch_2000.nnet"
PROP1 = "acasxu/prop_1.vnnlib"


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    """Evaluate an ONNX file with onnxruntime directly, one sample at a time, in its declared shape."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    return np.array(
        [sess.run(None, {inp.name: xi.astype(np.float32).reshape(shape)})[0].ravel() for xi in x], dtype=np.float64
    )


def _points(lo: np.ndarray, hi: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corners = np.array([[hi[i] if (k >> i) & 1 else lo[i] for i in range(lo.size)] for k in range(2**lo.size)])
    return np.vstack([corners, rng.uniform(lo, hi, size=(n, lo.size))])


@pytest.fixture(scope="module")
def merged_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("merge")
    argv = [
        "merge",
        str(data / ONNX),
        str(data / NNET16),
        "-o",
        str(out / "acas.onnx"),
        "--input-set",
        str(data / PROP1),
        "--vnnlib-dir",
        str(out / "vnnlib"),
        "--epsilon",
        "0.05",
        "--epsilon",
        "0.01",
        "--timeout",
        "120",
        "--json",
        str(out / "merge.json"),
    ]
    return out, argv


def test_merge_acas_onnx_vs_nnet16(data, merged_run, capsys):
    out, argv = merged_run
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "5-50-50-50-50-50-50-5" in stdout and "5-100-100-100-100-100-100-5" in stdout
    assert "ONNX error" in stdout and "instances.csv" in stdout

    box = read_vnnlib(data / PROP1).input_box()
    x = _points(box.lower, box.upper, 200)
    y1 = _ort(data / ONNX, x)  # Φ1 straight from the original file

    # Φ2 from the .nnet in the same (normalised) input units: check the convention on the original
    # .nnet first, which must agree with the ONNX file up to float32.
    from equivrepair.nets.nnet_io import load_nnet

    orig_nnet = load_nnet(data / NNET_ORIG, input_normalization=False)
    np.testing.assert_allclose(orig_nnet.forward(x), y1, atol=1e-4, rtol=1e-5)
    y2 = load_nnet(data / NNET16, input_normalization=False).forward(x)

    diff = _ort(out / "acas.onnx", x)
    np.testing.assert_allclose(diff, y1 - y2, atol=1e-4, rtol=0)
    assert np.abs(y1 - y2).max() > 1e-6  # the 16-bit network really differs
    both = _ort(out / "acas_both.onnx", x)
    np.testing.assert_allclose(both, np.hstack([y1, y2]), atol=1e-4, rtol=1e-5)

    vdir = out / "vnnlib"
    rows = read_instances_csv(vdir / "instances.csv")
    assert len(rows) == 2 * (1 + 2 * 5) + 1
    kinds = {"eps": 0, "thr": 0, "top1": 0}
    for row in rows:
        onnx, vnn, timeout = row.resolve(vdir)
        assert onnx.is_file() and vnn.is_file() and timeout == 120.0
        top1 = vnn.name.endswith("_top1.vnnlib")
        assert onnx.name == ("acas_both.onnx" if top1 else "acas.onnx")
        prop = read_vnnlib(vnn, n_inputs=5, n_outputs=10 if top1 else 5)
        got = prop.input_box()
        np.testing.assert_array_equal(got.lower, box.lower)
        np.testing.assert_array_equal(got.upper, box.upper)
        if top1:
            kinds["top1"] += 1
            assert len(prop.output_dnf) == 20
        elif vnn.name.endswith(("_ge.vnnlib", "_le.vnnlib")):
            kinds["thr"] += 1
            assert len(prop.output_dnf) == 1
        else:
            kinds["eps"] += 1
            eps = 0.05 if "0.05" in vnn.name else 0.01
            assert prop.evaluate_output(np.array([0, 0, eps, 0, 0])) and not prop.evaluate_output(np.zeros(5))
            # the differences seen on the sampled points against the written property
            np.testing.assert_array_equal(prop.evaluate_output(y1 - y2), np.any(np.abs(y1 - y2) >= eps, axis=1))
    assert kinds == {"eps": 2, "thr": 20, "top1": 1}

    rec = json.loads((out / "merge.json").read_text())
    assert rec["merged"]["widths"] == [5] + [100] * 6 + [5]
    assert rec["nnet_inputs"] == "normalized"
    assert rec["merged"]["onnx"]["max_abs_err"] < 1e-4
    assert len(rec["vnnlib"]) == len(rows)
    assert rec["input_regions"][0]["lower"] == box.lower.tolist()


def test_merge_without_input_set_writes_only_onnx(data, tmp_path, capsys):
    assert main(["merge", str(data / ONNX), str(data / NNET16), "-o", str(tmp_path / "m.onnx"), "--json", "-"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["vnnlib"] == [] and rec["instances_csv"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_merge_center_radius(data, tmp_path):
    center = np.array([0.1, 0.0, -0.2, 0.3, 0.499])
    np.save(tmp_path / "c.npy", center)
    argv = ["merge", str(data / NNET_ORIG), str(data / NNET16), "-o", str(tmp_path / "m.onnx")]
    assert main(argv + ["--center", str(tmp_path / "c.npy"), "--radius", "0.01"]) == 0
    prop = read_vnnlib(tmp_path / "m_eps_0.05.vnnlib", n_inputs=5, n_outputs=5)
    box = prop.input_box()
    from equivrepair.nets.nnet_io import load_nnet

    lo_dom, hi_dom = load_nnet(data / NNET_ORIG, input_normalization=False).input_domain
    np.testing.assert_array_equal(box.lower, np.maximum(center - 0.01, lo_dom))
    np.testing.assert_array_equal(box.upper, np.minimum(center + 0.01, hi_dom))
    assert box.upper[4] < center[4] + 0.01  # clipped to the .nnet input domain (normalised max 0.5)


def test_merge_multi_region_property(data, tmp_path):
    argv = ["merge", str(data / ONNX), str(data / NNET16), "-o", str(tmp_path / "m.onnx")]
    assert main(argv + ["--input-set", str(data / "acasxu/prop_6.vnnlib")]) == 0
    assert (tmp_path / "m_r0_eps_0.05.vnnlib").is_file() and (tmp_path / "m_r1_top1.vnnlib").is_file()


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--input-set", "mnistfc/prop_0_0.03.vnnlib"], "784 inputs"),
        (["--vnnlib-dir", "out"], "needs an input set"),
        (["--center", "missing.npy", "--radius", "0.1"], "not found"),
        (["--epsilon", "-1"], None),
    ],
)
def test_merge_user_errors(data, tmp_path, capsys, extra, pattern):
    extra = [str(data / e) if e.endswith(".vnnlib") else e for e in extra]
    argv = ["merge", str(data / ONNX), str(data / NNET16), "-o", str(tmp_path / "m.onnx")] + extra
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    if pattern:
        assert len(err.splitlines()) == 1 and pattern in err, err


def test_merge_mismatched_sizes(data, tmp_path, capsys):
    argv = ["merge", str(data / ONNX), str(data / "mnistfc/mnist-net_256x2.onnx"), "-o", str(tmp_path / "m.onnx")]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "5 inputs" in err and "784" in err, err
    assert not (tmp_path / "m.onnx").exists()


def test_merge_help_has_example(capsys):
    assert main(["merge", "--help"]) == 0
    text = capsys.readouterr().out
    assert "example" in text and "--nnet-raw-inputs" in text and "--vnnlib-dir" in text
