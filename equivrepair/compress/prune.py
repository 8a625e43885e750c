"""Pruning, numpy only: unstructured magnitude pruning with a fixed mask, and structured neuron pruning.

Magnitude pruning zeroes the smallest-|w| weights to a target sparsity, either in each layer
(``scope="layer"``: every selected weight matrix reaches the sparsity) or over all selected layers
at once (``scope="global"``: one threshold). Exactly ``round(sparsity * n)`` weights are zeroed
(ties broken by position), biases are never pruned. The keep-mask is stored in the network's
metadata (``"pruning"``, bit-packed and base64-encoded so it survives JSON); :func:`get_masks`
returns it as boolean arrays and :func:`apply_masks` re-applies it after retraining, which is how
``torch_train`` keeps pruned weights at zero. Pruning an already pruned network keeps the old mask
(the new one is its subset).

Neuron pruning removes whole hidden ReLU neurons (a row of ``W_i`` and ``b_i`` and the matching
column of ``W_{i+1}``), keeping a fraction of each hidden layer ranked by a criterion:

* ``l1-in``: L1 norm of the incoming weights (row of ``W_i``);
* ``l1-out``: L1 norm of the outgoing weights (column of ``W_{i+1}``);
* ``l1-in-out``: product of the two (a neuron with tiny in- or outflow matters little);
* ``mean-activation``: mean ReLU output on data ``X`` (required);
* ``random``: uniformly at random (a baseline).

With ``compensate=True`` (needs ``X``) the removed neurons' mean activations times their outgoing
weights are added to the next bias ("mean replacement"), which removes the first-order error.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..nets.ir import FNN, Layer
from .quantize import layer_indices

__all__ = [
    "CRITERIA",
    "magnitude_prune",
    "get_masks",
    "apply_masks",
    "with_masks",
    "neuron_scores",
    "neuron_prune",
    "remove_neurons",
]

CRITERIA = ("l1-in", "l1-out", "l1-in-out", "mean-activation", "random")


# -- masks ---------------------------------------------------------------------------------------
def _pack(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.astype(bool).ravel()).tobytes()).decode("ascii")


def _unpack(text: str, shape: Sequence[int]) -> np.ndarray:
    n = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n]
    return bits.astype(bool).reshape(tuple(shape))


def get_masks(net: FNN) -> list[np.ndarray | None]:
    """Per layer, the boolean keep-mask of ``W`` recorded by pruning (``None`` for unmasked layers)."""
    pr = net.metadata.get("pruning")
    masks: list[np.ndarray | None] = [None] * net.depth
    if not pr:
        return masks
    for entry in pr.get("layers", []):
        i = int(entry["index"])
        shape = tuple(entry["shape"])
        if shape != net.layers[i].W.shape:
            raise ValueError(f"pruning mask of layer {i} has shape {shape}, weights have {net.layers[i].W.shape}")
        masks[i] = _unpack(entry["mask"], shape)
    return masks


def with_masks(net: FNN, masks: Sequence[np.ndarray | None], info: dict[str, Any] | None = None) -> FNN:
    """``net`` with ``masks`` recorded in its metadata and applied to its weights."""
    entries = []
    layers = []
    for i, (layer, m) in enumerate(zip(net.layers, masks)):
        if m is None:
            layers.append(layer)
            continue
        m = np.asarray(m, dtype=bool)
        if m.shape != layer.W.shape:
            raise ValueError(f"mask of layer {i} has shape {m.shape}, weights have {layer.W.shape}")
        entries.append({"index": i, "shape": list(m.shape), "mask": _pack(m), "kept": int(m.sum())})
        layers.append(Layer(np.where(m, layer.W, 0.0), layer.b, layer.activation))
    metadata = dict(net.metadata)
    pr = dict(metadata.get("pruning") or {})
    pr.update(info or {})
    pr["layers"] = entries
    n_masked = sum(int(np.prod(e["shape"])) for e in entries)
    pr["sparsity_achieved"] = 1.0 - sum(e["kept"] for e in entries) / max(n_masked, 1)
    metadata["pruning"] = pr
    return net.replace(layers=tuple(layers), metadata=metadata)


def apply_masks(net: FNN, masks: Sequence[np.ndarray | None] | None = None) -> FNN:
    """Zero the masked-out weights again (after retraining); ``masks`` default to the recorded ones."""
    if masks is None:
        masks = get_masks(net)
    layers = [
        layer if m is None else Layer(np.where(m, layer.W, 0.0), layer.b, layer.activation)
        for layer, m in zip(net.layers, masks)
    ]
    return net.replace(layers=tuple(layers))


# -- magnitude pruning ---------------------------------------------------------------------------
def _smallest(mag: np.ndarray, k: int) -> np.ndarray:
    """Boolean array marking the ``k`` smallest entries of flat ``mag`` (stable: ties by position)."""
    out = np.zeros(mag.size, dtype=bool)
    if k > 0:
        out[np.argsort(mag, kind="stable")[:k]] = True
    return out


def magnitude_prune(
    net: FNN,
    sparsity: float,
    scope: str = "layer",
    layers: Sequence[int] | None = None,
) -> FNN:
    """Zero the smallest-magnitude weights so that a fraction ``sparsity`` of them is zero.

    ``scope="layer"`` prunes each selected layer to ``sparsity``; ``"global"`` ranks the weights of
    all selected layers together. Weights already masked by earlier pruning count as pruned (they
    are ranked first). ``layers`` defaults to all layers.
    """
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    chosen = sorted(layer_indices(net, layers))
    old = get_masks(net)
    # magnitude with old-masked weights forced to -1 so they are pruned first
    mags = {}
    for i in chosen:
        m = np.abs(net.layers[i].W).ravel().copy()
        if old[i] is not None:
            m[~old[i].ravel()] = -1.0
        mags[i] = m
    masks = list(old)
    if scope == "layer":
        for i in chosen:
            k = int(round(sparsity * mags[i].size))
            masks[i] = ~_smallest(mags[i], k).reshape(net.layers[i].W.shape)
    else:
        flat = np.concatenate([mags[i] for i in chosen]) if chosen else np.zeros(0)
        pruned = _smallest(flat, int(round(sparsity * flat.size)))
        start = 0
        for i in chosen:
            n = mags[i].size
            masks[i] = ~pruned[start : start + n].reshape(net.layers[i].W.shape)
            start += n
    info = {"kind": "magnitude", "scope": scope, "sparsity_target": float(sparsity), "source": net.content_hash}
    out = with_masks(net, masks, info)
    return out.replace(name=f"{net.name or 'net'}-p{int(round(100 * sparsity))}{scope[0]}")


# -- neuron pruning ------------------------------------------------------------------------------
def _hidden(net: FNN) -> list[int]:
    """Indices of layers whose outputs are prunable neurons (ReLU layers followed by another layer)."""
    return [i for i in range(net.depth - 1) if net.layers[i].activation == "relu"]


def neuron_scores(
    net: FNN,
    criterion: str = "l1-in",
    X: np.ndarray | None = None,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Importance score of every hidden neuron, per hidden layer index (larger = keep)."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r} (known: {', '.join(CRITERIA)})")
    hidden = _hidden(net)
    if criterion == "mean-activation":
        if X is None:
            raise ValueError("criterion 'mean-activation' needs data X")
        pres = net.activations(np.asarray(X, dtype=np.float64))
        return {i: np.maximum(pres[i], 0.0).mean(axis=0) for i in hidden}
    rng = np.random.default_rng(seed)
    scores = {}
    for i in hidden:
        w_in = np.abs(net.layers[i].W).sum(axis=1)
        w_out = np.abs(net.layers[i + 1].W).sum(axis=0)
        if criterion == "l1-in":
            scores[i] = w_in
        elif criterion == "l1-out":
            scores[i] = w_out
        elif criterion == "l1-in-out":
            scores[i] = w_in * w_out
        else:
            scores[i] = rng.random(net.layers[i].n_out)
    return scores


def remove_neurons(
    net: FNN,
    keep: dict[int, Sequence[int]],
    fold_constant: dict[int, np.ndarray] | None = None,
) -> FNN:
    """Keep only the neurons ``keep[i]`` (sorted indices) of hidden layers ``i``.

    ``fold_constant[i]`` (optional, one value per neuron of layer ``i``) is the constant output to
    assume for the removed neurons: their outgoing weights times it are added to the next bias.
    Pruning masks in the metadata are subset along; quantization metadata is dropped (per-channel
    scales no longer line up) and noted as ``"quantization_dropped"``.
    """
    layers = list(net.layers)
    masks = get_masks(net)
    had_masks = any(m is not None for m in masks)
    for i in sorted(keep):
        idx = np.asarray(sorted(int(k) for k in keep[i]), dtype=np.int64)
        if i < 0 or i >= net.depth - 1:
            raise ValueError(f"layer {i} has no prunable neurons (the output layer cannot be narrowed)")
        n = layers[i].n_out
        if idx.size == 0:
            raise ValueError(f"layer {i}: cannot remove all {n} neurons")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"layer {i}: neuron index out of range 0..{n - 1}")
        cur, nxt = layers[i], layers[i + 1]
        b_next = nxt.b
        if fold_constant is not None and i in fold_constant:
            removed = np.setdiff1d(np.arange(n), idx)
            b_next = b_next + nxt.W[:, removed] @ np.asarray(fold_constant[i], dtype=np.float64)[removed]
        layers[i] = Layer(cur.W[idx], cur.b[idx], cur.activation)
        layers[i + 1] = Layer(nxt.W[:, idx], b_next, nxt.activation)
        if masks[i] is not None:
            masks[i] = masks[i][idx]
        if masks[i + 1] is not None:
            masks[i + 1] = masks[i + 1][:, idx]
    metadata = dict(net.metadata)
    if "quantization" in metadata:
        metadata.pop("quantization")
        metadata["quantization_dropped"] = True
    out = net.replace(layers=tuple(layers), metadata=metadata)
    if had_masks:
        out = with_masks(out, masks)
    return out


def neuron_prune(
    net: FNN,
    keep: float | Sequence[float] = 0.5,
    criterion: str = "l1-in",
    X: np.ndarray | None = None,
    compensate: bool = False,
    seed: int = 0,
) -> FNN:
    """Remove the least important neurons of every hidden ReLU layer.

    ``keep`` is the fraction of neurons kept (one value, or one per hidden layer); each layer keeps
    ``max(1, round(keep * width))`` neurons, the ones with the largest scores under ``criterion``
    (ties by position). ``compensate=True`` folds the removed neurons' mean activation on ``X``
    into the next bias. Metadata ``"neuron_pruning"`` records criterion, widths and kept indices.
    """
    hidden = _hidden(net)
    fracs = [float(keep)] * len(hidden) if np.isscalar(keep) else [float(k) for k in keep]  # type: ignore[arg-type]
    if len(fracs) != len(hidden):
        raise ValueError(f"keep has {len(fracs)} fractions for {len(hidden)} hidden layers")
    if any(not 0.0 < f <= 1.0 for f in fracs):
        raise ValueError(f"keep fractions must be in (0, 1], got {fracs}")
    if compensate and X is None:
        raise ValueError("compensate=True needs data X")
    scores = neuron_scores(net, criterion, X, seed=seed)
    keep_idx = {}
    for i, f in zip(hidden, fracs):
        n = net.layers[i].n_out
        k = max(1, int(round(f * n)))
        order = np.argsort(-scores[i], kind="stable")
        keep_idx[i] = np.sort(order[:k])
    fold = None
    if compensate:
        # remove layer by layer, so that the mean activations are those of the already narrowed net
        out = net
        for i in hidden:
            pres = out.activations(np.asarray(X, dtype=np.float64))
            means = np.maximum(pres[i], 0.0).mean(axis=0)
            out = remove_neurons(out, {i: keep_idx[i]}, fold_constant={i: means})
    else:
        out = remove_neurons(net, keep_idx, fold_constant=fold)
    metadata = dict(out.metadata)
    metadata["neuron_pruning"] = {
        "criterion": criterion,
        "keep": fracs,
        "compensate": bool(compensate),
        "widths_before": net.widths,
        "widths_after": out.widths,
        "kept": {str(i): keep_idx[i].tolist() for i in hidden},
        "source": net.content_hash,
    }
    return out.replace(metadata=metadata, name=f"{net.name or 'net'}-n{'-'.join(map(str, out.widths[1:-1]))}")
