"""Constrained retraining of a compressed network (torch): the repair keeps the compression.

What "keeps the compression" means here (:class:`Constraint`):

* **quantization grid**: every quantized weight matrix (and bias vector, when the biases were
  quantized) stays on *its recorded grid*: the same bits, scheme, granularity, and the same scales
  and zero points. Training is quantization-aware: the forward pass uses the grid value of a latent
  float weight, ``(clamp(round(w / s) + z, qmin, qmax) - z) * s``, and the gradient passes straight
  through the rounding (STE, ``w + (q(w) - w).detach()``). At the end the latent weights are
  snapped to the grid in float64, so the returned network is exactly on the grid
  (:func:`equivrepair.compress.quantize.on_grid` holds). Scales are *not* recomputed: the repaired
  network is a re-coding of the compressed one on the same grid;
* **pruning masks** stay fixed: a masked weight is 0 in every forward pass, its gradient is zeroed,
  and it is 0 in the result;
* **widths** stay the same (only the existing layers are trained; nothing is added or removed).

The grid comes from the network's metadata (``metadata["quantization"]``, written by
``equivrepair.compress``), or is inferred from the weights (:func:`infer_grid`: the weights of a
quantized tensor or row are integer multiples of one step), or is stated (``bits``, ``scheme``,
``granularity``). Masks come from ``metadata["pruning"]``, or, for layers that are not quantized,
from exact zeros (a trained float layer has none by chance).

The loss is ``mse_weight * MSE(net(X_fit), Y_fit) + ce_weight * CE(net(X_lab), y_lab)``: MSE to
target outputs (the repair targets, or a teacher's outputs for distillation) and cross-entropy on
labelled data; either part may be absent. Every step sees a batch of each part: all target points
when there are at most ``fit_batch`` of them (else a random batch), and a batch of ``batch_size``
labelled points. One epoch is one pass over the labelled data (over the target points when there is
no labelled data).

This module never imports the verifier (``equivrepair.reach``): it receives plain arrays and
networks and returns a network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..compress.prune import get_masks
from ..compress.quantize import grid_params
from ..nets.ir import FNN, Layer

__all__ = [
    "Constraint",
    "ConstraintError",
    "LatentState",
    "LayerGrid",
    "TrainConfig",
    "TrainResult",
    "infer_grid",
    "train_constrained",
]

OPTIMIZERS = ("adam", "sgd")


class ConstraintError(ValueError):
    """The compression constraint cannot be determined, or a network violates it."""


# --------------------------------------------------------------------------------------------
# the constraint
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LayerGrid:
    """The grid of one tensor: values ``(q - zero_point) * scale`` with integer ``q`` in [qmin, qmax].

    ``scale`` and ``zero_point`` have one entry (per tensor) or one per row (per channel).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int

    def _bc(self, a: np.ndarray, ndim: int) -> np.ndarray:
        if a.size == 1:
            return a.reshape(())
        return a.reshape((-1,) + (1,) * (ndim - 1))

    def codes(self, values: np.ndarray) -> np.ndarray:
        s = self._bc(np.asarray(self.scale, dtype=np.float64), values.ndim)
        z = self._bc(np.asarray(self.zero_point, dtype=np.float64), values.ndim)
        return np.clip(np.rint(values / s) + z, self.qmin, self.qmax)

    def snap(self, values: np.ndarray) -> np.ndarray:
        """Nearest grid value of every entry (float64; exactly ``(q - z) * s``)."""
        s = self._bc(np.asarray(self.scale, dtype=np.float64), values.ndim)
        z = self._bc(np.asarray(self.zero_point, dtype=np.float64), values.ndim)
        return (self.codes(values) - z) * s

    def contains(self, values: np.ndarray) -> bool:
        return bool(np.array_equal(self.snap(values), values))

    def bounds(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest grid value (broadcastable to the tensor)."""
        s = self._bc(np.asarray(self.scale, dtype=np.float64), ndim)
        z = self._bc(np.asarray(self.zero_point, dtype=np.float64), ndim)
        return (self.qmin - z) * s, (self.qmax - z) * s

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": np.asarray(self.scale).tolist(),
            "zero_point": np.asarray(self.zero_point).tolist(),
            "qmin": int(self.qmin),
            "qmax": int(self.qmax),
        }


@dataclass(frozen=True, eq=False)
class Constraint:
    """What retraining must preserve: widths, activations, per-layer grids and pruning masks."""

    widths: tuple[int, ...]
    activations: tuple[str, ...]
    weight_grids: tuple[LayerGrid | None, ...]
    bias_grids: tuple[LayerGrid | None, ...]
    masks: tuple[np.ndarray | None, ...]
    source: dict[str, str] = field(default_factory=dict)  # how each part was found
    quantization: dict[str, Any] | None = None  # bits, scheme, granularity (for reports)

    @property
    def quantized(self) -> bool:
        return any(g is not None for g in self.weight_grids)

    @property
    def pruned(self) -> bool:
        return any(m is not None for m in self.masks)

    # -- detection -------------------------------------------------------------------------------
    @classmethod
    def of(
        cls,
        net: FNN,
        bits: int | None = None,
        scheme: str | None = None,
        granularity: str | None = None,
        masks: str = "auto",
        infer: bool = True,
    ) -> Constraint:
        """The constraint ``net`` lives under.

        Grid: ``metadata["quantization"]`` when present; else, with ``bits``/``scheme``/
        ``granularity`` stated, the grid of that kind the weights lie on (:func:`infer_grid`; an
        error when they do not lie on one); else, with ``infer``, a grid of at most 8 bits inferred
        from the weights, layer by layer (a layer whose weights are not on such a grid stays float).
        Masks (``masks=``): ``"auto"`` uses ``metadata["pruning"]``, else exact zeros of float
        (non-quantized) layers; ``"zeros"`` masks every exact zero weight; ``"none"`` no masks.
        """
        if masks not in ("auto", "zeros", "none"):
            raise ConstraintError(f"masks must be 'auto', 'zeros' or 'none', got {masks!r}")
        depth = net.depth
        wg: list[LayerGrid | None] = [None] * depth
        bg: list[LayerGrid | None] = [None] * depth
        source: dict[str, str] = {}
        qinfo: dict[str, Any] | None = None
        q = net.metadata.get("quantization")
        if q and q.get("layers"):
            per_channel = q.get("granularity") == "per-channel"
            qmin, qmax = int(q["qmin"]), int(q["qmax"])
            for entry in q["layers"]:
                i = int(entry["index"])
                scale = np.asarray(entry["scale"], dtype=np.float64).ravel()
                zp = np.asarray(entry["zero_point"], dtype=np.float64).ravel()
                if per_channel and scale.size not in (1, net.layers[i].n_out):
                    raise ConstraintError(f"layer {i}: {scale.size} scales for {net.layers[i].n_out} rows")
                wg[i] = LayerGrid(scale, zp, qmin, qmax)
                if "bias_scale" in entry:
                    bg[i] = LayerGrid(
                        np.asarray(entry["bias_scale"], dtype=np.float64).ravel(),
                        np.asarray(entry["bias_zero_point"], dtype=np.float64).ravel(),
                        qmin,
                        qmax,
                    )
            source["grid"] = "metadata"
            qinfo = {k: q.get(k) for k in ("method", "bits", "scheme", "granularity", "biases")}
        elif bits is not None or scheme is not None or granularity is not None:
            b = int(bits if bits is not None else 8)
            sch = scheme or "symmetric"
            gran = granularity or "per-tensor"
            for i, layer in enumerate(net.layers):
                g = infer_grid(layer.W, b, sch, gran == "per-channel")
                if g is None:
                    raise ConstraintError(
                        f"layer {i}: the weights are not on a {b}-bit {sch} {gran} grid "
                        "(quantize the network first, or give the options that match it)"
                    )
                wg[i] = g
            source["grid"] = "options"
            qinfo = {"method": "stated", "bits": b, "scheme": sch, "granularity": gran, "biases": False}
        elif infer:
            found = []
            for i, layer in enumerate(net.layers):
                g = _detect_grid(layer.W)
                if g is not None:
                    wg[i] = g[0]
                    found.append(g[1])
            if found:
                source["grid"] = "inferred from the weights"
                qinfo = {
                    "method": "inferred",
                    "bits": max(f["bits"] for f in found),
                    "scheme": "affine" if any(f["scheme"] == "affine" for f in found) else "symmetric",
                    "granularity": "per-channel"
                    if any(f["granularity"] == "per-channel" for f in found)
                    else "per-tensor",
                    "biases": False,
                }
        mk: list[np.ndarray | None] = [None] * depth
        if masks != "none":
            recorded = get_masks(net)
            if masks == "auto" and any(m is not None for m in recorded):
                mk = [None if m is None else np.asarray(m, dtype=bool) for m in recorded]
                source["masks"] = "metadata"
            else:
                for i, layer in enumerate(net.layers):
                    if masks == "zeros" or wg[i] is None:
                        zero = layer.W == 0.0
                        if zero.any():
                            mk[i] = ~zero
                if any(m is not None for m in mk):
                    source["masks"] = "exact zeros" if masks == "zeros" else "exact zeros of float layers"
        return cls(
            widths=tuple(net.widths),
            activations=tuple(layer.activation for layer in net.layers),
            weight_grids=tuple(wg),
            bias_grids=tuple(bg),
            masks=tuple(mk),
            source=source,
            quantization=qinfo,
        )

    # -- use -------------------------------------------------------------------------------------
    def violations(self, net: FNN, tol: float = 0.0) -> list[str]:
        """Every way ``net`` breaks the constraint (empty when it satisfies it)."""
        out = []
        if tuple(net.widths) != self.widths:
            return [f"widths {net.widths} differ from {list(self.widths)}"]
        if tuple(layer.activation for layer in net.layers) != self.activations:
            out.append("activations differ")
        for i, layer in enumerate(net.layers):
            g = self.weight_grids[i]
            if g is not None:
                snapped = g.snap(layer.W)
                err = float(np.max(np.abs(snapped - layer.W))) if layer.W.size else 0.0
                if err > tol:
                    out.append(f"layer {i}: weights off the grid by up to {err:.3g}")
            bgr = self.bias_grids[i]
            if bgr is not None and not bgr.contains(layer.b):
                out.append(f"layer {i}: biases off their grid")
            m = self.masks[i]
            if m is not None and np.any(layer.W[~m] != 0.0):
                out.append(f"layer {i}: {int(np.count_nonzero(layer.W[~m]))} pruned weights are non-zero")
        return out

    def project(self, net: FNN) -> FNN:
        """``net`` with every weight snapped to its grid and every masked weight set to 0 (float64)."""
        layers = []
        for i, layer in enumerate(net.layers):
            W, b = np.array(layer.W), np.array(layer.b)
            if self.masks[i] is not None:
                W = np.where(self.masks[i], W, 0.0)
            if self.weight_grids[i] is not None:
                W = self.weight_grids[i].snap(W)
            if self.bias_grids[i] is not None:
                b = self.bias_grids[i].snap(b)
            layers.append(Layer(W, b, layer.activation))
        return net.with_layers(layers)

    def describe(self) -> dict[str, Any]:
        return {
            "widths": list(self.widths),
            "quantization": self.quantization,
            "quantized_layers": [i for i, g in enumerate(self.weight_grids) if g is not None],
            "quantized_bias_layers": [i for i, g in enumerate(self.bias_grids) if g is not None],
            "masked_layers": {
                str(i): {"kept": int(m.sum()), "total": int(m.size)} for i, m in enumerate(self.masks) if m is not None
            },
            "source": dict(self.source),
        }


def infer_grid(W: np.ndarray, bits: int, scheme: str, per_channel: bool) -> LayerGrid | None:
    """The ``bits``-bit grid of ``scheme`` that the values of ``W`` lie on, or ``None``.

    Per tensor (or per row): the step ``s`` is the smallest gap between the distinct values and 0;
    every value must be an integer multiple of ``s`` (to 1e-9 relative) and the multiples must fit
    in ``2**bits`` codes (symmetric: in [-2^(b-1), 2^(b-1) - 1]; affine: any window of 2^b codes,
    zero point = minus the smallest multiple). The step may be a multiple of the grid's true step
    (when codes are missing); the result is then a coarser grid that still holds every value.
    """
    qmin, qmax = grid_params(bits, scheme)
    W = np.asarray(W, dtype=np.float64)
    rows = W.reshape(W.shape[0], -1) if per_channel else W.reshape(1, -1)
    scales, zps = [], []
    for r in rows:
        info = _row_grid(r, bits, scheme)
        if info is None:
            return None
        scales.append(info[0])
        zps.append(info[1])
    return LayerGrid(np.asarray(scales), np.asarray(zps, dtype=np.float64), qmin, qmax)


def _row_grid(r: np.ndarray, bits: int, scheme: str) -> tuple[float, float] | None:
    qmin, qmax = grid_params(bits, scheme)
    vals = np.unique(np.concatenate([r, [0.0]]))
    if vals.size == 1:
        return 1.0, float(qmin + (qmax - qmin + 1) // 2 if scheme == "affine" else 0)
    if vals.size > 2**bits + 1:
        return None
    s = float(np.min(np.diff(vals)))
    k = vals / s
    if np.max(np.abs(k - np.rint(k))) > 1e-9 * max(1.0, float(np.max(np.abs(k)))):
        return None
    k = np.rint(k)
    # exactness: the snapped values must reproduce r bit for bit with this s
    if not np.array_equal(np.rint(r / s) * s, r):
        return None
    if scheme == "symmetric":
        if k.min() < qmin or k.max() > qmax:
            return None
        return s, 0.0
    if k.max() - k.min() > qmax - qmin:
        return None
    return s, float(-k.min())


def _detect_grid(W: np.ndarray, max_bits: int = 8) -> tuple[LayerGrid, dict[str, Any]] | None:
    """A grid of at most ``max_bits`` bits the weights of one layer lie on (per tensor, else per row)."""
    for per_channel in (False, True):
        for bits in range(2, max_bits + 1):
            for scheme in ("symmetric", "affine"):
                g = infer_grid(W, bits, scheme, per_channel)
                if g is not None:
                    gran = "per-channel" if per_channel else "per-tensor"
                    return g, {"bits": bits, "scheme": scheme, "granularity": gran}
    return None


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Training settings (defaults: Adam, 3 epochs per call, grid-relative step for quantized weights).

    ``lr`` is the learning rate of float parameters (biases, float layers). Quantized weights use
    ``grid_lr * mean scale of the layer`` (a step measured in grid steps, so 2-bit and 8-bit grids
    move at a comparable rate in codes); ``grid_lr=None`` uses ``lr`` for them too.
    """

    epochs: int = 3
    lr: float = 1e-3
    grid_lr: float | None = 0.02
    optimizer: str = "adam"
    momentum: float = 0.9
    batch_size: int = 128
    fit_batch: int = 256
    mse_weight: float = 1.0
    ce_weight: float = 1.0
    cosine: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.epochs < 0 or self.batch_size < 1 or self.fit_batch < 1:
            raise ValueError("epochs must be >= 0 and batch sizes >= 1")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LatentState:
    """The latent float32 weights behind a quantized network (what QAT trains; the network is their
    projection onto the grid). Passing it back to :func:`train_constrained` continues training from
    where the last call stopped instead of from the grid values, so progress below one grid step is
    not lost between repair rounds."""

    W: list[np.ndarray]
    b: list[np.ndarray]

    def project(self, like: FNN, c: Constraint) -> FNN:
        layers = [
            Layer(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64), layer.activation)
            for W, b, layer in zip(self.W, self.b, like.layers)
        ]
        return c.project(like.with_layers(layers))

    def matches(self, net: FNN, c: Constraint) -> bool:
        """Whether this state projects onto ``net`` (it belongs to it)."""
        if len(self.W) != net.depth or any(W.shape != layer.W.shape for W, layer in zip(self.W, net.layers)):
            return False
        p = self.project(net, c)
        return all(np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b) for a, b in zip(p.layers, net.layers))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"latent_W{i}": W for i, W in enumerate(self.W)}
        out.update({f"latent_b{i}": b for i, b in enumerate(self.b)})
        return out

    @classmethod
    def from_arrays(cls, d: Any, depth: int) -> LatentState | None:
        if f"latent_W{depth - 1}" not in d:
            return None
        return cls(
            [np.asarray(d[f"latent_W{i}"]) for i in range(depth)], [np.asarray(d[f"latent_b{i}"]) for i in range(depth)]
        )


@dataclass
class TrainResult:
    net: FNN
    steps: int
    final_loss: float
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    latent: LatentState | None = None


def _ste(w: torch.Tensor, s: torch.Tensor, z: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    q = (torch.clamp(torch.round(w.detach() / s) + z, qmin, qmax) - z) * s
    return w + (q - w.detach())


class _Trainable:
    """The network's layers as torch parameters with their grids and masks."""

    def __init__(self, net: FNN, c: Constraint, latent: LatentState | None = None) -> None:
        self.net, self.c = net, c
        Ws = [np.array(layer.W) for layer in net.layers] if latent is None else latent.W
        bs = [np.array(layer.b) for layer in net.layers] if latent is None else latent.b
        self.Ws = [nn.Parameter(torch.as_tensor(np.array(W), dtype=torch.float32)) for W in Ws]
        self.bs = [nn.Parameter(torch.as_tensor(np.array(b), dtype=torch.float32)) for b in bs]
        self.acts = [layer.activation for layer in net.layers]
        self.masks = [None if m is None else torch.as_tensor(m, dtype=torch.float32) for m in c.masks]
        self.wq = [self._grid_tensors(g, 2) for g in c.weight_grids]
        self.bq = [self._grid_tensors(g, 1) for g in c.bias_grids]

    @staticmethod
    def _grid_tensors(g: LayerGrid | None, ndim: int):
        if g is None:
            return None
        s = torch.as_tensor(g._bc(np.asarray(g.scale), ndim), dtype=torch.float32)
        z = torch.as_tensor(g._bc(np.asarray(g.zero_point), ndim), dtype=torch.float32)
        lo, hi = g.bounds(ndim)
        half = g._bc(np.asarray(g.scale), ndim) / 2
        return (
            s,
            z,
            g.qmin,
            g.qmax,
            torch.as_tensor(lo - half, dtype=torch.float32),
            torch.as_tensor(hi + half, dtype=torch.float32),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for W, b, a, m, gw, gb in zip(self.Ws, self.bs, self.acts, self.masks, self.wq, self.bq):
            if m is not None:
                W = W * m
            if gw is not None:
                W = _ste(W, *gw[:4])
            if gb is not None:
                b = _ste(b, *gb[:4])
            h = h @ W.T + b
            if a == "relu":
                h = torch.relu(h)
        return h

    def after_step(self) -> None:
        with torch.no_grad():
            for W, m, gw in zip(self.Ws, self.masks, self.wq):
                if m is not None:
                    W.mul_(m)
                if gw is not None:  # keep the latent weight within half a step of the grid's range
                    W.copy_(torch.maximum(torch.minimum(W, gw[5]), gw[4]))
            for b, gb in zip(self.bs, self.bq):
                if gb is not None:
                    b.copy_(torch.maximum(torch.minimum(b, gb[5]), gb[4]))

    def mask_grads(self) -> None:
        for W, m in zip(self.Ws, self.masks):
            if m is not None and W.grad is not None:
                W.grad.mul_(m)

    def latent(self) -> LatentState:
        return LatentState([W.detach().numpy().copy() for W in self.Ws], [b.detach().numpy().copy() for b in self.bs])

    def result(self) -> FNN:
        return self.latent().project(self.net, self.c)


def _as_tensor(a: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype)


def train_constrained(
    net: FNN,
    X_fit: np.ndarray | None = None,
    Y_fit: np.ndarray | None = None,
    X_lab: np.ndarray | None = None,
    y_lab: np.ndarray | None = None,
    config: TrainConfig | None = None,
    constraint: Constraint | None = None,
    W_fit: np.ndarray | None = None,
    log: Callable[[str], Any] | None = None,
    latent: LatentState | None = None,
) -> TrainResult:
    """Retrain ``net`` under ``constraint`` (default :meth:`Constraint.of(net) <Constraint.of>`).

    ``X_fit``/``Y_fit``: inputs and target outputs for the MSE part (``W_fit``: optional per-point
    weights); ``X_lab``/``y_lab``: labelled inputs for the cross-entropy part. ``latent``: the
    latent weights a previous call returned for ``net`` (used only when they project onto ``net``;
    else training starts from ``net``'s weights). Returns the retrained network (metadata of ``net``
    kept, exactly on the grid, masks applied), the run's facts and the latent weights.
    """
    cfg = config or TrainConfig()
    c = constraint or Constraint.of(net)
    if tuple(net.widths) != c.widths:
        raise ConstraintError(f"network widths {net.widths} do not match the constraint {list(c.widths)}")
    has_fit = X_fit is not None and len(X_fit) > 0 and cfg.mse_weight > 0
    has_lab = X_lab is not None and len(X_lab) > 0 and cfg.ce_weight > 0
    t0 = time.perf_counter()
    if latent is not None and not latent.matches(net, c):
        latent = None
    if not (has_fit or has_lab) or cfg.epochs == 0:
        return TrainResult(c.project(net), 0, float("nan"), 0.0, {"note": "nothing to train on"}, latent)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = _Trainable(net, c, latent)
    Xf = _as_tensor(X_fit, torch.float32) if has_fit else None
    Yf = _as_tensor(Y_fit, torch.float32) if has_fit else None
    Wf = _as_tensor(W_fit, torch.float32) if has_fit and W_fit is not None else None
    Xl = _as_tensor(X_lab, torch.float32) if has_lab else None
    yl = _as_tensor(y_lab, torch.long) if has_lab else None
    if has_fit and Yf.shape != (len(Xf), net.n_outputs):
        raise ValueError(f"Y_fit has shape {tuple(Yf.shape)}, expected ({len(Xf)}, {net.n_outputs})")

    groups = []
    for W, g in zip(model.Ws, c.weight_grids):
        lr = cfg.lr if g is None or cfg.grid_lr is None else cfg.grid_lr * float(np.mean(g.scale))
        groups.append({"params": [W], "lr": lr})
    groups.append({"params": model.bs, "lr": cfg.lr})
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(groups)
    else:
        opt = torch.optim.SGD(groups, momentum=cfg.momentum)
    n_main = len(Xl) if has_lab else len(Xf)
    bs_main = cfg.batch_size if has_lab else min(cfg.fit_batch, cfg.batch_size)
    steps_per_epoch = math.ceil(n_main / bs_main)
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))) if cfg.cosine else (lambda s: 1.0)
    )
    ce = nn.CrossEntropyLoss()
    steps, last = 0, float("nan")
    for ep in range(cfg.epochs):
        order = rng.permutation(n_main)
        run_loss = 0.0
        for k in range(steps_per_epoch):
            idx = order[k * bs_main : (k + 1) * bs_main]
            loss = torch.zeros(())
            if has_lab:
                loss = loss + cfg.ce_weight * ce(model.forward(Xl[idx]), yl[idx])
                fidx = (
                    np.arange(len(Xf))
                    if has_fit and len(Xf) <= cfg.fit_batch
                    else (rng.choice(len(Xf), cfg.fit_batch, replace=False) if has_fit else None)
                )
            else:
                fidx = idx
            if has_fit:
                err = (model.forward(Xf[fidx]) - Yf[fidx]) ** 2
                per = err.mean(dim=1)
                if Wf is not None:
                    per = per * Wf[fidx]
                loss = loss + cfg.mse_weight * per.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            model.mask_grads()
            opt.step()
            sched.step()
            model.after_step()
            steps += 1
            run_loss += float(loss.item())
        last = run_loss / steps_per_epoch
        if log is not None:
            log(f"  epoch {ep + 1}/{cfg.epochs} loss {last:.5f} ({time.perf_counter() - t0:.1f}s)")
    out = model.result()
    bad = c.violations(out)
    if bad:  # pragma: no cover - project() guarantees this
        raise ConstraintError("retrained network breaks the constraint: " + "; ".join(bad))
    return TrainResult(
        out,
        steps,
        last,
        time.perf_counter() - t0,
        {
            "n_fit": 0 if not has_fit else len(Xf),
            "n_lab": 0 if not has_lab else len(Xl),
            "from_latent": latent is not None,
            **cfg.to_json(),
        },
        model.latent(),
    )


def predict_outputs(net: FNN, X: np.ndarray, batch: int = 10000) -> np.ndarray:
    """Raw outputs of ``net`` (float64 numpy forward) on a batch, in chunks."""
    X = np.asarray(X, dtype=np.float64)
    if len(X) == 0:
        return np.zeros((0, net.n_outputs))
    return np.concatenate([net.forward(X[s : s + batch]) for s in range(0, len(X), batch)])
