"""Activation rounding of int8 models as a bounded perturbation the exact engine can take into account.

An int8 model from :func:`equivrepair.compress.int8_qat` (PyTorch eager mode, fbgemm) computes,
layer by layer (codes ``q``, scales ``s``, zero points ``z``)::

    x^   = s_in (clamp(round(x / s_in) + z_in, 0, 255) - z_in)          (input rounding)
    y    = W x^ + b                         W = int8 code x channel scale, exactly our FNN's weights
    a^   = s (clamp(round(y / s) + z, lo, 255) - z)   lo = z after a fused ReLU, else 0

Rounding is not piecewise linear, so no FNN computes this function. But for every x it equals

    a^ = clamp(act(y)) + e,   |e| <= s (1/2 + 1e-4) + s_in s_w / 2

(``clamp`` and ``act`` are monotone and 1-Lipschitz; ``s_in s_w / 2`` covers the bias rounded to
int32 with scale ``s_in s_w``, 1e-4 of a code covers float32 arithmetic in requantization), and
``x^ = clip(x) + e_in`` with ``|e_in| <= s_in (1/2 + 1e-4)``. :func:`rounding_model` builds the FNN
of ``(x, e) -> output`` (``clamp`` by two ReLUs where bounds say it can act, the errors as extra
inputs carried through the hidden layers by always-active ReLUs), so the engine's upper bound on
``max |Φ1(x) − F(x, e)|`` over X x E is a sound upper bound for the int8 model. Lower bounds come
from :func:`simulate_int8` (the int8 arithmetic in numpy, checked against torch in the tests) at the
model's witness and at samples: they are real discrepancies of the int8 model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FormatError, InputSetError
from ..nets.ir import FNN, Layer
from ..spec.sets import Box
from .result import Discrepancy
from .symbolic import symbolic_bounds

ROUND_SLACK = 1e-4  # codes: float32 arithmetic in (re)quantization can move a value this far
QMIN, QMAX = 0, 255  # quint8 activations

__all__ = ["RoundingSpec", "rounding_spec", "simulate_int8", "rounding_model", "RoundedDiscrepancy", "evaluate_int8"]


@dataclass(frozen=True)
class LayerRounding:
    """How one int8 layer rounds its output."""

    input_scale: float
    weight_scales: np.ndarray  # (n_out,)
    output_scale: float
    output_zero_point: int
    relu: bool

    @property
    def clamp(self) -> tuple[float, float]:
        """Value range the output is clamped to (a fused ReLU clamps at the zero point, value 0)."""
        s, z = self.output_scale, self.output_zero_point
        lo = 0.0 if self.relu else (QMIN - z) * s
        return lo, (QMAX - z) * s

    @property
    def radius(self) -> np.ndarray:
        """(n_out,) bound on |rounded output − clamp(act(y))|: half a code, float slack, bias rounding."""
        return self.output_scale * (0.5 + ROUND_SLACK) + 0.5 * self.input_scale * self.weight_scales


@dataclass(frozen=True)
class RoundingSpec:
    """The rounding of an int8 model: its input grid and each layer's output grid."""

    input_scale: float
    input_zero_point: int
    layers: tuple[LayerRounding, ...]

    @property
    def input_range(self) -> tuple[float, float]:
        s, z = self.input_scale, self.input_zero_point
        return (QMIN - z) * s, (QMAX - z) * s

    @property
    def input_radius(self) -> float:
        return self.input_scale * (0.5 + ROUND_SLACK)


def rounding_spec(net: FNN) -> RoundingSpec:
    """Read the int8 grids from ``net.metadata["quantization"]`` (written by ``int8_to_fnn``)."""
    q = net.metadata.get("quantization")
    where = f"network {net.name or '(unnamed)'}"
    if not isinstance(q, Mapping) or "activations" not in q or "input_quantization" not in q:
        raise FormatError(
            f"{where}: no int8 activation grids in its metadata (metadata['quantization']['activations'] and "
            "['input_quantization'], written by `equivrepair compress --method int8-qat` into COMP.meta.json)"
        )
    acts, wl = q["activations"], q.get("layers", [])
    if len(acts) != len(net.layers) or len(wl) != len(net.layers):
        raise FormatError(
            f"{where}: metadata describes {len(acts)} activation grids and {len(wl)} weight grids "
            f"for {len(net.layers)} layers"
        )
    layers = []
    for i, (a, w, layer) in enumerate(zip(acts, wl, net.layers)):
        try:
            ws = np.asarray(w["scale"], dtype=np.float64).ravel()
            if ws.size == 1:
                ws = np.full(layer.n_out, ws[0])
            if ws.size != layer.n_out:
                raise FormatError(f"{where}: layer {i} has {layer.n_out} outputs but {ws.size} weight scales")
            lr = LayerRounding(
                float(a["input_scale"]),
                ws,
                float(a["output_scale"]),
                int(a["output_zero_point"]),
                layer.activation == "relu",
            )
        except (KeyError, TypeError) as exc:
            raise FormatError(f"{where}: layer {i} grid metadata incomplete ({exc})") from None
        if not (lr.output_scale > 0 and lr.input_scale > 0 and np.all(ws >= 0)):
            raise FormatError(f"{where}: layer {i} has a non-positive scale")
        layers.append(lr)
    iq = q["input_quantization"]
    return RoundingSpec(float(iq["scale"]), int(iq["zero_point"]), tuple(layers))


# -- the int8 arithmetic ---------------------------------------------------------------------------


def int8_layers(net: FNN, spec: RoundingSpec) -> list[Layer]:
    """``net``'s layers with weights snapped to code x channel scale (the int8 model's exact weights).

    A float32 file stores code x scale rounded to float32; the codes are recovered exactly as long
    as every weight lies within 1% of a code of the grid (else the metadata belongs to another network).
    """
    out = []
    for i, (layer, r) in enumerate(zip(net.layers, spec.layers)):
        s = np.where(r.weight_scales > 0, r.weight_scales, 1.0)[:, None]
        codes = layer.W / s
        off = np.abs(codes - np.round(codes))
        if off.size and off.max() > 0.01:
            j, k = np.unravel_index(int(np.argmax(off)), off.shape)
            raise FormatError(
                f"network {net.name or '(unnamed)'}: layer {i} weight [{j}, {k}] = {layer.W[j, k]!r} is "
                f"{off[j, k]:.3f} codes off the int8 grid of its metadata (scale {float(s[j, 0])!r})"
            )
        out.append(Layer(np.round(codes) * s, layer.b, layer.activation))
    return out


def _quantize(v: np.ndarray, scale: float, zp: int, lo_code: int) -> np.ndarray:
    """Codes as fbgemm computes them: multiply by the float32 inverse scale, round half to even, clamp."""
    inv = np.float32(1.0) / np.float32(scale)
    return np.clip(np.rint(v.astype(np.float32) * inv).astype(np.float64) + zp, lo_code, QMAX)


def simulate_int8(net: FNN, spec: RoundingSpec, X: np.ndarray, trace: bool = False) -> Any:
    """Outputs of the int8 model on ``X`` (N, n), in float64 from its final codes.

    Matches torch's fbgemm int8 model code for code except at rounding ties of float32 arithmetic
    (tests: test_rounding.py). Used for honest lower bounds, never for upper bounds. With
    ``trace`` also returns the dequantized input and every layer's (pre-activation, rounded output).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    q = _quantize(X, spec.input_scale, spec.input_zero_point, QMIN)
    a = (q - spec.input_zero_point) * spec.input_scale
    steps = [a]
    for layer, r in zip(int8_layers(net, spec), spec.layers):
        y = a @ layer.W.T + layer.b
        z = r.output_zero_point
        q = np.clip(np.rint(y / r.output_scale) + z, z if r.relu else QMIN, QMAX)
        a = (q - z) * r.output_scale
        steps.append((y, a))
    return (a, steps) if trace else a


# -- the over-approximating network --------------------------------------------------------------


@dataclass
class RoundingModel:
    """F(x, u) with u_k = e_k + r_k in [0, 2 r_k]: the int8 model's outputs for all rounding errors."""

    orig_ext: FNN  # Φ1 ignoring the error inputs
    comp_ext: FNN  # F
    box: Box  # X (clipped to the input grid's range) x the error box
    n_inputs: int
    radii: list[np.ndarray]  # r_0 (input), r_1 ... r_L (layer outputs)
    clamped: list[int] = field(default_factory=list)  # per layer: neurons whose clamp may act

    def split(self, z: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """A point of the extended box as (x, [e_0, ..., e_L])."""
        z = np.asarray(z, dtype=np.float64)
        x, rest, es = z[: self.n_inputs], z[self.n_inputs :], []
        for r in self.radii:
            es.append(rest[: r.size] - r)
            rest = rest[r.size :]
        return x, es


def _pre_bounds(layers: list[Layer], pre: Layer, box: Box) -> tuple[np.ndarray, np.ndarray]:
    sym, _ = symbolic_bounds(FNN((*layers, pre)), box.lower, box.upper)
    slack = 1e-9 * (1.0 + np.abs(sym.lower[0]) + np.abs(sym.upper[0]))
    return sym.lower[0] - slack, sym.upper[0] + slack


def rounding_model(orig: FNN, comp: FNN, spec: RoundingSpec, box: Box) -> RoundingModel:
    """Build F (see the module doc) and Φ1 on the extended input (F clips x to the input grid's range
    exactly, as the int8 model does, where X leaves it)."""
    if box.has_constraints:
        raise InputSetError("activation rounding is modelled for box input sets only (no linear constraints)")
    n = comp.n_inputs
    lo_in, hi_in = spec.input_range
    x_lo, x_hi = box.lower, box.upper
    radii = [np.full(n, spec.input_radius)] + [r.radius for r in spec.layers]
    sizes = [r.size for r in radii]
    total = n + sum(sizes)
    ext = Box(
        np.concatenate([x_lo, *[np.zeros(s) for s in sizes]]),
        np.concatenate([x_hi, *[2.0 * r for r in radii]]),
        label=(box.label + " x rounding errors").strip(),
    )
    # state: current hidden vector h; a_prev = P h + p0; u_k = h[carry[k]] for k not yet used
    offs = np.cumsum([n, *sizes])
    carry = {k: np.arange(offs[k], offs[k] + sizes[k]) for k in range(len(sizes))}
    P, p0, width = np.eye(n, total), np.zeros(n), total
    layers: list[Layer] = []
    below, above = np.flatnonzero(x_lo < lo_in), np.flatnonzero(x_hi > hi_in)
    if below.size or above.size:
        # the int8 model clips its input to the grid's range: clip(x) = s + relu(x - s) - relu(x - hi)
        # with s = lo_in where x can go below it, else x's own lower bound (that ReLU is then the identity)
        shift = np.where(x_lo < lo_in, lo_in, x_lo)
        eye = np.eye(total)
        rows_W = [eye[:n], eye[above]] + [eye[carry[k]] for k in range(len(sizes))]
        rows_b = [-shift, np.full(above.size, -hi_in)] + [np.zeros(sz) for sz in sizes]
        layers.append(Layer(np.vstack(rows_W), np.concatenate(rows_b), "relu"))
        width = n + above.size + sum(sizes)
        P = np.zeros((n, width))
        P[np.arange(n), np.arange(n)] = 1.0
        P[above, n + np.arange(above.size)] = -1.0
        p0 = shift
        pos = n + above.size
        for k, sz in enumerate(sizes):
            carry[k] = np.arange(pos, pos + sz)
            pos += sz
    clamped: list[int] = []
    L = len(comp.layers)
    for i, (layer, r) in enumerate(zip(int8_layers(comp, spec), spec.layers)):
        # y = W (a_prev + u_{i} - r_{i}) + b, with u_i the error of the previous rounding (k = i)
        U = np.zeros((len(radii[i]), width))
        U[np.arange(len(radii[i])), carry[i]] = 1.0
        Wy = layer.W @ (P + U)
        by = layer.W @ (p0 - radii[i]) + layer.b
        ylo, yhi = _pre_bounds(layers, Layer(Wy, by, "linear"), ext)
        c_lo, c_hi = r.clamp
        high = np.flatnonzero(yhi > c_hi)
        low = np.flatnonzero(ylo < c_lo) if not r.relu else np.zeros(0, dtype=int)
        clamped.append(int(high.size + low.size))
        keep = [k for k in range(i + 1, len(radii))]
        m = layer.n_out
        last = i == L - 1
        if last and high.size == 0 and low.size == 0:
            Uo = np.zeros((m, width))
            Uo[np.arange(m), carry[i + 1]] = 1.0
            layers.append(Layer(Wy + Uo, by - radii[i + 1], "linear"))
            break
        # hidden ReLU layer: [act part | clamp-high part | carried errors]
        if r.relu:
            rows_W, rows_b = [Wy, Wy[high]], [by, by[high] - c_hi]
            P_new = np.hstack([np.eye(m), -np.eye(m)[:, high]])
            p_new = np.zeros(m)
        else:  # clamp(y, lo, hi) = lo + relu(y - lo) - relu(y - hi); unclamped-low rows: y = m + relu(y - m)
            shift = np.where(ylo < c_lo, c_lo, np.minimum(ylo, c_lo))
            rows_W, rows_b = [Wy, Wy[high]], [by - shift, by[high] - c_hi]
            P_new = np.hstack([np.eye(m), -np.eye(m)[:, high]])
            p_new = shift
        n_act = m + high.size
        new_carry, pos = {}, n_act
        for k in keep:
            rows_W.append(np.eye(width)[carry[k]])
            rows_b.append(np.zeros(sizes[k]))
            new_carry[k] = np.arange(pos, pos + sizes[k])
            pos += sizes[k]
        layers.append(Layer(np.vstack(rows_W), np.concatenate(rows_b), "relu"))
        width = pos
        P = np.hstack([P_new, np.zeros((m, width - n_act))])
        p0, carry = p_new, new_carry
        if last:  # the output clamp needed a ReLU layer: output = P h + p0 + u_L - r_L
            Uo = np.zeros((m, width))
            Uo[np.arange(m), carry[i + 1]] = 1.0
            layers.append(Layer(P + Uo, p0 - radii[i + 1], "linear"))
    comp_ext = FNN(tuple(layers), name=f"{comp.name or 'net'}+rounding")
    first = orig.layers[0]
    W1 = np.hstack([first.W, np.zeros((first.n_out, total - n))])
    orig_ext = orig.with_layers([Layer(W1, first.b, first.activation), *orig.layers[1:]])
    return RoundingModel(orig_ext, comp_ext, ext, n, radii, clamped)


# -- evaluation --------------------------------------------------------------------------------------


@dataclass
class RoundedDiscrepancy:
    """max_x |Φ1(x) − Q(x)|_inf for the int8 model Q: ``upper`` sound (via the rounding model),
    ``lower`` attained by Q itself at ``witness`` (int8 arithmetic, :func:`simulate_int8`)."""

    lower: float
    upper: float
    witness: np.ndarray | None
    per_output: np.ndarray  # sound intervals of Φ1 − Q
    model: Discrepancy  # the engine's result on the rounding model (its lower is not Q's)
    ignored: Discrepancy | None  # the same question with rounding ignored (the FNN alone), if asked
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "witness": None if self.witness is None else self.witness.tolist(),
            "per_output": np.asarray(self.per_output).tolist(),
            "model": self.model.to_json(),
            "ignored": None if self.ignored is None else self.ignored.to_json(),
            "stats": self.stats,
        }


def evaluate_int8(
    orig: FNN,
    comp: FNN,
    input_set: Box,
    method: str = "exact",
    time_limit: float | None = None,
    outputs: list[int] | None = None,
    n_samples: int = 256,
    seed: int = 0,
    compare_ignored: bool = False,
    **options: Any,
) -> RoundedDiscrepancy:
    """Discrepancy between Φ1 and the int8 model behind ``comp`` (its metadata holds the grids).

    Any :func:`~equivrepair.reach.api.evaluate` method bounds the rounding model; the lower bound
    is the int8 model's own discrepancy at the model's witness and at ``n_samples`` random points.
    """
    from .api import evaluate

    t0 = time.perf_counter()
    spec = rounding_spec(comp)
    model = rounding_model(orig, comp, spec, input_set)
    res = evaluate(model.orig_ext, model.comp_ext, model.box, method, time_limit, outputs=outputs, **options)
    outs = list(range(orig.n_outputs)) if outputs is None else list(outputs)
    cands = [input_set.center, input_set.sample(n_samples, seed=seed)]
    if res.witness is not None:
        cands.insert(0, model.split(res.witness)[0])
    X = np.vstack([np.atleast_2d(c) for c in cands])
    gaps = np.abs(orig.forward(X) - simulate_int8(comp, spec, X))[:, outs].max(axis=1)
    best = int(np.argmax(gaps))
    ignored = None
    if compare_ignored:
        ignored = evaluate(orig, comp, input_set, method, time_limit, outputs=outputs, **options)
    stats = {
        "time": time.perf_counter() - t0,
        "model_inputs": model.box.dim,
        "model_widths": [layer.n_out for layer in model.comp_ext.layers],
        "clamp_neurons": model.clamped,
        "radii_max": [float(r.max()) for r in model.radii],
        "lower_points": int(len(X)),
    }
    return RoundedDiscrepancy(float(gaps[best]), float(res.upper), X[best], res.per_output, res, ignored, stats)
