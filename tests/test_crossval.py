"""Cross-validation: our exact, milp and marabou (and nnenum when installed) agree on δ_max and ε-decisions.

The instances come from benchmarks/crossval_marabou.py (20 random small pairs, 6 ACAS Xu pairs on small
boxes, 4 MNIST pairs on small balls: 30 with the shared data). The default run checks a fast subset; the
whole suite is marked slow.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from equivrepair.reach.external import available

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("crossval_marabou", ROOT / "benchmarks" / "crossval_marabou.py")
cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cv)

HAVE_MARABOU, WHY = available("marabou")
HAVE_NNENUM, _ = available("nnenum")


def _methods(full: bool) -> list[str]:
    m = ["exact"] + (["milp"] if full else []) + (["marabou"] if HAVE_MARABOU else [])
    if HAVE_NNENUM and full:
        m.append("nnenum")
    return m


def _check(inst, methods, time_limit=120.0):
    rs = {m: cv.run_method(m, inst, time_limit) for m in methods}
    for m, r in rs.items():
        assert r["status"] == "exact", (inst["name"], m, r)
    for m in methods[1:]:
        assert cv.agree(rs[methods[0]], rs[m]), (inst["name"], methods[0], m, rs[methods[0]], rs[m])
    decs = cv.run_decisions(methods, inst, rs[methods[0]]["delta"], time_limit)
    for d in decs:
        verdicts = {d[m] for m in methods}
        assert len(verdicts) == 1, (inst["name"], d)
        assert verdicts == {"not_equivalent" if d["factor"] < 1 else "equivalent"}


FAST = [cv.random_instances(20)[k] for k in (0, 1, 4)]


@pytest.mark.parametrize("inst", FAST, ids=[i["name"] for i in FAST])
def test_fast_subset(inst):
    if not HAVE_MARABOU:
        pytest.skip(WHY)
    _check(inst, ["exact", "marabou"])


def test_suite_has_at_least_30_instances(data):
    insts = cv.crossval_instances()
    assert len(insts) >= 30
    assert {i["kind"] for i in insts} == {"random", "acas", "mnist"}


@pytest.mark.slow
@pytest.mark.parametrize("k", range(30))
def test_full_suite(k, data):
    insts = cv.crossval_instances()
    _check(insts[k], _methods(full=True), time_limit=300.0)
