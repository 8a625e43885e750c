"""Any verifier that follows the VNN-COMP scripts protocol, as a backend.

The tool directory holds ``prepare_instance.sh`` and ``run_instance.sh`` (directly or under
``vnncomp_scripts/``); ``install_tool.sh`` is assumed to have been run. Each query writes the
network as float32 ONNX (:func:`~equivrepair.nets.onnx_io.save_onnx`, cached per content hash) and
the question as a VNN-LIB file, then runs::

    prepare_instance.sh v1 CATEGORY ONNX VNNLIB
    run_instance.sh     v1 CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT

and reads the result file (``sat`` with its counterexample, ``unsat``, ``timeout``, ``unknown``;
the older ``violated``/``holds`` too). A ``sat`` without a counterexample proves nothing we can
check: it counts as ``unknown`` for the decision and stops the bisection.

Options (``evaluate(..., method="vnncomp-tool", tool_dir=..., category=..., env=...)``): the
tool directory defaults to ``$EQUIVREPAIR_VNNCOMP_TOOL``; ``env`` adds environment variables
(e.g. ``PATH`` to put a tool's own interpreter first). The version reported is the first line of
``version.txt`` in the tool directory, else the directory's name. Time outside Python = the
scripts' wall time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...nets.ir import FNN
from ...spec.sets import Box
from .common import Backend, BackendUnavailable, Conj, QueryResult, run_killable

ENV_VAR = "EQUIVREPAIR_VNNCOMP_TOOL"
INSTALL_HINT = (
    "vnncomp-tool backend needs a tool directory with prepare_instance.sh and run_instance.sh (VNN-COMP protocol): "
    f"pass tool_dir=... or set {ENV_VAR}"
)


def _scripts_dir(tool_dir: str | Path) -> Path:
    d = Path(tool_dir)
    for cand in (d, d / "vnncomp_scripts"):
        if (cand / "run_instance.sh").is_file():
            return cand
    raise BackendUnavailable(f"{d}: no run_instance.sh here or in vnncomp_scripts/; " + INSTALL_HINT)


class VnncompToolBackend(Backend):
    name = "vnncomp-tool"

    def __init__(
        self,
        tool_dir: str | Path | None = None,
        category: str = "equivrepair",
        env: dict[str, str] | None = None,
        workdir: str | Path | None = None,
        keep_files: bool = False,
    ) -> None:
        tool_dir = tool_dir or os.environ.get(ENV_VAR)
        if not tool_dir:
            raise BackendUnavailable(INSTALL_HINT)
        self.tool_dir = Path(tool_dir).resolve()
        self.scripts = _scripts_dir(self.tool_dir)
        self.category = category
        self.env = dict(os.environ, **(env or {}))
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="equivrepair-vnncomp-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep_files = keep_files
        self._onnx: dict[str, Path] = {}
        self._count = 0

    def version(self) -> str:
        v = self.tool_dir / "version.txt"
        if v.is_file():
            return v.read_text().splitlines()[0].strip()
        return self.tool_dir.name

    def _onnx_for(self, net: FNN) -> Path:
        h = net.content_hash
        if h not in self._onnx:
            from ...nets.onnx_io import save_onnx

            p = self.workdir / f"net_{h[:16]}.onnx"
            save_onnx(net, p)
            self._onnx[h] = p
        return self._onnx[h]

    def _run(self, script: str, args: list[str], timeout: float | None) -> subprocess.CompletedProcess:
        return run_killable(["bash", str(self.scripts / script), *args], timeout, env=self.env, cwd=str(self.workdir))

    def query(self, net: FNN, box: Box, dnf: Sequence[Conj], time_limit: float | None) -> QueryResult:
        from ...spec.vnncomp import read_result_file
        from ...spec.vnnlib import LinearConstraint, write_vnnlib

        t0 = time.perf_counter()
        onnx = self._onnx_for(net)
        self._count += 1
        key = hashlib.sha1(
            repr([(np.asarray(A).tolist(), np.asarray(b).tolist()) for A, b in dnf]).encode()
        ).hexdigest()
        vnn = self.workdir / f"q{self._count}_{key[:8]}.vnnlib"
        conjs = [[LinearConstraint(a, c) for a, c in zip(np.atleast_2d(A), np.atleast_1d(b))] for A, b in dnf]
        write_vnnlib(vnn, box, net.n_outputs, conjs, comment="query written by equivrepair (vnncomp-tool backend)")
        res_file = self.workdir / f"q{self._count}.result"
        timeout = 1e6 if time_limit is None else max(1.0, float(time_limit))
        ext = 0.0
        s0 = time.perf_counter()
        try:
            prep = self._run("prepare_instance.sh", ["v1", self.category, str(onnx), str(vnn)], 600)
        except subprocess.TimeoutExpired:
            return QueryResult("error", message="prepare_instance.sh did not finish in 600 s")
        ext += time.perf_counter() - s0
        if prep.returncode != 0:
            return QueryResult(
                "error",
                external_time=ext,
                message=f"prepare_instance.sh exited {prep.returncode}: {prep.stdout[-500:]}{prep.stderr[-1000:]}",
            )
        s0 = time.perf_counter()
        timeout_str = str(int(np.ceil(timeout))) if timeout < 1e6 else "1000000"
        try:
            run = self._run(
                "run_instance.sh", ["v1", self.category, str(onnx), str(vnn), str(res_file), timeout_str], timeout + 60
            )
            ext += time.perf_counter() - s0
        except subprocess.TimeoutExpired:
            ext += time.perf_counter() - s0
            return QueryResult(
                "timeout",
                external_time=ext,
                wall_time=time.perf_counter() - t0,
                message="run_instance.sh overran its timeout by 60 s and was killed",
            )
        stats: dict[str, Any] = {"returncode": run.returncode}
        if not res_file.exists():
            return QueryResult(
                "error",
                external_time=ext,
                wall_time=time.perf_counter() - t0,
                stats=stats,
                message=f"no result file (exit {run.returncode}): {run.stdout[-500:]}{run.stderr[-1000:]}",
            )
        r = read_result_file(res_file)
        if not self.keep_files:
            for p in (vnn, res_file):
                p.unlink(missing_ok=True)
        st = r.status
        x = r.x
        if st == "sat" and (x is None or x.size != net.n_inputs):
            return QueryResult(
                "unknown",
                None,
                None,
                ext,
                time.perf_counter() - t0,
                stats,
                "the tool said sat without a (complete) counterexample",
            )
        if st == "sat" and box.has_constraints and not box.contains(x, tol=1e-6):
            return QueryResult(
                "unknown",
                None,
                None,
                ext,
                time.perf_counter() - t0,
                stats,
                "the tool's counterexample is outside the input set",
            )
        return QueryResult(st, x, r.y, ext, time.perf_counter() - t0, stats)
