"""The .nnet text format (Kyle Julian, Stanford 2016; used by Reluplex, ReluVal, Neurify, NeuroDiff, Marabou).

Layout: optional ``//`` comment lines, then (each line may end with a comma)

1. ``numLayers, inputSize, outputSize, maxLayerSize``
2. the ``numLayers + 1`` layer sizes, input first
3. a flag line (the unused "symmetric" flag)
4. input minimums, 5. input maximums
6. means: one per input, then the output mean (last entry)
7. ranges: one per input, then the output range (last entry)
8. per layer: the weight matrix row by row (one line per output neuron), then the biases one per line.

All layers but the last are ReLU; the last is linear.

Semantics (as the reference C/C++ readers evaluate it): an input ``x`` is clipped to ``[min, max]``
and normalised, ``x_n = (x − mean) / range``; the network ``N`` is evaluated; the output is
denormalised, ``y = N(x_n) · range_out + mean_out``.

How :func:`load_nnet` maps this onto an :class:`~equivrepair.nets.ir.FNN`
-------------------------------------------------------------------------
* ``input_normalization=True`` (default): the normalisation is folded exactly (float64) into the first
  layer, ``W1 / range`` (column-wise) and ``b1 − W1 (mean / range)``; the FNN takes *raw* inputs and
  ``input_domain`` is ``[min, max]`` in raw units. Clipping is *recorded, not applied*: the FNN equals
  the .nnet function on the domain box and extends it affinely-by-pieces outside it.
* ``input_normalization=False``: the first layer is kept as written; the FNN takes already normalised
  inputs, and ``input_domain`` is the normalised box ``[(min − mean)/range, (max − mean)/range]``.
* ``normalize_output=False`` (default): raw network outputs ``N(x_n)``. ``normalize_output=True`` folds
  ``y · range_out + mean_out`` into the last layer.

Metadata records ``source``, ``format="nnet"``, ``input_normalization``, ``output_normalization``
(whether each was folded), the raw ``input_min``/``input_max``, the input ``means``/``ranges``,
``output_mean``/``output_range`` and the ``flag``. Bounds of ±1e38 or beyond (the ±3.40282e+38
"unbounded" sentinel of float32 writers) are not a domain: when every bound is such a sentinel,
``input_domain`` is ``None``; otherwise sentinels are kept as they are.

Extra entries. The NeuroDiff/ReluVal copies of the ACAS Xu networks carry 7 minimums and maximums and
8 means and ranges for 5 inputs: the entries of the original 7-input ACAS Xu (τ and a_prev) sit
between the 5 input entries and the output entry. Inputs use the first ``inputSize`` entries, the
output mean and range are the *last* entry (7.5188840201005975 and 373.94992 for ACAS Xu, the
values in the original Reluplex files). A reader that takes entry ``inputSize`` sequentially (as
Reluplex's and ReluVal's C readers do) would take the τ mean 35.1111111 and range 100 instead; this
only matters for ``normalize_output=True``. The extra entries are kept in metadata (``extra_mins``,
``extra_maxes``, ``extra_means``, ``extra_ranges``) and written back by :func:`save_nnet`.

Relation to the VNN-COMP ACAS Xu ONNX networks
-----------------------------------------------
``ACASXU_run2a_<a>_<b>_batch_2000.onnx`` computes ``Sub(x, 0)`` (its ``input_AvgImg`` constant is all
zeros), then the same six ReLU layers and linear output layer, with the weights of the .nnet file
rounded to float32, and no output denormalisation. So, "the same function" means:

    onnx(x_n) = N(x_n) = load_nnet(p, input_normalization=False)(x_n)            for every x_n
    onnx((x − mean)/range) = load_nnet(p)(x)                   for raw x in [min, max]

both up to float32 (weights rounded to float32 and float32 arithmetic in onnxruntime; the weights
agree to a relative 2⁻²⁴ or better). The VNN-LIB properties of VNN-COMP are therefore stated in
normalised input units and on raw (not denormalised) outputs. The measured agreement is tested in
``tests/test_nnet_io.py``.

:func:`save_nnet` writes ``repr``-precision floats, so ``load_nnet(save_nnet(net))`` reproduces the
weights bit for bit (see its docstring for which normalisation it writes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from .ir import FNN, Layer, NetworkError

__all__ = ["UNBOUNDED", "load_nnet", "save_nnet"]

UNBOUNDED = 3.40282e38
"""The bound written for an input without a domain (the float32 maximum, as other .nnet writers use)."""

_SENTINEL = 1e38


class _Lines:
    """The non-comment lines of a .nnet file with their 1-based line numbers."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []
        header = True
        for no, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if header and (line.startswith("//") or not line):
                continue
            header = False
            if not line:
                continue
            self.items.append((no, line))
        self.pos = 0

    def error(self, lineno: int | None, msg: str) -> FormatError:
        where = f"{self.path}:{lineno}" if lineno is not None else f"{self.path}"
        return FormatError(f"{where}: {msg}")

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.pos >= len(self.items):
            last = self.items[-1][0] if self.items else 0
            raise self.error(last + 1, f"unexpected end of file, expected {what}")
        no, line = self.items[self.pos]
        self.pos += 1
        fields = [f.strip() for f in line.split(",")]
        while fields and fields[-1] == "":
            fields.pop()
        return no, fields

    def ints(self, what: str, min_count: int, exact: bool = False) -> tuple[int, list[int]]:
        no, fields = self.next(what)
        try:
            vals = [int(f) for f in fields]
        except ValueError as exc:
            raise self.error(no, f"{what}: expected integers, got {fields[:8]}") from exc
        if len(vals) < min_count or (exact and len(vals) != min_count):
            raise self.error(no, f"{what}: expected {min_count} values, got {len(vals)}")
        return no, vals

    def floats(self, what: str, min_count: int, exact: bool = False) -> tuple[int, list[float]]:
        no, fields = self.next(what)
        try:
            vals = [float(f) for f in fields]
        except ValueError as exc:
            bad = next((f for f in fields if not _is_float(f)), "?")
            raise self.error(no, f"{what}: not a number: {bad!r}") from exc
        if len(vals) < min_count or (exact and len(vals) != min_count):
            raise self.error(no, f"{what}: expected {min_count} values, got {len(vals)}")
        if not all(math.isfinite(v) for v in vals):
            raise self.error(no, f"{what}: non-finite value")
        return no, vals


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def load_nnet(
    path: str | Path,
    normalize_output: bool = False,
    input_normalization: bool = True,
) -> FNN:
    """Read a .nnet file (see the module docstring for the semantics of the two normalisation flags).

    Malformed files raise :class:`~equivrepair.errors.FormatError` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a text file: {exc}") from exc
    r = _Lines(path, text)
    no, head = r.ints("header numLayers,inputSize,outputSize,maxLayerSize", 4)
    n_layers, n_in, n_out, _max_size = head[:4]
    if n_layers < 1 or n_in < 1 or n_out < 1:
        raise r.error(no, f"header: sizes must be positive, got {head[:4]}")
    no, sizes = r.ints("layer sizes", n_layers + 1)
    sizes = sizes[: n_layers + 1]
    if sizes[0] != n_in or sizes[-1] != n_out:
        raise r.error(no, f"layer sizes {sizes} do not start with inputSize {n_in} and end with outputSize {n_out}")
    if min(sizes) < 1:
        raise r.error(no, f"layer sizes must be positive, got {sizes}")
    _, flag = r.next("flag line")
    _, mins = r.floats("input minimums", n_in)
    no_maxes, maxes = r.floats("input maximums", n_in)
    _, means = r.floats("means", n_in + 1)
    no_ranges, ranges = r.floats("ranges", n_in + 1)
    if any(v == 0 for v in ranges[:n_in]) or ranges[-1] == 0:
        raise r.error(no_ranges, "ranges: zero range")
    lo, hi = np.array(mins[:n_in]), np.array(maxes[:n_in])
    if np.any(lo > hi):
        raise r.error(no_maxes, "input minimums exceed input maximums")

    weights, biases = [], []
    for k in range(n_layers):
        rows = []
        for i in range(sizes[k + 1]):
            _, row = r.floats(f"layer {k + 1} weight row {i + 1}", sizes[k], exact=True)
            rows.append(row)
        bias = []
        for i in range(sizes[k + 1]):
            _, b = r.floats(f"layer {k + 1} bias {i + 1}", 1, exact=True)
            bias.append(b[0])
        weights.append(np.array(rows, dtype=np.float64).reshape(sizes[k + 1], sizes[k]))
        biases.append(np.array(bias, dtype=np.float64))
    if r.pos < len(r.items):
        no, line = r.items[r.pos]
        raise r.error(no, f"unexpected content after the last layer: {line[:60]!r}")

    mean_in, range_in = np.array(means[:n_in]), np.array(ranges[:n_in])
    mean_out, range_out = means[-1], ranges[-1]
    if input_normalization:
        W0 = weights[0] / range_in  # columns scaled: W (x − m)/r = (W/r) x − (W/r) m
        b0 = biases[0] - W0 @ mean_in
        weights[0], biases[0] = W0, b0
        dom_lo, dom_hi = lo, hi
    else:
        dom_lo, dom_hi = (lo - mean_in) / range_in, (hi - mean_in) / range_in
        # a negative range flips the box
        dom_lo, dom_hi = np.minimum(dom_lo, dom_hi), np.maximum(dom_lo, dom_hi)
    if normalize_output:
        weights[-1] = weights[-1] * range_out
        biases[-1] = biases[-1] * range_out + mean_out
    sentinel = (np.abs(lo) >= _SENTINEL) & (np.abs(hi) >= _SENTINEL)
    domain = None if np.all(sentinel) else (dom_lo, dom_hi)
    meta = {
        "source": str(path),
        "format": "nnet",
        "input_normalization": bool(input_normalization),
        "output_normalization": bool(normalize_output),
        "input_min": lo.tolist(),
        "input_max": hi.tolist(),
        "means": mean_in.tolist(),
        "ranges": range_in.tolist(),
        "output_mean": float(mean_out),
        "output_range": float(range_out),
        "flag": ",".join(flag),
    }
    extras = {
        "extra_mins": mins[n_in:],
        "extra_maxes": maxes[n_in:],
        "extra_means": means[n_in:-1],
        "extra_ranges": ranges[n_in:-1],
    }
    meta.update({k: v for k, v in extras.items() if v})
    acts = ["relu"] * (n_layers - 1) + ["linear"]
    try:
        layers = tuple(Layer(W, b, a) for W, b, a in zip(weights, biases, acts))
        return FNN(layers, input_domain=domain, metadata=meta, name=path.stem)
    except NetworkError as exc:
        raise FormatError(f"{path}: {exc}") from exc


def _fmt(v: float) -> str:
    return repr(float(v))


def _nnet_layers(net: FNN) -> list[Layer]:
    """Hidden layers ReLU, last linear (linear hidden layers folded, a final ReLU followed by identity)."""
    from ..merge import normalise

    return list(normalise(net).layers)


def save_nnet(
    net: FNN,
    path: str | Path,
    *,
    use_metadata: bool = True,
    comments: Sequence[str] | None = None,
) -> Path:
    """Write ``net`` as a .nnet file with ``repr``-precision floats (exact round trip of every weight).

    Hidden linear layers are folded into their successors and a final ReLU is followed by an identity
    layer, since .nnet networks are ReLU everywhere but the output.

    Normalisation written: means 0 and ranges 1 (the file computes ``net.forward`` itself) unless the
    metadata says that the FNN's input or output is *normalised* relative to the file, i.e. it was read
    with ``load_nnet(..., input_normalization=False)`` (then the metadata means/ranges are written, with
    the first layer untouched, so the file is the original one) or with ``normalize_output=False``
    (then the metadata output mean/range are written, the last layer untouched). ``use_metadata=False``
    always writes means 0 and ranges 1. Minimums and maximums are the ``input_domain`` in the file's
    raw units (the metadata raw values when they match it), or ±3.40282e+38 when there is none.
    Returns the path written.
    """
    path = Path(path)
    meta: Mapping[str, Any] = net.metadata if use_metadata else {}
    layers = _nnet_layers(net)
    n_in, n_out = net.n_inputs, net.n_outputs
    is_nnet = meta.get("format") == "nnet"

    mean_in, range_in = np.zeros(n_in), np.ones(n_in)
    if is_nnet and meta.get("input_normalization") is False and len(meta.get("means", ())) == n_in:
        mean_in = np.array(meta["means"], dtype=np.float64)
        range_in = np.array(meta["ranges"], dtype=np.float64)
    mean_out, range_out = 0.0, 1.0
    if is_nnet and meta.get("output_normalization") is False and "output_mean" in meta:
        mean_out, range_out = float(meta["output_mean"]), float(meta["output_range"])

    if net.input_domain is None:
        lo, hi = np.full(n_in, -UNBOUNDED), np.full(n_in, UNBOUNDED)
    else:
        lo, hi = net.input_domain
        raw_lo, raw_hi = lo * range_in + mean_in, hi * range_in + mean_in
        raw_lo, raw_hi = np.minimum(raw_lo, raw_hi), np.maximum(raw_lo, raw_hi)
        m_lo, m_hi = meta.get("input_min"), meta.get("input_max")
        if is_nnet and m_lo is not None and len(m_lo) == n_in:
            m_lo, m_hi = np.array(m_lo, dtype=np.float64), np.array(m_hi, dtype=np.float64)
            back_lo, back_hi = (m_lo - mean_in) / range_in, (m_hi - mean_in) / range_in
            back_lo, back_hi = np.minimum(back_lo, back_hi), np.maximum(back_lo, back_hi)
            if np.array_equal(back_lo, lo) and np.array_equal(back_hi, hi):
                raw_lo, raw_hi = m_lo, m_hi
        lo, hi = raw_lo, raw_hi

    extra = {k: list(meta.get(k, [])) if is_nnet else [] for k in ("extra_mins", "extra_maxes")}
    extra_mr = {k: list(meta.get(k, [])) if is_nnet else [] for k in ("extra_means", "extra_ranges")}
    sizes = [n_in] + [layer.n_out for layer in layers]
    out: list[str] = []
    for c in comments if comments is not None else _default_comments(net):
        out.append("// " + c.replace("\n", " "))
    out.append(f"{len(layers)},{n_in},{n_out},{max(sizes)},")
    out.append(",".join(map(str, sizes)) + ",")
    flag = str(meta.get("flag", "0")) if is_nnet else "0"
    out.append((flag or "0") + ",")
    out.append(",".join(_fmt(v) for v in [*lo, *extra["extra_mins"]]) + ",")
    out.append(",".join(_fmt(v) for v in [*hi, *extra["extra_maxes"]]) + ",")
    out.append(",".join(_fmt(v) for v in [*mean_in, *extra_mr["extra_means"], mean_out]) + ",")
    out.append(",".join(_fmt(v) for v in [*range_in, *extra_mr["extra_ranges"], range_out]) + ",")
    for layer in layers:
        for row in layer.W:
            out.append(",".join(_fmt(v) for v in row) + ",")
        for v in layer.b:
            out.append(_fmt(v) + ",")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


def _default_comments(net: FNN) -> list[str]:
    return [
        f"{net.name or 'network'} written by equivrepair",
        f"sha256 {net.content_hash}",
        "Neural Network File Format by Kyle Julian, Stanford 2016",
    ]
