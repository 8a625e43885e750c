"""Certificates: made from real runs, re-checked independently, and rejected when tampered with."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from equivrepair.certify import (
    CertificateError,
    certificate_digest,
    check_certificate,
    leaves_from_tree,
    make_certificate,
    make_top1_certificate,
    read_certificate,
    tree_from_leaves,
    write_certificate,
)
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.reach.api import check, evaluate
from equivrepair.spec.sets import Box


def _perturbed(net: FNN, scale: float, seed: int) -> FNN:
    rng = np.random.default_rng(seed)
    return FNN.from_arrays(
        [layer.W + scale * rng.normal(size=layer.W.shape) for layer in net.layers], [layer.b for layer in net.layers]
    )


def _redigest(cert: dict) -> dict:
    """Tamper like someone who knows the format: recompute the body digest after the change."""
    cert["digest"]["body"] = certificate_digest(cert)
    return cert


@pytest.fixture(scope="module")
def pair():
    orig = random_fnn([2, 8, 8, 2], seed=0)
    comp = _perturbed(orig, 0.02, 1)
    box = Box(-np.ones(2), np.ones(2), label="unit box")
    return orig, comp, box


@pytest.fixture(scope="module")
def cert(pair):
    orig, comp, box = pair
    res = evaluate(orig, comp, box, time_limit=60)
    return make_certificate(orig, comp, box, res, time_limit=60, rtol=1e-4)  # exact claim: proof at rtol 1e-4


def _reason(rep) -> str:
    assert not rep.ok
    return " | ".join(rep.reasons)


def test_certificate_is_valid_and_sound(pair, cert):
    orig, comp, box = pair
    rep = check_certificate(cert, orig, comp, input_set=box)
    assert rep.ok, rep.summary()
    claim = cert["claim"]
    assert claim["kind"] == "delta_bounds" and claim["exact"]
    assert cert["format_version"] == 1 and cert["created_at"]
    for pkg in ("equivrepair", "numpy", "scipy", "highspy", "cvxpy"):
        assert pkg in cert["tool"]
    assert cert["networks"]["orig"]["sha256"] == orig.content_hash
    assert cert["networks"]["comp"]["sha256"] == comp.content_hash
    # ground truth by sampling: no point exceeds the certified bounds, the witness attains the lower bound
    X = box.sample(4000, seed=3)
    D = orig.forward(X) - comp.forward(X)
    for j, (lo, hi) in enumerate(claim["per_output"]):
        assert D[:, j].min() >= lo and D[:, j].max() <= hi
    assert np.abs(D).max() <= claim["delta_upper"]
    x = np.array(cert["witness"]["x"])
    assert np.abs(orig.forward(x) - comp.forward(x)).max() == pytest.approx(claim["delta_lower"], rel=1e-12)
    assert claim["delta_upper"] - claim["delta_lower"] <= 1e-4 * claim["delta_lower"] + 1e-6 + 1e-6
    # the leaves tile the box exactly
    L, H, _ = leaves_from_tree(box.lower, box.upper, cert["proof"]["tree"])
    assert np.prod(H - L, axis=1).sum() == pytest.approx(np.prod(box.upper - box.lower), rel=1e-12)
    assert len(L) == cert["proof"]["n_leaves"] == len(cert["proof"]["leaf_bounds"])


def test_lp_only_check(pair, cert):
    orig, comp, _ = pair
    rep = check_certificate(cert, orig, comp, cheap=False)
    assert rep.ok, rep.summary()
    assert "interval/differential" not in {k for k, v in rep.stats["leaf_methods"].items() if v}
    assert rep.stats["lps"] > 0


def test_roundtrip_files(tmp_path, pair, cert):
    orig, comp, _ = pair
    for name in ("c.json", "c.json.gz"):
        p = write_certificate(tmp_path / name, cert)
        back = read_certificate(p)
        assert back == json.loads(json.dumps(cert))
        assert check_certificate(p, orig, comp).ok


def test_tampered_digest_alone_is_reported(pair, cert):
    orig, comp, _ = pair
    bad = copy.deepcopy(cert)
    bad["claim"]["delta_lower"] = bad["claim"]["delta_lower"] * 0.5  # still true, but the body changed
    assert "digest" in _reason(check_certificate(bad, orig, comp))


def test_changed_delta_claim_is_rejected(pair, cert):
    orig, comp, _ = pair
    bad = copy.deepcopy(cert)
    bad["claim"]["delta_upper"] = 0.5 * cert["claim"]["delta_upper"]
    bad["claim"]["delta_max"] = bad["claim"]["delta_upper"]
    assert "claimed δ upper bound covers every output" in _reason(check_certificate(_redigest(bad), orig, comp))
    # lowering every bound consistently still contradicts the proof's leaves (and the witness)
    bad = copy.deepcopy(cert)
    f = 0.9
    bad["claim"]["objective_upper"] = [u * f for u in cert["claim"]["objective_upper"]]
    bad["claim"]["per_output"] = [None if iv is None else [iv[0] * f, iv[1] * f] for iv in cert["claim"]["per_output"]]
    bad["claim"]["delta_upper"] = cert["claim"]["delta_upper"] * f
    bad["claim"]["delta_max"] = bad["claim"]["delta_upper"]
    reason = _reason(check_certificate(_redigest(bad), orig, comp))
    assert "claim >= every leaf bound" in reason and "leaf" in reason


def test_changed_weight_is_rejected(pair, cert):
    orig, comp, box = pair
    W = [layer.W.copy() for layer in comp.layers]
    # one weight into output 0 from the hidden neuron most active on the box (so the function changes)
    act = np.maximum(comp.activations(box.sample(500, seed=0))[-2], 0.0).mean(axis=0)
    W[-1][0, int(np.argmax(act))] += 0.5
    comp2 = FNN.from_arrays(W, [layer.b for layer in comp.layers])
    reason = _reason(check_certificate(cert, orig, comp2))
    assert "comp network hash" in reason and "different network" in reason
    # an attacker who also rewrites the cited hash is caught by the witness replay and the proof
    bad = copy.deepcopy(cert)
    bad["networks"]["comp"]["sha256"] = comp2.content_hash
    rep = check_certificate(_redigest(bad), orig, comp2)
    assert not rep.ok
    assert any(("witness" in r) or ("leaf" in r) for r in rep.reasons), rep.summary()


def test_dropped_leaf_is_rejected(pair, cert):
    orig, comp, _ = pair
    bad = copy.deepcopy(cert)
    bad["proof"]["leaf_bounds"].pop()
    reason = _reason(check_certificate(_redigest(bad), orig, comp))
    assert "leaf was dropped" in reason
    # dropping the leaf from the tree too leaves the encoding malformed (part of the box uncovered)
    bad = copy.deepcopy(cert)
    tree = bad["proof"]["tree"]
    assert tree[-1] == -1
    tree.pop()
    bad["proof"]["leaf_bounds"].pop()
    reason = _reason(check_certificate(_redigest(bad), orig, comp))
    assert "ends early" in reason


def test_altered_leaf_bound_is_rejected_with_its_index(pair, cert):
    orig, comp, box = pair
    L, H, _ = leaves_from_tree(box.lower, box.upper, cert["proof"]["tree"])
    objectives = [tuple(o) for o in cert["proof"]["objectives"]]
    po = max(cert["witness"]["per_objective"], key=lambda p: p["value"])
    x = np.array(po["x"])
    k = objectives.index(tuple(po["objective"]))
    i = int(np.flatnonzero(np.all((L <= x) & (x <= H), axis=1))[0])
    bad = copy.deepcopy(cert)
    bad["proof"]["leaf_bounds"][i][k] = po["value"] - 0.01  # below a value the leaf attains
    reason = _reason(check_certificate(_redigest(bad), orig, comp))
    assert f"leaf {i}" in reason and ("is false" in reason or "not re-established" in reason)
    # a leaf bound above the claim breaks "claim >= every leaf bound"
    bad = copy.deepcopy(cert)
    bad["proof"]["leaf_bounds"][0][0] = cert["claim"]["objective_upper"][0] + 1.0
    reason = _reason(check_certificate(_redigest(bad), orig, comp))
    assert "leaf 0" in reason and "exceeds the claimed" in reason


def test_unprovable_leaf_bound_is_rejected(pair, cert):
    """A bound below the truth but above every sampled value: only the re-bounding can catch it."""
    orig, comp, box = pair
    L, H, _ = leaves_from_tree(box.lower, box.upper, cert["proof"]["tree"])
    bad = copy.deepcopy(cert)
    B = np.array(bad["proof"]["leaf_bounds"])
    i, k = 0, 0
    centre = 0.5 * (L[i] + H[i])
    s, j = cert["proof"]["objectives"][k]
    at_centre = s * (orig.forward(centre) - comp.forward(centre))[j]
    bad["proof"]["leaf_bounds"][i][k] = float(max(at_centre, -1e9) + 1e-12) if at_centre < B[i, k] else B[i, k]
    rep = check_certificate(_redigest(bad), orig, comp, max_bisect_depth=1, max_phase_lps=8)
    if rep.ok:  # the leaf's maximum happens to be at its centre: nothing false was claimed
        pytest.skip("leaf maximum at its centre")
    assert "leaf 0" in " ".join(rep.reasons)


def test_epsilon_certificates(pair):
    orig, comp, box = pair
    eq = check(orig, comp, box, 1.0, time_limit=30)
    assert eq.verdict == "equivalent"
    c = make_certificate(orig, comp, box, eq, time_limit=30)
    assert c["claim"]["kind"] == "epsilon_equivalent" and c["claim"]["delta_upper"] < 1.0
    assert check_certificate(c, orig, comp).ok
    ne = check(orig, comp, box, 1e-3, time_limit=30)
    assert ne.verdict == "not_equivalent"
    c2 = make_certificate(orig, comp, box, ne)
    assert c2["claim"]["kind"] == "not_epsilon_equivalent" and c2["proof"] is None
    assert check_certificate(c2, orig, comp).ok
    bad = copy.deepcopy(c2)
    bad["claim"]["epsilon"] = 10.0  # the witness does not violate this ε
    assert "witness violates ε" in _reason(check_certificate(_redigest(bad), orig, comp))
    with pytest.raises(CertificateError):
        make_certificate(orig, comp, box, eq, epsilon=1e-3, kind="epsilon_equivalent", time_limit=10)


def test_certificate_without_proof_uses_independent_exact_method(pair):
    orig, comp, box = pair
    small = Box(-0.3 * np.ones(2), 0.3 * np.ones(2))
    res = evaluate(orig, comp, small, method="milp", time_limit=60)
    c = make_certificate(orig, comp, small, res, proof="none")
    assert c["proof"] is None
    rep = check_certificate(c, orig, comp)
    assert rep.ok, rep.summary()
    bad = copy.deepcopy(c)
    bad["claim"]["objective_upper"] = [0.5 * u if u > 0 else u - 0.1 for u in c["claim"]["objective_upper"]]
    bad["claim"]["per_output"] = [None if iv is None else [iv[0], iv[1]] for iv in c["claim"]["per_output"]]
    rep = check_certificate(_redigest(bad), orig, comp)
    assert not rep.ok


def test_tree_reconstruction_detects_gaps():
    lo, hi = np.zeros(2), np.ones(2)
    L = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]])
    H = np.array([[0.5, 1.0], [1.0, 0.5], [1.0, 1.0]])
    tokens, order = tree_from_leaves(lo, hi, L, H)
    L2, H2, _ = leaves_from_tree(lo, hi, tokens)
    assert np.array_equal(L2, L[order]) and np.array_equal(H2, H[order])
    with pytest.raises(CertificateError, match="uncovered"):
        tree_from_leaves(lo, hi, L[:2], H[:2])
    with pytest.raises(CertificateError):
        tree_from_leaves(lo, hi, np.array([[0.0, 0.0], [0.4, 0.0]]), np.array([[0.4, 1.0], [1.0, 1.0]]))


def test_top1_certificates():
    orig = random_fnn([2, 8, 8, 3], seed=0)
    comp = _perturbed(orig, 0.02, 1)
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (2000, 2))
    Y = np.sort(orig.forward(X), axis=1)
    x0 = X[np.argmax(Y[:, -1] - Y[:, -2])]
    box = Box(x0 - 0.2, x0 + 0.2)
    c = make_top1_certificate(orig, comp, box, time_limit=30)
    assert c["claim"]["kind"] == "top1_equivalent"
    assert check_certificate(c, orig, comp).ok
    bad = copy.deepcopy(c)
    bad["proof"]["leaf_margin_lower"][0][0] = 1e6
    assert "leaf 0" in _reason(check_certificate(_redigest(bad), orig, comp))
    # swapping the winning output with another one disagrees everywhere on the box
    win = int(np.argmax(orig.forward(x0)))
    perm = np.arange(3)
    perm[[win, (win + 1) % 3]] = perm[[(win + 1) % 3, win]]
    W = [layer.W.copy() for layer in comp.layers]
    b = [layer.b.copy() for layer in comp.layers]
    W[-1] = W[-1][perm]
    b[-1] = b[-1][perm]
    swapped = FNN.from_arrays(W, b)
    c2 = make_top1_certificate(orig, swapped, box, time_limit=30)
    assert c2["claim"]["kind"] == "not_top1_equivalent"
    assert check_certificate(c2, orig, swapped).ok
    assert not check_certificate(c2, orig, comp).ok


def test_cli_check_certificate(tmp_path, pair, cert):
    from equivrepair.cli import main
    from equivrepair.nets.load import save_network

    orig, comp, _ = pair
    po, pc = tmp_path / "o.nnet", tmp_path / "c.nnet"
    save_network(orig, po)
    save_network(comp, pc)
    from equivrepair.nets.load import load_network

    o2, c2 = load_network(po, input_normalization=False), load_network(pc, input_normalization=False)
    if o2.content_hash != orig.content_hash:  # .nnet stores text: re-make the certificate for what it holds
        c = make_certificate(o2, c2, Box(-np.ones(2), np.ones(2)), None, time_limit=60)
    else:
        c = cert
    cp = write_certificate(tmp_path / "cert.json", c)
    # the networks recorded in the certificate are found without --orig/--comp
    c_paths = make_certificate(
        o2, c2, Box(-np.ones(2), np.ones(2)), None, orig_path=po, comp_path=pc,
        load_options={"input_normalization": False}, time_limit=60,
    )  # fmt: skip
    assert main(["check-certificate", str(write_certificate(tmp_path / "cert2.json.gz", c_paths))]) == 0
    out = tmp_path / "check.json"
    assert main(["check-certificate", str(cp), "--orig", str(po), "--comp", str(pc), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True
    bad = copy.deepcopy(c)
    bad["claim"]["delta_upper"] *= 0.5
    bp = write_certificate(tmp_path / "bad.json", _redigest(bad))
    assert main(["check-certificate", str(bp), "--orig", str(po), "--comp", str(pc)]) == 1
    assert main(["check-certificate", str(tmp_path / "missing.json"), "--orig", str(po), "--comp", str(pc)]) == 3
