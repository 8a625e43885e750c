"""Size reports for (compressed) networks: parameters, non-zeros, widths, bits per weight, bytes.

Storage model (stated, so the numbers can be compared across methods):

* weights take ``bits`` bits each: the quantization bit width recorded in the network's metadata
  (``metadata["quantization"]``), else 32 (float32, what ONNX export writes);
* biases take 32 bits unless the quantization metadata says biases were quantized too;
* each quantization scale is a float32 (4 bytes); affine schemes add a 4-byte zero point per scale;
* a layer is stored dense or sparse (CSR: every non-zero weight plus a column index of
  ``ceil(log2(n_in))`` bits, and a 32-bit row pointer per row), whichever is smaller;
* ``bytes`` is the sum over layers, rounded up to whole bytes per layer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..nets.ir import FNN

__all__ = ["SizeReport", "size_report", "accuracy", "predict"]


def predict(net: FNN, X: np.ndarray, batch: int = 10000) -> np.ndarray:
    """argmax of the float64 network outputs (numpy; the network as verified)."""
    X = np.asarray(X, dtype=np.float64)
    if len(X) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.argmax(net.forward(X[s : s + batch]), axis=1) for s in range(0, len(X), batch)])


def accuracy(net: FNN, X: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``net`` (float64 forward) on ``(X, y)``."""
    return float(np.mean(predict(net, X) == np.asarray(y)))


@dataclass(frozen=True)
class SizeReport:
    """How big a network is, by several measures (see the module docstring for the storage model)."""

    name: str
    widths: list[int]
    n_params: int
    n_nonzero: int
    n_weights: int
    n_nonzero_weights: int
    sparsity: float  # fraction of zero weights (biases not counted)
    distinct_weights: list[int]  # distinct values per weight matrix
    bits_per_weight: float
    bits_per_bias: float
    bytes: int
    bytes_float32_dense: int
    storage: list[str]  # "dense" or "sparse" per layer
    method: str = ""

    @property
    def compression_ratio(self) -> float:
        """float32-dense bytes over the reported bytes."""
        return self.bytes_float32_dense / max(self.bytes, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["compression_ratio"] = self.compression_ratio
        return d

    def format(self) -> str:
        lines = [
            f"size report {self.name or '(unnamed)'}" + (f" [{self.method}]" if self.method else ""),
            f"  widths            {'-'.join(map(str, self.widths))}",
            f"  parameters        {self.n_params} ({self.n_nonzero} non-zero)",
            f"  weights           {self.n_weights} ({self.n_nonzero_weights} non-zero, sparsity {self.sparsity:.4f})",
            f"  distinct weights  {self.distinct_weights} (per layer)",
            f"  bits per weight   {self.bits_per_weight:g} (biases {self.bits_per_bias:g})",
            f"  bytes             {self.bytes} ({'/'.join(self.storage)}; float32 dense {self.bytes_float32_dense}, "
            f"ratio {self.compression_ratio:.2f}x)",
        ]
        return "\n".join(lines)

    __str__ = format


def _method(net: FNN) -> str:
    parts = []
    md = net.metadata
    if "quantization" in md:
        q = md["quantization"]
        parts.append(f"quantize {q.get('bits')}b {q.get('scheme', '')} {q.get('granularity', '')}".strip())
    if "pruning" in md:
        parts.append(f"prune {md['pruning'].get('kind', 'magnitude')}")
    if "neuron_pruning" in md:
        parts.append(f"neuron-prune {md['neuron_pruning'].get('criterion', '')}".strip())
    if "lumping" in md:
        parts.append(f"lump {md['lumping'].get('mode', '')}".strip())
    if "curvature_pruning" in md:
        parts.append("curvature-prune")
    return ", ".join(parts)


def size_report(net: FNN) -> SizeReport:
    """The :class:`SizeReport` of ``net`` under the storage model of this module."""
    q = net.metadata.get("quantization") or {}
    q_layers = q.get("layers") or []
    quantized_idx = {int(entry["index"]) for entry in q_layers if "index" in entry}
    bits = float(q.get("bits", 32)) if q else 32.0
    bias_bits = bits if q.get("biases") else 32.0  # int8 QAT keeps float biases
    affine = q.get("scheme") == "affine"
    total_bits = 0
    total_bytes = 0
    storage = []
    n_weights = n_nz_w = 0
    distinct = []
    weight_bits = bias_bits_total = 0.0
    n_biases = 0
    for i, layer in enumerate(net.layers):
        W = layer.W
        is_q = bool(q) and i in quantized_idx
        wbits = bits if is_q else 32.0
        bbits = bias_bits if is_q else 32.0
        n_out, n_in = W.shape
        weight_bits += wbits * W.size
        bias_bits_total += bbits * layer.b.size
        n_biases += layer.b.size
        nnz = int(np.count_nonzero(W))
        n_weights += W.size
        n_nz_w += nnz
        distinct.append(int(np.unique(W).size))
        scale_bits = 0
        if is_q:
            entry = next((e for e in q_layers if int(e.get("index", -1)) == i), {})
            n_scales = len(np.atleast_1d(entry.get("scale", [1.0])))
            n_bscales = len(np.atleast_1d(entry.get("bias_scale", []))) if q.get("biases") else 0
            scale_bits = (n_scales + n_bscales) * 32 * (2 if affine else 1)
        dense = W.size * wbits
        idx_bits = max(1, math.ceil(math.log2(max(n_in, 2))))
        sparse = nnz * (wbits + idx_bits) + 32 * (n_out + 1)
        kind = "sparse" if sparse < dense else "dense"
        storage.append(kind)
        layer_bits = min(dense, sparse) + layer.b.size * bbits + scale_bits
        total_bits += layer_bits
        total_bytes += math.ceil(layer_bits / 8)
    return SizeReport(
        name=net.name,
        widths=list(net.widths),
        n_params=net.n_params,
        n_nonzero=net.n_nonzero,
        n_weights=n_weights,
        n_nonzero_weights=n_nz_w,
        sparsity=1.0 - n_nz_w / max(n_weights, 1),
        distinct_weights=distinct,
        bits_per_weight=weight_bits / max(n_weights, 1),
        bits_per_bias=bias_bits_total / max(n_biases, 1),
        bytes=int(total_bytes),
        bytes_float32_dense=int(4 * net.n_params),
        storage=storage,
        method=_method(net),
    )
