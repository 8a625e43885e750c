"""nnenum backend (optional: needs $EQUIVREPAIR_NNENUM_PYTHON or an importable nnenum)."""

from __future__ import annotations

import numpy as np
import pytest

from equivrepair.nets.ir import random_fnn
from equivrepair.reach.api import evaluate
from equivrepair.reach.external import BackendUnavailable, available, decide_external, get_backend, run_external
from equivrepair.spec.sets import Box

ok, why = available("nnenum")
needs_nnenum = pytest.mark.skipif(not ok, reason=why)


@pytest.mark.nnenum
@needs_nnenum
def test_exact_delta_and_decisions():
    o = random_fnn([2, 6, 6, 2], seed=1)
    c = random_fnn([2, 6, 6, 2], seed=2)
    box = Box(-np.ones(2), np.ones(2))
    ref = evaluate(o, c, box, method="exact")
    d = run_external("nnenum", o, c, box, time_limit=120)
    assert d.status == "exact" and d.stats["stars"] > 0
    assert "nnenum" in d.stats["backend_version"] and d.stats["external_time"] > 0
    assert abs(d.delta_max - ref.delta_max) <= d.tolerance + ref.tolerance + 1e-7
    assert decide_external("nnenum", o, c, box, 0.9 * ref.delta_max, time_limit=60).verdict == "not_equivalent"
    assert decide_external("nnenum", o, c, box, 1.1 * ref.delta_max, time_limit=60).verdict == "equivalent"


def test_missing_interpreter_gives_install_hint(monkeypatch):
    monkeypatch.setenv("EQUIVREPAIR_NNENUM_PYTHON", "/nonexistent/python")
    with pytest.raises(BackendUnavailable, match="git clone"):
        get_backend("nnenum")
