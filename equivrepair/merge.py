"""The merged network of an original Φ1 and a compressed Φ2, whose output is Φ1(x) − Φ2(x).

Construction: the first layers are stacked (both read the same x), hidden layers are
block-diagonal, the shallower network is padded with identity ReLU layers (exact, because what
they carry is already non-negative after a ReLU), and a comparison layer [I, −I] subtracts the
outputs. By default the comparison is folded into the last layer (one linear map less for every
verifier); ``output="both"`` keeps y1 and y2 side by side instead (for top-1 equivalence).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.linalg import block_diag

from .nets.ir import FNN, Layer, NetworkError


class MergeError(NetworkError):
    """The two networks cannot be merged (input or output sizes differ, unsupported layers)."""


def normalise(net: FNN) -> FNN:
    """Fold linear hidden layers into their successors so that every hidden layer is ReLU.

    The result computes the same function; a trailing ReLU output layer is kept (followed by
    nothing), which merging handles by an explicit identity output layer.
    """
    layers: list[Layer] = []
    pending: Layer | None = None
    last = net.depth - 1
    for i, layer in enumerate(net.layers):
        if pending is not None:
            layer = Layer(layer.W @ pending.W, layer.W @ pending.b + layer.b, layer.activation)
            pending = None
        if layer.activation == "linear" and i < last:
            pending = layer
            continue
        layers.append(layer)
    if layers[-1].activation == "relu":
        n = layers[-1].n_out
        layers.append(Layer(np.eye(n), np.zeros(n), "linear"))
    return net.with_layers(layers)


def drop_identity_layers(net: FNN) -> FNN:
    """Remove hidden ReLU layers with W = I and b = 0 that follow a ReLU layer.

    Exact (bit for bit): what such a layer receives is already non-negative, so relu(I a + 0) = a.
    Identity padding added by merging or by hand disappears, so padded variants compare equal.
    """
    layers = list(net.layers)
    if len(layers) < 3:
        return net
    keep = [layers[0]]
    for layer in layers[1:-1]:
        n = layer.n_out
        is_id = (
            layer.activation == "relu"
            and keep[-1].activation == "relu"
            and layer.W.shape == (n, n)
            and np.array_equal(layer.W, np.eye(n))
            and not np.any(layer.b)
        )
        if not is_id:
            keep.append(layer)
    keep.append(layers[-1])
    return net if len(keep) == len(layers) else net.with_layers(keep)


def _hidden_and_output(net: FNN) -> tuple[list[Layer], Layer]:
    net = normalise(net)
    return list(net.layers[:-1]), net.layers[-1]


def _pad(hidden: list[Layer], out: Layer, n_in: int, depth: int) -> tuple[list[Layer], Layer]:
    """Pad a network to ``depth`` hidden ReLU layers without changing its function."""
    missing = depth - len(hidden)
    if missing <= 0:
        return hidden, out
    hidden = list(hidden)
    if not hidden:
        # no hidden layer: x may be negative, so carry it as (relu(x), relu(-x)) and recombine.
        eye = np.eye(n_in)
        hidden.append(Layer(np.vstack([eye, -eye]), np.zeros(2 * n_in), "relu"))
        out = Layer(out.W @ np.hstack([eye, -eye]), out.b, "linear")
        missing -= 1
    width = hidden[-1].n_out
    hidden.extend(Layer(np.eye(width), np.zeros(width), "relu") for _ in range(missing))
    return hidden, out


def merge(orig: FNN, comp: FNN, output: Literal["diff", "both"] = "diff", name: str = "") -> FNN:
    """The merged network; ``output="diff"`` gives y1 − y2, ``"both"`` gives [y1, y2]."""
    if orig.n_inputs != comp.n_inputs:
        raise MergeError(
            f"cannot merge: original {orig.name!r} has {orig.n_inputs} inputs, "
            f"compressed {comp.name!r} has {comp.n_inputs}"
        )
    if orig.n_outputs != comp.n_outputs:
        raise MergeError(
            f"cannot merge: original {orig.name!r} has {orig.n_outputs} outputs, "
            f"compressed {comp.name!r} has {comp.n_outputs}"
        )
    if output not in ("diff", "both"):
        raise MergeError(f"merge output must be 'diff' or 'both', not {output!r}")
    h1, o1 = _hidden_and_output(orig)
    h2, o2 = _hidden_and_output(comp)
    depth = max(len(h1), len(h2))
    h1, o1 = _pad(h1, o1, orig.n_inputs, depth)
    h2, o2 = _pad(h2, o2, comp.n_inputs, depth)

    layers: list[Layer] = []
    for i, (a, c) in enumerate(zip(h1, h2)):
        W = np.vstack([a.W, c.W]) if i == 0 else block_diag(a.W, c.W)
        layers.append(Layer(W, np.concatenate([a.b, c.b]), "relu"))
    if output == "diff":
        if depth == 0:
            W_out = o1.W - o2.W
        else:
            W_out = np.hstack([o1.W, -o2.W])
        layers.append(Layer(W_out, o1.b - o2.b, "linear"))
    else:
        W_out = np.vstack([o1.W, o2.W]) if depth == 0 else block_diag(o1.W, o2.W)
        layers.append(Layer(W_out, np.concatenate([o1.b, o2.b]), "linear"))

    domain = _common_domain(orig, comp)
    meta = {
        "kind": "merged",
        "output": output,
        "orig": {"name": orig.name, "sha256": orig.content_hash, "widths": orig.widths},
        "comp": {"name": comp.name, "sha256": comp.content_hash, "widths": comp.widths},
        "split": [len(h[-1].b) if h else orig.n_inputs for h in (h1, h2)],
    }
    return FNN(tuple(layers), input_domain=domain, metadata=meta, name=name or f"merged({orig.name},{comp.name})")


def _common_domain(a: FNN, b: FNN) -> tuple[np.ndarray, np.ndarray] | None:
    doms = [d for d in (a.input_domain, b.input_domain) if d is not None]
    if not doms:
        return None
    lo = np.max([d[0] for d in doms], axis=0)
    hi = np.min([d[1] for d in doms], axis=0)
    if np.any(lo > hi):
        return None
    return lo, hi
