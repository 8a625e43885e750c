"""Compression suite: every compressor takes an FNN (and data where it trains) and returns an FNN.

numpy only: :func:`quantize` (post-training, b-bit grid), :func:`magnitude_prune` (fixed mask),
:func:`neuron_prune` (structured), :func:`lump` (exact/approximate lumping), :func:`size_report`.
torch (imported lazily, on first use): :func:`qat_train` (fake-quant QAT with STE), :func:`int8_qat`
(torch.ao eager-mode int8 QAT, fbgemm), :func:`curvature_prune` (K-FAC spectral-radius penalty),
:func:`train_classifier`, :func:`fine_tune`. :func:`accuracy` / :func:`predict` are numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from .lump import EXACT_TOLERANCE, interval_bounds, lump, sampled_discrepancy, widen
from .prune import CRITERIA, apply_masks, get_masks, magnitude_prune, neuron_prune, neuron_scores, remove_neurons
from .quantize import QuantizedTensor, on_grid, quantization_codes, quantize, quantize_array
from .report import SizeReport, accuracy, predict, size_report

_LAZY = {
    "qat_train": "qat",
    "fake_quantize": "qat",
    "int8_to_fnn": "qat",
    "int8_qat": "qat",
    "Int8QATResult": "qat",
    "curvature_prune": "curvature",
    "CurvaturePruneResult": "curvature",
    "train_classifier": "torch_train",
    "fine_tune": "torch_train",
}

__all__ = [
    "CRITERIA",
    "EXACT_TOLERANCE",
    "QuantizedTensor",
    "SizeReport",
    "accuracy",
    "predict",
    "apply_masks",
    "get_masks",
    "interval_bounds",
    "lump",
    "magnitude_prune",
    "neuron_prune",
    "neuron_scores",
    "on_grid",
    "quantization_codes",
    "quantize",
    "quantize_array",
    "remove_neurons",
    "sampled_discrepancy",
    "size_report",
    "widen",
    *_LAZY,
]


def __getattr__(name: str) -> Any:  # lazy torch-backed API
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
