"""Marabou backend: ε-decision, δ_max by bisection, top-1, against our exact method."""

from __future__ import annotations

import numpy as np
import pytest

from equivrepair.nets.ir import random_fnn
from equivrepair.reach.api import evaluate
from equivrepair.reach.external import available, decide_external, decide_top1_external, run_external
from equivrepair.spec.sets import Box

ok, why = available("marabou")
pytestmark = pytest.mark.skipif(not ok, reason=why)


def _pair(seed=1):
    o = random_fnn([3, 8, 8, 2], seed=seed)
    c = random_fnn([3, 8, 8, 2], seed=seed + 1)
    return o, c, Box(-np.ones(3), np.ones(3))


def test_delta_by_bisection_matches_exact():
    o, c, box = _pair()
    ref = evaluate(o, c, box, method="exact")
    d = run_external("marabou", o, c, box, time_limit=60)
    assert d.status == "exact" and d.stats["backend"] == "marabou"
    assert "maraboupy" in d.stats["backend_version"] and d.stats["external_time"] > 0
    assert abs(d.delta_max - ref.delta_max) <= d.tolerance + ref.tolerance + 1e-7
    assert d.lower <= ref.upper + 1e-9 and ref.lower <= d.upper + 1e-9


def test_epsilon_decisions():
    o, c, box = _pair()
    delta = evaluate(o, c, box, method="exact").delta_max
    lo = decide_external("marabou", o, c, box, 0.9 * delta, time_limit=30)
    assert lo.verdict == "not_equivalent"
    assert np.max(np.abs(o.forward(lo.counterexample) - c.forward(lo.counterexample))) >= 0.9 * delta
    hi = decide_external("marabou", o, c, box, 1.1 * delta, time_limit=30)
    assert hi.verdict == "equivalent"


def test_top1():
    o = random_fnn([2, 6, 3], seed=3)
    box = Box([-0.01, -0.01], [0.01, 0.01])
    same = decide_top1_external("marabou", o, o, box, time_limit=30)
    y = o.forward(box.center)
    margin = np.sort(y)[-1] - np.sort(y)[-2]
    if margin > 0.5:  # far from a decision boundary: identical networks agree
        assert same.verdict == "equivalent"
    other = random_fnn([2, 6, 3], seed=4)
    d = decide_top1_external("marabou", o, other, Box([-3, -3], [3, 3]), time_limit=30)
    if d.verdict == "not_equivalent":
        x = d.counterexample
        y1, y2 = o.forward(x), other.forward(x)

        def top_tie(y: np.ndarray) -> bool:  # ties at the top count as disagreement (VNN-LIB top-1 convention)
            s = np.sort(y)
            return s[-1] - s[-2] <= 1e-9 * (1.0 + abs(s[-1]))

        assert np.argmax(y1) != np.argmax(y2) or top_tie(y1) or top_tie(y2)
