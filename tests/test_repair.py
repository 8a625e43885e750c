"""Repair: constraint-keeping training, targets, folding, the driver loop and its resume, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from equivrepair.compress import magnitude_prune, on_grid, quantization_codes, quantize  # noqa: E402
from equivrepair.compress.torch_train import train_classifier  # noqa: E402
from equivrepair.nets.ir import random_fnn  # noqa: E402
from equivrepair.reach.api import evaluate  # noqa: E402
from equivrepair.repair.boxes import linf_boxes, paper_boxes, pixel_boxes  # noqa: E402
from equivrepair.repair.driver import (  # noqa: E402
    RepairConfig,
    RepairData,
    VerifyConfig,
    certify_boxes,
    fold_pair,
    repair,
    verify_boxes,
)
from equivrepair.repair.targets import TargetSet, make_targets  # noqa: E402
from equivrepair.repair.train import Constraint, TrainConfig, infer_grid, train_constrained  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy():
    """A small classifier Φ1 on synthetic data and a damaged 3-bit per-tensor quantization Φ2."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(1200, 8))
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64) + (X[:, 2] > 0.5).astype(np.int64)
    orig = train_classifier([8, 24, 12, 3], X, y, epochs=15, lr=3e-3, batch_size=64)
    comp = quantize(orig, 3, "symmetric", "per-tensor")
    return orig, comp, X, y


def _acc(net, X, y):
    return float(np.mean(np.argmax(net.forward(X), axis=1) == y))


# -- constraint ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["symmetric", "affine"])
@pytest.mark.parametrize("gran", ["per-tensor", "per-channel"])
def test_training_keeps_the_recorded_grid(scheme, gran):
    net = random_fnn([6, 16, 8, 3], seed=1)
    comp = quantize(net, 3, scheme, gran)
    c = Constraint.of(comp)
    assert c.source["grid"] == "metadata" and c.violations(comp) == []
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 6))
    Y = net.forward(X) + rng.normal(size=(64, 3))
    res = train_constrained(comp, X, Y, config=TrainConfig(epochs=5, grid_lr=0.5), constraint=c)
    out = res.net
    assert on_grid(out), "weights must end exactly on the recorded grid"
    assert c.violations(out) == []
    assert out.widths == comp.widths
    moved = sum(
        int(np.sum(a["W_codes"] != b["W_codes"])) for a, b in zip(quantization_codes(out), quantization_codes(comp))
    )
    assert moved > 0, "training should change some codes"
    assert out.metadata["quantization"] == comp.metadata["quantization"], "same scales and zero points"


def test_training_keeps_pruning_masks_and_quantized_biases():
    net = random_fnn([6, 16, 8, 3], seed=2)
    comp = quantize(magnitude_prune(net, 0.6), 4, "affine", "per-channel", biases=True)
    c = Constraint.of(comp)
    assert c.pruned and all(g is not None for g in c.bias_grids)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 6))
    res = train_constrained(comp, X, net.forward(X) * 1.5, config=TrainConfig(epochs=5, grid_lr=0.5), constraint=c)
    for layer, m in zip(res.net.layers, c.masks):
        assert np.all(layer.W[~m] == 0.0)
    assert c.violations(res.net) == [] and on_grid(res.net)


def test_grid_inferred_or_stated_without_metadata():
    net = random_fnn([6, 16, 8, 3], seed=3)
    comp = quantize(net, 3, "affine", "per-channel")
    bare = comp.replace(metadata={})
    c = Constraint.of(bare)
    assert c.source["grid"] == "inferred from the weights"
    assert all(g is not None and g.contains(layer.W) for g, layer in zip(c.weight_grids, bare.layers))
    assert c.quantization["bits"] <= 3
    stated = Constraint.of(bare, bits=3, scheme="affine", granularity="per-channel")
    assert stated.source["grid"] == "options" and stated.violations(bare) == []
    assert infer_grid(net.layers[0].W, 3, "affine", True) is None  # float weights are on no 3-bit grid
    with pytest.raises(ValueError):
        Constraint.of(net.replace(metadata={}), bits=3, scheme="symmetric", granularity="per-tensor")
    # a float network with exact zeros: they are treated as a pruning mask
    pruned = magnitude_prune(net, 0.5).replace(metadata={})
    cp = Constraint.of(pruned)
    assert cp.pruned and not cp.quantized


# -- targets ------------------------------------------------------------------------------------
def _bounds(orig, comp, boxes):
    return verify_boxes(orig, comp, boxes, VerifyConfig("differential"))


def test_paper_and_witness_targets_follow_the_formula(toy):
    orig, comp, X, _ = toy
    boxes = linf_boxes(X[:5], 0.02)
    b = _bounds(orig, comp, boxes)
    t = make_targets("paper", orig, comp, b, alpha=4.0)
    mid = 0.5 * (b.per_output[..., 0] + b.per_output[..., 1])
    np.testing.assert_allclose(t.X, b.centers)
    np.testing.assert_allclose(t.Y, comp.forward(b.centers) + mid / 4.0)
    w = make_targets("witness", orig, comp, b, alpha=4.0)
    assert len(w) == 10
    xs = b.witnesses
    np.testing.assert_allclose(w.Y[5:], comp.forward(xs) + (orig.forward(xs) - comp.forward(xs)) / 4.0)
    for k, box in enumerate(boxes):
        assert box.contains(xs[k])
    d = make_targets("distill", orig, comp, b, n_samples=3)
    assert len(d) == 5 * 4
    np.testing.assert_allclose(d.Y, orig.forward(d.X))
    assert all(any(box.contains(x) for box in boxes) for x in d.X)
    with pytest.raises(ValueError):
        make_targets("nope", orig, comp, b)
    with pytest.raises(ValueError):
        make_targets("paper", orig, comp, b, alpha=0.0)


def test_target_set_is_data():
    ts = TargetSet(delta_max=0.5, min_accuracy=0.9)
    assert ts.check(np.array([0.1, 0.4]), 0.95) == (True, [])
    met, why = ts.check(np.array([0.1, 0.6]), 0.85)
    assert not met and len(why) == 2
    assert TargetSet.from_json(ts.to_json()) == ts


# -- boxes and folding ----------------------------------------------------------------------------
def test_paper_preset_and_folding():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(40, 784))
    y = np.arange(40) % 10
    boxes, idx = paper_boxes(X, y)
    assert list(idx) == list(range(10))
    b = boxes[0]
    free = np.flatnonzero(b.upper > b.lower)
    assert len(free) == 4 and np.all(b.upper - b.lower <= 0.05 + 1e-12)
    assert np.all(b.lower >= 0) and np.all(b.upper <= 1)
    orig, comp = random_fnn([784, 12, 5], seed=1), random_fnn([784, 12, 5], seed=2)
    fo, fc, sub, expand = fold_pair(orig, comp, b)
    assert fo.n_inputs == 4 and sub.dim == 4
    z = sub.sample(20, seed=1)
    np.testing.assert_allclose(fo.forward(z), orig.forward(expand(z)), atol=1e-12)
    np.testing.assert_allclose(fc.forward(z), comp.forward(expand(z)), atol=1e-12)
    full = evaluate(orig, comp, b, method="differential")
    bd = verify_boxes(orig, comp, [b], VerifyConfig("differential", fold_fixed=True))
    assert bd.delta_lower[0] <= full.upper + 1e-9 and full.lower <= bd.delta_upper[0] + 1e-9
    assert b.contains(bd.witnesses[0])


def test_certify_boxes_is_exact_on_small_boxes(toy):
    orig, comp, X, _ = toy
    boxes = pixel_boxes(X[:3], [0, 1], 0.01, (0.0, 1.0))
    recs = certify_boxes(orig, comp, boxes, method="exact", time_limit=30)
    for rec, box in zip(recs, boxes):
        assert rec["status"] == "exact" and rec["lower"] <= rec["upper"]
        ref = evaluate(orig, comp, box, method="milp")
        assert abs(ref.upper - rec["upper"]) <= 1e-4 * max(1.0, ref.upper) + 1e-6


# -- the loop ---------------------------------------------------------------------------------------
def _cfg(rounds, alpha=2.0, **kw):
    return RepairConfig(alpha=alpha, rounds=rounds, train=TrainConfig(epochs=2, lr=3e-3), verify=VerifyConfig(), **kw)


def test_repair_reduces_discrepancy_and_keeps_accuracy(toy):
    orig, comp, X, y = toy
    boxes = linf_boxes(X[:20], 0.01)
    data = RepairData(X_val=X[800:], y_val=y[800:])  # targets only, as in the paper (no cross-entropy term)
    res = repair(orig, comp, boxes, _cfg(4), data)
    assert all(r["accuracy"] is not None for r in res.rounds)
    first, last = res.rounds[0], res.rounds[-1]
    assert last["delta_upper_mean"] < first["delta_upper_mean"]
    assert _acc(res.net, X[800:], y[800:]) >= _acc(comp, X[800:], y[800:]) - 0.01
    assert on_grid(res.net) and res.constraint.violations(res.net) == []
    assert res.net.metadata["repair"]["compressed_sha256"] == comp.content_hash


def test_repair_stops_when_the_target_set_is_met(toy):
    orig, comp, X, y = toy
    boxes = linf_boxes(X[:5], 0.01)
    generous = TargetSet(delta_max=1e6)
    res = repair(orig, comp, boxes, _cfg(5, target_set=generous))
    assert res.met and res.reason == "target set met" and len(res.rounds) == 1


def test_repair_resumes_from_its_log(toy, tmp_path):
    orig, comp, X, y = toy
    boxes = linf_boxes(X[:8], 0.01)
    data = RepairData(X[:200], y[:200])
    straight = repair(orig, comp, boxes, _cfg(3, strategy="witness"), data)
    log = tmp_path / "log"
    part = repair(orig, comp, boxes, _cfg(1, strategy="witness"), data, log_dir=log)
    assert len(part.rounds) == 2 and (log / "round_001.npz").is_file()
    lines = (log / "log.jsonl").read_text().splitlines()
    assert [json.loads(s)["round"] for s in lines] == [0, 1]
    resumed = repair(orig, comp, boxes, _cfg(3, strategy="witness"), data, log_dir=log, resume=True)
    assert [r["round"] for r in resumed.rounds] == [0, 1, 2, 3]
    assert resumed.net.content_hash == straight.net.content_hash
    with pytest.raises(ValueError, match="cannot resume"):
        repair(orig, comp, boxes, _cfg(3, alpha=5.0, strategy="witness"), data, log_dir=log, resume=True)


# -- CLI --------------------------------------------------------------------------------------------
def test_cli_repair(toy, tmp_path):
    from equivrepair.cli import main
    from equivrepair.nets.load import save_network
    from equivrepair.repair.driver import load_compressed

    orig, comp, X, y = toy
    save_network(orig, tmp_path / "orig.onnx")
    save_network(comp, tmp_path / "comp.onnx")
    (tmp_path / "comp.onnx.meta.json").write_text(json.dumps({"metadata": comp.info()["metadata"]}))
    np.savez(tmp_path / "data.npz", X=X, y=y, X_test=X[:300], y_test=y[:300])
    rc = main(
        [
            "repair",
            str(tmp_path / "orig.onnx"),
            str(tmp_path / "comp.onnx"),
            "--data",
            str(tmp_path / "data.npz"),
            "--boxes",
            "linf:2",
            "--n-boxes",
            "10",
            "--alpha",
            "2",
            "10",
            "--rounds",
            "2",
            "--labelled",
            "300",
            "--val",
            "300",
            "--heldout",
            "5",
            "--tau",
            "1e6",
            "--quiet",
            "-o",
            str(tmp_path / "rep.onnx"),
            "--report",
            str(tmp_path / "rep.json"),
        ]
    )
    assert rc == 0
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert set(rep["runs"]) == {"2", "10"}
    assert rep["constraint"]["source"]["grid"] == "metadata"
    for a in ("2", "10"):
        run = rep["runs"][a]
        assert run["rounds"][0]["round"] == 0 and run["heldout"]["n"] == 5
        net, meta = load_compressed(run["output"])
        assert meta is not None and on_grid(net)
    assert (tmp_path / "rep_discrepancy.png").is_file() and (tmp_path / "rep_accuracy.png").is_file()
    # usage error: a bad alpha
    assert (
        main(["repair", "a.onnx", "b.onnx", "--data", "x", "-o", "r.onnx", "--report", "r.json", "--alpha", "0"]) == 3
    )


def test_latent_weights_carry_over_between_calls():
    net = random_fnn([6, 16, 8, 3], seed=4)
    comp = quantize(net, 3, "symmetric", "per-channel")
    c = Constraint.of(comp)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(32, 6))
    Y = net.forward(X) * 2.0
    cfg = TrainConfig(epochs=2)
    a = train_constrained(comp, X, Y, config=cfg, constraint=c)
    assert a.latent is not None and a.latent.matches(a.net, c)
    b = train_constrained(a.net, X, Y, config=cfg, constraint=c, latent=a.latent)
    assert b.info["from_latent"]
    # a latent state that does not belong to the network is ignored
    other = train_constrained(comp, X, Y, config=cfg, constraint=c, latent=b.latent)
    assert other.info["from_latent"] == b.latent.matches(comp, c)
