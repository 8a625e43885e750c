"""Firm per-job time limits: a job still running at limit + grace is killed and stored as 'timeout'.

The hang is real, not simulated inside the engine: the job's input set is a named pipe with no
writer, so loading it blocks outside every clock the engine checks (like a stuck network file
system). The cooperative limit is tested on a real engine run that stops itself at its limit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from equivrepair.campaign import Job, default_grace, job_key, read_jobs, run_campaign, run_job  # noqa: E402
from equivrepair.nets.ir import FNN, random_fnn  # noqa: E402
from equivrepair.nets.load import save_network  # noqa: E402

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo") or sys.platform == "win32", reason="needs named pipes")


def _pair(folder: Path, i: int) -> tuple[str, str, str]:
    a = random_fnn([3, 8, 8, 2], seed=i)
    rng = np.random.default_rng(100 + i)
    b = FNN.from_arrays([la.W + 0.02 * rng.normal(size=la.W.shape) for la in a.layers], [la.b for la in a.layers])
    save_network(a, folder / f"o{i}.onnx")
    save_network(b, folder / f"c{i}.onnx")
    (folder / f"box{i}.json").write_text(json.dumps({"lower": [-1.0] * 3, "upper": [1.0] * 3}))
    return f"o{i}.onnx", f"c{i}.onnx", f"box{i}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_default_grace():
    assert default_grace(10.0) == pytest.approx(3.0)
    assert default_grace(300.0) == pytest.approx(32.0)


@needs_fifo
def test_a_hanging_job_is_killed_and_stored_as_timeout(tmp_path):
    o, c, s = _pair(tmp_path, 0)
    os.mkfifo(tmp_path / "hang.json")  # opening it for reading blocks: no writer ever comes
    limit, grace = 1.0, 0.5
    rows = [f"{o},{c},{s},,{limit}", f"{o},{c},hang.json,,{limit}", f"{o},{c},{s},2.0,{limit}"]
    (tmp_path / "jobs.csv").write_text("\n".join(rows) + "\n")
    jobs = read_jobs(tmp_path / "jobs.csv")
    db = tmp_path / "r.sqlite"
    t0 = time.perf_counter()
    summary = run_campaign(jobs, db, workers=1, progress=False, grace=grace)
    wall = time.perf_counter() - t0
    assert summary.ran == 3 and summary.timeouts == 1 and summary.errors == 0
    con = sqlite3.connect(db)
    recs = {k: json.loads(r) for k, r in con.execute("SELECT key, result_json FROM results")}
    cols = {k: (st, lo, up) for k, st, lo, up in con.execute("SELECT key, status, lower, upper FROM results")}
    con.close()
    hung = recs[job_key(jobs[1])]
    assert hung["status"] == "timeout" and cols[job_key(jobs[1])] == ("timeout", None, None)
    assert hung["lower"] is None and hung["upper"] is None and hung["verdict"] is None
    assert hung["hard_limit"] == pytest.approx(limit + grace)
    # firm: killed at limit + grace (plus the time a kill and a queue wake-up take)
    assert limit + grace <= hung["time"] < limit + grace + 0.5, hung["time"]
    assert not _alive(hung["helper_pid"]), "the killed helper process is gone"
    # the other jobs ran to completion, the one after the kill on a fresh helper
    ev, dec = recs[job_key(jobs[0])], recs[job_key(jobs[2])]
    assert ev["status"] in ("exact", "bounded") and ev["upper"] is not None and ev["lower"] <= ev["upper"]
    assert dec["verdict"] == "equivalent"
    later = [r for r in (ev, dec) if r["started_at"] > hung["started_at"]]
    assert all(r["helper_pid"] != hung["helper_pid"] for r in later)
    assert wall < 90
    # a rerun skips the stored timeout like any finished job
    again = run_campaign(jobs, db, workers=1, progress=False, grace=grace)
    assert again.ran == 0 and again.skipped == 3
    # helpers exit with their worker
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(r["helper_pid"]) for r in recs.values()):
        time.sleep(0.2)
    assert not any(_alive(r["helper_pid"]) for r in recs.values())


def test_cooperative_limit_returns_bounds_in_time(data):
    """A real engine run that cannot finish: stopped by its own clock, bounds kept, status bounded."""
    onnx = data / "acasxu" / "ACASXU_run2a_2_3_batch_2000.onnx"
    nnet = data / "neurodiff" / "compressed16" / "ACASXU_run2a_2_3_batch_2000_16bit.nnet"
    box = Path(os.environ.get("TMPDIR", "/tmp")) / f"eqr_box_{os.getpid()}.json"
    c = np.array([0.1, -0.1, 0.05, 0.0, 0.1])
    box.write_text(json.dumps({"lower": (c - 0.15).tolist(), "upper": (c + 0.15).tolist()}))
    try:
        limit = 1.0
        job = Job(str(onnx), str(nnet), str(box), None, limit)
        rec = run_job(dict(job.spec(), key=job_key(job), grace=60.0))  # the backstop stays out of the way
    finally:
        box.unlink()
    assert rec["status"] == "bounded", rec.get("error")
    assert 0.0 < rec["lower"] < rec["upper"] < float("inf")
    assert rec["time"] < limit + 60.0 and rec["hard_limit"] == limit + 60.0
    assert rec["pid"] == os.getpid() and rec["helper_pid"] != os.getpid()


def test_no_hard_limit_runs_in_the_worker(tmp_path):
    o, c, s = _pair(tmp_path, 1)
    job = Job(str(tmp_path / o), str(tmp_path / c), str(tmp_path / s), None, 5.0)
    rec = run_job(dict(job.spec(), key=job_key(job), hard_limit=False))
    assert rec["status"] in ("exact", "bounded") and "helper_pid" not in rec and "hard_limit" not in rec


def test_cli_grace_option(tmp_path):
    from equivrepair.cli import main

    o, c, s = _pair(tmp_path, 2)
    (tmp_path / "jobs.csv").write_text(f"{o},{c},{s},,5\n")
    db = tmp_path / "r.sqlite"
    out = tmp_path / "s.json"
    assert main(["campaign", str(tmp_path / "jobs.csv"), "--workers", "1", "--db", str(db)] + ["--grace", "-1"]) == 3
    argv = ["campaign", str(tmp_path / "jobs.csv"), "--workers", "1", "--db", str(db), "--quiet"]
    assert main(argv + ["--grace", "1.5", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["timeouts"] == 0
    con = sqlite3.connect(db)
    (rec,) = [json.loads(r) for (r,) in con.execute("SELECT result_json FROM results")]
    con.close()
    assert rec["hard_limit"] == pytest.approx(6.5)
