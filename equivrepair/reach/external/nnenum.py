"""nnenum backend (Stanley Bak's star-set tool), driven through a subprocess worker.

nnenum is not on PyPI and pins ``onnx < 1.17`` and ``onnxruntime == 1.19``, which clash with ours
(onnx 1.23, onnxruntime 1.31). So it lives in its own virtual environment and we talk to it
through :mod:`equivrepair.reach.external.nnenum_worker`, a script that imports only numpy and
nnenum. The network goes over as dense float64 layers in an ``.npz`` (no ONNX in between, so
nnenum's ONNX pins never matter), the answer comes back as JSON.

Where nnenum is found: the interpreter in ``$EQUIVREPAIR_NNENUM_PYTHON``, else this interpreter
when ``import nnenum`` works here. Install (tested with nnenum's source of January 2026, version
1.0.1, with onnx 1.16.2, onnxruntime 1.19.0, numpy 2.2.6 under Python 3.11)::

    python3 -m venv /opt/nnenum-venv
    /opt/nnenum-venv/bin/pip install "numpy<2.3" scipy threadpoolctl "onnx>=1.15,<1.17" \\
        onnxruntime==1.19.0 skl2onnx swiglpk termcolor
    git clone https://github.com/stanleybak/nnenum /opt/nnenum-src
    /opt/nnenum-venv/bin/pip install --no-deps /opt/nnenum-src
    export EQUIVREPAIR_NNENUM_PYTHON=/opt/nnenum-venv/bin/python

Methods:
* ``evaluate``: exact δ_max from nnenum's exact enumeration of the merged network (every output
  star kept), maximising and minimising each comparison output over each star with an LP; the
  witness is the LP's input, re-evaluated on the original networks. LP optima carry GLPK's
  tolerance; the upper bound adds ``1e-8·(1 + |v|)``. An unfinished enumeration gives a
  ``bounded`` result whose upper bound comes from our symbolic bounds.
* ``decide``: nnenum's own verification (its VNN-COMP settings) of "some |Δ_j| >= ε".
Input sets with linear constraints ``A x <= c`` are handed over as their bounding box: sound for
upper bounds and ``unsat``, a witness outside the set is discarded.

Time outside Python = the subprocess's wall time (it includes nnenum's own Python, which runs in a
separate interpreter; ``stats`` also has nnenum's enumeration and LP times as it reports them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...merge import merge
from ...nets.ir import FNN
from ...spec.sets import Box
from ..result import Discrepancy
from .common import (
    Backend,
    BackendUnavailable,
    Conj,
    ExternalError,
    QueryResult,
    _sound_upper,
    disc,
    grace_seconds,
    run_killable,
)

ENV_VAR = "EQUIVREPAIR_NNENUM_PYTHON"
INSTALL_HINT = (
    "nnenum is not installed (not on PyPI): git clone https://github.com/stanleybak/nnenum, install it with its "
    "pinned onnx<1.17/onnxruntime==1.19 in a separate venv, and set EQUIVREPAIR_NNENUM_PYTHON to that venv's "
    "python (see equivrepair/reach/external/nnenum.py)"
)
WORKER = Path(__file__).with_name("nnenum_worker.py")
STAR_TOL = 1e-8

_version_cache: dict[str, dict] = {}


def find_python() -> str:
    """The interpreter that can import nnenum, or raise :class:`BackendUnavailable` with the install hint."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = shutil.which(env) or env
        if not Path(p).exists():
            raise BackendUnavailable(f"{ENV_VAR}={env} does not exist; " + INSTALL_HINT)
        return p
    try:
        import importlib.util

        if importlib.util.find_spec("nnenum") is not None:
            return sys.executable
    except (ImportError, ValueError):
        pass
    raise BackendUnavailable(INSTALL_HINT)


def available() -> tuple[bool, str]:
    try:
        NnenumBackend()
    except BackendUnavailable as exc:
        return False, str(exc)
    return True, ""


class NnenumBackend(Backend):
    name = "nnenum"

    def __init__(self, python: str | None = None, processes: int | None = None) -> None:
        self.python = python or find_python()
        self.processes = processes if processes is not None else 1
        info = self._versions()
        if info.get("status") != "ok":
            raise BackendUnavailable(f"nnenum worker failed under {self.python}: {info.get('traceback', info)}")
        self.info = info["versions"]

    def _versions(self) -> dict:
        if self.python not in _version_cache:
            _version_cache[self.python] = self._call({"mode": "version"}, None)[0]
        return _version_cache[self.python]

    def version(self) -> str:
        v = self.info
        return f"nnenum {v.get('nnenum')} (python {v.get('python')}, onnx {v.get('onnx')}, onnxruntime {v.get('onnxruntime')})"

    def _call(self, arrays: dict[str, Any], time_limit: float | None) -> tuple[dict, float]:
        with tempfile.TemporaryDirectory(prefix="equivrepair-nnenum-") as tmp:
            req, out = Path(tmp) / "req.npz", Path(tmp) / "out.json"
            np.savez(req, **{k: np.asarray(v) for k, v in arrays.items()})
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            env.pop("PYTHONPATH", None)
            t0 = time.perf_counter()
            try:
                proc = run_killable(
                    [self.python, str(WORKER), str(req), str(out)], grace_seconds(time_limit), env=env, cwd=tmp
                )
            except subprocess.TimeoutExpired:
                return {
                    "status": "timeout",
                    "message": "nnenum worker killed after its time limit",
                }, time.perf_counter() - t0
            except OSError as exc:
                raise BackendUnavailable(f"cannot run {self.python}: {exc}; " + INSTALL_HINT) from exc
            ext = time.perf_counter() - t0
            if not out.exists():
                raise ExternalError(f"nnenum worker exited {proc.returncode} without a result: {proc.stderr[-2000:]}")
            return json.loads(out.read_text()), ext

    def _net_arrays(self, net: FNN, box: Box) -> dict[str, Any]:
        arrs: dict[str, Any] = {
            "acts": np.array([layer.activation for layer in net.layers]),
            "lo": box.lower,
            "hi": box.upper,
            "processes": self.processes,
        }
        for i, layer in enumerate(net.layers):
            arrs[f"W{i}"] = layer.W
            arrs[f"b{i}"] = layer.b
        return arrs

    def query(self, net: FNN, box: Box, dnf: Sequence[Conj], time_limit: float | None) -> QueryResult:
        arrs = self._net_arrays(net, box)
        arrs["mode"] = "decide"
        if time_limit is not None:
            arrs["timeout"] = max(float(time_limit), 0.01)
        for k, (A, b) in enumerate(dnf):
            arrs[f"spec_{k}_mat"] = np.atleast_2d(A)
            arrs[f"spec_{k}_rhs"] = np.atleast_1d(b)
        res, ext = self._call(arrs, time_limit)
        if res.get("status") == "error":
            return QueryResult("error", external_time=ext, message=res.get("traceback", "")[-2000:])
        st = res.get("status", "unknown")
        x = np.array(res["x"]) if res.get("x") is not None else None
        y = np.array(res["y"]) if res.get("y") is not None else None
        if st == "sat" and x is not None and box.has_constraints and not box.contains(x):
            st, x, y = "unknown", None, None
        stats = {k: res[k] for k in ("stars", "lps", "solve_time", "result_str") if k in res}
        return QueryResult(st, x, y, ext, ext, stats)

    def evaluate(
        self, orig: FNN, comp: FNN, box: Box, *, outputs: Sequence[int] | None = None, time_limit: float | None = None
    ) -> Discrepancy:
        t0 = time.perf_counter()
        m = orig.n_outputs
        outputs = list(range(m)) if outputs is None else sorted(set(outputs))
        merged = merge(orig, comp, output="diff")
        arrs = self._net_arrays(merged, box)
        arrs["mode"] = "enumerate"
        arrs["outputs"] = np.array(outputs, dtype=int)
        if time_limit is not None:
            arrs["timeout"] = max(float(time_limit), 0.01)
        res, ext = self._call(arrs, time_limit)
        if res.get("status") == "error":
            raise ExternalError(f"nnenum enumeration failed: {res.get('traceback', '')[-2000:]}")
        stats: dict[str, Any] = {
            "method": "nnenum",
            "external_time": ext,
            **self.describe(),
            **{k: res[k] for k in ("stars", "lps", "enum_time", "lp_time", "result_str") if k in res},
        }
        exact = res.get("status") == "exact" and not box.has_constraints
        per = _sound_upper(orig, comp, box)
        wits = [box.center]
        if res.get("status") == "exact":
            for k, j in enumerate(outputs):
                lo_v, hi_v = res["min"][k], res["max"][k]
                if lo_v is None or hi_v is None or not np.isfinite(lo_v) or not np.isfinite(hi_v):
                    continue
                per[j, 0] = lo_v - STAR_TOL * (1 + abs(lo_v))
                per[j, 1] = hi_v + STAR_TOL * (1 + abs(hi_v))
                for w in (res["argmin"][k], res["argmax"][k]):
                    if w is not None:
                        wits.append(np.clip(np.array(w, dtype=np.float64), box.lower, box.upper))
        W = np.vstack(wits)
        d = np.abs(disc(orig, comp, W)[:, outputs]).max(axis=1)
        best = int(np.argmax(d))
        up = float(max(max(-per[j, 0], per[j, 1]) for j in outputs))
        lower = float(d[best])
        up = max(up, lower)
        stats["time"] = time.perf_counter() - t0
        tol = STAR_TOL * (1 + abs(up))
        msg = (
            ""
            if exact
            else (
                "nnenum enumeration unfinished: upper bound from symbolic bounds"
                if res.get("status") != "exact"
                else "linear input constraints were relaxed to the bounding box: upper bound sound, not exact"
            )
        )
        return Discrepancy(
            per_output=per,
            lower=lower,
            upper=up,
            witness=W[best],
            status="exact" if exact else "bounded",
            method="nnenum",
            delta_max=up if exact else None,
            tolerance=tol,
            witness_output=int(outputs[int(np.argmax(np.abs(disc(orig, comp, W[best])[outputs])))]),
            outputs=None if len(outputs) == m else outputs,
            stats=stats,
            message=msg,
        )
