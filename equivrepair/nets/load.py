"""Read and write a network by file suffix: ``.onnx``, ``.nnet``, ``.pt``/``.pth`` (torch).

``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``, allowing only the module
classes that :func:`~equivrepair.nets.torch_io.from_torch` accepts (no arbitrary unpickling): a
``torch.save``'d ``nn.Sequential`` or a ``state_dict`` of one (for a state dict, ReLU is assumed
between the Linear layers, the last layer linear). They are written as a ``torch.save``'d
``nn.Sequential`` (float32 unless ``dtype`` is given).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import FormatError
from .ir import FNN

__all__ = ["SUFFIXES", "load_network", "save_network"]

SUFFIXES = (".onnx", ".nnet", ".pt", ".pth")


def _suffix(path: Path) -> str:
    suf = path.suffix.lower()
    if suf not in SUFFIXES:
        raise FormatError(
            f"{path}: unknown network format {suf or '(no suffix)'!r}; expected one of {', '.join(SUFFIXES)}"
        )
    return suf


def load_network(path: str | Path, **kwargs: Any) -> FNN:
    """Read a network, dispatching on the suffix; ``kwargs`` go to the format's reader (e.g. ``load_nnet``'s flags)."""
    path = Path(path)
    suf = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suf == ".onnx":
        from .onnx_io import load_onnx

        return load_onnx(path, **kwargs)
    if suf == ".nnet":
        from .nnet_io import load_nnet

        return load_nnet(path, **kwargs)
    return _load_torch(path, **kwargs)


def _load_torch(path: Path) -> FNN:
    import torch
    from torch import nn

    from .torch_io import from_torch, state_dict_to_fnn

    allowed = [nn.Sequential, nn.Linear, nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"it contains {m.group(1)}, which is not a supported module" if m else f"{type(exc).__name__}: {exc}"
        raise FormatError(f"{path}: cannot load as a torch Sequential or state dict: {what}") from exc
    meta = {"source": str(path)}
    if isinstance(obj, nn.Module):
        net = from_torch(obj, name=path.stem)
    elif isinstance(obj, dict):
        net = state_dict_to_fnn(obj, name=path.stem)
    else:
        raise FormatError(f"{path}: holds a {type(obj).__name__}, not an nn.Sequential or a state dict")
    return net.replace(metadata={**dict(net.metadata), **meta})


def save_network(net: FNN, path: str | Path, **kwargs: Any) -> Any:
    """Write a network, dispatching on the suffix; returns what the writer returns (``save_onnx``'s report)."""
    path = Path(path)
    suf = _suffix(path)
    if suf == ".onnx":
        from .onnx_io import save_onnx

        return save_onnx(net, path, **kwargs)
    if suf == ".nnet":
        from .nnet_io import save_nnet

        return save_nnet(net, path, **kwargs)
    import torch

    from .torch_io import to_torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_torch(net, **kwargs), str(path))
    return path


def read_metadata_sidecar(path: str | Path, meta: str | Path | None = None) -> tuple[dict, str | None]:
    """Compression metadata of the network file ``path``: from ``meta`` when given, else from the
    sidecar ``<path>.meta.json`` that ``equivrepair compress`` writes, when present. Either file holds
    ``{"metadata": {...}}`` (the sidecar) or the metadata object itself. Returns it and the file used."""
    p = Path(meta) if meta is not None else Path(str(path) + ".meta.json")
    if not p.is_file():
        if meta is not None:
            raise FileNotFoundError(f"{p}: no such metadata file")
        return {}, None
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise FormatError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    md = d.get("metadata", d) if isinstance(d, dict) else {}
    return dict(md), str(p)


def with_metadata(net: FNN, md: dict) -> FNN:
    """``net`` with ``md`` merged over its metadata."""
    return net.replace(metadata={**dict(net.metadata), **md}) if md else net


def load_compressed(path: str | Path, meta: str | Path | None = None, **kwargs: Any) -> tuple[FNN, str | None]:
    """Read a compressed network and its compression metadata (network files do not carry it; see
    :func:`read_metadata_sidecar`). Returns the network and the metadata file used (or ``None``)."""
    md, used = read_metadata_sidecar(path, meta)
    return with_metadata(load_network(path, **kwargs), md), used
