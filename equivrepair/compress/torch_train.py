"""torch training utilities for the compression suite: train or fine-tune an FNN classifier on arrays.

Training runs in float32 on CPU (cross-entropy on the raw outputs, Adam, cosine learning-rate
decay). Pruning masks recorded in the network's metadata are kept during training: masked weights
are zeroed after every optimizer step (and their gradients zeroed, so Adam's state stays clean),
so a pruned network stays pruned. Conversion uses ``equivrepair.nets.torch_io`` when available,
else the small private converters here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nets.ir import FNN, Layer
from .prune import get_masks
from .report import accuracy, predict

__all__ = ["to_module", "from_module", "train_classifier", "fine_tune", "accuracy", "predict", "batches"]


def to_module(net: FNN, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """``net`` as ``nn.Sequential`` of ``Linear``/``ReLU`` (a copy, in ``dtype``)."""
    try:
        from ..nets.torch_io import to_torch  # type: ignore[import-not-found]

        module = to_torch(net)
        return module.to(dtype)
    except ImportError:
        pass
    mods: list[nn.Module] = []
    for layer in net.layers:
        lin = nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(layer.W))
            lin.bias.copy_(torch.as_tensor(layer.b))
        mods.append(lin)
        if layer.activation == "relu":
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).to(dtype)


def from_module(module: nn.Module, like: FNN | None = None) -> FNN:
    """The ``Linear`` layers of ``module`` as an FNN; ``like`` supplies activations, domain, metadata, name."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if like is None:
        try:
            from ..nets.torch_io import from_torch  # type: ignore[import-not-found]

            return from_torch(module)
        except ImportError:
            pass
    if like is not None and len(linears) != like.depth:
        raise ValueError(f"module has {len(linears)} Linear layers, network has {like.depth}")
    layers = []
    for k, lin in enumerate(linears):
        act = like.layers[k].activation if like is not None else ("relu" if k < len(linears) - 1 else "linear")
        W = lin.weight.detach().cpu().double().numpy()
        b = lin.bias.detach().cpu().double().numpy() if lin.bias is not None else np.zeros(W.shape[0])
        layers.append(Layer(W, b, act))
    if like is None:
        return FNN(tuple(layers))
    return like.replace(layers=tuple(layers))


def batches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True):
    idx = rng.permutation(n) if shuffle else np.arange(n)
    for s in range(0, n, batch_size):
        yield idx[s : s + batch_size]


def _init_net(widths: Sequence[int], seed: int) -> FNN:
    torch.manual_seed(seed)
    mods = []
    for a, c in zip(widths[:-1], widths[1:]):
        mods.append(nn.Linear(a, c))  # PyTorch default (Kaiming-uniform) initialisation
    layers = []
    for k, lin in enumerate(mods):
        layers.append(
            Layer(
                lin.weight.detach().double().numpy(),
                lin.bias.detach().double().numpy(),
                "relu" if k < len(mods) - 1 else "linear",
            )
        )
    return FNN(tuple(layers), name="mlp-" + "-".join(map(str, widths)))


def train_classifier(
    net: FNN | Sequence[int],
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    keep_masks: bool = True,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    log: Callable[[str], Any] | None = None,
    extra_loss: Callable[[nn.Sequential, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    cosine: bool = True,
) -> FNN:
    """Train ``net`` (an FNN, or layer widths for a fresh PyTorch-initialised MLP) as a classifier.

    Cross-entropy on the raw outputs, Adam with ``lr`` decayed by a cosine schedule to 0 over the
    run. With ``keep_masks`` the pruning masks in the metadata stay enforced. ``extra_loss(module,
    xb, yb)`` is added to the loss (used by curvature-aware pruning). Returns the trained FNN with
    the input network's metadata; ``metadata["training"]`` records the settings and final losses.
    """
    base = net if isinstance(net, FNN) else _init_net(list(net), seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = to_module(base)
    linears = [m for m in module if isinstance(m, nn.Linear)]
    masks = get_masks(base) if keep_masks else [None] * base.depth
    tmasks = [None if m is None else torch.as_tensor(m, dtype=torch.float32) for m in masks]
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n = len(Xt)
    steps = max(1, epochs * math.ceil(n / batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))) if cosine else (lambda s: 1.0)
    )
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    last = float("nan")
    for ep in range(epochs):
        module.train()
        total = 0.0
        for idx in batches(n, batch_size, rng):
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(module(xb), yb)
            if extra_loss is not None:
                loss = loss + extra_loss(module, xb, yb)
            loss.backward()
            for lin, tm in zip(linears, tmasks):
                if tm is not None and lin.weight.grad is not None:
                    lin.weight.grad.mul_(tm)
            opt.step()
            sched.step()
            with torch.no_grad():
                for lin, tm in zip(linears, tmasks):
                    if tm is not None:
                        lin.weight.mul_(tm)
            total += loss.item() * len(idx)
        last = total / n
        if log is not None:
            msg = f"epoch {ep + 1}/{epochs} loss {last:.4f} ({time.perf_counter() - t0:.1f}s)"
            if X_val is not None and y_val is not None:
                msg += f" val acc {accuracy(from_module(module, base), X_val, y_val):.4f}"
            log(msg)
    out = from_module(module, base)
    md = dict(out.metadata)
    md["training"] = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
        "final_loss": last,
        "seconds": time.perf_counter() - t0,
        "masks_kept": any(m is not None for m in masks),
    }
    # the weights changed: grids recorded by quantization no longer hold
    if "quantization" in md:
        md.pop("quantization")
        md["quantization_dropped"] = True
    return out.replace(metadata=md)


def fine_tune(net: FNN, X: np.ndarray, y: np.ndarray, epochs: int = 2, lr: float = 3e-4, **kwargs: Any) -> FNN:
    """Retrain ``net`` briefly (masks kept); ``kwargs`` go to :func:`train_classifier`."""
    return train_classifier(net, X, y, epochs=epochs, lr=lr, keep_masks=True, **kwargs)
