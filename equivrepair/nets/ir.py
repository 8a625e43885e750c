"""The one network representation: an immutable feed-forward network of dense layers in float64.

Every format (ONNX, .nnet, torch) converts into and out of :class:`FNN`; the merged network is an
FNN too, so everything that reads an FNN reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

ACTIVATIONS = ("relu", "linear")


class NetworkError(ValueError):
    """A network that cannot be represented: bad shapes, non-finite weights, unknown activation."""


def _frozen_array(a: Any, what: str, ndim: int) -> np.ndarray:
    arr = np.array(a, dtype=np.float64, copy=True)
    if arr.ndim != ndim:
        raise NetworkError(f"{what}: expected a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise NetworkError(f"{what}: non-finite value at index {bad}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Layer:
    """A dense layer ``activation(W @ x + b)``; ``W`` has shape (outputs, inputs)."""

    W: np.ndarray
    b: np.ndarray
    activation: str = "relu"

    def __post_init__(self) -> None:
        W = _frozen_array(self.W, "layer weights", 2)
        b = _frozen_array(np.ravel(self.b), "layer bias", 1)
        if W.shape[0] != b.shape[0]:
            raise NetworkError(f"layer: weights have {W.shape[0]} rows but bias has {b.shape[0]} entries")
        if self.activation not in ACTIVATIONS:
            raise NetworkError(f"layer: unknown activation {self.activation!r} (known: {ACTIVATIONS})")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)

    def __reduce__(self):  # re-validate (and re-freeze) on unpickling
        return (Layer, (self.W, self.b, self.activation))

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def pre(self, x: np.ndarray) -> np.ndarray:
        """Pre-activation for a batch ``x`` of shape (N, n_in)."""
        return x @ self.W.T + self.b

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = self.pre(x)
        return np.maximum(z, 0.0) if self.activation == "relu" else z


@dataclass(frozen=True, eq=False)
class FNN:
    """An immutable feed-forward network.

    ``input_domain`` is an optional (lower, upper) box the network is meant for (e.g. .nnet input
    min/max); it is recorded, never applied by :meth:`forward`. ``metadata`` holds provenance and
    compression facts (quantization grid, pruning mask, ...); it does not enter the content hash.
    """

    layers: tuple[Layer, ...]
    input_domain: tuple[np.ndarray, np.ndarray] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise NetworkError(f"network {self.name!r}: no layers")
        for i, (a, c) in enumerate(zip(layers, layers[1:])):
            if a.n_out != c.n_in:
                raise NetworkError(
                    f"network {self.name!r}: layer {i} has {a.n_out} outputs but layer {i + 1} expects {c.n_in} inputs"
                )
        object.__setattr__(self, "layers", layers)
        if self.input_domain is not None:
            lo = _frozen_array(np.ravel(self.input_domain[0]), "input domain lower", 1)
            hi = _frozen_array(np.ravel(self.input_domain[1]), "input domain upper", 1)
            if lo.shape != (self.n_inputs,) or hi.shape != (self.n_inputs,):
                raise NetworkError(
                    f"network {self.name!r}: input domain has {lo.shape[0]} entries, network has {self.n_inputs} inputs"
                )
            if np.any(lo > hi):
                raise NetworkError(f"network {self.name!r}: input domain lower > upper")
            object.__setattr__(self, "input_domain", (lo, hi))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __reduce__(self):  # the metadata proxy does not pickle; rebuild through the constructor
        return (FNN, (self.layers, self.input_domain, dict(self.metadata), self.name))

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def widths(self) -> list[int]:
        """Layer sizes from input to output, e.g. [5, 50, 50, 5]."""
        return [self.n_inputs] + [layer.n_out for layer in self.layers]

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def n_params(self) -> int:
        return int(sum(layer.W.size + layer.b.size for layer in self.layers))

    @property
    def n_nonzero(self) -> int:
        return int(sum(np.count_nonzero(layer.W) + np.count_nonzero(layer.b) for layer in self.layers))

    @property
    def n_relu(self) -> int:
        return int(sum(layer.n_out for layer in self.layers if layer.activation == "relu"))

    # -- evaluation --------------------------------------------------------------------------
    def forward(self, x: Any) -> np.ndarray:
        """Evaluate in float64; ``x`` is one input (n_in,) or a batch (N, n_in)."""
        arr = np.asarray(x, dtype=np.float64)
        single = arr.ndim == 1
        batch = arr.reshape(1, -1) if single else arr.reshape(arr.shape[0], -1)
        if batch.shape[1] != self.n_inputs:
            raise NetworkError(f"network {self.name!r}: input has {batch.shape[1]} values, expected {self.n_inputs}")
        for layer in self.layers:
            batch = layer(batch)
        return batch[0] if single else batch

    __call__ = forward

    def activations(self, x: Any) -> list[np.ndarray]:
        """Pre-activations of every layer for a batch (used by pruning criteria and bounds tests)."""
        batch = np.atleast_2d(np.asarray(x, dtype=np.float64))
        pres = []
        for layer in self.layers:
            z = layer.pre(batch)
            pres.append(z)
            batch = np.maximum(z, 0.0) if layer.activation == "relu" else z
        return pres

    # -- identity ----------------------------------------------------------------------------
    @property
    def content_hash(self) -> str:
        """SHA-256 of the shapes, activations and float64 weights; certificates cite it."""
        h = hashlib.sha256(b"equivrepair-fnn-v1")
        for layer in self.layers:
            h.update(f"{layer.W.shape[0]}x{layer.W.shape[1]}:{layer.activation};".encode())
            h.update(np.ascontiguousarray(layer.W, dtype="<f8").tobytes())
            h.update(np.ascontiguousarray(layer.b, dtype="<f8").tobytes())
        return h.hexdigest()

    def summary(self) -> str:
        """One readable paragraph: widths, parameters, activations, domain."""
        acts = "".join("R" if layer.activation == "relu" else "L" for layer in self.layers)
        lines = [
            f"FNN {self.name or '(unnamed)'}",
            f"  widths     {'-'.join(map(str, self.widths))}",
            f"  layers     {self.depth} (activations {acts}; R = ReLU, L = linear)",
            f"  parameters {self.n_params} ({self.n_nonzero} non-zero), ReLUs {self.n_relu}",
            f"  sha256     {self.content_hash}",
        ]
        if self.input_domain is not None:
            lo, hi = self.input_domain
            lines.append(f"  domain     [{lo.min():.6g}, {hi.max():.6g}] (per-input box recorded)")
        return "\n".join(lines)

    def info(self) -> dict[str, Any]:
        """Machine-readable summary (for ``--json``)."""
        return {
            "name": self.name,
            "widths": self.widths,
            "activations": [layer.activation for layer in self.layers],
            "n_params": self.n_params,
            "n_nonzero": self.n_nonzero,
            "n_relu": self.n_relu,
            "sha256": self.content_hash,
            "input_domain": None
            if self.input_domain is None
            else [self.input_domain[0].tolist(), self.input_domain[1].tolist()],
            "metadata": _jsonable(dict(self.metadata)),
        }

    # -- construction helpers ----------------------------------------------------------------
    def replace(self, **changes: Any) -> FNN:
        """A copy with some fields changed (the FNN itself is immutable)."""
        fields = {
            "layers": self.layers,
            "input_domain": self.input_domain,
            "metadata": dict(self.metadata),
            "name": self.name,
        }
        fields.update(changes)
        return FNN(**fields)

    def with_layers(self, layers: Iterable[Layer]) -> FNN:
        return self.replace(layers=tuple(layers))

    @classmethod
    def from_arrays(
        cls,
        weights: Sequence[Any],
        biases: Sequence[Any],
        activations: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> FNN:
        """Build from lists of weight matrices (out, in) and biases; ReLU on all but the last layer."""
        if len(weights) != len(biases):
            raise NetworkError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
        if activations is None:
            activations = ["relu"] * (len(weights) - 1) + ["linear"]
        layers = tuple(Layer(W, b, a) for W, b, a in zip(weights, biases, activations))
        return cls(layers, **kwargs)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def random_fnn(widths: Sequence[int], seed: int | np.random.Generator = 0, scale: float = 1.0, name: str = "") -> FNN:
    """A random ReLU network with He-style scaling (tests, benchmarks, demos)."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        weights.append(rng.normal(0.0, scale * np.sqrt(2.0 / n_in), size=(n_out, n_in)))
        biases.append(rng.normal(0.0, 0.1 * scale, size=n_out))
    return FNN.from_arrays(weights, biases, name=name or "random-" + "-".join(map(str, widths)))
