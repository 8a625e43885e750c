"""``equivrepair verify``: summaries, JSON, exit codes (0 done/equivalent, 1 not, 2 unknown, 3 input error)."""

from __future__ import annotations

import json

import numpy as np

from equivrepair.cli import main
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.nets.onnx_io import save_onnx


def _pair(tmp_path):
    orig = random_fnn([3, 8, 2], 4)
    rng = np.random.default_rng(1)
    comp = FNN.from_arrays(
        [layer.W + 0.05 * rng.normal(size=layer.W.shape) for layer in orig.layers], [layer.b for layer in orig.layers]
    )
    a, b = tmp_path / "orig.onnx", tmp_path / "comp.onnx"
    save_onnx(orig, a)
    save_onnx(comp, b)
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lower": [-0.5, -0.5, -0.5], "upper": [0.5, 0.5, 0.5]}))
    return a, b, box


def test_verify_exact_json(tmp_path, capsys):
    a, b, box = _pair(tmp_path)
    out = tmp_path / "res.json"
    code = main(["verify", str(a), str(b), "--input-set", str(box), "--json", str(out), "--quiet"])
    assert code == 0
    res = json.loads(out.read_text())
    assert res["status"] == "exact"
    assert res["lower"] <= res["delta_max"] <= res["lower"] + 1e-4 * res["lower"] + 1e-6
    assert len(res["witness"]) == 3
    assert "delta_max" in capsys.readouterr().out


def test_verify_epsilon_exit_codes(tmp_path):
    a, b, box = _pair(tmp_path)
    res = tmp_path / "r.json"
    main(["verify", str(a), str(b), "--input-set", str(box), "--json", str(res), "--quiet"])
    delta = json.loads(res.read_text())["delta_max"]
    assert main(["verify", str(a), str(b), "--input-set", str(box), "--epsilon", str(delta * 1.1), "--quiet"]) == 0
    assert main(["verify", str(a), str(b), "--input-set", str(box), "--epsilon", str(delta * 0.9), "--quiet"]) == 1


def test_verify_bad_input_exit_3(tmp_path, capsys):
    a, b, box = _pair(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lower": [0, 0], "upper": [1, 1]}))
    assert main(["verify", str(a), str(b), "--input-set", str(bad)]) == 3
    assert "2 dimensions" in capsys.readouterr().err
    assert main(["verify", str(a), str(tmp_path / "missing.onnx"), "--input-set", str(box)]) == 3
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"lower": [0, 1, 0], "upper": [1, 0, 1]}))
    assert main(["verify", str(a), str(b), "--input-set", str(empty)]) == 3
    assert "empty" in capsys.readouterr().err


def test_verify_rejects_bad_limits_and_names_the_values(tmp_path, capsys):
    """A negative or zero timeout, zero workers, a negative tolerance: exit 3 with the value named
    (before, they ran on as if no limit or one worker had been given)."""
    a, b, box = _pair(tmp_path)
    base = ["verify", str(a), str(b), "--input-set", str(box), "--quiet"]
    for flag, value, said in (
        ("--timeout", "-5", "timeout must be a positive number, got '-5'"),
        ("--timeout", "0", "timeout must be a positive number, got '0'"),
        ("--workers", "0", "workers must be at least 1, got '0'"),
        ("--atol", "-1e-6", "atol must be a number >= 0"),
        ("--rtol", "nan", "rtol must be a number >= 0"),
    ):
        assert main(base + [f"{flag}={value}"]) == 3, flag
        assert said in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"lower": [0, 1.5, 0], "upper": [1, 0.25, 1]}))
    assert main(["verify", str(a), str(b), "--input-set", str(empty)]) == 3
    assert "dimension 1 has lower 1.5 > upper 0.25" in capsys.readouterr().err


def test_verify_identical_networks_print_zero_not_minus_zero(tmp_path, capsys):
    a, _, box = _pair(tmp_path)
    assert main(["verify", str(a), str(a), "--input-set", str(box), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "delta_max = 0 " in out and "in [0, 0]" in out and "= -0" not in out and ", -0]" not in out


def test_verify_workers_on_many_free_inputs(tmp_path, capsys):
    """``--workers 2`` on 30 free inputs (the MILP route): the objectives' MILPs in two processes,
    the same δ_max as one; with ``--epsilon`` the note says the decision runs in one process."""
    orig = random_fnn([30, 12, 10, 4], 4)
    comp = FNN.from_arrays([np.round(layer.W * 64) / 64 for layer in orig.layers], [layer.b for layer in orig.layers])
    a, b = tmp_path / "orig.onnx", tmp_path / "comp.onnx"
    save_onnx(orig, a)
    save_onnx(comp, b)
    c = np.random.default_rng(0).uniform(-1, 1, 30)
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lower": (c - 0.1).tolist(), "upper": (c + 0.1).tolist()}))
    res = {}
    for w in (1, 2):
        out = tmp_path / f"w{w}.json"
        argv = ["verify", str(a), str(b), "--input-set", str(box), "--workers", str(w), "--json", str(out), "--quiet"]
        assert main(argv) == 0
        res[w] = json.loads(out.read_text())
    assert res[1]["status"] == res[2]["status"] == "exact"
    assert res[2]["stats"]["workers"] == 2
    assert abs(res[1]["delta_max"] - res[2]["delta_max"]) <= 1e-4 * res[1]["delta_max"] + 2e-6
    capsys.readouterr()
    eps = 1.1 * res[1]["delta_max"]
    assert (
        main(["verify", str(a), str(b), "--input-set", str(box), "--epsilon", str(eps), "--workers", "2", "--quiet"])
        == 0
    )
    assert "the ε decision runs in one process" in capsys.readouterr().out
