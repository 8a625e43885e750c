"""``equivrepair campaign JOBS.csv --workers N [--scheduler ADDRESS] --db results.sqlite``.

Exit codes: 0 every job has a stored result without error, 2 some job errored or the run was
interrupted (rerun to finish: stored jobs are skipped), 3 usage or input error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .common import positive

EXAMPLE = """jobs CSV, one job per row (header optional, '#' comments, paths relative to the CSV's folder):
  orig,comp,input_set,epsilon,timeout
  ../shared/data/acasxu/ACASXU_run2a_1_1_batch_2000.onnx,comp_1_1.onnx,box_1.json,0.05,60
  orig.onnx,comp.onnx,prop_1.vnnlib,,30          # empty epsilon: evaluate the bounds instead

examples:
  equivrepair campaign jobs.csv --workers 4 --db results.sqlite
  equivrepair campaign jobs.csv --scheduler tcp://10.0.0.5:8786 --db results.sqlite
  equivrepair report results.sqlite --html report.html

Every finished result is committed to the SQLite store (WAL) by the main process as it arrives;
killing the run loses no finished result, and a rerun skips the jobs already stored.
Time limits: the engine stops itself at the limit and returns the bounds found so far (status
bounded, verdict unknown); a job with a limit runs in a helper process that is killed if it is
still running --grace seconds later (default 2 s + 10% of the limit), stored as status timeout
with no bounds (rerunning skips it; use a larger timeout, which is a new job).
exit codes: 0 all jobs stored without error, 2 errors or interrupted, 3 usage or input error"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="run many verification jobs on Dask distributed with a durable SQLite results store",
        description="Run (ORIG, COMP, input set, ε) jobs from a CSV file on a Dask LocalCluster or an existing "
        "scheduler, storing each result in SQLite as it arrives.\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("jobs", help="jobs CSV: orig,comp,input_set,epsilon[,timeout]")
    p.add_argument("--db", required=True, metavar="RESULTS.sqlite", help="SQLite results store (created if missing)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="LocalCluster worker processes (2)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask scheduler instead of a LocalCluster")
    from ..reach.api import METHODS

    p.add_argument("--method", default="exact", choices=METHODS, help="verification method for every job (exact)")
    p.add_argument("--timeout", type=positive("timeout"), metavar="S", help="time limit for jobs whose row gives none")
    p.add_argument(
        "--grace",
        type=float,
        metavar="S",
        help="kill a job still running S seconds after its limit and store it as 'timeout' "
        "(default: 2 s + 10%% of the limit)",
    )
    p.add_argument(
        "--no-hard-limit",
        action="store_true",
        help="cooperative time limits only: run jobs inside the workers, never kill them",
    )
    p.add_argument(
        "--intervals",
        action="store_true",
        help="with ε: evaluate the per-output intervals, then decide (slower than the decision alone; better reports)",
    )
    p.add_argument("--retry-errors", action="store_true", help="run again the jobs stored with status error")
    p.add_argument("--nnet-raw-inputs", action="store_true", help=".nnet networks read raw (unnormalised) inputs")
    p.add_argument("--dry-run", action="store_true", help="only say how many jobs would run")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--json", metavar="OUT", help="write the run summary as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..campaign import ResultStore, job_key, read_jobs, run_campaign
    from ..spec.sets import InputSetError

    if args.workers < 1:
        raise InputSetError(f"--workers must be >= 1, got {args.workers}")
    if args.timeout is not None and not args.timeout > 0:
        raise InputSetError(f"--timeout must be positive, got {args.timeout}")
    if args.grace is not None and not args.grace >= 0:
        raise InputSetError(f"--grace must be >= 0, got {args.grace}")
    jobs = read_jobs(
        args.jobs,
        default_timeout=args.timeout,
        method=args.method,
        intervals=args.intervals,
        nnet_raw_inputs=args.nnet_raw_inputs,
    )
    missing = sorted({p for j in jobs for p in (j.orig, j.comp, j.input_set) if not Path(p).is_file()})
    for m in missing[:10]:
        print(f"equivrepair campaign: warning: {m} not found (its jobs will be stored as errors)", file=sys.stderr)
    if args.dry_run:
        with ResultStore(args.db) as store:
            done = store.done_keys()
        cache: dict[str, str] = {}
        keys = {job_key(j, cache) for j in jobs}
        print(f"{len(keys)} distinct jobs, {len(keys & done)} already stored, {len(keys - done)} would run")
        return 0

    def on_term(signum, frame):  # SIGTERM behaves like Ctrl-C: stop, keep what is stored
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        summary = run_campaign(
            jobs,
            args.db,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.quiet,
            retry_errors=args.retry_errors,
            hard_limit=not args.no_hard_limit,
            grace=args.grace,
        )
    finally:
        signal.signal(signal.SIGTERM, old)
    if args.json == "-":
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(summary.summary())
        print(f"results in {args.db}")
        if args.json:
            Path(args.json).write_text(json.dumps(summary.to_json(), indent=2))
    return 2 if (summary.errors or summary.interrupted) else 0
