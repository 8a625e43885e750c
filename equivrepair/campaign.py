"""Campaigns: many (ORIG, COMP, input set, ε) jobs on Dask distributed, with a durable results store.

* Jobs come from a CSV file, one per row: ``orig,comp,input_set,epsilon[,timeout]`` (a header
  line is optional, ``#`` starts a comment line, relative paths are taken from the CSV's folder
  first and then from the working directory). An empty ε evaluates the discrepancy bounds instead
  of deciding ε-equivalence.
* Every job has a key: the SHA-256 of (the SHA-256 of the ORIG file, of the COMP file, of the input
  set file, ε, method, timeout). Results live in SQLite (WAL mode, synchronous=FULL), one row per
  key (``PRIMARY KEY``; rows are added with ``INSERT OR IGNORE``), and are written by the *main*
  process the moment each future completes: a killed campaign loses no finished result, a rerun
  skips every key already stored, and a job that Dask re-runs after a worker died still ends
  with exactly one row.
* Jobs run on Dask distributed: a ``LocalCluster(n_workers=N, threads_per_worker=1,
  processes=True)`` on one machine, or an existing scheduler (``scheduler="tcp://host:8786"``;
  the workers need ``equivrepair`` installed and the files at the same paths).
* Per-job time limits are enforced twice. The cooperative limit goes to
  :func:`equivrepair.reach.api.check` / ``evaluate`` as ``time_limit`` (what is left of the job's
  limit after loading the networks): the engine returns the bounds found so far (status
  ``bounded``, verdict ``unknown``). The hard backstop: a job with a limit runs in a helper process
  (one per worker thread, started once and reused), which the worker kills when the job is still
  running ``grace`` seconds after its limit (default ``2 s + 10 %`` of the limit, see
  :func:`default_grace`); the job is then stored with status ``timeout`` and no bounds, and a
  fresh helper takes the next job. A job's ``time`` is measured from the moment the helper
  received it (helper start-up, about a second once per worker thread, is recorded apart as
  ``helper_start``), so ``time <= limit + grace`` plus the milliseconds a kill takes.
  ``hard_limit=False`` (CLI ``--no-hard-limit``) runs jobs inside the worker, cooperatively only.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .spec.sets import InputSetError

__all__ = [
    "Job",
    "ResultStore",
    "CampaignSummary",
    "read_jobs",
    "job_key",
    "run_job",
    "run_campaign",
    "default_grace",
]

SCHEMA_VERSION = 1
HEADER_WORDS = {"orig", "original", "comp", "compressed", "input_set", "inputset", "set", "epsilon", "eps", "timeout"}


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One verification job; paths are absolute after :func:`read_jobs`."""

    orig: str
    comp: str
    input_set: str
    epsilon: float | None = None
    timeout: float | None = None
    method: str = "exact"
    intervals: bool = False  # with ε: evaluate the per-output intervals, then decide from them
    nnet_raw_inputs: bool = False
    line: int = 0

    def spec(self) -> dict[str, Any]:
        return asdict(self)


def _parse_float(text: str, what: str, where: str, positive: bool = True) -> float | None:
    text = text.strip()
    if text == "" or text.lower() in ("none", "-"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise InputSetError(f"{where}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise InputSetError(f"{where}: {what} must be a positive number, got {text!r}")
    return v


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    if p.is_absolute():
        return str(p)
    cand = base / p
    if cand.exists() or not p.exists():
        return str(cand.resolve())
    return str(p.resolve())


def read_jobs(
    path: str | Path,
    *,
    default_timeout: float | None = None,
    method: str = "exact",
    intervals: bool = False,
    nnet_raw_inputs: bool = False,
) -> list[Job]:
    """Read a jobs CSV (see the module docstring); raises InputSetError with the line on bad rows."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such jobs file")
    base = p.resolve().parent
    jobs: list[Job] = []
    with open(p, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            cells = [c.strip() for c in row]
            if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
                continue
            where = f"{p.name} line {lineno}"
            if not jobs and cells[0].lower() in HEADER_WORDS:
                continue  # header
            if len(cells) < 4 or len(cells) > 5:
                raise InputSetError(f"{where}: expected orig,comp,input_set,epsilon[,timeout], got {len(cells)} fields")
            eps = _parse_float(cells[3], "epsilon", where)
            tmo = _parse_float(cells[4], "timeout", where) if len(cells) == 5 else None
            jobs.append(
                Job(
                    orig=_resolve(cells[0], base),
                    comp=_resolve(cells[1], base),
                    input_set=_resolve(cells[2], base),
                    epsilon=eps,
                    timeout=tmo if tmo is not None else default_timeout,
                    method=method,
                    intervals=intervals,
                    nnet_raw_inputs=nnet_raw_inputs,
                    line=lineno,
                )
            )
    if not jobs:
        raise InputSetError(f"{p}: no jobs")
    return jobs


def _file_sha256(path: str, cache: dict[str, str] | None = None) -> str:
    if cache is not None and path in cache:
        return cache[path]
    p = Path(path)
    if not p.is_file():
        digest = "missing:" + path
    else:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
    if cache is not None:
        cache[path] = digest
    return digest


def job_key(job: Job, cache: dict[str, str] | None = None) -> str:
    """SHA-256 of (orig file sha256, comp sha256, input-set file sha256, ε, method, timeout, options)."""
    ident = {
        "orig": _file_sha256(job.orig, cache),
        "comp": _file_sha256(job.comp, cache),
        "input_set": _file_sha256(job.input_set, cache),
        "epsilon": job.epsilon,
        "method": job.method,
        "timeout": job.timeout,
        "intervals": job.intervals,
        "nnet_raw_inputs": job.nnet_raw_inputs,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
def _load_net(path: str, raw_inputs: bool):
    from .nets.load import load_network

    if Path(path).suffix.lower() == ".nnet":
        return load_network(path, input_normalization=raw_inputs)
    return load_network(path)


_IN_HELPER = False  # set in helper processes, which need no Dask import


def _new_record(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields every stored result starts with: job key, worker, process and start time."""
    return {
        "key": spec.get("key"),
        "worker": _worker_name(),
        "pid": os.getpid(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


def _worker_name() -> str:
    if _IN_HELPER:
        return f"{socket.gethostname()}:{os.getpid()}"
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def default_grace(limit: float) -> float:
    """Seconds a job may run past its limit before its helper process is killed: 2 s + 10 % of the limit."""
    return 2.0 + 0.1 * float(limit)


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job (on a worker); returns a JSON-ready record, with ``status == "error"`` on failure.

    A job with a ``timeout`` runs in this thread's helper process and is killed ``grace`` seconds
    (``spec["grace"]``, default :func:`default_grace`) after its limit, giving status ``timeout``;
    ``spec["hard_limit"] = False`` runs it here, with the cooperative limit only.
    """
    tmo = spec.get("timeout")
    if tmo is None or not spec.get("hard_limit", True):
        return _run_job_here(spec)
    grace = spec.get("grace")
    grace = default_grace(tmo) if grace is None else float(grace)
    rec = _new_record(spec)
    try:
        helper, t_start = _helper()
        rec["helper_pid"] = helper.proc.pid
        if t_start is not None:
            rec["helper_start"] = t_start
        t0 = time.perf_counter()
        out = helper.run(dict(spec, started_wall=time.time()), deadline=t0 + float(tmo) + grace)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a stored result
        out, t0 = None, time.perf_counter()
        rec.update(status="error", verdict=None, error=f"helper process: {type(exc).__name__}: {exc}")
    else:
        if out is None:  # killed at the deadline
            rec.update(
                status="timeout",
                verdict=None,
                lower=None,
                upper=None,
                delta_max=None,
                message=f"killed {float(tmo) + grace:.3g} s after it started (limit {float(tmo):g} s + grace {grace:.3g} s)",
            )
        else:
            for k in ("key", "worker", "pid", "started_at", "time", "finished_at"):
                out.pop(k, None)
            rec.update(out)
    rec["hard_limit"] = float(tmo) + grace
    rec["time"] = time.perf_counter() - t0
    rec["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return rec


def _run_job_here(spec: dict[str, Any]) -> dict[str, Any]:
    from .spec.sets import load_input_set

    if spec.get("timeout") is not None and spec.get("started_wall") is None:
        spec = dict(spec, started_wall=time.time())
    t0 = time.perf_counter()
    rec = _new_record(spec)
    try:
        orig = _load_net(spec["orig"], spec.get("nnet_raw_inputs", False))
        comp = _load_net(spec["comp"], spec.get("nnet_raw_inputs", False))
        box = load_input_set(spec["input_set"], n_inputs=orig.n_inputs)
        rec["orig_sha256"], rec["comp_sha256"] = orig.content_hash, comp.content_hash
        rec.update(_solve(orig, comp, box, spec))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a stored result
        rec.update(
            status="error",
            verdict=None,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc))[-4000:],
        )
    rec["time"] = time.perf_counter() - t0
    rec["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return rec


# -- the helper process: runs jobs one at a time for one worker thread; killed at a job's deadline
_HELPER_START_TIMEOUT = 120.0
_local = threading.local()


class _Helper:
    def __init__(self) -> None:
        cmd = [sys.executable, "-m", "equivrepair.campaign", "--helper", str(os.getpid())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        line = self._next(time.perf_counter() + _HELPER_START_TIMEOUT)
        if line is None or line.strip() != b"ready":
            self.kill()
            raise RuntimeError(f"the helper process did not start (exit code {self.proc.poll()})")

    @staticmethod
    def _read(stream: Any, lines: queue.Queue[bytes]) -> None:
        for line in iter(stream.readline, b""):
            lines.put(line)
        lines.put(b"")  # EOF

    def _next(self, deadline: float) -> bytes | None:
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, spec: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """The job's record, or None when it was still running at ``deadline`` (the helper is then killed)."""
        self.proc.stdin.write((json.dumps(spec) + "\n").encode())
        self.proc.stdin.flush()
        line = self._next(deadline)
        if line is None:
            self.kill()
            return None
        if line == b"":
            code = self.proc.wait()
            raise RuntimeError(f"the helper process died during the job (exit code {code})")
        return json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _helper() -> tuple[_Helper, float | None]:
    """This thread's helper process, started when there is none alive; (helper, start-up seconds or None)."""
    h = getattr(_local, "helper", None)
    if h is not None and h.alive():
        return h, None
    t0 = time.perf_counter()
    h = _local.helper = _Helper()
    return h, time.perf_counter() - t0


def _helper_main(parent_pid: int) -> None:
    """``python -m equivrepair.campaign --helper PID``: run job specs read from stdin, one JSON record per line."""

    def watch_parent() -> None:  # a killed worker takes its helper along
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch_parent, daemon=True).start()
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever else writes to stdout goes to stderr
    global _IN_HELPER
    _IN_HELPER = True
    # imported before the first job's clock starts
    from .nets import load, nnet_io, onnx_io  # noqa: F401
    from .reach import api, bounds  # noqa: F401
    from .spec import sets  # noqa: F401

    proto.write("ready\n")
    proto.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        rec = _run_job_here(json.loads(line))
        proto.write(json.dumps(rec, default=str) + "\n")
        proto.flush()


def _solve(orig, comp, box, spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from .reach.api import check, evaluate

    eps, method, tmo = spec.get("epsilon"), spec.get("method", "exact"), spec.get("timeout")
    if tmo is not None and spec.get("started_wall") is not None:
        # the job's limit covers loading the networks too; at least 5 % of it is left to the engine
        tmo = max(float(tmo) - (time.time() - float(spec["started_wall"])), 0.05 * float(tmo))
    out: dict[str, Any] = {}
    if eps is not None and not spec.get("intervals"):
        dec = check(orig, comp, box, eps, method=method, time_limit=tmo)
        res = dec.to_json()
        out.update(
            status="done",
            verdict=dec.verdict,
            lower=float(dec.lower),
            upper=float(dec.upper),
            delta_max=None,
            result=res,
        )
        return out
    d = evaluate(orig, comp, box, method=method, time_limit=tmo)
    res = d.to_json()
    verdict = None
    if eps is not None:
        if d.lower >= eps:
            verdict = "not_equivalent"
        elif d.upper < eps:
            verdict = "equivalent"
        else:
            verdict = "unknown"
    from .report import plot_data

    res.update(plot_data(d, orig, comp, box))
    out.update(
        status=d.status,
        verdict=verdict,
        lower=float(d.lower),
        upper=float(d.upper) if np.isfinite(d.upper) else None,
        delta_max=None if d.delta_max is None else float(d.delta_max),
        result=res,
    )
    return out


# --------------------------------------------------------------------------------------------
# the results store
# --------------------------------------------------------------------------------------------
_COLUMNS = (
    ("key", "TEXT PRIMARY KEY"),
    ("orig", "TEXT"),
    ("comp", "TEXT"),
    ("input_set", "TEXT"),
    ("epsilon", "REAL"),
    ("timeout", "REAL"),
    ("method", "TEXT"),
    ("status", "TEXT"),
    ("verdict", "TEXT"),
    ("lower", "REAL"),
    ("upper", "REAL"),
    ("delta_max", "REAL"),
    ("time", "REAL"),
    ("worker", "TEXT"),
    ("started_at", "TEXT"),
    ("finished_at", "TEXT"),
    ("error", "TEXT"),
    ("result_json", "TEXT"),
)


class ResultStore:
    """A SQLite file with one row per job key; safe to read while a campaign writes to it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        cols = ", ".join(f"{n} {t}" for n, t in _COLUMNS)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT, "
            "finished_at TEXT, workers INTEGER, scheduler TEXT, jobs INTEGER, ran INTEGER, skipped INTEGER, "
            "errors INTEGER, wall REAL, interrupted INTEGER)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def done_keys(self, include_errors: bool = True) -> set[str]:
        q = "SELECT key FROM results" + ("" if include_errors else " WHERE status != 'error'")
        return {r[0] for r in self.db.execute(q)}

    def add(self, job: Job, key: str, rec: dict[str, Any]) -> bool:
        """Store one finished job; returns False when the key already had a row (kept as it was)."""
        row = {
            "key": key,
            "orig": job.orig,
            "comp": job.comp,
            "input_set": job.input_set,
            "epsilon": job.epsilon,
            "timeout": job.timeout,
            "method": job.method,
            "status": rec.get("status"),
            "verdict": rec.get("verdict"),
            "lower": _finite(rec.get("lower")),
            "upper": _finite(rec.get("upper")),
            "delta_max": _finite(rec.get("delta_max")),
            "time": rec.get("time"),
            "worker": rec.get("worker"),
            "started_at": rec.get("started_at"),
            "finished_at": rec.get("finished_at"),
            "error": rec.get("error"),
            "result_json": json.dumps(rec, default=str),
        }
        names = [n for n, _ in _COLUMNS]
        cur = self.db.execute(
            f"INSERT OR IGNORE INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [row[n] for n in names],
        )
        return cur.rowcount == 1

    def delete_errors(self, keys: Iterable[str]) -> int:
        n = 0
        for k in keys:
            n += self.db.execute("DELETE FROM results WHERE key = ? AND status = 'error'", (k,)).rowcount
        return n

    def rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM results ORDER BY finished_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def log_run(self, summary: CampaignSummary) -> None:
        self.db.execute(
            "INSERT INTO runs (started_at, finished_at, workers, scheduler, jobs, ran, skipped, errors, wall, interrupted) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                summary.started_at,
                datetime.now(timezone.utc).isoformat(timespec="seconds"),
                summary.workers,
                summary.scheduler,
                summary.jobs,
                summary.ran,
                summary.skipped,
                summary.errors,
                summary.wall,
                int(summary.interrupted),
            ),
        )


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------
@dataclass
class CampaignSummary:
    jobs: int = 0  # distinct jobs given
    skipped: int = 0  # already in the store
    ran: int = 0  # results stored by this run
    errors: int = 0  # of which status "error"
    timeouts: int = 0  # of which status "timeout" (killed at limit + grace)
    duplicates: int = 0  # rows of the CSV that repeat another row's key
    wall: float = 0.0
    workers: int | None = None
    scheduler: str | None = None
    interrupted: bool = False
    started_at: str = ""
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ran / self.wall if self.wall > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["throughput_jobs_per_s"] = self.throughput
        return d

    def summary(self) -> str:
        v = ", ".join(f"{k} {n}" for k, n in sorted(self.verdicts.items())) or "-"
        where = self.scheduler or f"LocalCluster({self.workers} workers)"
        return (
            f"campaign on {where}: {self.jobs} jobs, {self.skipped} already stored, {self.ran} run now "
            f"({self.errors} errors, {self.timeouts} killed at the hard limit) in {self.wall:.1f} s "
            f"= {self.throughput:.2f} jobs/s" + ("; INTERRUPTED" if self.interrupted else "") + f"\n  outcomes: {v}"
        )


class _Progress:
    """tqdm when installed and stderr is a terminal, else a plain text line per update."""

    def __init__(self, total: int, enabled: bool, stream=None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.n = 0
        self.errors = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled and total and self.stream.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="job", file=self.stream, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, rec: dict[str, Any]) -> None:
        self.n += 1
        self.errors += rec.get("status") == "error"
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(errors=self.errors)
            return
        el = time.perf_counter() - self.t0
        rate = self.n / el if el > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        what = rec.get("verdict") or rec.get("status")
        end = "\r" if self.stream.isatty() else "\n"
        self.stream.write(
            f"[{self.n:>{len(str(self.total))}}/{self.total}] {rate:6.2f} jobs/s  eta {eta:6.0f} s  "
            f"errors {self.errors}  last: {what}{end}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.stream.isatty():
            self.stream.write("\n")


def _make_client(workers: int, scheduler: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("campaigns need dask distributed: pip install 'equivrepair[campaign]'") from exc
    if scheduler:
        return Client(scheduler), None
    import logging

    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env=env,
    )
    return Client(cluster), cluster


def run_campaign(
    jobs: Sequence[Job],
    db: str | Path | ResultStore,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = True,
    retry_errors: bool = False,
    retries: int = 0,
    on_result: Callable[[dict[str, Any], Any], None] | None = None,
    hard_limit: bool = True,
    grace: float | None = None,
) -> CampaignSummary:
    """Run every job not yet in the store and store each result as it arrives.

    ``client``: an existing ``distributed.Client`` to use (then ``workers``/``scheduler`` are
    ignored and the client is left open); otherwise a LocalCluster of ``workers`` processes (one
    thread each) or a client of ``scheduler`` is made and closed at the end. ``retry_errors``:
    jobs stored with status ``error`` are deleted and run again. ``retries``: Dask-level retries
    of a job whose task raised (jobs catch their own errors, so this matters only for failures
    outside the job, e.g. a worker that keeps dying). ``on_result(record, client)`` is called in
    the main process after each result is committed. Ctrl-C (or SIGTERM in the CLI) stops the
    run; everything stored so far stays. ``hard_limit``: jobs with a time limit run in a helper
    process killed ``grace`` seconds after the limit (default :func:`default_grace`: 2 s + 10 %
    of the limit) and are stored with status ``timeout``; False: cooperative limit only.
    """
    if grace is not None and not (math.isfinite(grace) and grace >= 0):
        raise InputSetError(f"grace must be a non-negative number of seconds, got {grace}")
    store = db if isinstance(db, ResultStore) else ResultStore(db)
    summary = CampaignSummary(
        workers=None if (client is not None or scheduler) else workers,
        scheduler=scheduler,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    t0 = time.perf_counter()
    cache: dict[str, str] = {}
    keyed: dict[str, Job] = {}
    for job in jobs:
        k = job_key(job, cache)
        if k in keyed:
            summary.duplicates += 1
            continue
        keyed[k] = job
    summary.jobs = len(keyed)
    if retry_errors:
        store.delete_errors(keyed)
    done = store.done_keys()
    todo = {k: j for k, j in keyed.items() if k not in done}
    summary.skipped = summary.jobs - len(todo)
    own_client = client is None
    cluster = None
    bar = _Progress(len(todo), progress)
    try:
        if todo:
            if own_client:
                client, cluster = _make_client(workers, scheduler)
            if client is not None and scheduler is None and not own_client:
                summary.scheduler = str(getattr(client, "scheduler", None) and client.scheduler.address)
            from distributed import as_completed

            futures = {}
            for k, job in todo.items():
                spec = dict(job.spec(), key=k, hard_limit=hard_limit, grace=grace)
                fut = client.submit(run_job, spec, key=f"equivrepair-job-{k[:32]}", pure=False, retries=retries)
                futures[fut] = k
            for fut in as_completed(list(futures)):
                k = futures[fut]
                job = todo[k]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, cancelled, ...: stored as an error
                    rec = {
                        "key": k,
                        "status": "error",
                        "verdict": None,
                        "error": f"{type(exc).__name__}: {exc}",
                        "finished_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    }
                fut.release()
                if store.add(job, k, rec):
                    summary.ran += 1
                    summary.errors += rec.get("status") == "error"
                    summary.timeouts += rec.get("status") == "timeout"
                    v = rec.get("verdict") or rec.get("status") or "?"
                    summary.verdicts[v] = summary.verdicts.get(v, 0) + 1
                bar.update(rec)
                if on_result is not None:
                    on_result(rec, client)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.wall = time.perf_counter() - t0
        try:
            store.log_run(summary)
        finally:
            if own_client and client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            if not isinstance(db, ResultStore):
                store.close()
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--helper":
        _helper_main(int(sys.argv[2]))
    else:
        print(
            "usage: python -m equivrepair.campaign --helper PARENT_PID (started by campaign workers)", file=sys.stderr
        )
        sys.exit(3)
