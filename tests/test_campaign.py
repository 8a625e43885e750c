"""Campaigns on Dask distributed: durable SQLite results, reruns skip what is done, a killed worker loses nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from equivrepair.campaign import Job, ResultStore, job_key, read_jobs, run_campaign  # noqa: E402
from equivrepair.nets.ir import FNN, random_fnn  # noqa: E402
from equivrepair.nets.load import save_network  # noqa: E402
from equivrepair.spec.sets import InputSetError  # noqa: E402


def _write_jobs(folder: Path, n: int, timeout: float = 1.0, header: bool = True) -> Path:
    """n pairs (random net, perturbed copy) as ONNX plus boxes; odd jobs decide ε, even ones evaluate."""
    rows = ["orig,comp,input_set,epsilon,timeout"] if header else []
    for i in range(n):
        a = random_fnn([3, 8, 8, 2], seed=i)
        rng = np.random.default_rng(100 + i)
        b = FNN.from_arrays([la.W + 0.02 * rng.normal(size=la.W.shape) for la in a.layers], [la.b for la in a.layers])
        save_network(a, folder / f"o{i}.onnx")
        save_network(b, folder / f"c{i}.onnx")
        (folder / f"box{i}.json").write_text(json.dumps({"lower": [-1.0] * 3, "upper": [1.0] * 3}))
        eps = "" if i % 2 == 0 else ("1e-4" if i % 4 == 1 else "2.0")
        rows.append(f"o{i}.onnx,c{i}.onnx,box{i}.json,{eps},{timeout}")
    p = folder / "jobs.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def _rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT key, status, verdict, upper FROM results").fetchall()
    finally:
        con.close()


def test_read_jobs(tmp_path):
    p = _write_jobs(tmp_path, 2, header=False)
    jobs = read_jobs(p)
    assert [j.epsilon for j in jobs] == [None, 1e-4]
    assert all(Path(j.orig).is_absolute() and Path(j.orig).is_file() for j in jobs)
    text = "# a comment\norig,comp,input_set,epsilon\n" + "o0.onnx,c0.onnx,box0.json,0.05\n\n"
    (tmp_path / "h.csv").write_text(text)
    (j,) = read_jobs(tmp_path / "h.csv", default_timeout=7.0)
    assert j.epsilon == 0.05 and j.timeout == 7.0
    (tmp_path / "bad.csv").write_text("o0.onnx,c0.onnx,box0.json,-1\n")
    with pytest.raises(InputSetError, match="line 1"):
        read_jobs(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("o0.onnx,c0.onnx\n")
    with pytest.raises(InputSetError, match="expected"):
        read_jobs(tmp_path / "short.csv")


def test_job_key_depends_on_contents(tmp_path):
    _write_jobs(tmp_path, 2)
    a, b = read_jobs(tmp_path / "jobs.csv")
    assert job_key(a) == job_key(Job(**{**a.spec(), "line": 99}))  # the CSV line is not part of the key
    assert job_key(a) != job_key(b)
    assert job_key(a) != job_key(Job(**{**a.spec(), "epsilon": 0.1}))
    assert job_key(a) != job_key(Job(**{**a.spec(), "timeout": 5.0}))
    k = job_key(a)
    save_network(random_fnn([3, 8, 8, 2], seed=42), a.comp)  # same path, different network
    assert job_key(a) != k


def test_store_keeps_one_row_per_key(tmp_path):
    job = Job("o", "c", "s", 0.1)
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert st.add(job, "k1", {"status": "done", "verdict": "equivalent", "upper": float("inf")})
        assert not st.add(job, "k1", {"status": "done", "verdict": "not_equivalent"})
        assert st.count() == 1
        assert st.rows()[0]["verdict"] == "equivalent" and st.rows()[0]["upper"] is None
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_campaign_survives_a_killed_worker(tmp_path):
    """2-worker LocalCluster; one worker process is SIGKILLed mid-run: every job ends with exactly one row."""
    from distributed import Client, LocalCluster

    n = 8
    jobs = read_jobs(_write_jobs(tmp_path, n, timeout=1.5))
    db = tmp_path / "results.sqlite"
    killed: list[int] = []
    in_flight: list[str] = []  # task keys running on the killed worker

    def kill_one(rec, client):
        if killed:
            return
        processing = client.processing()
        busy = [w for w, tasks in processing.items() if tasks]
        pids = client.run(os.getpid)
        victim = busy[0] if busy else next(iter(pids))
        os.kill(pids[victim], signal.SIGKILL)
        killed.append(pids[victim])
        in_flight.extend(str(t) for t in processing.get(victim, ()))

    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=env) as cluster,
        Client(cluster) as client,
    ):
        t0 = time.perf_counter()
        s = run_campaign(jobs, db, client=client, progress=False, on_result=kill_one)
        wall = time.perf_counter() - t0
    assert killed, "no worker was killed"
    assert in_flight, "the killed worker had no job in flight"
    assert s.jobs == n and s.ran == n and s.skipped == 0 and not s.interrupted
    rows = _rows(db)
    keys = [r[0] for r in rows]
    assert len(rows) == n and len(set(keys)) == n
    assert set(keys) == {job_key(j) for j in jobs}
    assert all(r[1] != "error" for r in rows), rows
    # verdicts agree with the job definitions: ε = 1e-4 is violated, ε = 2 holds
    by_key = {r[0]: r for r in rows}
    for j in jobs:
        r = by_key[job_key(j)]
        if j.epsilon == 1e-4:
            assert r[2] == "not_equivalent"
        elif j.epsilon == 2.0:
            assert r[2] == "equivalent"
        else:
            assert r[1] in ("exact", "bounded") and r[3] is not None
    # the jobs that were running on the killed worker were run again elsewhere and stored once
    con = sqlite3.connect(db)
    pid_of = {k: json.loads(r)["pid"] for k, r in con.execute("SELECT key, result_json FROM results")}
    con.close()
    for task in in_flight:
        (k,) = [k for k in pid_of if task.endswith(k[:32])]
        assert pid_of[k] != killed[0]
    assert wall < 120
    # a rerun skips everything without starting a cluster
    s2 = run_campaign(jobs, db, workers=2, progress=False)
    assert s2.ran == 0 and s2.skipped == n
    assert len(_rows(db)) == n


def test_cli_campaign_and_rerun(tmp_path):
    from equivrepair.cli import main

    p = _write_jobs(tmp_path, 3, timeout=1.0)
    db = tmp_path / "r.sqlite"
    out = tmp_path / "summary.json"
    assert main(["campaign", str(p), "--workers", "1", "--db", str(db), "--quiet", "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["ran"] == 3 and s["errors"] == 0
    assert main(["campaign", str(p), "--workers", "1", "--db", str(db), "--quiet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["skipped"] == 3
    assert main(["campaign", str(tmp_path / "nope.csv"), "--db", str(db)]) == 3


def test_scheduler_address_and_missing_file(tmp_path):
    """Jobs go to an existing scheduler by address; a job whose file is missing is stored as an error."""
    p = _write_jobs(tmp_path, 2)
    (tmp_path / "c0.onnx").unlink()
    db = tmp_path / "r.sqlite"
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        s = run_campaign(read_jobs(p), db, scheduler=cluster.scheduler_address, progress=False)
    assert s.scheduler == cluster.scheduler_address
    assert s.ran == 2 and s.errors == 1
    with ResultStore(db) as st:
        rows = st.rows()
    err = [r for r in rows if r["status"] == "error"]
    assert len(err) == 1 and "c0.onnx" in err[0]["error"]


@pytest.mark.slow
def test_killing_the_whole_run_loses_no_finished_result(tmp_path):
    """SIGKILL the CLI's process group mid-run; stored rows stay; a rerun runs only the rest."""
    n = 10
    p = _write_jobs(tmp_path, n, timeout=2.0)
    db = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "equivrepair.cli", "campaign", str(p), "--workers", "2", "--db", str(db), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while time.time() - t0 < 120:
            if db.exists():
                try:
                    if len(_rows(db)) >= 3:
                        break
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    stored = {r[0] for r in _rows(db)}
    assert 3 <= len(stored) < n
    from equivrepair.cli import main

    assert main(["campaign", str(p), "--workers", "2", "--db", str(db), "--quiet"]) == 0
    rows = _rows(db)
    assert len(rows) == n and len({r[0] for r in rows}) == n
    assert stored <= {r[0] for r in rows}
