"""Curvature-aware neuron pruning (after Ebrahimi & Klabjan, arXiv 2111.08577), torch.

Train and prune at once. The loss is cross-entropy plus ``gamma * sum_l lmax(A_l) * lmax(G_l)``,
the K-FAC approximation of the spectral radius of each dense layer's Hessian block
``H_l ~ A_l (x) G_l``, whose largest eigenvalue is the product of the factors' largest eigenvalues:

* ``A_l = E[a a^T]`` over the batch, ``a`` the layer's input with a 1 appended (bias);
* ``G_l = E[g g^T]``, ``g`` the per-example gradient of the loss w.r.t. the layer's pre-activation.

Both largest eigenvalues are Rayleigh quotients ``v^T A v`` with ``v`` from a warm-started power
iteration (``v`` detached), so the penalty is differentiable; ``G_l`` is built from gradients
taken with ``create_graph=True`` (double back-propagation) so the penalty's gradient includes the
dependence of ``G`` on the weights (``second_order=False`` treats ``lmax(G_l)`` as a constant, cheaper).

Neurons are removed during training: at ``prune_steps`` evenly spaced moments in the first
``prune_fraction`` of the run the number of live neurons in every hidden layer is lowered linearly
to the target, masking those with the lowest K-FAC saliency (the second-order loss increase of
removing the neuron, with the running K-FAC factors, as in Optimal Brain Damage at neuron level):

    s_j = 1/2 G_l[j,j] * w_j^T A_l w_j  +  1/2 A_{l+1}[j,j] * c_j^T G_{l+1} c_j

with ``w_j = (W_l[j,:], b_l[j])`` the incoming row and ``c_j = W_{l+1}[:, j]`` the outgoing column.
Masked neurons are removed from the network at the end (narrower layers). This is our reading of
the method (penalty as in the paper; saliency and schedule are our choices) and is stated as such.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nets.ir import FNN, Layer
from .prune import remove_neurons
from .torch_train import batches

__all__ = ["curvature_prune", "CurvaturePruneResult", "kfac_spectral_radius"]


@dataclass
class CurvaturePruneResult:
    net: FNN
    history: list[dict[str, float]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _rayleigh_top(
    M_times: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Power iteration with a detached vector; returns (differentiable v^T M v, new v)."""
    with torch.no_grad():
        for _ in range(iters):
            w = M_times(v)
            nrm = torch.linalg.norm(w)
            if nrm > 0:
                v = w / nrm
    return v @ M_times(v), v.detach()


def kfac_spectral_radius(a: torch.Tensor, g: torch.Tensor, va: torch.Tensor, vg: torch.Tensor, iters: int = 2):
    """lmax(A) * lmax(G) for ``A = a^T a / N`` (``a`` with the bias column) and ``G = g^T g / N``."""
    n = a.shape[0]

    def A_times(v: torch.Tensor) -> torch.Tensor:
        return a.T @ (a @ v) / n

    def G_times(v: torch.Tensor) -> torch.Tensor:
        return g.T @ (g @ v) / n

    la, va = _rayleigh_top(A_times, va, iters)
    lg, vg = _rayleigh_top(G_times, vg, iters)
    return la * lg, la, lg, va, vg


def curvature_prune(
    net: FNN,
    X: np.ndarray,
    y: np.ndarray,
    keep: float | Sequence[float] | Sequence[int] = 0.5,
    gamma: float = 1e-3,
    epochs: int = 3,
    lr: float = 3e-4,
    batch_size: int = 128,
    prune_steps: int = 10,
    prune_fraction: float = 0.6,
    ema: float = 0.95,
    power_iters: int = 2,
    second_order: bool = True,
    seed: int = 0,
    log: Callable[[str], Any] | None = None,
) -> CurvaturePruneResult:
    """Train ``net`` with the K-FAC spectral-radius penalty while removing neurons to the target widths.

    ``keep`` is a fraction per hidden layer (one value or one per layer) or, when integers > 1, the
    target neuron counts. Returns the narrower FNN (metadata ``"curvature_pruning"``) and a history
    of (step, loss, penalty, live neurons).
    """
    hidden = [i for i in range(net.depth - 1) if net.layers[i].activation == "relu"]
    if np.isscalar(keep):
        keep_list = [keep] * len(hidden)
    else:
        keep_list = list(keep)  # type: ignore[arg-type]
    if len(keep_list) != len(hidden):
        raise ValueError(f"keep has {len(keep_list)} entries for {len(hidden)} hidden layers")
    targets = {}
    for i, k in zip(hidden, keep_list):
        n = net.layers[i].n_out
        t = int(k) if (isinstance(k, (int, np.integer)) and k > 1) else max(1, int(round(float(k) * n)))
        if not 1 <= t <= n:
            raise ValueError(f"layer {i}: target {t} neurons out of range 1..{n}")
        targets[i] = t
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Ws = [nn.Parameter(torch.as_tensor(np.array(layer.W), dtype=torch.float32)) for layer in net.layers]
    bs = [nn.Parameter(torch.as_tensor(np.array(layer.b), dtype=torch.float32)) for layer in net.layers]
    acts = [layer.activation for layer in net.layers]
    masks = {i: torch.ones(net.layers[i].n_out) for i in hidden}
    opt = torch.optim.Adam(Ws + bs, lr=lr)
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n_data = len(Xt)
    steps_per_epoch = math.ceil(n_data / batch_size)
    total_steps = max(1, epochs * steps_per_epoch)
    prune_at = sorted({int(round(prune_fraction * total_steps * (t + 1) / prune_steps)) for t in range(prune_steps)})
    prune_at = [max(1, s) for s in prune_at]
    L = net.depth
    va = [torch.ones(layer.n_in + 1) / math.sqrt(layer.n_in + 1) for layer in net.layers]
    vg = [torch.ones(layer.n_out) / math.sqrt(layer.n_out) for layer in net.layers]
    A_run = [torch.zeros(layer.n_in + 1, layer.n_in + 1) for layer in net.layers]
    G_run = [torch.zeros(layer.n_out, layer.n_out) for layer in net.layers]
    history: list[dict[str, float]] = []
    step = 0
    n_events = 0
    t0 = time.perf_counter()

    def live() -> dict[int, int]:
        return {i: int(masks[i].sum()) for i in hidden}

    def prune_event(event: int) -> None:
        for i in hidden:
            n = net.layers[i].n_out
            want = int(round(n - (n - targets[i]) * event / len(prune_at)))
            cur = int(masks[i].sum())
            if want >= cur:
                continue
            with torch.no_grad():
                W_aug = torch.cat([Ws[i], bs[i][:, None]], dim=1)
                s_in = 0.5 * torch.diagonal(G_run[i]) * torch.einsum("jk,kl,jl->j", W_aug, A_run[i], W_aug)
                c = Ws[i + 1]  # (out_next, n)
                s_out = 0.5 * torch.diagonal(A_run[i + 1])[:-1] * torch.einsum("kj,kl,lj->j", c, G_run[i + 1], c)
                sal = (s_in + s_out).clone()
                sal[masks[i] == 0] = float("inf")
                order = torch.argsort(sal)
                masks[i][order[: cur - want]] = 0.0

    ce = nn.CrossEntropyLoss(reduction="sum")
    for ep in range(epochs):
        for idx in batches(n_data, batch_size, rng):
            xb, yb = Xt[idx], yt[idx]
            nb = len(idx)
            h = xb
            ins, pres = [], []
            for li in range(L):
                ins.append(torch.cat([h, torch.ones(nb, 1)], dim=1))
                s = h @ Ws[li].T + bs[li]
                pres.append(s)
                if acts[li] == "relu":
                    h = torch.relu(s)
                    if li in masks:
                        h = h * masks[li]
                else:
                    h = s
            loss_sum = ce(h, yb)
            loss = loss_sum / nb
            # per-example gradients of the loss w.r.t. pre-activations: d(sum of losses)/ds
            grads = torch.autograd.grad(loss_sum, pres, create_graph=second_order)
            penalty = torch.zeros(())
            for li in range(L):
                g = grads[li] if second_order else grads[li].detach()
                rad, la, lg, va[li], vg[li] = kfac_spectral_radius(ins[li], g, va[li], vg[li], power_iters)
                if not second_order:
                    rad = la * lg.detach()
                penalty = penalty + rad
                with torch.no_grad():
                    A_run[li].mul_(ema).add_((1 - ema) * (ins[li].T @ ins[li]) / nb)
                    gd = grads[li].detach()
                    G_run[li].mul_(ema).add_((1 - ema) * (gd.T @ gd) / nb)
            total = loss + gamma * penalty
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            with torch.no_grad():  # keep removed neurons' incoming weights at zero
                for i in hidden:
                    Ws[i].mul_(masks[i][:, None])
                    bs[i].mul_(masks[i])
            step += 1
            if n_events < len(prune_at) and step >= prune_at[n_events]:
                n_events += 1
                prune_event(n_events)
            if step % 50 == 0 or step == total_steps:
                history.append(
                    {
                        "step": step,
                        "loss": float(loss.detach()),
                        "penalty": float(penalty.detach()),
                        **{f"live{i}": v for i, v in live().items()},
                    }
                )
        if log is not None:
            log(
                f"curvature epoch {ep + 1}/{epochs} loss {float(loss.detach()):.4f} penalty {float(penalty.detach()):.4g} "
                f"live {live()} ({time.perf_counter() - t0:.1f}s)"
            )
    while n_events < len(prune_at):  # runs shorter than the schedule still reach the target
        n_events += 1
        prune_event(n_events)
    layers = [Layer(W.detach().double().numpy(), b.detach().double().numpy(), a) for W, b, a in zip(Ws, bs, acts)]
    trained = net.replace(layers=tuple(layers))
    keep_idx = {i: np.flatnonzero(masks[i].numpy() > 0) for i in hidden}
    out = remove_neurons(trained, keep_idx)
    md = dict(out.metadata)
    md.pop("quantization", None)
    md["curvature_pruning"] = {
        "gamma": gamma,
        "epochs": epochs,
        "lr": lr,
        "prune_steps": len(prune_at),
        "prune_fraction": prune_fraction,
        "second_order": second_order,
        "widths_before": net.widths,
        "widths_after": out.widths,
        "seconds": time.perf_counter() - t0,
        "source": net.content_hash,
    }
    out = out.replace(metadata=md, name=f"{net.name or 'net'}-kfac{'-'.join(map(str, out.widths[1:-1]))}")
    return CurvaturePruneResult(out, history, md["curvature_pruning"])
