"""Quantization-aware training (torch): our own fake-quant QAT, and PyTorch eager-mode int8 QAT.

:func:`qat_train` trains with weights (and optionally biases) fake-quantized on the same b-bit grid as
:func:`~equivrepair.compress.quantize.quantize` (scale recomputed from the current weights at every
step, like a min/max observer), gradients passed straight through the rounding (STE:
``w + (q(w) - w).detach()``). It ends by quantizing the trained float weights with
:func:`~equivrepair.compress.quantize.quantize` in float64, so the returned FNN's weights lie
exactly on the grid; the last fake-quant forward and that FNN compute the same function up to
float32 vs float64 arithmetic (a code can flip where a weight sits on a rounding boundary).

:func:`int8_qat` is the seed paper's setting: ``torch.ao.quantization`` eager mode with the
``fbgemm`` default QAT qconfig (weights per-channel symmetric qint8, activations quint8 with
``reduce_range=True``, i.e. codes 0..127), Linear+ReLU fused, ``prepare_qat`` / train / ``convert``.
The converted int8 model is read back into an FNN with weights ``int8 code * channel scale``
(exactly on the grid) and float biases. The int8 model also rounds the input and every layer's
output to a uint8 grid (and the bias to int32 with scale ``s_in * s_w``); that rounding is not
piecewise linear and the FNN **ignores it**. The metadata records this
(``metadata["quantization"]["activation_rounding"] = "ignored"``) together with every layer's
activation scale, zero point and clamp range. :mod:`equivrepair.reach.rounding` uses them to bound
the int8 model itself (every rounding error a bounded extra input, clamps modelled exactly;
``equivrepair verify --activation-rounding model``). The accuracy of the FNN is reported next to
the accuracy of the int8 torch model.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nets.ir import FNN, Layer
from .prune import get_masks
from .quantize import grid_params, quantize
from .report import accuracy, predict
from .torch_train import batches

__all__ = ["qat_train", "fake_quantize", "int8_qat", "int8_to_fnn", "Int8QATResult"]


def fake_quantize(w: torch.Tensor, bits: int, scheme: str = "symmetric", per_channel: bool = False) -> torch.Tensor:
    """The grid value of every entry of ``w`` (same rule as ``quantize_array``), with an STE gradient."""
    qmin, qmax = grid_params(bits, scheme)
    wd = w.detach()
    if per_channel and wd.ndim == 2:
        red = wd
        dims: tuple[int, ...] = (1,)
        keep = True
    else:
        red = wd.reshape(1, -1)
        dims = (1,)
        keep = False
    if scheme == "symmetric":
        s = red.abs().amax(dim=dims, keepdim=keep) / (qmax + 0.5)
        z = torch.zeros_like(s)
    else:
        lo = torch.clamp(red.amin(dim=dims, keepdim=keep), max=0.0)
        hi = torch.clamp(red.amax(dim=dims, keepdim=keep), min=0.0)
        s = (hi - lo) / (qmax - qmin)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        z = torch.clamp(torch.round(-lo / safe), qmin, qmax)
    s = torch.where(s > 0, s, torch.ones_like(s))
    # same float32-exact rounding of the scale as quantize_array (see float32_exact_scale)
    m, e = torch.frexp(s.double())
    k = float(2.0 ** max(24 - bits, 8))
    s = torch.ldexp(torch.ceil(m * k) / k, e).to(wd.dtype)
    if scheme == "affine":
        z = torch.clamp(torch.round(-lo / s), qmin, qmax)
    if not keep:
        s, z = s.reshape(()), z.reshape(())
    q = (torch.clamp(torch.round(wd / s) + z, qmin, qmax) - z) * s
    return w + (q - w).detach()


def qat_train(
    net: FNN,
    X: np.ndarray,
    y: np.ndarray,
    bits: int = 4,
    scheme: str = "symmetric",
    granularity: str = "per-tensor",
    biases: bool = False,
    epochs: int = 2,
    lr: float = 3e-4,
    batch_size: int = 128,
    seed: int = 0,
    log: Callable[[str], Any] | None = None,
) -> FNN:
    """Quantization-aware fine-tuning of ``net`` on ``(X, y)``; returns an FNN exactly on the grid.

    Pruning masks in the metadata are kept (a pruned weight stays 0, and 0 is on every grid).
    ``metadata["quantization"]["method"]`` is ``"qat"``; ``metadata["qat"]`` records the run.
    """
    quantize(net, bits, scheme, granularity, biases)  # validates the arguments early
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    per_channel = granularity == "per-channel"
    Ws = [nn.Parameter(torch.as_tensor(np.array(layer.W), dtype=torch.float32)) for layer in net.layers]
    bs = [nn.Parameter(torch.as_tensor(np.array(layer.b), dtype=torch.float32)) for layer in net.layers]
    acts = [layer.activation for layer in net.layers]
    masks = [None if m is None else torch.as_tensor(m, dtype=torch.float32) for m in get_masks(net)]
    opt = torch.optim.Adam(Ws + bs, lr=lr)
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n = len(Xt)
    steps = max(1, epochs * math.ceil(n / batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    loss_fn = nn.CrossEntropyLoss()

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x
        for W, b, a in zip(Ws, bs, acts):
            Wq = fake_quantize(W, bits, scheme, per_channel)
            bq = fake_quantize(b, bits, scheme, False) if biases else b
            h = h @ Wq.T + bq
            if a == "relu":
                h = torch.relu(h)
        return h

    t0 = time.perf_counter()
    last = float("nan")
    for ep in range(epochs):
        total = 0.0
        for idx in batches(n, batch_size, rng):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(forward(Xt[idx]), yt[idx])
            loss.backward()
            for W, m in zip(Ws, masks):
                if m is not None and W.grad is not None:
                    W.grad.mul_(m)
            opt.step()
            sched.step()
            with torch.no_grad():
                for W, m in zip(Ws, masks):
                    if m is not None:
                        W.mul_(m)
            total += loss.item() * len(idx)
        last = total / n
        if log is not None:
            log(f"qat epoch {ep + 1}/{epochs} loss {last:.4f} ({time.perf_counter() - t0:.1f}s)")
    layers = [Layer(W.detach().double().numpy(), b.detach().double().numpy(), a) for W, b, a in zip(Ws, bs, acts)]
    trained = net.replace(layers=tuple(layers))
    out = quantize(trained, bits, scheme, granularity, biases)
    md = dict(out.metadata)
    md["quantization"] = dict(md["quantization"], method="qat")
    md["quantization_source"] = net.content_hash
    md["qat"] = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "final_loss": last}
    return out.replace(metadata=md, name=out.name + "-qat")


# -- PyTorch eager-mode int8 QAT -------------------------------------------------------------------
class _EagerNet(nn.Module):
    def __init__(self, net: FNN) -> None:
        from torch.ao.quantization import DeQuantStub, QuantStub

        super().__init__()
        self.quant = QuantStub()
        self.fcs = nn.ModuleList()
        self.acts = nn.ModuleList()
        self.relu = [layer.activation == "relu" for layer in net.layers]
        for layer in net.layers:
            lin = nn.Linear(layer.n_in, layer.n_out)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(np.array(layer.W), dtype=torch.float32))
                lin.bias.copy_(torch.tensor(np.array(layer.b), dtype=torch.float32))
            self.fcs.append(lin)
            self.acts.append(nn.ReLU() if layer.activation == "relu" else nn.Identity())
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        for fc, act in zip(self.fcs, self.acts):
            x = act(fc(x))
        return self.dequant(x)


@dataclass
class Int8QATResult:
    """What :func:`int8_qat` produced: the FNN (as verified), the int8 torch model, accuracies."""

    net: FNN
    int8_model: nn.Module
    accuracy_fnn: float | None = None
    accuracy_int8: float | None = None
    agreement: float | None = None  # fraction of test inputs where FNN and int8 model agree on argmax
    info: dict[str, Any] = field(default_factory=dict)


def _int8_predict(model: nn.Module, X: np.ndarray, batch: int = 10000) -> np.ndarray:
    with torch.no_grad():
        outs = [model(torch.as_tensor(X[s : s + batch], dtype=torch.float32)) for s in range(0, len(X), batch)]
    return torch.cat(outs).argmax(dim=1).numpy()


def int8_qat(
    net: FNN,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 2,
    lr: float = 1e-4,
    batch_size: int = 128,
    seed: int = 0,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    freeze_observers_epoch: int | None = None,
    log: Callable[[str], Any] | None = None,
    engine: str = "fbgemm",
) -> Int8QATResult:
    """PyTorch eager-mode int8 QAT of ``net`` (fbgemm qconfig), converted back to an FNN.

    Returns an :class:`Int8QATResult`; with ``X_test``/``y_test`` it carries the accuracy of the
    FNN (float64, activation rounding ignored) and of the int8 torch model, and their argmax
    agreement. Observers are frozen after ``freeze_observers_epoch`` epochs (default: last epoch).
    """
    import torch.ao.quantization as tq

    if engine not in torch.backends.quantized.supported_engines:
        raise RuntimeError(
            f"quantized engine {engine!r} not available (have {torch.backends.quantized.supported_engines})"
        )
    torch.backends.quantized.engine = engine
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = _EagerNet(net)
    model.train()
    fuse = [[f"fcs.{i}", f"acts.{i}"] for i, r in enumerate(model.relu) if r]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fuse:
            model = tq.fuse_modules_qat(model, fuse)
        model.qconfig = tq.get_default_qat_qconfig(engine)
        tq.prepare_qat(model, inplace=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    loss_fn = nn.CrossEntropyLoss()
    freeze_at = max(0, epochs - 1) if freeze_observers_epoch is None else freeze_observers_epoch
    t0 = time.perf_counter()
    for ep in range(epochs):
        if ep >= freeze_at and epochs > 1:
            model.apply(tq.disable_observer)
        total = 0.0
        for idx in batches(len(Xt), batch_size, rng):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if log is not None:
            log(f"int8 qat epoch {ep + 1}/{epochs} loss {total / len(Xt):.4f} ({time.perf_counter() - t0:.1f}s)")
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = tq.convert(model, inplace=False)
    fnn = int8_to_fnn(qmodel, net)
    res = Int8QATResult(fnn, qmodel, info={"epochs": epochs, "lr": lr, "seconds": time.perf_counter() - t0})
    if X_test is not None and y_test is not None:
        p_int8 = _int8_predict(qmodel, np.asarray(X_test))
        p_fnn = predict(fnn, X_test)
        res.accuracy_int8 = float(np.mean(p_int8 == y_test))
        res.accuracy_fnn = accuracy(fnn, X_test, y_test)
        res.agreement = float(np.mean(p_int8 == p_fnn))
        md = dict(fnn.metadata)
        md["quantization"] = dict(
            md["quantization"],
            accuracy_fnn=res.accuracy_fnn,
            accuracy_int8=res.accuracy_int8,
            argmax_agreement=res.agreement,
        )
        res.net = fnn.replace(metadata=md)
    return res


def int8_to_fnn(qmodel: nn.Module, like: FNN) -> FNN:
    """Read a converted eager-mode int8 model (from :func:`int8_qat`) into an FNN, with activation grids."""
    quant = qmodel.quant
    in_scale, in_zp = float(quant.scale), int(quant.zero_point)
    layers = []
    entries = []
    acts = []
    prev_scale, prev_zp = in_scale, in_zp
    for i, fc in enumerate(qmodel.fcs):
        w = fc.weight()
        if w.qscheme() not in (torch.per_channel_symmetric, torch.per_channel_affine):
            raise ValueError(f"layer {i}: expected per-channel weights, got {w.qscheme()}")
        codes = w.int_repr().numpy().astype(np.int64)
        scales = w.q_per_channel_scales().double().numpy()
        zps = w.q_per_channel_zero_points().numpy().astype(np.int64)
        W = (codes - zps[:, None]).astype(np.float64) * scales[:, None]
        bias = fc.bias()
        b = bias.detach().double().numpy() if bias is not None else np.zeros(W.shape[0])
        act = like.layers[i].activation
        layers.append(Layer(W, b, act))
        entries.append({"index": i, "scale": scales.tolist(), "zero_point": zps.tolist()})
        out_scale, out_zp = float(fc.scale), int(fc.zero_point)
        # quint8 with reduce_range (fbgemm) stores 0..127 codes; the clamp range is from the observer's
        # quant_min/max, which convert folds into scale/zero point: values are q*scale with q in 0..255
        acts.append(
            {
                "index": i,
                "input_scale": prev_scale,
                "input_zero_point": prev_zp,
                "output_scale": out_scale,
                "output_zero_point": out_zp,
                "output_range": [(0 - out_zp) * out_scale, (255 - out_zp) * out_scale],
                "max_rounding_error": out_scale / 2.0,
                "rounded_after_relu": act == "relu",
            }
        )
        prev_scale, prev_zp = out_scale, out_zp
    md = dict(like.metadata)
    md["quantization"] = {
        "method": "torch-int8-qat",
        "bits": 8,
        "scheme": "symmetric",
        "granularity": "per-channel",
        "biases": False,
        "qmin": -128,
        "qmax": 127,
        "engine": torch.backends.quantized.engine,
        "layers": entries,
        "activation_rounding": "ignored",
        "activation_note": (
            "the int8 model rounds the input (input_scale) and every layer output (output_scale, after "
            "ReLU for fused Linear+ReLU) to quint8 grids and clamps to output_range, and rounds biases to "
            "int32 with scale input_scale*weight_scale; the FNN ignores all of it. `equivrepair verify "
            "--activation-rounding model` bounds the int8 model itself (equivrepair.reach.rounding)."
        ),
        "input_quantization": {
            "scale": in_scale,
            "zero_point": in_zp,
            "range": [-in_zp * in_scale, (255 - in_zp) * in_scale],
        },
        "activations": acts,
    }
    md["quantization_source"] = like.content_hash
    return like.replace(layers=tuple(layers), metadata=md, name=f"{like.name or 'net'}-int8qat")
