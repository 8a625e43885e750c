"""ONNX import and export for feed-forward ReLU networks.

Import (:func:`load_onnx`)
--------------------------
The graph is walked in topological order along its single data path (the tensors that depend on
the one real graph input). Every tensor on that path is tracked *exactly* as an affine function of
the output ``h`` of the last ReLU (or of the flattened network input): ``T = M·h + v``, in float64.
Affine operators with constant operands (``Gemm`` with any ``transA``/``transB``/``alpha``/``beta``
and a broadcast or absent ``C``; ``MatMul`` in either operand order; ``Add``/``Sub``/``Mul``/``Div``
by constants, e.g. an input normalisation; ``Neg``) update ``(M, v)``; shape operators
(``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Transpose``, ``Identity``, ``Dropout``,
float ``Cast``) rearrange it; ``Relu`` closes one :class:`~equivrepair.nets.ir.Layer` ``relu(M·h + v)``.
So consecutive affine operators fold into one layer and a normalisation in front of the first layer
is folded into it, all in float64 (weights stored as float32 in the file are converted exactly).

* Weights may be initializers or ``Constant`` nodes; small constant sub-graphs that real exporters
  write for reshapes (``Shape``/``Gather``/``Concat``/``Unsqueeze``/``Slice``/``Cast``...) are folded.
* Initializers that are also listed as graph inputs (IR version < 4, e.g. the MATLAB-exported
  ACAS Xu networks) are constants; the real input is the one graph input that is not an initializer.
* The batch dimension (the first input dimension, symbolic or 1) is taken as 1; the network input is
  the row-major flattening of the input tensor, e.g. ``[1, 784, 1]`` → 784 inputs, ``[1, 1, 1, 5]`` → 5.
  The output is the row-major flattening of the (single) graph output.

Anything else raises :class:`~equivrepair.errors.FormatError` with the file name and the offending
node (name and op_type): an unsupported operator, a second non-constant operand (branches, residual
connections), a shape mismatch, non-finite weights, an empty graph.

Export (:func:`save_onnx`)
--------------------------
float32 weights; one ``Gemm`` (``transB=1``, the IR's ``W`` of shape (out, in) stored as is) or
``MatMul``+``Add`` per layer, then ``Relu`` where the layer is ReLU. The input is named ``"X"`` with
shape ``[1, n_in]`` (a fixed batch of one, what VNN-COMP tools expect; ``batch="N"`` makes it
symbolic), the output ``"Y"`` with shape ``[1, n_out]``. The IR version is set explicitly (default 8
with opset 13: the onnx package writes IR 14 by default, which onnxruntime 1.31 refuses). The file is
checked with ``onnx.checker.check_model(full_check=True)`` and then evaluated with onnxruntime on
random inputs, compared with :meth:`FNN.forward` in float64.

Float32 round-off tolerance (used by :func:`save_onnx` and by the tests)
------------------------------------------------------------------------
The *output scale* of a network on a batch of inputs (:func:`output_scale`) is the largest magnitude
of the terms summed into an output, ``max (|W_L|·|h_{L-1}(x)| + |b_L|)`` over the batch and the
outputs, where ``h_{L-1}`` are the float64 activations feeding the output layer. It is at least
``max |y|``, and unlike ``|y|`` it stays meaningful when outputs cancel (a merged network computes
``y1 − y2`` from terms of the size of ``y1`` and ``y2``). A float32 evaluation is accepted when
``max |y32 − y64| ≤ rtol · output_scale`` with ``rtol = 1e-4`` (:data:`DEFAULT_RTOL`). This is a
convention, not a worst-case bound (a rigorous a-priori bound propagates ``|W|`` through every layer and
grows exponentially with depth, which makes it useless as a test); measured errors of onnxruntime on the
45 ACAS Xu and 2 MNIST networks (1,000 random inputs each) are at most 7.6e-6 of the output scale,
at least 13 times inside the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from .ir import FNN, Layer, NetworkError

__all__ = [
    "DEFAULT_RTOL",
    "ExportError",
    "float32_error",
    "load_onnx",
    "onnx_runtime_forward",
    "output_scale",
    "sample_inputs",
    "save_onnx",
]

DEFAULT_RTOL = 1e-4
"""Float32 round-off tolerance, relative to :func:`output_scale` (see the module docstring)."""


class ExportError(FormatError):
    """An exported ONNX file that fails the checker or disagrees with the network beyond round-off."""


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------

_FLOAT_ELEM_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass
class _Affine:
    """A data tensor as an affine function of ``h``: ``T = Mt·h + v``; ``Mt`` has shape (n_h, *T.shape)."""

    Mt: np.ndarray
    v: np.ndarray
    identity: bool  # Mt is the identity (up to a row-major reshape) and v == 0

    @classmethod
    def start(cls, shape: tuple[int, ...]) -> _Affine:
        n = int(np.prod(shape, dtype=np.int64))
        return cls(np.eye(n).reshape((n, *shape)), np.zeros(shape), True)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.v.shape)

    @property
    def n_h(self) -> int:
        return self.Mt.shape[0]

    def layer(self, activation: str) -> Layer:
        W = np.ascontiguousarray(self.Mt.reshape(self.n_h, -1).T)
        return Layer(W, self.v.ravel().copy(), activation)


class _Walker:
    def __init__(self, path: Path, model: Any) -> None:
        self.path = path
        self.model = model
        self.graph = model.graph
        self.opset = _default_opset(model)

    # -- errors ---------------------------------------------------------------------------------
    def where(self, node: Any, index: int) -> str:
        outs = ", ".join(repr(o) for o in node.output)
        name = repr(node.name) if node.name else f"#{index} (unnamed, output {outs})"
        return f"node {name} ({node.op_type})"

    def fail(self, node: Any, index: int, msg: str) -> FormatError:
        return FormatError(f"{self.path}: {self.where(node, index)}: {msg}")

    def fail_graph(self, msg: str) -> FormatError:
        return FormatError(f"{self.path}: {msg}")

    # -- main -----------------------------------------------------------------------------------
    def run(self) -> FNN:
        from onnx import numpy_helper

        g = self.graph
        consts: dict[str, np.ndarray] = {}
        for init in g.initializer:
            try:
                consts[init.name] = numpy_helper.to_array(init)
            except Exception as exc:  # external data missing, unsupported type, ...
                raise self.fail_graph(f"cannot read initializer {init.name!r}: {exc}") from exc
        real_inputs = [i for i in g.input if i.name not in consts]
        if not g.node:
            raise self.fail_graph("empty graph (no nodes)")
        if len(real_inputs) != 1:
            names = [i.name for i in real_inputs]
            raise self.fail_graph(f"expected exactly one graph input that is not an initializer, found {names}")
        if len(g.output) != 1:
            raise self.fail_graph(f"expected exactly one graph output, found {[o.name for o in g.output]}")
        inp = real_inputs[0]
        out_name = g.output[0].name
        in_shape = self._input_shape(inp)

        order = self._needed_in_topological_order(out_name, set(consts) | {inp.name})
        if not order:
            raise self.fail_graph(f"empty graph: the output {out_name!r} is the input itself")

        data_shapes: dict[str, tuple[int, ...]] = {inp.name: in_shape}
        cur_name = inp.name
        state = _Affine.start(in_shape)
        layers: list[Layer] = []

        for index, node in order:
            data_in = [i for i in node.input if i in data_shapes]
            if not data_in:
                self._const_node(node, index, consts)
                continue
            if node.op_type == "Shape":  # shape of a data tensor: a constant (batch taken as 1)
                consts[node.output[0]] = self._shape_of(node, index, data_shapes[data_in[0]])
                continue
            if len(data_in) > 1:
                raise self.fail(
                    node,
                    index,
                    f"more than one operand depends on the network input ({data_in}); only a single "
                    "data path with constant second operands is supported",
                )
            if data_in[0] != cur_name:
                raise self.fail(
                    node,
                    index,
                    f"reads {data_in[0]!r}, which is not the current end of the data path ({cur_name!r}); "
                    "branching graphs are not supported",
                )
            try:
                state, closed = self._data_node(node, index, state, consts, layers)
            except FormatError:
                raise
            except (NetworkError, ValueError, IndexError) as exc:
                raise self.fail(node, index, f"{exc}") from exc
            if closed is not None:
                layers.append(closed)
            produced = [o for o in node.output[:1] if o]
            if not produced:
                raise self.fail(node, index, "has no output")
            cur_name = produced[0]
            data_shapes[cur_name] = state.shape

        if cur_name != out_name:
            if out_name in consts:
                raise self.fail_graph(f"the output {out_name!r} does not depend on the input {inp.name!r}")
            raise self.fail_graph(f"the data path ends at {cur_name!r}, not at the graph output {out_name!r}")
        if not state.identity or not layers:
            if not layers and state.identity:
                raise self.fail_graph("empty graph: no affine or ReLU operator on the path from input to output")
            try:
                layers.append(state.layer("linear"))
            except NetworkError as exc:
                raise self.fail_graph(f"output layer: {exc}") from exc
        meta = {
            "source": str(self.path),
            "format": "onnx",
            "opset": self.opset,
            "ir_version": int(self.model.ir_version),
            "producer": self.model.producer_name,
            "input_name": inp.name,
            "input_shape": list(in_shape),
            "output_name": out_name,
        }
        try:
            return FNN(tuple(layers), metadata=meta, name=self.path.stem)
        except NetworkError as exc:
            raise self.fail_graph(str(exc)) from exc

    # -- graph structure ------------------------------------------------------------------------
    def _input_shape(self, inp: Any) -> tuple[int, ...]:
        t = inp.type
        if not t.HasField("tensor_type"):
            raise self.fail_graph(f"input {inp.name!r} is not a tensor")
        if t.tensor_type.elem_type not in _FLOAT_ELEM_TYPES:
            raise self.fail_graph(f"input {inp.name!r} has non-float element type {t.tensor_type.elem_type}")
        if not t.tensor_type.HasField("shape"):
            raise self.fail_graph(f"input {inp.name!r} has no declared shape")
        dims = []
        for k, d in enumerate(t.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif k == 0:
                dims.append(1)  # batch dimension
            else:
                raise self.fail_graph(f"input {inp.name!r}: dimension {k} is not fixed ({d.dim_param or '?'})")
        if not dims:
            dims = []
        return tuple(dims)

    def _needed_in_topological_order(self, out_name: str, known: set[str]) -> list[tuple[int, Any]]:
        nodes = list(self.graph.node)
        producer: dict[str, int] = {}
        for idx, n in enumerate(nodes):
            for o in n.output:
                if o:
                    producer[o] = idx
        needed: set[int] = set()
        stack = [out_name]
        seen: set[str] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in known or not t:
                continue
            seen.add(t)
            if t not in producer:
                raise self.fail_graph(f"tensor {t!r} is neither an input, an initializer nor a node output")
            idx = producer[t]
            if idx not in needed:
                needed.add(idx)
                stack.extend(nodes[idx].input)
        # Kahn's algorithm over the needed nodes, ties broken by file order
        avail = set(known) | {""}
        remaining = sorted(needed)
        order: list[tuple[int, Any]] = []
        while remaining:
            progressed = False
            rest = []
            for idx in remaining:
                if all(i in avail for i in nodes[idx].input):
                    order.append((idx, nodes[idx]))
                    avail.update(o for o in nodes[idx].output if o)
                    progressed = True
                else:
                    rest.append(idx)
            if not progressed:
                idx = rest[0]
                raise self.fail(nodes[idx], idx, "graph has a cycle")
            remaining = rest
        return order

    # -- constants ------------------------------------------------------------------------------
    def _const(self, node: Any, index: int, consts: dict[str, np.ndarray], name: str, what: str) -> np.ndarray:
        if name not in consts:
            raise self.fail(node, index, f"{what} {name!r} is not a constant")
        return consts[name]

    def _weight(self, node: Any, index: int, consts: dict[str, np.ndarray], name: str, what: str) -> np.ndarray:
        arr = self._const(node, index, consts, name, what)
        if arr.dtype.kind not in "fiub":
            raise self.fail(node, index, f"{what} {name!r} has unsupported type {arr.dtype}")
        out = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(out)):
            bad = np.argwhere(~np.isfinite(out))[0].tolist() if out.ndim else []
            raise self.fail(node, index, f"{what} {name!r} has a non-finite value at index {bad}")
        return out

    def _shape_of(self, node: Any, index: int, shape: tuple[int, ...]) -> np.ndarray:
        attrs = _attrs(node)
        s = np.array(shape, dtype=np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        return s[start:end]

    def _const_node(self, node: Any, index: int, consts: dict[str, np.ndarray]) -> None:
        """Evaluate a node whose inputs are all constant (weights, reshape targets)."""
        from onnx import helper, numpy_helper

        op = node.op_type
        attrs = _attrs(node)
        ins = [consts[i] if i else None for i in node.input]
        if any(i and i not in consts for i in node.input):
            missing = [i for i in node.input if i and i not in consts]
            raise self.fail(node, index, f"inputs {missing} are not available")
        try:
            if op == "Constant":
                if "value" in attrs:
                    val = numpy_helper.to_array(attrs["value"])
                elif "value_float" in attrs:
                    val = np.array(attrs["value_float"], dtype=np.float32)
                elif "value_floats" in attrs:
                    val = np.array(attrs["value_floats"], dtype=np.float32)
                elif "value_int" in attrs:
                    val = np.array(attrs["value_int"], dtype=np.int64)
                elif "value_ints" in attrs:
                    val = np.array(attrs["value_ints"], dtype=np.int64)
                else:
                    raise self.fail(node, index, f"unsupported Constant attribute(s) {sorted(attrs)}")
            elif op in ("Identity", "Dropout"):
                val = ins[0]
            elif op == "Cast":
                val = ins[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
            elif op == "Shape":
                val = self._shape_of(node, index, tuple(ins[0].shape))
            elif op == "Gather":
                val = np.take(ins[0], ins[1], axis=attrs.get("axis", 0))
            elif op == "Concat":
                val = np.concatenate([np.atleast_1d(a) for a in ins if a is not None], axis=attrs.get("axis", 0))
            elif op == "Unsqueeze":
                axes = _axes(attrs, ins)
                val = ins[0]
                nd = val.ndim + len(axes)
                for ax in sorted(a % nd for a in axes):
                    val = np.expand_dims(val, ax)
            elif op == "Squeeze":
                axes = _axes(attrs, ins)
                val = np.squeeze(ins[0], axis=None if axes is None else tuple(axes))
            elif op == "Reshape":
                val = ins[0].reshape(_reshape_target(ins[0].shape, ins[1], attrs.get("allowzero", 0)))
            elif op == "Flatten":
                val = ins[0].reshape(_flatten_target(ins[0].shape, attrs.get("axis", 1)))
            elif op == "Transpose":
                val = np.transpose(ins[0], attrs.get("perm"))
            elif op == "Slice":
                val = _slice(ins, attrs)
            elif op in ("Add", "Sub", "Mul", "Div"):
                a, b = ins[0], ins[1]
                if op == "Div" and a.dtype.kind in "iu" and b.dtype.kind in "iu":
                    val = (np.trunc(a / b)).astype(np.result_type(a, b))
                else:
                    val = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](a, b)
            elif op == "Neg":
                val = -ins[0]
            elif op == "MatMul":
                val = np.matmul(ins[0], ins[1])
            else:
                raise self.fail(node, index, "unsupported operator (on constants)")
        except FormatError:
            raise
        except Exception as exc:
            raise self.fail(node, index, f"cannot evaluate on constants: {exc}") from exc
        consts[node.output[0]] = np.asarray(val)

    # -- the data path --------------------------------------------------------------------------
    def _data_node(
        self, node: Any, index: int, s: _Affine, consts: dict[str, np.ndarray], layers: list[Layer]
    ) -> tuple[_Affine, Layer | None]:
        op = node.op_type
        attrs = _attrs(node)
        ins = list(node.input)
        if op == "Relu":
            if s.identity and layers and layers[-1].activation == "relu":
                return s, None  # relu(relu(z)) = relu(z)
            closed = s.layer("relu")
            return _Affine.start(s.shape), closed
        if op in ("Identity", "Dropout"):  # Dropout is the identity at inference
            return s, None
        if op == "Cast":
            to = attrs.get("to")
            if to not in _FLOAT_ELEM_TYPES:
                raise self.fail(node, index, f"cast of the data to non-float type {to}")
            if to in (10, 16):
                raise self.fail(node, index, "cast of the data to a 16-bit float type (not exact)")
            return s, None
        if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
            if op == "Flatten":
                target = _flatten_target(s.shape, attrs.get("axis", 1))
            elif op == "Reshape":
                shape_arg = self._const(node, index, consts, ins[1], "shape operand")
                target = _reshape_target(s.shape, shape_arg, attrs.get("allowzero", 0))
            elif op == "Squeeze":
                axes = _axes(attrs, [consts.get(i) if i else None for i in ins])
                target = np.squeeze(s.v, axis=None if axes is None else tuple(axes)).shape
            else:
                axes = _axes(attrs, [consts.get(i) if i else None for i in ins])
                if axes is None:
                    raise self.fail(node, index, "Unsqueeze without axes")
                nd = len(s.shape) + len(axes)
                tmp = s.v
                for ax in sorted(a % nd for a in axes):
                    tmp = np.expand_dims(tmp, ax)
                target = tmp.shape
            v = s.v.reshape(target)
            return _Affine(s.Mt.reshape((s.n_h, *v.shape)), v, s.identity), None
        if op == "Transpose":
            perm = attrs.get("perm")
            if perm is None:
                perm = list(range(len(s.shape)))[::-1]
            perm = [int(p) for p in perm]
            ident = s.identity and _is_row_major_noop(s.shape, perm)
            return _Affine(np.transpose(s.Mt, [0] + [p + 1 for p in perm]), np.transpose(s.v, perm), ident), None
        if op == "Neg":
            return _Affine(-s.Mt, -s.v, False), None
        if op in ("Add", "Sub", "Mul", "Div"):
            if len(ins) != 2:
                raise self.fail(node, index, f"expected two operands, got {len(ins)}")
            if "axis" in attrs:
                raise self.fail(node, index, "legacy broadcast with an 'axis' attribute is not supported")
            data_first = ins[0] not in consts
            other = ins[1] if data_first else ins[0]
            c = self._weight(node, index, consts, other, "operand")
            return _elementwise(s, c, op, data_first, lambda m: self.fail(node, index, m)), None
        if op == "MatMul":
            data_first = ins[0] not in consts
            other = ins[1] if data_first else ins[0]
            W = self._weight(node, index, consts, other, "second operand" if data_first else "first operand")
            return _matmul(s, W, data_first), None
        if op == "Gemm":
            if ins[0] in consts:
                raise self.fail(node, index, "the data must be operand A; operand B is not a constant")
            B = self._weight(node, index, consts, ins[1], "operand B")
            if len(s.shape) != 2:
                raise self.fail(node, index, f"operand A must be 2-D, the data has shape {list(s.shape)}")
            if B.ndim != 2:
                raise self.fail(node, index, f"operand B must be 2-D, has shape {list(B.shape)}")
            alpha = float(attrs.get("alpha", 1.0))
            beta = float(attrs.get("beta", 1.0))
            if attrs.get("transA", 0):
                s = _Affine(np.transpose(s.Mt, (0, 2, 1)), s.v.T, False)
            if attrs.get("transB", 0):
                B = B.T
            if s.shape[1] != B.shape[0]:
                raise self.fail(
                    node, index, f"shape mismatch: A' is {list(s.shape)}, B' is {list(B.shape)} (after transposes)"
                )
            s = _matmul(s, B, True)
            if alpha != 1.0:
                s = _Affine(s.Mt * alpha, s.v * alpha, False)
            if len(ins) > 2 and ins[2]:
                C = self._weight(node, index, consts, ins[2], "operand C")
                if np.broadcast_shapes(C.shape, s.shape) != s.shape:
                    raise self.fail(node, index, f"C of shape {list(C.shape)} does not broadcast to {list(s.shape)}")
                s = _Affine(s.Mt, s.v + beta * C, False)
            return s, None
        raise self.fail(node, index, "unsupported operator")


def _default_opset(model: Any) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _axes(attrs: dict[str, Any], ins: list[Any]) -> list[int] | None:
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in np.ravel(ins[1])]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


def _reshape_target(shape: tuple[int, ...], target: Any, allowzero: int) -> tuple[int, ...]:
    t = [int(d) for d in np.ravel(target)]
    if not allowzero:
        t = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(t)]
    size = int(np.prod(shape, dtype=np.int64))
    if t.count(-1) > 1:
        raise ValueError(f"reshape target {t} has more than one -1")
    if -1 in t:
        known = int(np.prod([d for d in t if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"shape mismatch: cannot reshape {list(shape)} to {t}")
        t[t.index(-1)] = size // known
    if int(np.prod(t, dtype=np.int64)) != size:
        raise ValueError(f"shape mismatch: cannot reshape {list(shape)} to {t}")
    return tuple(t)


def _flatten_target(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    nd = len(shape)
    if axis < 0:
        axis += nd
    if not 0 <= axis <= nd:
        raise ValueError(f"Flatten axis {axis} out of range for shape {list(shape)}")
    return int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64))


def _slice(ins: list[Any], attrs: dict[str, Any]) -> np.ndarray:
    data = ins[0]
    if len(ins) >= 3:
        starts, ends = np.ravel(ins[1]), np.ravel(ins[2])
        axes = np.ravel(ins[3]) if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
        steps = np.ravel(ins[4]) if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), dtype=np.int64)
    else:
        starts, ends = attrs["starts"], attrs["ends"]
        axes = attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    sl = [slice(None)] * data.ndim
    big = np.iinfo(np.int64).max // 2
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        en = None if en >= big else int(en)
        sl[int(ax)] = slice(int(st), en, int(sp))
    return data[tuple(sl)]


def _is_row_major_noop(shape: tuple[int, ...], perm: list[int]) -> bool:
    """Whether transposing ``shape`` by ``perm`` keeps the row-major order (only size-1 axes move)."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _elementwise(s: _Affine, c: np.ndarray, op: str, data_first: bool, fail: Any) -> _Affine:
    out_shape = np.broadcast_shapes(s.shape, c.shape)
    pad = (1,) * (len(out_shape) - len(s.shape))
    Mt = s.Mt.reshape((s.n_h, *pad, *s.shape))
    v = s.v.reshape(pad + s.shape)
    full = (s.n_h, *out_shape)
    if op == "Add":
        return _Affine(np.array(np.broadcast_to(Mt, full)), v + c, False)
    if op == "Sub":
        if data_first:
            return _Affine(np.array(np.broadcast_to(Mt, full)), v - c, False)
        return _Affine(-np.array(np.broadcast_to(Mt, full)), c - v, False)
    if op == "Mul":
        return _Affine(np.array(np.broadcast_to(Mt * c, full)), v * c, False)
    # Div
    if not data_first:
        raise fail("division by the network input is not affine")
    if np.any(c == 0):
        raise fail("division by zero")
    return _Affine(np.array(np.broadcast_to(Mt / c, full)), v / c, False)


def _matmul(s: _Affine, W: np.ndarray, data_first: bool) -> _Affine:
    """``T @ W`` (data first) or ``W @ T`` applied to an affine tensor, with numpy/ONNX semantics."""
    v = s.v
    f = (lambda T: np.matmul(T, W)) if data_first else (lambda T: np.matmul(W, T))
    try:
        v2 = f(v)
    except ValueError as exc:
        a, b = (v.shape, W.shape) if data_first else (W.shape, v.shape)
        raise ValueError(f"shape mismatch: cannot multiply {list(a)} by {list(b)}") from exc
    if data_first:
        vectorised = (v.ndim >= 2 and W.ndim <= v.ndim) or (v.ndim == 1 and W.ndim <= 2)
    else:
        vectorised = v.ndim >= 2 and W.ndim <= v.ndim
    if vectorised:
        Mt = f(s.Mt)
    else:
        Mt = np.stack([f(s.Mt[j]) for j in range(s.n_h)])
    if Mt.shape[1:] != v2.shape:  # pragma: no cover - guards the vectorisation
        raise ValueError(f"internal shape error {Mt.shape} vs {v2.shape}")
    return _Affine(Mt, v2, False)


def load_onnx(path: str | Path) -> FNN:
    """Read a feed-forward ReLU network from an ONNX file (see the module docstring for what is accepted).

    ``FNN.name`` is the file stem; ``metadata`` holds ``source``, ``format="onnx"``, ``opset`` and a
    few facts about the graph (``ir_version``, ``producer``, ``input_name``, ``input_shape`` with the
    batch dimension taken as 1, ``output_name``).
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise FormatError(f"{path}: not a readable ONNX model: {exc}") from exc
    return _Walker(path, model).run()


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def _forward_and_scale(net: FNN, x: np.ndarray) -> tuple[np.ndarray, float]:
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    for layer in net.layers[:-1]:
        h = layer(h)
    last = net.layers[-1]
    terms = np.abs(h) @ np.abs(last.W).T + np.abs(last.b)
    return last(h), float(terms.max(initial=0.0))


def output_scale(net: FNN, x: Any) -> float:
    """``max (|W_L|·|h_{L-1}(x)| + |b_L|)`` over the batch ``x`` and the outputs (float64).

    The largest magnitude of the terms summed into an output: the scale of float32 round-off in the
    outputs (see the module docstring). At least ``max |net(x)|``.
    """
    return _forward_and_scale(net, x)[1]


def float32_error(net: FNN, x: Any, y32: Any) -> tuple[float, float]:
    """``(max |y32 − net(x)|, that divided by output_scale(net, x))`` for a float32 evaluation ``y32``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y64, scale = _forward_and_scale(net, x)
    err = float(np.abs(np.asarray(y32, dtype=np.float64).reshape(y64.shape) - y64).max(initial=0.0))
    return err, (err / scale if scale > 0 else (0.0 if err == 0 else float("inf")))


def sample_inputs(net: FNN, n: int, seed: int = 0) -> np.ndarray:
    """Random inputs: uniform over ``input_domain`` coordinates no wider than 1e12, N(0, 1) otherwise
    (clipped to the domain when one is set)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, net.n_inputs))
    if net.input_domain is not None:
        lo, hi = net.input_domain
        narrow = (hi - lo) <= 1e12
        u = rng.uniform(size=(n, net.n_inputs))
        x = np.where(narrow, lo + u * (hi - lo), np.clip(x, lo, hi))
    return x


def save_onnx(
    net: FNN,
    path: str | Path,
    opset: int = 13,
    ir_version: int = 8,
    check: bool = True,
    *,
    style: str = "gemm",
    batch: int | str = 1,
    n_samples: int = 256,
    seed: int = 0,
    rtol: float | None = None,
) -> dict[str, Any]:
    """Write ``net`` as a float32 ONNX model and check it; returns a report dict.

    Input ``"X"`` of shape ``[batch, n_in]`` (``batch=1`` by default; a string makes it symbolic),
    output ``"Y"`` of shape ``[batch, n_out]``; ``style="gemm"`` writes ``Gemm(transB=1)`` per
    layer, ``style="matmul"`` writes ``MatMul`` + ``Add``; ReLU layers are followed by ``Relu``.

    With ``check=True`` the model is validated with ``onnx.checker.check_model(full_check=True)``
    and evaluated with onnxruntime on ``n_samples`` random inputs (:func:`sample_inputs`); the result
    must satisfy ``max |y_ort − net.forward(x)| ≤ rtol · output_scale(net, x)`` with ``rtol = 1e-4``
    unless given (see the module docstring). Returns ``{"path", "max_abs_err", "max_rel_err",
    "opset", "ir_version", "rtol", "n_samples"}`` (``max_rel_err`` is ``max_abs_err`` divided by the
    output scale; errors are ``None`` without a check); raises :class:`ExportError` on failure.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    if style not in ("gemm", "matmul"):
        raise ValueError(f"style must be 'gemm' or 'matmul', not {style!r}")
    f32max = float(np.finfo(np.float32).max)
    for i, layer in enumerate(net.layers):
        if np.abs(layer.W).max(initial=0.0) > f32max or np.abs(layer.b).max(initial=0.0) > f32max:
            raise ExportError(f"{path}: layer {i} of {net.name!r} has weights outside the float32 range")

    inits, nodes = [], []
    cur = "X"
    last = net.depth - 1
    for i, layer in enumerate(net.layers):
        out = "Y" if (i == last and layer.activation == "linear") else f"z{i}"
        if style == "gemm":
            inits.append(numpy_helper.from_array(layer.W.astype(np.float32), f"W{i}"))
            inits.append(numpy_helper.from_array(layer.b.astype(np.float32), f"B{i}"))
            nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [out], name=f"gemm_{i}", transB=1))
        else:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(layer.W.T).astype(np.float32), f"W{i}"))
            inits.append(numpy_helper.from_array(layer.b.astype(np.float32), f"B{i}"))
            nodes.append(helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"], name=f"matmul_{i}"))
            nodes.append(helper.make_node("Add", [f"m{i}", f"B{i}"], [out], name=f"add_{i}"))
        cur = out
        if layer.activation == "relu":
            out = "Y" if i == last else f"h{i}"
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"relu_{i}"))
            cur = out
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, net.n_inputs])
    Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, net.n_outputs])
    graph = helper.make_graph(nodes, _safe_name(net.name) or "fnn", [X], [Y], initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="equivrepair", ir_version=ir_version
    )
    model.ir_version = ir_version
    if net.name:
        model.doc_string = f"equivrepair FNN {net.name} sha256 {net.content_hash}"
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{path}: onnx.checker rejects the exported model: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))

    report: dict[str, Any] = {
        "path": str(path),
        "max_abs_err": None,
        "max_rel_err": None,
        "opset": opset,
        "ir_version": ir_version,
        "rtol": None,
        "n_samples": 0,
    }
    if not check:
        return report
    tol = DEFAULT_RTOL if rtol is None else float(rtol)
    x = sample_inputs(net, n_samples, seed)
    x32 = x.astype(np.float32).astype(np.float64)  # what onnxruntime sees
    y_ort = onnx_runtime_forward(path, x32)
    abs_err, rel_err = float32_error(net, x32, y_ort)
    report.update(max_abs_err=abs_err, max_rel_err=rel_err, rtol=tol, n_samples=int(n_samples))
    if not rel_err <= tol:
        raise ExportError(
            f"{path}: onnxruntime disagrees with {net.name!r} beyond float32 round-off: max error {abs_err:.3g} "
            f"is {rel_err:.3g} of the output scale {output_scale(net, x32):.3g} (tolerance {tol:g})"
        )
    return report


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)


def onnx_runtime_forward(path: str | Path, x: Any) -> np.ndarray:
    """Evaluate an ONNX file with onnxruntime on one input (n_in,) or a batch (N, n_in); float64 result.

    Each input row is reshaped to the model's declared input shape. A symbolic first dimension is
    run as one batch; a first dimension fixed to 1 (e.g. ``[1, 784, 1]``, ``[1, 1, 1, 5]``) is run
    sample by sample. Returns (N, n_out) (or (n_out,) for a single input), the row-major flattening of
    the first output.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}.get(inp.type)
    if dtype is None:
        raise FormatError(f"{path}: input {inp.name!r} has unsupported type {inp.type}")
    arr = np.asarray(x, dtype=np.float64)
    single = arr.ndim == 1
    batch = arr.reshape(1, -1) if single else arr.reshape(arr.shape[0], -1)
    n, n_in = batch.shape
    shape = list(inp.shape)
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if not shape:
        raise FormatError(f"{path}: input {inp.name!r} is a scalar")
    rest = fixed[1:]
    if fixed[0] is None:
        per = [-1 if d is None else d for d in rest]
        if per.count(-1) > 1:
            raise FormatError(f"{path}: input {inp.name!r} has several symbolic dimensions {shape}")
        outs = sess.run(None, {inp.name: batch.astype(dtype).reshape([n, *per])})
        y = np.asarray(outs[0], dtype=np.float64).reshape(n, -1)
    else:
        full = [d if d is not None else -1 for d in fixed]
        if full.count(-1) > 1 or (-1 not in full and int(np.prod(full)) != n_in):
            raise FormatError(f"{path}: input {inp.name!r} of shape {shape} does not hold {n_in} values")
        ys = []
        for row in batch.astype(dtype):
            ys.append(np.asarray(sess.run(None, {inp.name: row.reshape(full)})[0], dtype=np.float64).ravel())
        y = np.stack(ys)
    return y[0] if single else y
