"""Post-training quantization of weights (and optionally biases) to a b-bit grid, numpy only.

Grids (``b`` = 2..16 bits, codes ``q`` are integers, ``s`` > 0 the scale):

* ``symmetric``: codes in [-2^(b-1), 2^(b-1) - 1], value ``q * s``, ``s = max|w| / (2^(b-1) - 0.5)``
  (the full-range rule PyTorch uses for ``per_channel_symmetric`` qint8: ``s = max|w| / 127.5`` for
  b = 8). ``-max|w|`` maps to code -2^(b-1) + 0.5 rounded, ``+max|w|`` clamps to 2^(b-1) - 1; both
  are within s/2.
* ``affine``: codes in [0, 2^b - 1], value ``(q - z) * s`` with ``s = (max(w, 0) - min(w, 0)) / (2^b - 1)``
  and zero point ``z = round(-min(w, 0) / s)``; the range contains 0, so 0 stays exactly 0 (pruned
  weights stay pruned).

Either way a tensor takes at most 2^b distinct values and every value moves by at most ``s/2``
(``|w - deq(q(w))| <= s/2``). Rounding is to nearest, ties to even (``numpy.rint``). The scale is
per tensor or per output channel (row of ``W``, the ``(out, in)`` convention of the IR). Biases,
when quantized, use the same bits and scheme with one scale per bias vector (per-channel scales on
a bias would make every bias exact).

Scales are rounded up to ``24 - b`` significant bits (:func:`float32_exact_scale`), so every grid
value is an exact float32 number and the grid survives float32 ONNX export bit for bit (the
``s/2`` bound holds for the rounded scale; the scale grows by at most a relative 2^-(23-b)).

The result is an :class:`~equivrepair.nets.ir.FNN` whose weights are the dequantized float values,
exactly on the grid in float64: ``W == (codes - z) * s`` elementwise. The network's metadata
``"quantization"`` holds bits, scheme, granularity and, per quantized layer, scales and zero points;
:func:`quantization_codes` recovers the integer codes (and checks they are exact). Codes are kept
out of the metadata to keep it small when written into ONNX; they are a pure function of the
weights and the recorded scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..nets.ir import FNN, Layer

__all__ = [
    "SCHEMES",
    "GRANULARITIES",
    "QuantizedTensor",
    "quantize_array",
    "quantize",
    "quantization_codes",
    "on_grid",
    "grid_params",
    "float32_exact_scale",
]

SCHEMES = ("symmetric", "affine")
GRANULARITIES = ("per-tensor", "per-channel")


@dataclass(frozen=True)
class QuantizedTensor:
    """Integer codes with their scale(s) and zero point(s); ``values`` is the dequantized float64 array."""

    codes: np.ndarray  # int64, same shape as the input
    scale: np.ndarray  # shape (1,) per tensor or (rows,) per channel
    zero_point: np.ndarray  # int64, same shape as scale
    bits: int
    scheme: str
    axis: int | None  # None: per tensor; 0: one scale per row

    @property
    def qmin(self) -> int:
        return grid_params(self.bits, self.scheme)[0]

    @property
    def qmax(self) -> int:
        return grid_params(self.bits, self.scheme)[1]

    def _broadcast(self, a: np.ndarray) -> np.ndarray:
        if self.axis is None:
            return a.reshape(())
        shape = [1] * self.codes.ndim
        shape[self.axis] = -1
        return a.reshape(shape)

    @property
    def values(self) -> np.ndarray:
        return (self.codes - self._broadcast(self.zero_point)).astype(np.float64) * self._broadcast(self.scale)

    @property
    def max_error(self) -> np.ndarray:
        """The guaranteed bound ``s/2`` per scale."""
        return self.scale / 2.0


def grid_params(bits: int, scheme: str) -> tuple[int, int]:
    """(qmin, qmax) of the integer codes for ``bits`` and ``scheme``."""
    _check(bits, scheme)
    if scheme == "symmetric":
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _check(bits: int, scheme: str, granularity: str = "per-tensor") -> None:
    if not isinstance(bits, (int, np.integer)) or not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be an integer in 2..16, got {bits!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r} (known: {', '.join(GRANULARITIES)})")


def float32_exact_scale(scale: np.ndarray, bits: int) -> np.ndarray:
    """Round scales *up* to ``24 - bits`` significant bits (``max(24 - bits, 8)``).

    Then every grid value ``k * s`` with ``|k| < 2^bits`` needs at most 24 significant bits, so it
    is exactly representable in float32: the grid survives float32 ONNX export bit for bit. Rounding
    up keeps the range covered, so the ``s/2`` error bound holds for the rounded scale.
    """
    s = np.asarray(scale, dtype=np.float64)
    keep = max(24 - int(bits), 8)
    m, e = np.frexp(s)
    return np.ldexp(np.ceil(m * 2.0**keep) / 2.0**keep, e)


def quantize_array(
    w: np.ndarray, bits: int, scheme: str = "symmetric", axis: int | None = None, float32_exact: bool = True
) -> QuantizedTensor:
    """Quantize ``w`` to a ``bits``-bit grid; ``axis=0`` gives one scale per row, ``None`` one in all.

    A tensor (or row) that is all zero gets scale 1 and codes 0 (zero point for affine), so it stays 0.
    With ``float32_exact`` (default) the scale is rounded up by :func:`float32_exact_scale` so the
    dequantized values are exact float32 numbers.
    """
    _check(bits, scheme)
    w = np.asarray(w, dtype=np.float64)
    qmin, qmax = grid_params(bits, scheme)
    if axis is None:
        red = w.reshape(1, -1)
    else:
        red = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    if red.shape[1] == 0:
        red = np.zeros((red.shape[0], 1))
    if scheme == "symmetric":
        amax = np.max(np.abs(red), axis=1)
        scale = amax / (qmax + 0.5)
    else:
        lo = np.minimum(red.min(axis=1), 0.0)
        hi = np.maximum(red.max(axis=1), 0.0)
        scale = (hi - lo) / (qmax - qmin)
    scale = np.where(scale > 0, scale, 1.0)
    if float32_exact:
        scale = float32_exact_scale(scale, bits)
    if scheme == "symmetric":
        zero_point = np.zeros(scale.shape, dtype=np.int64)
    else:
        zero_point = np.clip(np.rint(-lo / scale), qmin, qmax).astype(np.int64)
    qt = QuantizedTensor(np.zeros(w.shape, dtype=np.int64), scale, zero_point, int(bits), scheme, axis)
    s = qt._broadcast(scale)
    z = qt._broadcast(zero_point)
    codes = np.clip(np.rint(w / s) + z, qmin, qmax).astype(np.int64)
    return QuantizedTensor(codes, scale, zero_point, int(bits), scheme, axis)


def quantize(
    net: FNN,
    bits: int,
    scheme: str = "symmetric",
    granularity: str = "per-tensor",
    biases: bool = False,
    layers: Sequence[int] | None = None,
) -> FNN:
    """Post-training quantization of ``net``'s weights (and biases with ``biases=True``).

    ``layers`` selects which layers (indices, negative allowed) are quantized; default all. The
    returned network's weights lie exactly on the grid (see the module docstring); its metadata
    ``"quantization"`` records the grid, and ``"quantization_source"`` the content hash of ``net``.
    """
    _check(bits, scheme, granularity)
    chosen = layer_indices(net, layers)
    axis = 0 if granularity == "per-channel" else None
    new_layers = []
    entries = []
    for i, layer in enumerate(net.layers):
        if i not in chosen:
            new_layers.append(layer)
            continue
        qw = quantize_array(layer.W, bits, scheme, axis=axis)
        W = qw.values
        entry = {
            "index": i,
            "scale": qw.scale.tolist(),
            "zero_point": qw.zero_point.tolist(),
            "max_weight_error": float(np.max(np.abs(W - layer.W))) if W.size else 0.0,
        }
        b = layer.b
        if biases:
            qb = quantize_array(layer.b, bits, scheme, axis=None)
            b = qb.values
            entry["bias_scale"] = qb.scale.tolist()
            entry["bias_zero_point"] = qb.zero_point.tolist()
            entry["max_bias_error"] = float(np.max(np.abs(b - layer.b))) if b.size else 0.0
        entries.append(entry)
        new_layers.append(Layer(W, b, layer.activation))
    metadata = dict(net.metadata)
    metadata["quantization"] = {
        "method": "ptq",
        "bits": int(bits),
        "scheme": scheme,
        "granularity": granularity,
        "biases": bool(biases),
        "qmin": grid_params(bits, scheme)[0],
        "qmax": grid_params(bits, scheme)[1],
        "rounding": "nearest, ties to even",
        "layers": entries,
    }
    metadata["quantization_source"] = net.content_hash
    name = f"{net.name or 'net'}-q{bits}{'a' if scheme == 'affine' else 's'}{'c' if axis == 0 else 't'}"
    return net.replace(layers=tuple(new_layers), metadata=metadata, name=name)


def layer_indices(net: FNN, layers: Sequence[int] | None) -> set[int]:
    """The layer indices ``layers`` names (negative counts from the end; None: all), checked."""
    if layers is None:
        return set(range(net.depth))
    out = set()
    for i in layers:
        j = int(i) + (net.depth if int(i) < 0 else 0)
        if not 0 <= j < net.depth:
            raise ValueError(f"layer index {i} out of range for a network of {net.depth} layers")
        out.add(j)
    return out


def _codes_for(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    z = np.asarray(zero_point, dtype=np.int64)
    if axis is None or s.size == 1:
        s, z = s.reshape(()), z.reshape(())
    else:
        s, z = s.reshape(-1, 1), z.reshape(-1, 1)
    codes = np.rint(values / s).astype(np.int64) + z
    back = (codes - z).astype(np.float64) * s
    if not np.array_equal(back, values):
        bad = np.argwhere(back != values)[0].tolist()
        raise ValueError(f"value at {bad} is not on the recorded grid")
    return codes


def quantization_codes(net: FNN) -> list[dict[str, np.ndarray]]:
    """Integer codes of every quantized layer: ``[{"index", "W_codes", "scale", "zero_point", ...}]``.

    Raises ``ValueError`` if a weight is not exactly on its recorded grid (e.g. the network was
    edited after quantization without re-quantizing).
    """
    q = net.metadata.get("quantization")
    if not q:
        raise ValueError(f"network {net.name!r} carries no quantization metadata")
    axis = 0 if q.get("granularity") == "per-channel" else None
    out = []
    for entry in q["layers"]:
        layer = net.layers[int(entry["index"])]
        rec = {
            "index": int(entry["index"]),
            "W_codes": _codes_for(layer.W, entry["scale"], entry["zero_point"], axis),
            "scale": np.asarray(entry["scale"], dtype=np.float64),
            "zero_point": np.asarray(entry["zero_point"], dtype=np.int64),
        }
        if "bias_scale" in entry:
            rec["b_codes"] = _codes_for(layer.b, entry["bias_scale"], entry["bias_zero_point"], None)
        out.append(rec)
    return out


def on_grid(net: FNN) -> bool:
    """Whether every quantized tensor of ``net`` is exactly on its recorded grid and in code range."""
    q = net.metadata.get("quantization")
    if not q:
        return False
    try:
        recs = quantization_codes(net)
    except ValueError:
        return False
    lo, hi = q.get("qmin"), q.get("qmax")
    for rec in recs:
        for key in ("W_codes", "b_codes"):
            if key in rec and rec[key].size and (rec[key].min() < lo or rec[key].max() > hi):
                return False
    return True
