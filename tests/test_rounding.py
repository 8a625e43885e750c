"""Activation rounding of int8 models as a bounded perturbation (equivrepair.reach.rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from equivrepair.errors import FormatError, InputSetError
from equivrepair.nets.ir import FNN, Layer, random_fnn
from equivrepair.reach.rounding import (
    LayerRounding,
    RoundingSpec,
    evaluate_int8,
    rounding_model,
    rounding_spec,
    simulate_int8,
)
from equivrepair.spec.sets import Box


def _on_grid(net: FNN, seed: int = 0) -> tuple[FNN, np.ndarray]:
    """Per-channel symmetric int8 weights (what int8 QAT produces) and their scales."""
    layers, scales = [], []
    for layer in net.layers:
        s = np.abs(layer.W).max(axis=1) / 127.0
        layers.append(Layer(np.round(layer.W / s[:, None]) * s[:, None], layer.b, layer.activation))
        scales.append(s)
    return net.with_layers(layers), scales


def _spec(net: FNN, w_scales, out_scales, out_zps, in_scale=1 / 127) -> RoundingSpec:
    layers, prev = [], in_scale
    for layer, ws, s, z in zip(net.layers, w_scales, out_scales, out_zps):
        layers.append(LayerRounding(prev, ws, s, z, layer.activation == "relu"))
        prev = s
    return RoundingSpec(in_scale, 0, tuple(layers))


def _errors_hit_the_model(orig, comp, spec, box, X):
    """F(x, e) with the int8 model's actual rounding errors e reproduces the int8 output."""
    model = rounding_model(orig, comp, spec, box)
    q, steps = simulate_int8(comp, spec, X, trace=True)
    es = [steps[0] - np.clip(X, *spec.input_range)]  # input rounding (after the model's clip)
    for (y, a), layer, r in zip(steps[1:], comp.layers, spec.layers):
        lo, hi = r.clamp
        es.append(a - np.clip(np.maximum(y, 0) if layer.activation == "relu" else y, lo, hi))
    for e, rad in zip(es, model.radii):
        assert np.all(np.abs(e) <= rad + 1e-15)
    Z = np.hstack([X] + [e + rad for e, rad in zip(es, model.radii)])
    assert np.all(model.box.contains(Z, tol=1e-12))
    np.testing.assert_allclose(model.comp_ext.forward(Z), q, atol=1e-9)
    np.testing.assert_allclose(model.orig_ext.forward(Z), orig.forward(X), atol=1e-12)
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rounding_model_contains_the_int8_function(seed):
    orig = random_fnn([6, 12, 8, 3], seed=seed)
    comp, ws = _on_grid(orig)
    X = np.random.default_rng(seed).uniform(0, 1, size=(4000, 6))
    # output scales from the observed ranges (as an observer would), zero point for the linear output
    Y = [np.abs(v).max() for v in (np.maximum(X @ comp.layers[0].W.T + comp.layers[0].b, 0),)]
    spec = _spec(comp, ws, [Y[0] / 127, 0.05, 0.04], [0, 0, 128])
    model = _errors_hit_the_model(orig, comp, spec, Box(np.zeros(6), np.ones(6)), X)
    assert model.comp_ext.n_inputs == 6 + 6 + 12 + 8 + 3


def test_clamps_that_act_are_modelled_exactly():
    orig = random_fnn([5, 10, 10, 4], seed=7)
    comp, ws = _on_grid(orig)
    # tiny output scales: the 255-code ranges are exceeded, high and low clamps act everywhere
    spec = _spec(comp, ws, [0.002, 0.002, 0.002], [0, 0, 128])
    box = Box(np.zeros(5), np.ones(5))
    model = _errors_hit_the_model(orig, comp, spec, box, np.random.default_rng(3).uniform(0, 1, (4000, 5)))
    assert model.clamped[0] > 0 and model.clamped[-1] > 0
    assert len(model.comp_ext.layers) == len(comp.layers) + 1  # the output clamp needs a ReLU layer


def test_evaluate_int8_brackets_the_sampled_int8_discrepancy():
    orig = random_fnn([4, 10, 8, 3], seed=11)
    comp, ws = _on_grid(orig)
    spec = _spec(comp, ws, [0.03, 0.03, 0.03], [0, 0, 128])
    comp = comp.replace(metadata={"quantization": _metadata(spec)})
    box = Box(np.full(4, 0.2), np.full(4, 0.6))
    r = evaluate_int8(orig, comp, box, "exact", time_limit=60, compare_ignored=True)
    X = box.sample(100_000, seed=5)
    sampled = np.abs(orig.forward(X) - simulate_int8(comp, rounding_spec(comp), X)).max()
    assert r.lower <= sampled + 1e-12 <= r.upper + 1e-12
    assert box.contains(r.witness, tol=0.0)
    assert r.lower == pytest.approx(np.abs(orig.forward(r.witness) - simulate_int8(comp, spec, r.witness)).max())
    assert r.model.status == "exact"
    assert r.ignored is not None and r.ignored.status == "exact"
    assert np.all(r.per_output[:, 0] <= r.per_output[:, 1])


def _metadata(spec: RoundingSpec) -> dict:
    return {
        "input_quantization": {"scale": spec.input_scale, "zero_point": spec.input_zero_point},
        "layers": [{"scale": r.weight_scales.tolist()} for r in spec.layers],
        "activations": [
            {"input_scale": r.input_scale, "output_scale": r.output_scale, "output_zero_point": r.output_zero_point}
            for r in spec.layers
        ],
    }


def test_bad_metadata_and_input_sets_are_named():
    net = random_fnn([3, 4, 2], seed=0)
    with pytest.raises(FormatError, match="no int8 activation grids"):
        rounding_spec(net)
    comp, ws = _on_grid(net)
    spec = _spec(comp, ws, [0.05, 0.05], [0, 128])
    bad = dict(_metadata(spec))
    bad["activations"] = bad["activations"][:1]
    with pytest.raises(FormatError, match="1 activation grids"):
        rounding_spec(comp.replace(metadata={"quantization": bad}))
    with pytest.raises(InputSetError, match="box input sets only"):
        rounding_model(net, comp, spec, Box(np.zeros(3), np.ones(3), A=np.ones((1, 3)), c=np.ones(1)))


def test_inputs_outside_the_grid_range_are_clipped_as_the_int8_model_does():
    orig = random_fnn([4, 8, 3], seed=5)
    comp, ws = _on_grid(orig)
    spec = _spec(comp, ws, [0.03, 0.03], [0, 128], in_scale=1 / 127)  # input range [0, 255/127]
    box = Box(np.array([-0.3, 0.0, 0.5, 1.9]), np.array([0.4, 1.0, 2.6, 2.2]))
    X = np.vstack([box.sample(3000, seed=1), box.lower, box.upper])
    model = _errors_hit_the_model(orig, comp, spec, box, X)
    assert len(model.comp_ext.layers) == len(comp.layers) + 1  # the clip layer


def test_simulator_matches_torch_int8_model():
    pytest.importorskip("torch")
    from equivrepair.compress.qat import int8_qat

    rng = np.random.default_rng(0)
    net = random_fnn([20, 32, 16, 5], seed=1)
    X = rng.uniform(0, 1, size=(3000, 20))
    res = int8_qat(net, X, net.forward(X).argmax(1), epochs=1)
    import torch

    with torch.no_grad():
        Yt = res.int8_model(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    spec = rounding_spec(res.net)
    Ys = simulate_int8(res.net, spec, X)
    codes = np.abs(Yt - Ys) / spec.layers[-1].output_scale
    assert codes.max() < 1.0 + 1e-3  # never more than one code apart
    assert np.mean(np.all(codes < 1e-3, axis=1)) >= 0.995  # and code for code almost everywhere
    # the rounding model contains the int8 function on these points too
    _errors_hit_the_model(net, res.net, spec, Box(np.zeros(20), np.ones(20)), X[:500])


def test_cli_verify_int8_model(tmp_path, capsys):
    pytest.importorskip("torch")
    import json

    from equivrepair.cli import main
    from equivrepair.compress.qat import int8_qat
    from equivrepair.nets.load import save_network

    net = random_fnn([8, 16, 4], seed=3)
    X = np.random.default_rng(1).uniform(0, 1, size=(1000, 8))
    res = int8_qat(net, X, net.forward(X).argmax(1), epochs=1)
    save_network(net, tmp_path / "orig.onnx")
    save_network(res.net, tmp_path / "int8.onnx")
    (tmp_path / "int8.onnx.meta.json").write_text(json.dumps({"metadata": res.net.info()["metadata"]}))
    np.save(tmp_path / "x0.npy", X[0])
    args = [str(tmp_path / "orig.onnx"), str(tmp_path / "int8.onnx"), "--center", str(tmp_path / "x0.npy")]
    args += ["--radius", "0.01", "--quiet", "--timeout", "60"]
    assert main(["verify", *args]) == 0
    assert "--activation-rounding model bounds the int8 model" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["verify", *args, "--activation-rounding", "model", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["model"]["status"] == "exact"
    assert 0 <= d["lower"] <= d["upper"]
    x = np.array(d["witness"])
    from equivrepair.nets.load import load_compressed, load_network

    comp, _ = load_compressed(tmp_path / "int8.onnx")  # float32 weights: the codes are recovered exactly
    q = simulate_int8(comp, rounding_spec(comp), x)
    assert np.array_equal(q, simulate_int8(res.net, rounding_spec(res.net), x))
    assert d["lower"] == pytest.approx(
        float(np.abs(load_network(tmp_path / "orig.onnx").forward(x) - q).max()), abs=1e-12
    )
    assert d["comp"]["metadata_file"].endswith("int8.onnx.meta.json")
    eps = 2 * d["upper"] + 1e-6
    assert main(["verify", *args, "--activation-rounding", "model", "--epsilon", str(eps)]) == 0
    (tmp_path / "int8.onnx.meta.json").unlink()
    capsys.readouterr()
    assert main(["verify", *args, "--activation-rounding", "model"]) == 3
    assert "no int8 activation grids" in capsys.readouterr().err
