"""Solver subprocesses are killed with everything they forked when they overrun their limit."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from equivrepair.reach.external.common import grace_seconds, run_killable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(pid, 0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_the_forked_grandchild(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    # the shell forks a long sleeper (as nnenum forks its workers) and waits for it
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    t0 = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        run_killable(["bash", "-c", script], timeout=1.0)
    assert time.perf_counter() - t0 < 10
    child = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)


def test_normal_run_returns_output_and_code() -> None:
    r = run_killable(["bash", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_grace_grows_with_the_limit() -> None:
    assert grace_seconds(None) is None
    assert grace_seconds(10) == pytest.approx(13.0)
    assert grace_seconds(100) == pytest.approx(112.0)
