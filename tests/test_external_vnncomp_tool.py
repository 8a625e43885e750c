"""vnncomp-tool backend: our own vnncomp_scripts as the tool, and a fake tool for the protocol's corners."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from equivrepair.nets.ir import random_fnn
from equivrepair.reach.api import evaluate
from equivrepair.reach.external import BackendUnavailable, decide_external, get_backend, run_external
from equivrepair.spec.sets import Box

ROOT = Path(__file__).resolve().parents[1]


def _pair():
    o = random_fnn([2, 6, 2], seed=7)
    c = random_fnn([2, 6, 2], seed=8)
    return o, c, Box(-np.ones(2), np.ones(2))


def _fake_tool(tmp_path: Path, answer: str) -> Path:
    d = tmp_path / "tool"
    d.mkdir(parents=True)
    (d / "prepare_instance.sh").write_text("#!/bin/bash\nexit 0\n")
    (d / "run_instance.sh").write_text(f"#!/bin/bash\nprintf '{answer}\\n' > \"$5\"\n")
    return d


def test_our_scripts_as_the_tool():
    o, c, box = _pair()
    env = {"EQUIVREPAIR_PYTHON": sys.executable}
    ref = evaluate(o, c, box, method="exact")
    dec = decide_external("vnncomp-tool", o, c, box, 0.8 * ref.delta_max, time_limit=60, tool_dir=ROOT, env=env)
    assert dec.verdict == "not_equivalent"
    dec = decide_external("vnncomp-tool", o, c, box, 1.2 * ref.delta_max, time_limit=60, tool_dir=ROOT, env=env)
    assert dec.verdict == "equivalent" and dec.stats["external_time"] > 0


@pytest.mark.slow
def test_bisection_with_our_scripts():
    o, c, box = _pair()
    ref = evaluate(o, c, box, method="exact")
    d = run_external(
        "vnncomp-tool",
        o,
        c,
        box,
        time_limit=300,
        tool_dir=ROOT,
        env={"EQUIVREPAIR_PYTHON": sys.executable},
        bisect_rtol=1e-2,
    )
    assert d.status == "exact"
    assert abs(d.delta_max - ref.delta_max) <= d.tolerance + ref.tolerance + 1e-7


def test_fake_tool_answers(tmp_path):
    o, c, box = _pair()
    tool = _fake_tool(tmp_path, "holds")
    assert decide_external("vnncomp-tool", o, c, box, 100.0, tool_dir=tool).verdict == "equivalent"
    tool2 = _fake_tool(tmp_path / "b", "violated")
    d = decide_external("vnncomp-tool", o, c, box, 100.0, tool_dir=tool2)
    assert d.verdict == "unknown"  # sat without a counterexample proves nothing we can check


def test_missing_tool_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("EQUIVREPAIR_VNNCOMP_TOOL", raising=False)
    with pytest.raises(BackendUnavailable):
        get_backend("vnncomp-tool")
    with pytest.raises(BackendUnavailable):
        get_backend("vnncomp-tool", tool_dir=tmp_path)
    assert os.path.isdir(tmp_path)
