"""ONNX import/export.

Tolerance: a float32 evaluation (onnxruntime) agrees with the float64 FNN when
``max |y32 − y64| ≤ 1e-4 · output_scale`` (``DEFAULT_RTOL``; ``output_scale`` is the largest
magnitude of the terms summed into an output over the batch, at least ``max |y|``; see
``equivrepair/nets/onnx_io.py``). Imported weights are the file's float32 values converted exactly,
so weights are compared for equality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from equivrepair.errors import FormatError
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.nets.load import load_network, save_network
from equivrepair.nets.onnx_io import (
    DEFAULT_RTOL,
    ExportError,
    float32_error,
    load_onnx,
    onnx_runtime_forward,
    save_onnx,
)

N_RANDOM = 1000


def _check_against_ort(net: FNN, path: Path, x: np.ndarray) -> float:
    x32 = x.astype(np.float32).astype(np.float64)
    y = onnx_runtime_forward(path, x32)
    assert y.shape == (x.shape[0], net.n_outputs)
    _, rel = float32_error(net, x32, y)
    assert rel <= DEFAULT_RTOL, f"{path.name}: float32 error {rel:.3g} of the output scale"
    return rel


# -- the shared networks ------------------------------------------------------------------------


def test_acasxu_onnx_matches_onnxruntime(data):
    files = sorted((data / "acasxu").glob("*.onnx"))
    assert len(files) == 45
    rng = np.random.default_rng(0)
    worst = 0.0
    for f in files:
        net = load_onnx(f)
        assert net.widths == [5, 50, 50, 50, 50, 50, 50, 5]
        assert [la.activation for la in net.layers] == ["relu"] * 6 + ["linear"]
        assert net.name == f.stem
        assert net.metadata["format"] == "onnx" and net.metadata["opset"] == 8
        assert net.metadata["source"] == str(f)
        assert net.metadata["input_shape"] == [1, 1, 1, 5]
        # normalised ACAS Xu inputs lie in [-0.5, 0.7]; cover a slightly larger box
        x = rng.uniform(-1.0, 1.0, size=(N_RANDOM, 5))
        worst = max(worst, _check_against_ort(net, f, x))
    assert worst <= DEFAULT_RTOL


def test_mnistfc_onnx_matches_onnxruntime(data):
    files = sorted((data / "mnistfc").glob("*.onnx"))
    assert len(files) == 2
    rng = np.random.default_rng(1)
    for f in files:
        net = load_onnx(f)
        assert net.n_inputs == 784 and net.n_outputs == 10
        assert net.metadata["input_shape"] == [1, 784, 1] and net.metadata["opset"] == 9
        x = rng.uniform(0.0, 1.0, size=(N_RANDOM, 784))
        _check_against_ort(net, f, x)
    assert load_onnx(data / "mnistfc" / "mnist-net_256x4.onnx").widths == [784, 256, 256, 256, 256, 10]


# -- export -------------------------------------------------------------------------------------


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("style", ["gemm", "matmul"])
def test_export_round_trip_acasxu(data, tmp_path, style):
    net = load_onnx(data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    out = tmp_path / "a.onnx"
    rep = save_onnx(net, out, style=style)
    assert rep["path"] == str(out) and rep["opset"] == 13 and rep["ir_version"] == 8
    assert rep["max_rel_err"] <= DEFAULT_RTOL and rep["max_abs_err"] >= 0.0
    model = onnx.load(str(out))
    assert model.ir_version == 8 and model.opset_import[0].version == 13
    assert [i.name for i in model.graph.input] == ["X"] and [o.name for o in model.graph.output] == ["Y"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 5]
    back = load_onnx(out)
    # the ACAS Xu weights are float32 already: the round trip is exact
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b) and a.activation == b.activation
    assert back.content_hash == net.content_hash


@pytest.mark.parametrize("seed", range(4))
def test_export_round_trip_random(tmp_path, seed):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 12, size=int(rng.integers(2, 6)))]
    net = random_fnn(widths, seed=seed)
    if seed % 2:  # a final ReLU and a domain
        last = net.layers[-1]
        net = net.with_layers([*net.layers[:-1], type(last)(last.W, last.b, "relu")])
        net = net.replace(input_domain=(-np.ones(net.n_inputs), 2 * np.ones(net.n_inputs)))
    out = tmp_path / "r.onnx"
    rep = save_onnx(net, out, style="matmul" if seed % 2 else "gemm", batch="N" if seed == 2 else 1)
    assert rep["max_rel_err"] <= DEFAULT_RTOL
    back = load_onnx(out)
    assert back.widths == net.widths
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(b.W, _f32(a.W)) and np.array_equal(b.b, _f32(a.b)) and a.activation == b.activation
    x = rng.normal(size=(50, net.n_inputs))
    _check_against_ort(net, out, x)
    # through the suffix dispatch too
    rep2 = save_network(net, tmp_path / "r2.onnx")
    assert rep2["ir_version"] == 8
    assert load_network(tmp_path / "r2.onnx").content_hash == back.content_hash


def test_export_rejects_weights_beyond_float32(tmp_path):
    net = FNN.from_arrays([np.array([[1e39]])], [np.zeros(1)])
    with pytest.raises(ExportError, match="float32"):
        save_onnx(net, tmp_path / "big.onnx")


def test_unknown_suffix(tmp_path):
    p = tmp_path / "net.h5"
    p.write_text("x")
    with pytest.raises(FormatError, match="net.h5"):
        load_network(p)
    with pytest.raises(FormatError, match="net.h5"):
        save_network(random_fnn([2, 2]), p)


# -- synthetic graphs ---------------------------------------------------------------------------


def _vi(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _save(
    tmp_path: Path,
    nodes: list,
    inits: list,
    in_shape: list,
    out_name: str = "y",
    opset: int = 13,
    ir_version: int = 8,
    inits_as_inputs: bool = False,
    name: str = "g",
) -> Path:
    inputs = [_vi("x", in_shape)]
    if inits_as_inputs:
        inputs = [_vi(t.name, list(t.dims)) for t in inits] + inputs
    graph = helper.make_graph(nodes, name, inputs, [_vi(out_name, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _agree(path: Path, n_in: int, seed: int = 0) -> FNN:
    net = load_onnx(path)
    assert net.n_inputs == n_in
    x = np.random.default_rng(seed).normal(size=(40, n_in))
    _check_against_ort(net, path, x)
    return net


W35 = np.random.default_rng(5).normal(size=(3, 5))  # (in=3, out=5) for x @ W
B5 = np.random.default_rng(6).normal(size=5)


@pytest.mark.parametrize("transA", [0, 1])
@pytest.mark.parametrize("transB", [0, 1])
@pytest.mark.parametrize("c_shape", ["vec", "row", "scalar", "none"])
def test_gemm_attributes(tmp_path, transA, transB, c_shape):
    B = W35.T if transB else W35
    ins = ["x", "B"]
    inits = [_init("B", B)]
    if c_shape != "none":
        C = {"vec": B5, "row": B5.reshape(1, 5), "scalar": np.array(0.75)}[c_shape]
        inits.append(_init("C", C))
        ins.append("C")
    node = helper.make_node("Gemm", ins, ["y"], name="gemm0", transA=transA, transB=transB, alpha=0.5, beta=2.0)
    path = _save(tmp_path, [node], inits, [3, 1] if transA else [1, 3], name=f"gemm{transA}{transB}{c_shape}")
    net = _agree(path, 3)
    assert net.depth == 1 and net.layers[0].activation == "linear"
    expected_W = 0.5 * _f32(W35).T
    assert np.allclose(net.layers[0].W, expected_W, rtol=0, atol=1e-15)


@pytest.mark.parametrize("order", ["xw_add_bias", "xw_bias_add", "wx_column"])
def test_matmul_add_orders(tmp_path, order):
    W2 = np.random.default_rng(7).normal(size=(5, 4))
    nodes = []
    if order == "wx_column":  # W @ x with a column input [3, 1]
        inits = [_init("W", W35.T), _init("b", B5.reshape(5, 1)), _init("W2", W2.T), _init("b2", np.ones((4, 1)))]
        nodes.append(helper.make_node("MatMul", ["W", "x"], ["m"], name="mm"))
        nodes.append(helper.make_node("Add", ["b", "m"], ["a"], name="add"))
        nodes.append(helper.make_node("Relu", ["a"], ["r"], name="relu"))
        nodes.append(helper.make_node("MatMul", ["W2", "r"], ["m2"], name="mm2"))
        nodes.append(helper.make_node("Add", ["m2", "b2"], ["y"], name="add2"))
        shape = [3, 1]
    else:
        inits = [_init("W", W35), _init("b", B5), _init("W2", W2), _init("b2", np.ones(4))]
        nodes.append(helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"))
        args = ["m", "b"] if order == "xw_add_bias" else ["b", "m"]
        nodes.append(helper.make_node("Add", args, ["a"], name="add"))
        nodes.append(helper.make_node("Relu", ["a"], ["r"], name="relu"))
        nodes.append(helper.make_node("MatMul", ["r", "W2"], ["m2"], name="mm2"))
        nodes.append(helper.make_node("Add", ["b2", "m2"] if args[0] == "m" else ["m2", "b2"], ["y"], name="add2"))
        shape = [1, 3]
    path = _save(tmp_path, nodes, inits, shape, name=order)
    net = _agree(path, 3)
    assert net.widths == [3, 5, 4] and [la.activation for la in net.layers] == ["relu", "linear"]
    assert np.array_equal(net.layers[0].b, _f32(B5))


def test_normalisation_folds_into_first_layer(tmp_path):
    mean = np.array([[0.5, -1.0, 2.0]])
    std = np.array([[2.0, 0.25, 3.0]])
    inits = [_init("mean", mean), _init("std", std), _init("W", W35), _init("b", B5), _init("s", np.array(3.0))]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["c"], name="sub_mean"),
        helper.make_node("Div", ["c", "std"], ["n"], name="div_std"),
        helper.make_node("Mul", ["n", "s"], ["n2"], name="scale"),
        helper.make_node("Add", ["n2", "s"], ["n3"], name="shift"),
        helper.make_node("MatMul", ["n3", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["z"], name="bias"),
        helper.make_node("Relu", ["z"], ["y"], name="relu"),
    ]
    path = _save(tmp_path, nodes, inits, [1, 3], name="norm")
    net = _agree(path, 3)
    assert net.depth == 1 and net.layers[0].activation == "relu"
    # exact fold in float64: W' = W^T diag(3/std), b' = b + W^T (3 - 3 mean/std)
    Wt, m, s = _f32(W35).T, _f32(mean).ravel(), _f32(std).ravel()
    assert np.allclose(net.layers[0].W, Wt * (3.0 / s), rtol=1e-15, atol=0)
    assert np.allclose(net.layers[0].b, _f32(B5) + Wt @ (3.0 - 3.0 * m / s), rtol=1e-14, atol=1e-14)


def test_constant_first_sub_and_neg(tmp_path):
    inits = [_init("c", np.array([1.0, 2.0, 3.0])), _init("W", W35)]
    nodes = [
        helper.make_node("Sub", ["c", "x"], ["d"], name="c_minus_x"),
        helper.make_node("Neg", ["d"], ["e"], name="neg"),
        helper.make_node("MatMul", ["e", "W"], ["y"], name="mm"),
    ]
    net = _agree(_save(tmp_path, nodes, inits, [1, 3], name="rsub"), 3)
    assert net.depth == 1


def test_opset8_initializers_as_inputs(tmp_path):
    """Old IR: initializers listed as graph inputs; 4-D input [1,1,1,3], Sub of a constant image, Flatten."""
    avg = np.zeros((1, 1, 1, 3))
    W2 = np.random.default_rng(8).normal(size=(5, 2))
    inits = [_init("avg", avg), _init("W", W35), _init("b", B5), _init("W2", W2), _init("b2", np.zeros(2))]
    nodes = [
        helper.make_node("Sub", ["x", "avg"], ["s"], name="input_Sub"),
        helper.make_node("Flatten", ["s"], ["f"], name="flat", axis=1),
        helper.make_node("MatMul", ["f", "W"], ["m"], name="mm1"),
        helper.make_node("Add", ["m", "b"], ["a"], name="add1"),
        helper.make_node("Relu", ["a"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "W2"], ["m2"], name="mm2"),
        helper.make_node("Add", ["m2", "b2"], ["y"], name="add2"),
    ]
    path = _save(tmp_path, nodes, inits, [1, 1, 1, 3], opset=8, ir_version=3, inits_as_inputs=True, name="old")
    net = _agree(path, 3)
    assert net.metadata["opset"] == 8 and net.metadata["input_shape"] == [1, 1, 1, 3]
    assert net.widths == [3, 5, 2]


def test_constant_nodes_and_shape_ops(tmp_path):
    """Weights as Constant nodes; a [1,3,1] input; Squeeze/Unsqueeze/Reshape with a computed shape."""
    nodes = [
        helper.make_node("Constant", [], ["W"], name="cW", value=numpy_helper.from_array(W35.astype(np.float32))),
        helper.make_node("Constant", [], ["b"], name="cb", value_floats=B5.astype(np.float32).tolist()),
        helper.make_node("Constant", [], ["ax"], name="cax", value_ints=[2]),
        helper.make_node("Squeeze", ["x", "ax"], ["sq"], name="squeeze"),  # [1,3,1] -> [1,3]
        helper.make_node("Identity", ["sq"], ["id"], name="ident"),
        helper.make_node("MatMul", ["id", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Unsqueeze", ["r", "ax"], ["u"], name="unsq"),  # [1,5,1]
        helper.make_node("Shape", ["u"], ["shp"], name="shape"),
        helper.make_node("Constant", [], ["i0"], name="ci0", value_ints=[0]),
        helper.make_node("Gather", ["shp", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Constant", [], ["m1"], name="cm1", value_ints=[-1]),
        helper.make_node("Concat", ["n", "m1"], ["tgt"], name="concat", axis=0),
        helper.make_node("Reshape", ["u", "tgt"], ["y"], name="reshape"),
    ]
    net = _agree(_save(tmp_path, nodes, [], [1, 3, 1], name="consts"), 3)
    assert net.widths == [3, 5] and net.layers[0].activation == "relu"


def test_symbolic_batch_and_opset11_squeeze_attr(tmp_path):
    inits = [_init("W", W35)]
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], name="unsq", axes=[1]),  # [N,1,3]
        helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=[1]),
        helper.make_node("MatMul", ["s", "W"], ["y"], name="mm"),
    ]
    path = _save(tmp_path, nodes, inits, ["N", 3], opset=11, ir_version=6, name="sym")
    net = _agree(path, 3)
    assert net.metadata["input_shape"] == [1, 3]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["Sigmoid", "Conv"])
def test_unsupported_operator_names_file_and_node(tmp_path, op):
    if op == "Conv":
        inits = [_init("k", np.ones((1, 1, 1)))]
        nodes = [helper.make_node("Conv", ["x", "k"], ["y"], name="conv_layer")]
        shape = [1, 1, 3]
    else:
        inits = [_init("W", W35)]
        nodes = [
            helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
            helper.make_node("Sigmoid", ["m"], ["y"], name="sig_layer"),
        ]
        shape = [1, 3]
    path = _save(tmp_path, nodes, inits, shape, name=f"bad_{op}")
    with pytest.raises(FormatError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert str(path) in msg and op in msg and ("conv_layer" if op == "Conv" else "sig_layer") in msg
    assert "unsupported operator" in msg


def test_nan_weight(tmp_path):
    W = W35.copy()
    W[1, 2] = np.nan
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm_nan")]
    path = _save(tmp_path, nodes, [_init("W", W)], [1, 3], name="nan")
    with pytest.raises(FormatError, match=r"nan\.onnx.*'mm_nan' \(MatMul\).*non-finite"):
        load_onnx(path)


def test_empty_graph(tmp_path):
    graph = helper.make_graph([], "empty", [_vi("x", [1, 3])], [_vi("x", [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "empty.onnx"
    onnx.save(model, str(path))
    with pytest.raises(FormatError, match=r"empty\.onnx.*empty graph"):
        load_onnx(path)
    nodes = [helper.make_node("Flatten", ["x"], ["y"], name="only_flatten")]
    with pytest.raises(FormatError, match="empty graph"):
        load_onnx(_save(tmp_path, nodes, [], [1, 3], name="flat_only"))


def test_non_constant_second_operand(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("MatMul", ["x", "r"], ["y"], name="mm_two_data"),
    ]
    path = _save(tmp_path, nodes, [], [1, 3], name="twodata")
    with pytest.raises(FormatError, match=r"twodata\.onnx.*'mm_two_data' \(MatMul\).*more than one operand"):
        load_onnx(path)


def test_shape_mismatch(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm_bad")]
    path = _save(tmp_path, nodes, [_init("W", np.ones((4, 2)))], [1, 3], name="mismatch")
    with pytest.raises(FormatError, match=r"mismatch\.onnx.*'mm_bad' \(MatMul\)"):
        load_onnx(path)


def test_not_an_onnx_file(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00\x01not a protobuf at all\xff" * 10)
    with pytest.raises(FormatError, match="junk.onnx"):
        load_onnx(p)


@pytest.mark.parametrize("opset", [9, 13])
def test_torch_exported_graph_with_dynamic_reshape(tmp_path, opset):
    """What torch.onnx.export writes: scalar Sub/Div normalisation, Shape/Gather/Concat/Reshape, Gemm."""
    torch = pytest.importorskip("torch")
    import warnings

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = torch.nn.Linear(12, 8), torch.nn.Linear(8, 3)

        def forward(self, x):
            x = (x - 0.1307) / 0.3081
            return self.l2(torch.relu(self.l1(x.view(x.shape[0], -1))))

    torch.manual_seed(opset)
    path = tmp_path / f"torch{opset}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                Net().eval(),
                torch.randn(1, 1, 3, 4),
                str(path),
                opset_version=opset,
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "N"}},
            )
        except Exception as exc:  # pragma: no cover - depends on the torch build
            pytest.skip(f"torch.onnx.export unavailable: {exc}")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Shape", "Gather", "Concat", "Reshape", "Gemm", "Sub", "Div"} <= ops
    net = _agree(path, 12)
    assert net.widths == [12, 8, 3] and net.metadata["input_shape"] == [1, 1, 3, 4]


def test_transpose_dropout_and_double_relu(tmp_path):
    W = np.random.default_rng(9).normal(size=(6, 4))
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[0, 2, 1]),  # [1,3,2] -> [1,2,3]
        helper.make_node("Flatten", ["t"], ["f"], name="flat"),
        helper.make_node("Dropout", ["f"], ["d"], name="drop"),
        helper.make_node("MatMul", ["d", "W"], ["m"], name="mm"),
        helper.make_node("Relu", ["m"], ["r1"], name="relu1"),
        helper.make_node("Relu", ["r1"], ["y"], name="relu2"),
    ]
    net = _agree(_save(tmp_path, nodes, [_init("W", W)], [1, 3, 2], name="transpose"), 6)
    assert net.depth == 1 and net.layers[0].activation == "relu"
    # input index (i, j) of the [3, 2] input is row-major index 2 i + j; after the transpose it meets row 3 j + i of W
    perm = [3 * j + i for i in range(3) for j in range(2)]
    assert np.array_equal(net.layers[0].W, _f32(W)[perm].T)
