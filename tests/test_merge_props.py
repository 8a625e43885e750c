"""Property tests of the merged network: merge(a, b)(x) = a(x) − b(x).

Float64: agreement to 1e-9 (absolute, scaled by max(1, |a(x)| + |b(x)|)). After ``save_onnx``,
onnxruntime (float32) agrees to ``DEFAULT_RTOL = 1e-4`` of the output scale (the largest
magnitude of the terms summed into an output, which for a merged network is about |a(x)| + |b(x)|,
so cancellation in a(x) − b(x) does not make the check meaningless; see ``onnx_io``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equivrepair.merge import MergeError, merge
from equivrepair.nets.ir import FNN, Layer, random_fnn
from equivrepair.nets.onnx_io import DEFAULT_RTOL, float32_error, onnx_runtime_forward, save_onnx


@st.composite
def net_pair(draw):
    n_in = draw(st.integers(1, 12))
    n_out = draw(st.integers(1, 12))

    def one() -> FNN:
        depth = draw(st.integers(1, 6))
        hidden = draw(st.lists(st.integers(1, 12), min_size=depth - 1, max_size=depth - 1))
        base = random_fnn([n_in, *hidden, n_out], seed=draw(st.integers(0, 2**32 - 1)))
        # activations: mostly ReLU hidden layers, sometimes a linear hidden layer or a ReLU output
        acts = [draw(st.sampled_from(["relu", "relu", "relu", "linear"])) for _ in range(depth - 1)]
        acts.append(draw(st.sampled_from(["linear", "linear", "relu"])))
        return FNN(tuple(Layer(la.W, la.b, a) for la, a in zip(base.layers, acts)), name=f"d{depth}")

    return one(), one()


@settings(max_examples=50, deadline=None)
@given(pair=net_pair(), seed=st.integers(0, 2**16))
def test_merge_is_the_difference(pair, seed):
    a, b = pair
    x = np.random.default_rng(seed).normal(size=(64, a.n_inputs)) * 2.0
    ya, yb = a(x), b(x)
    m = merge(a, b)
    assert m.n_inputs == a.n_inputs and m.n_outputs == a.n_outputs
    tol = 1e-9 * np.maximum(1.0, np.abs(ya) + np.abs(yb))
    assert np.all(np.abs(m(x) - (ya - yb)) <= tol)
    both = merge(a, b, output="both")
    assert np.all(np.abs(both(x) - np.hstack([ya, yb])) <= np.hstack([tol, tol]))


@settings(max_examples=30, deadline=None)
@given(pair=net_pair(), seed=st.integers(0, 2**16))
def test_merged_onnx_export_matches(pair, seed, tmp_path_factory):
    a, b = pair
    m = merge(a, b)
    path = tmp_path_factory.mktemp("merged") / "m.onnx"
    rep = save_onnx(m, path, n_samples=64, seed=seed)  # raises beyond DEFAULT_RTOL
    assert rep["max_rel_err"] <= DEFAULT_RTOL
    x = np.random.default_rng(seed).normal(size=(32, a.n_inputs)).astype(np.float32).astype(np.float64)
    y = onnx_runtime_forward(path, x)
    assert np.allclose(m(x), a(x) - b(x), rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(a(x)).max())))
    _, rel = float32_error(m, x, y)
    assert rel <= DEFAULT_RTOL


@pytest.mark.parametrize(
    "wa, wb, what",
    [([3, 4, 2], [4, 4, 2], "3 inputs.*4"), ([3, 4, 2], [3, 5, 1], "2 outputs.*1")],
)
def test_merge_size_mismatch(wa, wb, what):
    a, b = random_fnn(wa, name="A"), random_fnn(wb, name="B")
    with pytest.raises(MergeError, match=what):
        merge(a, b)
