"""The .nnet format, and how the .nnet ACAS Xu networks relate to the VNN-COMP ONNX ones.

"Same function" (measured here, see ``equivrepair/nets/nnet_io.py``): the ONNX file
``ACASXU_run2a_a_b_batch_2000.onnx`` subtracts an all-zero constant, then applies the layers of the
.nnet file with weights rounded to float32, and does not denormalise its outputs. Hence

* ``onnx(x_n) == load_nnet(p, input_normalization=False)(x_n)`` for normalised inputs ``x_n``, and
* ``onnx((x − mean) / range) == load_nnet(p)(x)`` for raw inputs ``x`` in ``[min, max]``,

both up to float32: every ONNX weight and bias is within a relative 2⁻²⁴ of the .nnet value (float32
rounding of the decimal), and onnxruntime's outputs are within ``DEFAULT_RTOL = 1e-4`` of the output
scale (the largest magnitude of the terms summed into an output, see ``onnx_io``) of the float64 FNN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from equivrepair.errors import FormatError
from equivrepair.nets.ir import FNN, Layer, random_fnn
from equivrepair.nets.load import load_network, save_network
from equivrepair.nets.nnet_io import load_nnet, save_nnet
from equivrepair.nets.onnx_io import DEFAULT_RTOL, float32_error, load_onnx, onnx_runtime_forward

U32 = 2.0**-24
ACAS_OUT_MEAN, ACAS_OUT_RANGE = 7.5188840201005975, 373.94992


def _nnets(data: Path, sub: str) -> list[Path]:
    return sorted((data / "neurodiff" / sub).glob("*.nnet"))


@pytest.mark.parametrize("sub", ["original", "compressed16"])
def test_all_nnet_files_load(data, sub):
    files = _nnets(data, sub)
    assert len(files) == 46
    for f in files:
        net = load_nnet(f)
        assert net.name == f.stem and net.metadata["format"] == "nnet"
        assert net.layers[-1].activation == "linear"
        assert all(la.activation == "relu" for la in net.layers[:-1])
        if f.stem.startswith("ACASXU"):
            assert net.widths == [5, 50, 50, 50, 50, 50, 50, 5]
            lo, hi = net.input_domain
            assert np.array_equal(lo, [0.0, -3.141593, -3.141593, 100.0, 0.0])
            assert np.array_equal(hi, [60760.0, 3.141593, 3.141593, 1200.0, 1200.0])
            assert net.metadata["output_mean"] == ACAS_OUT_MEAN and net.metadata["output_range"] == ACAS_OUT_RANGE
            assert net.metadata["extra_means"] == [35.1111111, 0.0]  # the τ and a_prev entries
        else:
            # as written in the file: 784-100-100-10 (ReLU) then an identity 10x10 layer
            assert net.widths == [784, 100, 100, 10, 10]
            assert net.input_domain is None  # ±3.40282e+38 sentinels
            assert np.array_equal(net.layers[-1].W, np.eye(10))


def _acas_pairs(data: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for f in _nnets(data, "original"):
        if f.stem.startswith("ACASXU"):
            pairs.append((f, data / "acasxu" / f"{f.stem}.onnx"))
    assert len(pairs) == 45
    return pairs


def test_acasxu_nnet_weights_are_the_onnx_weights(data):
    worst = 0.0
    for f, o in _acas_pairs(data):
        a, b = load_nnet(f, input_normalization=False), load_onnx(o)
        assert a.widths == b.widths
        for la, lb in zip(a.layers, b.layers):
            assert la.activation == lb.activation
            for x, y in ((la.W, lb.W), (la.b, lb.b)):
                rel = np.abs(x - y) / np.maximum(np.abs(x), np.finfo(float).tiny)
                worst = max(worst, float(rel.max()))
    assert worst <= U32


def test_acasxu_nnet_same_function_as_onnx(data):
    rng = np.random.default_rng(2)
    worst_norm = worst_raw = 0.0
    for f, o in _acas_pairs(data):
        raw_net = load_nnet(f)  # takes raw inputs
        norm_net = load_nnet(f, input_normalization=False)  # takes normalised inputs
        lo, hi = raw_net.input_domain
        x = lo + rng.uniform(size=(300, 5)) * (hi - lo)
        mean, rng_ = np.array(raw_net.metadata["means"]), np.array(raw_net.metadata["ranges"])
        xn = ((x - mean) / rng_).astype(np.float32).astype(np.float64)
        y_onnx = onnx_runtime_forward(o, xn)
        worst_norm = max(worst_norm, float32_error(norm_net, xn, y_onnx)[1])
        # raw inputs that normalise to exactly xn (up to float64 rounding)
        worst_raw = max(worst_raw, float32_error(raw_net, xn * rng_ + mean, y_onnx)[1])
        # the normalised domain is the box the VNN-LIB properties live in
        nlo, nhi = norm_net.input_domain
        assert np.allclose(nlo, (lo - mean) / rng_) and np.allclose(nhi, (hi - mean) / rng_)
        # output denormalisation, when asked for
        den = load_nnet(f, normalize_output=True)
        assert np.allclose(den(x[:20]), raw_net(x[:20]) * ACAS_OUT_RANGE + ACAS_OUT_MEAN, rtol=1e-12, atol=1e-9)
    assert worst_norm <= DEFAULT_RTOL and worst_raw <= DEFAULT_RTOL


def _same(a: FNN, b: FNN) -> None:
    assert a.widths == b.widths
    for la, lb in zip(a.layers, b.layers):
        assert la.activation == lb.activation
        assert np.array_equal(la.W, lb.W) and np.array_equal(la.b, lb.b)
    if a.input_domain is None:
        assert b.input_domain is None
    else:
        assert np.array_equal(a.input_domain[0], b.input_domain[0])
        assert np.array_equal(a.input_domain[1], b.input_domain[1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"input_normalization": False},
        {"normalize_output": True},
        {"input_normalization": False, "normalize_output": True},
    ],
)
def test_round_trip_acasxu(data, tmp_path, kwargs):
    src = data / "neurodiff" / "original" / "ACASXU_run2a_2_3_batch_2000.nnet"
    net = load_nnet(src, **kwargs)
    out = save_nnet(net, tmp_path / "a.nnet")
    back = load_nnet(out, **kwargs)
    _same(net, back)
    if kwargs.get("input_normalization") is False and not kwargs.get("normalize_output"):
        # the written file is the original one: same numbers, same normalisation
        _same(load_nnet(src), load_nnet(out))
        assert back.metadata["means"] == net.metadata["means"]
        assert back.metadata["extra_means"] == net.metadata["extra_means"]


def test_round_trip_mnist_and_compressed(data, tmp_path):
    for src in (
        data / "neurodiff" / "original" / "mnist_relu_3_100.nnet",
        data / "neurodiff" / "compressed16" / "ACASXU_run2a_1_1_batch_2000_16bit.nnet",
    ):
        net = load_nnet(src)
        back = load_network(save_network(net, tmp_path / f"{src.stem}.nnet"))
        _same(net, back)


def test_round_trip_random_networks(tmp_path):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        widths = [int(w) for w in rng.integers(1, 9, size=int(rng.integers(2, 6)))]
        net = random_fnn(widths, seed=seed)
        if seed % 2:
            net = net.replace(input_domain=(-rng.uniform(size=net.n_inputs), rng.uniform(size=net.n_inputs)))
        back = load_nnet(save_nnet(net, tmp_path / f"r{seed}.nnet"))
        _same(net, back)


def test_save_folds_linear_hidden_layers_and_final_relu(tmp_path):
    rng = np.random.default_rng(3)
    layers = [
        Layer(rng.normal(size=(4, 3)), rng.normal(size=4), "linear"),
        Layer(rng.normal(size=(5, 4)), rng.normal(size=5), "relu"),
        Layer(rng.normal(size=(2, 5)), rng.normal(size=2), "relu"),
    ]
    net = FNN(tuple(layers))
    back = load_nnet(save_nnet(net, tmp_path / "f.nnet"))
    assert [la.activation for la in back.layers] == ["relu", "relu", "linear"]
    x = rng.normal(size=(100, 3))
    assert np.allclose(back(x), net(x), rtol=1e-12, atol=1e-12)


GOOD = """// comment
2,2,1,3,
2,3,1,
0,
-1.0,-1.0,
1.0,1.0,
0.0,0.0,0.0,
1.0,1.0,1.0,
1.0,2.0,
3.0,4.0,
5.0,6.0,
0.1,
0.2,
0.3,
7.0,8.0,9.0,
0.5,
"""


def test_small_file_semantics(tmp_path):
    p = tmp_path / "good.nnet"
    p.write_text(GOOD.replace("0.0,0.0,0.0,\n1.0,1.0,1.0,", "0.5,-1.0,2.0,\n2.0,4.0,10.0,"))
    net = load_nnet(p)
    x = np.array([[0.3, -0.7]])
    xn = (x - [0.5, -1.0]) / [2.0, 4.0]
    W1 = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    h = np.maximum(xn @ W1.T + [0.1, 0.2, 0.3], 0)
    y = h @ np.array([[7.0, 8.0, 9.0]]).T + 0.5
    assert np.allclose(net(x), y, rtol=1e-14)
    assert np.allclose(load_nnet(p, normalize_output=True)(x), y * 10.0 + 2.0, rtol=1e-14)
    assert np.allclose(load_nnet(p, input_normalization=False)(xn), y, rtol=1e-14)


@pytest.mark.parametrize(
    "mutate, line, what",
    [
        (lambda s: s.replace("3.0,4.0,", "3.0,"), 10, "expected 2 values"),
        (lambda s: s.replace("0.2,", "abc,"), 13, "not a number"),
        (lambda s: s.replace("2,3,1,", "2,3,2,"), 3, "layer sizes"),
        (lambda s: s.replace("1.0,1.0,1.0,", "1.0,0.0,1.0,"), 8, "zero range"),
        (lambda s: s + "1.0,\n", 17, "after the last layer"),
        (lambda s: s[: s.index("7.0,8.0,9.0")], 15, "end of file"),
        (lambda s: s.replace("2,2,1,3,", "2,x,1,3,"), 2, "integers"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, mutate, line, what):
    p = tmp_path / "bad.nnet"
    p.write_text(mutate(GOOD))
    with pytest.raises(FormatError) as err:
        load_nnet(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert what in msg, msg
