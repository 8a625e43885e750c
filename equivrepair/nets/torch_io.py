"""torch ``nn.Sequential`` ⇄ :class:`~equivrepair.nets.ir.FNN`.

This is the only module of ``equivrepair.nets`` that uses torch, and it imports torch inside the
functions: importing this module (or the package) works without torch installed.

* :func:`to_torch` builds ``Sequential(Linear, ReLU, Linear, ReLU, ..., Linear)`` (a ReLU after
  every ReLU layer), float32 by default.
* :func:`from_torch` reads a ``Sequential`` (nested ``Sequential``\\s are flattened) of ``Linear``
  (with or without bias), ``ReLU``, ``Flatten``, ``Identity`` and ``Dropout`` (the identity in
  evaluation, which is how a verified network is used). Consecutive ``Linear`` modules fold into one
  layer; ``Flatten`` is a no-op on the flat vectors of the IR. Anything else raises
  :class:`~equivrepair.errors.FormatError` naming the module (its path in the Sequential and type).
  Weights are converted to float64 exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FormatError
from .ir import FNN, Layer, NetworkError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["SUPPORTED_MODULES", "from_torch", "state_dict_to_fnn", "to_torch"]

SUPPORTED_MODULES = ("Sequential", "Linear", "ReLU", "Flatten", "Identity", "Dropout")


def to_torch(net: FNN, dtype: torch.dtype | None = None) -> torch.nn.Sequential:
    """An ``nn.Sequential`` of ``Linear``/``ReLU`` computing ``net`` (``dtype`` float32 unless given), in eval mode."""
    import torch
    from torch import nn

    dtype = torch.float32 if dtype is None else dtype
    mods: list[nn.Module] = []
    for layer in net.layers:
        lin = nn.Linear(layer.n_in, layer.n_out, bias=True, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.array(layer.W), dtype=dtype))
            lin.bias.copy_(torch.tensor(np.array(layer.b), dtype=dtype))
        mods.append(lin)
        if layer.activation == "relu":
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def _walk(module: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    from torch import nn

    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _walk(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or "(root)", module


def _np(t: Any) -> np.ndarray:
    import torch

    return t.detach().cpu().to(dtype=torch.float64).numpy().copy()


def from_torch(module: Any, name: str = "") -> FNN:
    """Read a ``Sequential`` of ``Linear``/``ReLU``/``Flatten``/``Identity``/``Dropout`` into an FNN (float64)."""
    from torch import nn

    if not isinstance(module, nn.Module):
        raise FormatError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    layers: list[Layer] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None  # affine map since the last ReLU
    where = f" in {name!r}" if name else ""
    for path, mod in _walk(module, ""):
        kind = type(mod).__name__
        if isinstance(mod, nn.Linear):
            W = _np(mod.weight)
            b = _np(mod.bias) if mod.bias is not None else np.zeros(W.shape[0])
            if pending is not None:
                if pending[0].shape[0] != W.shape[1]:
                    raise FormatError(
                        f"from_torch{where}: module {path} ({kind}) expects {W.shape[1]} inputs, "
                        f"the previous module gives {pending[0].shape[0]}"
                    )
                W, b = W @ pending[0], W @ pending[1] + b
            elif layers and layers[-1].n_out != W.shape[1]:
                raise FormatError(
                    f"from_torch{where}: module {path} ({kind}) expects {W.shape[1]} inputs, "
                    f"the previous layer gives {layers[-1].n_out}"
                )
            pending = (W, b)
        elif isinstance(mod, nn.ReLU):
            if pending is not None:
                layers.append(_layer(pending, "relu", where, path, kind))
                pending = None
            elif layers and layers[-1].activation == "relu":
                continue  # relu(relu(z)) = relu(z)
            elif layers:
                n = layers[-1].n_out
                layers.append(Layer(np.eye(n), np.zeros(n), "relu"))
            else:
                raise FormatError(
                    f"from_torch{where}: module {path} ({kind}) comes before any Linear; the input size is unknown"
                )
        elif isinstance(mod, (nn.Flatten, nn.Identity, nn.Dropout)):
            continue
        else:
            raise FormatError(
                f"from_torch{where}: unsupported module {path} ({kind}); supported: {', '.join(SUPPORTED_MODULES)}"
            )
    if pending is not None:
        layers.append(_layer(pending, "linear", where, "(end)", "Linear"))
    if not layers:
        raise FormatError(f"from_torch{where}: no Linear module")
    try:
        return FNN(tuple(layers), metadata={"format": "torch"}, name=name)
    except NetworkError as exc:
        raise FormatError(f"from_torch{where}: {exc}") from exc


def _layer(pending: tuple[np.ndarray, np.ndarray], act: str, where: str, path: str, kind: str) -> Layer:
    try:
        return Layer(pending[0], pending[1], act)
    except NetworkError as exc:
        raise FormatError(f"from_torch{where}: module {path} ({kind}): {exc}") from exc


def state_dict_to_fnn(state: Any, name: str = "") -> FNN:
    """An FNN from a ``state_dict`` of a Sequential of Linear layers (``<k>.weight``, ``<k>.bias`` in order).

    A state dict does not record activations: ReLU is assumed between consecutive Linear layers
    and the last layer is linear (the convention of ``Sequential(Linear, ReLU, ..., Linear)``).
    """
    import torch

    items = [(k, v) for k, v in dict(state).items() if isinstance(v, torch.Tensor)]
    weights: list[tuple[str, np.ndarray]] = [(k, _np(v)) for k, v in items if k.endswith("weight")]
    if not weights:
        raise FormatError(f"state dict {name!r}: no '*.weight' tensors")
    by_key = dict(items)
    Ws, bs = [], []
    for key, W in weights:
        if W.ndim != 2:
            raise FormatError(f"state dict {name!r}: {key} has shape {list(W.shape)}, not a Linear weight")
        bkey = key[: -len("weight")] + "bias"
        b = _np(by_key[bkey]) if bkey in by_key else np.zeros(W.shape[0])
        Ws.append(W)
        bs.append(b)
    try:
        return FNN.from_arrays(Ws, bs, metadata={"format": "torch-state-dict"}, name=name)
    except NetworkError as exc:
        raise FormatError(f"state dict {name!r}: {exc}") from exc
