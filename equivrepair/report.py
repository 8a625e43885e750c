"""Reports: per network pair, the discrepancy intervals, the witness, the reachable discrepancy set
(2-D projection, when star enumeration kept it) and the repair curves, as HTML or Markdown + PNG.

Inputs are read tolerantly (:func:`load_results`): a campaign SQLite store, ``verify --json``
output (a Discrepancy or Decision record), certificates, repair reports (JSON with ``"rounds"``:
a list of per-round records such as ``{"round", "delta_max", "accuracy", ...}``), lists of those,
or folders holding them. Whatever cannot be read is listed in the report, not fatal.

The projection of the reachable set onto outputs (i, j): every star ``{V x + v : x in box,
G x <= g}`` projects to a convex polygon whose vertices are support points, found by one LP per
direction (HiGHS through SciPy); the union of the polygons is the projected set (exact up to the
number of directions, which only cuts corners off each polygon's outline: ``n_dirs`` = 16 gives
an inner approximation whose vertices are true reachable points).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Entry",
    "load_results",
    "entry_from_result",
    "project_stars",
    "repair_figure",
    "build_report",
    "write_report",
]


# --------------------------------------------------------------------------------------------
# star projection
# --------------------------------------------------------------------------------------------
def _star_arrays(star: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(star, dict):
        return (
            np.asarray(star["V"], float),
            np.asarray(star["v"], float),
            np.asarray(star.get("G", []), float),
            np.asarray(star.get("g", []), float),
        )
    return np.asarray(star.V, float), np.asarray(star.v, float), np.asarray(star.G, float), np.asarray(star.g, float)


def _support_points(
    lo: np.ndarray, hi: np.ndarray, G: np.ndarray, g: np.ndarray, dirs: list[np.ndarray]
) -> list[np.ndarray]:
    """Maximisers of c·x over {lo <= x <= hi, G x <= g} for each c (one HiGHS model, re-solved warm)."""
    try:
        import highspy
        import scipy.sparse as sp

        from .reach.lp import new_highs, run_highs
    except ImportError:  # pragma: no cover - highspy is a dependency
        highspy = None
    n = lo.size
    out: list[np.ndarray] = []
    if highspy is None:
        from scipy.optimize import linprog

        for c in dirs:
            r = linprog(
                -c, A_ub=G if g.size else None, b_ub=g if g.size else None, bounds=list(zip(lo, hi)), method="highs"
            )
            if r.status == 0:
                out.append(r.x)
        return out
    h = new_highs()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, int(g.size)
    lp.col_cost_ = np.zeros(n)
    lp.col_lower_, lp.col_upper_ = lo, hi
    lp.row_lower_ = np.full(g.size, -highspy.kHighsInf)
    lp.row_upper_ = np.asarray(g, dtype=np.float64)
    A = sp.csc_matrix(G)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    h.passModel(lp)
    idx = np.arange(n, dtype=np.int32)
    for c in dirs:
        h.changeColsCost(n, idx, -np.asarray(c, dtype=np.float64))
        run_highs(h)
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            out.append(np.array(h.getSolution().col_value))
    return out


def plot_data(res: Any, orig: Any, comp: Any, box: Any) -> dict[str, Any]:
    """What a report plots beyond the bounds of a :class:`Discrepancy`: Φ1 − Φ2 at the witness
    and, when star enumeration kept its stars, their 2-D projection (a failed projection is
    recorded as ``projection_error`` and loses nothing else)."""
    out: dict[str, Any] = {}
    if res.witness is not None:
        out["witness_delta"] = (orig.forward(res.witness) - comp.forward(res.witness)).tolist()
    if getattr(res, "stars", None):
        try:
            out["projection"] = project_stars(res.stars, box, per_output=res.per_output)
        except Exception as exc:  # noqa: BLE001 - a failed plot must not lose the result
            out["projection_error"] = f"{type(exc).__name__}: {exc}"
    return out


def project_stars(
    stars: Sequence[Any],
    box: Any,
    outputs: tuple[int, int] | None = None,
    *,
    per_output: np.ndarray | None = None,
    n_dirs: int = 16,
    max_stars: int = 400,
) -> dict[str, Any]:
    """Polygons (lists of [x, y] vertices) of the stars projected onto two outputs.

    ``box`` is the input box the stars live on (a :class:`~equivrepair.spec.sets.Box` or
    ``(lower, upper)``); when the stars have fewer columns than the box has dimensions (fixed
    inputs folded away), the free dimensions of the box are used. ``outputs`` defaults to the two
    outputs with the widest discrepancy range (from ``per_output`` or the stars). At most
    ``max_stars`` stars are projected (those reaching furthest from the origin first).
    """
    from scipy.spatial import ConvexHull, QhullError

    lo, hi = (
        (np.asarray(box.lower, float), np.asarray(box.upper, float)) if hasattr(box, "lower") else map(np.asarray, box)
    )
    if not stars:
        return {"outputs": list(outputs or (0, 1)), "polygons": [], "n_stars": 0, "n_projected": 0}
    V0, *_ = _star_arrays(stars[0])
    m, n = V0.shape
    if n != lo.size:
        free = hi > lo
        if int(free.sum()) == n:
            lo, hi = lo[free], hi[free]
        else:
            raise ValueError(f"stars have {n} input columns but the box has {lo.size} dimensions")
    if m < 2:
        raise ValueError("a 2-D projection needs at least two outputs")
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    ranges = []
    for s in stars:
        V, v, _, _ = _star_arrays(s)
        mid, spread = V @ center + v, np.abs(V) @ radius
        ranges.append(np.stack([mid - spread, mid + spread], 1))
    ranges = np.array(ranges)  # (S, m, 2)
    if outputs is None:
        ext = (
            np.abs(np.asarray(per_output, float)).max(axis=1)
            if per_output is not None
            else np.abs(ranges).max(axis=(0, 2))
        )
        ext = np.where(np.isfinite(ext), ext, 0.0)
        outputs = tuple(int(i) for i in np.argsort(-ext, kind="stable")[:2])
    i, j = outputs
    order = np.argsort(-np.abs(ranges[:, [i, j], :]).max(axis=(1, 2)), kind="stable")[:max_stars]
    thetas = np.linspace(0.0, 2 * np.pi, n_dirs, endpoint=False)
    polys = []
    for s_idx in order:
        V, v, G, g = _star_arrays(stars[int(s_idx)])
        P = V[[i, j]]
        dirs = [math.cos(t) * P[0] + math.sin(t) * P[1] for t in thetas]
        xs = _support_points(lo, hi, G.reshape(g.size, lo.size), g, dirs)
        if not xs:
            continue
        pts = np.unique(np.round(np.array([P @ x + v[[i, j]] for x in xs]), 12), axis=0)
        if len(pts) >= 3:
            try:
                hull = ConvexHull(pts)
                pts = pts[hull.vertices]
            except QhullError:
                pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))][[0, -1]]
        polys.append(pts.tolist())
    return {
        "outputs": [int(i), int(j)],
        "polygons": polys,
        "n_stars": len(stars),
        "n_projected": len(polys),
        "n_dirs": n_dirs,
    }


# --------------------------------------------------------------------------------------------
# entries
# --------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One result, normalised from whatever record it came from."""

    orig: str = "?"
    comp: str = "?"
    input_set: str = ""
    epsilon: float | None = None
    method: str = ""
    status: str = ""
    verdict: str | None = None
    lower: float | None = None
    upper: float | None = None
    delta_max: float | None = None
    time: float | None = None
    per_output: list[list[float | None]] | None = None
    outputs: list[int] | None = None
    witness: list[float] | None = None
    witness_output: int | None = None
    witness_delta: list[float] | None = None
    projection: dict[str, Any] | None = None
    rounds: list[dict[str, Any]] | None = None
    runs: dict[str, list[dict[str, Any]]] | None = None  # repair: run label (e.g. "α=2") -> round records
    repair: dict[str, Any] | None = None  # repair: per-run summaries, test accuracies, settings
    orig_sha256: str | None = None
    comp_sha256: str | None = None
    error: str | None = None
    message: str = ""
    source: str = ""
    kind: str = "result"  # result | certificate | repair

    @property
    def pair(self) -> tuple[str, str]:
        return (self.orig, self.comp)


def _f(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x


def _name(v: Any) -> str:
    if isinstance(v, dict):
        v = v.get("path") or v.get("file") or v.get("name") or v.get("sha256", "?")[:12]
    return Path(str(v)).name if v else "?"


def _per_output(v: Any) -> list[list[float | None]] | None:
    if not isinstance(v, list) or not v:
        return None
    out = []
    for iv in v:
        if isinstance(iv, (list, tuple)) and len(iv) == 2:
            out.append([_f(iv[0]), _f(iv[1])])
        else:
            out.append([None, None])
    return out


def entry_from_result(d: dict[str, Any], source: str = "") -> Entry | None:
    """An Entry from one JSON record (campaign row, verify output, certificate, repair report)."""
    if not isinstance(d, dict):
        return None
    if d.get("format") == "equivrepair-certificate":
        c = d.get("claim") or {}
        w = d.get("witness") or {}
        nets = d.get("networks") or {}
        return Entry(
            orig=_name(nets.get("orig")),
            comp=_name(nets.get("comp")),
            input_set=(d.get("input_set") or {}).get("label") or _name((d.get("input_set") or {}).get("file")),
            epsilon=_f(c.get("epsilon")),
            method="certificate (" + str((d.get("result") or {}).get("method", "")) + ")",
            status=c.get("kind", ""),
            verdict={"epsilon_equivalent": "equivalent", "not_epsilon_equivalent": "not_equivalent"}.get(c.get("kind")),
            lower=_f(c.get("delta_lower")),
            upper=_f(c.get("delta_upper")),
            delta_max=_f(c.get("delta_max")),
            time=_f((d.get("time") or {}).get("certificate")),
            per_output=_per_output(c.get("per_output")),
            outputs=c.get("outputs"),
            witness=w.get("x"),
            witness_output=w.get("output"),
            witness_delta=w.get("delta"),
            orig_sha256=_sha(nets.get("orig")),
            comp_sha256=_sha(nets.get("comp")),
            source=source,
            kind="certificate",
        )
    if d.get("command") == "repair" or (
        isinstance(d.get("runs"), dict) and any(isinstance(r, dict) and "rounds" in r for r in d["runs"].values())
    ):
        return _repair_report_entry(d, source)
    rkey = next((k for k in ("rounds", "history", "iterations") if isinstance(d.get(k), list)), None)
    if rkey is not None and (rkey == "rounds" or any(isinstance(r, dict) for r in d[rkey])):
        rounds = [r for r in d[rkey] if isinstance(r, dict)]
        cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
        alpha = _f(cfg.get("alpha"))
        label = f"α={alpha:g}" if alpha is not None else "run"
        summary = _run_summary(label, d, rounds)
        return Entry(
            orig=_name(d.get("orig") or d.get("original")),
            comp=_name(d.get("comp") or d.get("compressed")),
            input_set=str(d.get("input_set") or "")[:80] if not isinstance(d.get("input_set"), dict) else "",
            method=_repair_method(cfg),
            status=str(d.get("status") or d.get("reason") or f"{len(rounds)} rounds"),
            rounds=rounds,
            runs={label: rounds},
            repair={"runs": [summary]},
            orig_sha256=_sha(d.get("orig") or d.get("original")),
            comp_sha256=_sha(d.get("comp") or d.get("compressed")),
            source=source,
            kind="repair",
        )
    if "result" in d and isinstance(d.get("result"), dict) and ("status" in d or "key" in d):
        # a campaign record: job fields outside, the API's JSON inside
        inner = entry_from_result(d["result"], source) or Entry(source=source)
        inner.status = d.get("status") or inner.status
        inner.verdict = d.get("verdict") or inner.verdict
        inner.time = _f(d.get("time")) if d.get("time") is not None else inner.time
        return inner
    if "per_output" in d or "verdict" in d or ("lower" in d and "upper" in d and ("method" in d or "status" in d)):
        r = Entry(
            orig=_name(d.get("orig")),
            comp=_name(d.get("comp")),
            input_set=(d.get("input_set") or {}).get("label", "")
            if isinstance(d.get("input_set"), dict)
            else _name(d.get("input_set")),
            epsilon=_f(d.get("epsilon")),
            method=str(d.get("method", "")),
            status=str(d.get("status", "")),
            verdict=d.get("verdict"),
            lower=_f(d.get("lower")),
            upper=_f(d.get("upper")),
            delta_max=_f(d.get("delta_max")),
            time=_f((d.get("stats") or {}).get("time")),
            per_output=_per_output(d.get("per_output")),
            outputs=d.get("outputs"),
            witness=d.get("witness") if d.get("witness") is not None else d.get("counterexample"),
            witness_output=d.get("witness_output"),
            witness_delta=d.get("witness_delta"),
            projection=d.get("projection"),
            orig_sha256=_sha(d.get("orig")),
            comp_sha256=_sha(d.get("comp")),
            message=str(d.get("message") or ""),
            error=d.get("error"),
            source=source,
        )
        return r
    return None


# --------------------------------------------------------------------------------------------
# repair runs: `equivrepair repair --report` output, single runs (RepairResult.to_json()),
# round logs (<log dir>/run.json + log.jsonl)
# --------------------------------------------------------------------------------------------
def _sha(v: Any) -> str | None:
    return v.get("sha256") if isinstance(v, dict) and isinstance(v.get("sha256"), str) else None


def _repair_method(cfg: dict[str, Any]) -> str:
    if not cfg:
        return "repair"
    parts = []
    if cfg.get("strategy"):
        parts.append(f"{cfg['strategy']} targets")
    v = cfg.get("verify")
    if isinstance(v, dict) and v.get("method"):
        parts.append(f"verify {v['method']}")
    return "repair" + (f" ({', '.join(parts)})" if parts else "")


def _run_summary(label: str, run: dict[str, Any], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers of one repair run that the report tables show (None where the run lacks them)."""
    first, last = (rounds[0], rounds[-1]) if rounds else ({}, {})
    held = run.get("heldout") if isinstance(run.get("heldout"), dict) else {}
    cfg = run.get("config") if isinstance(run.get("config"), dict) else {}
    last_round = last.get("round")
    return {
        "label": label,
        "alpha": _f(cfg.get("alpha")),
        "rounds": last_round if isinstance(last_round, int) else len(rounds),
        "met": run.get("met") if isinstance(run.get("met"), bool) else None,
        "reason": str(run.get("reason") or ""),
        "delta_upper_first": _f(first.get("delta_upper_max")),
        "delta_upper_last": _f(last.get("delta_upper_max")),
        "delta_lower_last": _f(last.get("delta_lower_max")),
        "accuracy_first": _f(first.get("accuracy")),
        "accuracy_last": _f(last.get("accuracy")),
        "test_accuracy": _f(run.get("test_accuracy")),
        "heldout_upper_mean": _f(held.get("upper_mean")),
        "output": _name(run.get("output")) if run.get("output") else "",
        "seconds": _f(run.get("seconds")),
    }


def _repair_report_entry(d: dict[str, Any], source: str) -> Entry:
    """One Entry for a `equivrepair repair ... --report OUT` file: every α is one run."""
    runs: dict[str, list[dict[str, Any]]] = {}
    summaries = []
    idents = []
    o_sha, c_sha = _sha(d.get("original")), _sha(d.get("compressed"))
    for k, run in (d.get("runs") or {}).items():
        if not isinstance(run, dict):
            continue
        rounds = [r for r in run.get("rounds") or [] if isinstance(r, dict)]
        label = f"α={k}"
        runs[label] = rounds
        summaries.append(_run_summary(label, run, rounds))
        cfg = run.get("config") if isinstance(run.get("config"), dict) else {}
        idents.append([o_sha, c_sha, _f(cfg.get("alpha")), cfg.get("strategy")])
    cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
    boxes = d.get("boxes") if isinstance(d.get("boxes"), dict) else {}
    reasons = sorted({s["reason"] for s in summaries if s["reason"]})
    hb = d.get("heldout_before") if isinstance(d.get("heldout_before"), dict) else {}
    return Entry(
        orig=_name(d.get("original")),
        comp=_name(d.get("compressed")),
        input_set=f"{boxes.get('n', '?')} repair boxes ({boxes.get('spec', '?')})" if boxes else "",
        method=_repair_method(cfg),
        status="; ".join(reasons) or f"{len(runs)} runs",
        time=_f(d.get("seconds")),
        runs=runs,
        repair={
            "runs": summaries,
            "test_accuracy": d.get("test_accuracy") if isinstance(d.get("test_accuracy"), dict) else {},
            "heldout_before": _f(hb.get("upper_mean")),
            "constraint": d.get("constraint") if isinstance(d.get("constraint"), dict) else None,
            "idents": idents,
        },
        orig_sha256=o_sha,
        comp_sha256=c_sha,
        source=source,
        kind="repair",
    )


def _repair_log_entry(run_json: dict[str, Any], log: Path, source: str) -> Entry:
    """An Entry for a repair log folder (``run.json`` + ``log.jsonl``; e.g. a run still going or cut off)."""
    rounds = []
    for line in log.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a kill
        if isinstance(r, dict):
            rounds.append(r)
    ident = run_json.get("ident") or {}
    cfg = run_json.get("config") if isinstance(run_json.get("config"), dict) else {}
    alpha = _f(cfg.get("alpha"))
    label = f"α={alpha:g}" if alpha is not None else "run"
    o_sha, c_sha = ident.get("orig_sha256"), ident.get("comp_sha256")
    summary = _run_summary(label, {"config": cfg}, rounds)
    return Entry(
        orig=f"sha256:{o_sha[:12]}" if o_sha else "?",
        comp=f"sha256:{c_sha[:12]}" if c_sha else "?",
        input_set=f"{ident.get('n_boxes', '?')} repair boxes",
        method=_repair_method(cfg),
        status=f"log of {len(rounds)} rounds",
        rounds=rounds,
        runs={label: rounds},
        repair={"runs": [summary], "idents": [[o_sha, c_sha, alpha, cfg.get("strategy")]], "log": True},
        orig_sha256=o_sha,
        comp_sha256=c_sha,
        source=source,
        kind="repair",
    )


def _is_not_a_result(obj: Any) -> bool:
    """Files that sit next to results but are none, skipped quietly: ``*.meta.json`` written next to
    networks by compress/repair, and JSON input boxes (``{"lower": [...], "upper": [...]}``)."""
    if not isinstance(obj, dict):
        return False
    if "metadata" in obj and not ({"rounds", "runs", "per_output", "result"} & set(obj)):
        return True
    return {"lower", "upper"} <= set(obj) <= {"lower", "upper", "label", "kind"} and isinstance(obj["lower"], list)


def _tidy(entries: list[Entry]) -> list[Entry]:
    """Drop repair logs that a repair report in the same set already covers; name networks known by hash."""
    covered = {
        tuple(i) for e in entries if e.kind == "repair" and e.repair and not e.repair.get("log")
        for i in e.repair.get("idents", [])
    }  # fmt: skip
    out = [
        e
        for e in entries
        if not (e.repair and e.repair.get("log") and all(tuple(i) in covered for i in e.repair.get("idents", [])))
    ]
    names: dict[str, str] = {}
    for e in out:
        for sha, name in ((e.orig_sha256, e.orig), (e.comp_sha256, e.comp)):
            if sha and name and name != "?" and not name.startswith("sha256:"):
                names.setdefault(sha, name)
    for e in out:
        if e.orig.startswith("sha256:") and e.orig_sha256 in names:
            e.orig = names[e.orig_sha256]
        if e.comp.startswith("sha256:") and e.comp_sha256 in names:
            e.comp = names[e.comp_sha256]
    return out


def _entries_from_json(obj: Any, source: str) -> list[Entry]:
    if isinstance(obj, list):
        out = []
        for i, o in enumerate(obj):
            out.extend(_entries_from_json(o, f"{source}[{i}]"))
        return out
    e = entry_from_result(obj, source)
    if e is None and isinstance(obj, dict):
        for key in ("results", "entries", "jobs"):
            if isinstance(obj.get(key), list):
                return _entries_from_json(obj[key], f"{source}.{key}")
    return [e] if e is not None else []


def _entries_from_sqlite(path: Path) -> list[Entry]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = con.execute("SELECT * FROM results ORDER BY finished_at")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()
    out = []
    for row in rows:
        try:
            rec = json.loads(row.get("result_json") or "{}")
        except json.JSONDecodeError:
            rec = {}
        e = entry_from_result(rec, f"{path.name}:{row.get('key', '')[:12]}") if rec else None
        if e is None:
            e = Entry(source=f"{path.name}:{row.get('key', '')[:12]}")
        e.orig = Path(row.get("orig") or e.orig).name
        e.comp = Path(row.get("comp") or e.comp).name
        e.input_set = Path(row.get("input_set") or e.input_set).name
        e.epsilon = _f(row.get("epsilon")) if row.get("epsilon") is not None else e.epsilon
        e.method = row.get("method") or e.method
        e.status = row.get("status") or e.status
        e.verdict = row.get("verdict") or e.verdict
        e.error = row.get("error") or e.error
        e.time = _f(row.get("time")) if row.get("time") is not None else e.time
        if e.lower is None:
            e.lower, e.upper = _f(row.get("lower")), _f(row.get("upper"))
        out.append(e)
    return out


def load_results(paths: Sequence[str | Path]) -> tuple[list[Entry], list[str]]:
    """Entries from files and folders; returns (entries, problems) — unreadable inputs are listed, not fatal."""
    entries: list[Entry] = []
    problems: list[str] = []
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file() and _readable_suffix(q)))
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{p}: not found")
    for f in files:
        try:
            if f.suffix.lower() in (".sqlite", ".sqlite3", ".db"):
                entries.extend(_entries_from_sqlite(f))
                continue
            if f.name.endswith(".gz"):
                import gzip

                with gzip.open(f, "rt") as fh:
                    obj = json.load(fh)
            else:
                obj = json.loads(f.read_text())
            if _is_not_a_result(obj):
                continue
            if isinstance(obj, dict) and "ident" in obj and "config" in obj and "rounds" not in obj:
                log = f.with_name("log.jsonl")
                if log.is_file():  # a repair log folder
                    entries.append(_repair_log_entry(obj, log, f"{f.parent.name}/{f.name}"))
                    continue
            got = _entries_from_json(obj, f.name)
            if not got:
                problems.append(f"{f}: no results recognised in this JSON")
            entries.extend(got)
        except (json.JSONDecodeError, UnicodeDecodeError, sqlite3.Error, OSError) as exc:
            problems.append(f"{f}: unreadable ({type(exc).__name__}: {exc})")
    return _tidy(entries), problems


def _readable_suffix(p: Path) -> bool:
    n = p.name.lower()
    return n.endswith((".json", ".json.gz", ".sqlite", ".sqlite3", ".db"))


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def plot_intervals(e: Entry) -> bytes | None:
    """Horizontal bars: the interval of (Φ1 − Φ2)_j per output, witness values, ±ε."""
    plt = _plt()
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    if e.per_output:
        for j, (lo, hi) in enumerate(e.per_output):
            if lo is None and hi is None:
                continue
            if e.outputs is not None and j not in e.outputs:
                continue
            w = e.witness_delta[j] if e.witness_delta and j < len(e.witness_delta) else None
            rows.append((f"output {j}", lo, hi, w))
    elif e.lower is not None or e.upper is not None:
        rows.append(("max |Φ1−Φ2|∞", e.lower, e.upper, e.lower))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.3))
    finite = [v for r in rows for v in r[1:3] if v is not None and math.isfinite(v)]
    span = max(finite) - min(finite) if finite else 1.0
    big = (max(abs(v) for v in finite) if finite else 1.0) + span
    for y, (_label, lo, hi, w) in enumerate(rows):
        lo_p = lo if lo is not None and math.isfinite(lo) else -big
        hi_p = hi if hi is not None and math.isfinite(hi) else big
        ax.barh(y, hi_p - lo_p, left=lo_p, height=0.5, color="#7aa6d6", edgecolor="#2b5d8a")
        if w is not None and math.isfinite(w):
            ax.plot([w], [y], marker="D", color="#c0392b", ms=6, zorder=3)
    ax.axvline(0.0, color="black", lw=0.8)
    if e.epsilon is not None:
        for s in (-1, 1) if e.per_output else (1,):
            ax.axvline(s * e.epsilon, color="#e67e22", ls="--", lw=1.2, label="±ε" if s == 1 else None)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("Φ1(x) − Φ2(x)" if e.per_output else "max |Φ1 − Φ2|∞")
    title = "discrepancy interval per output" if e.per_output else "bounds on the discrepancy"
    ax.set_title(title + ("  (◆ witness)" if any(r[3] is not None for r in rows) else ""), fontsize=10)
    if e.epsilon is not None:
        ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_projection(e: Entry) -> bytes | None:
    pr = e.projection
    if not pr or not pr.get("polygons"):
        return None
    plt = _plt()
    from matplotlib.patches import Polygon, Rectangle

    i, j = pr.get("outputs", [0, 1])
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    pts = []
    for poly in pr["polygons"]:
        P = np.asarray(poly, float).reshape(-1, 2)
        pts.append(P)
        if len(P) >= 3:
            ax.add_patch(Polygon(P, closed=True, facecolor="#5dade2", edgecolor="#1f618d", alpha=0.35, lw=0.5))
        else:
            ax.plot(P[:, 0], P[:, 1], color="#1f618d", lw=1.0)
    allp = np.vstack(pts)
    if e.per_output and max(i, j) < len(e.per_output):
        (a0, a1), (b0, b1) = e.per_output[i], e.per_output[j]
        if None not in (a0, a1, b0, b1) and all(map(math.isfinite, (a0, a1, b0, b1))):
            ax.add_patch(
                Rectangle((a0, b0), a1 - a0, b1 - b0, fill=False, ls="--", ec="#c0392b", lw=1.0, label="interval box")
            )
            allp = np.vstack([allp, [[a0, b0], [a1, b1]]])
    if e.witness_delta and max(i, j) < len(e.witness_delta):
        ax.plot([e.witness_delta[i]], [e.witness_delta[j]], "D", color="#c0392b", ms=6, label="witness")
    pad = 0.05 * max(np.ptp(allp[:, 0]), np.ptp(allp[:, 1]), 1e-12)
    ax.set_xlim(allp[:, 0].min() - pad, allp[:, 0].max() + pad)
    ax.set_ylim(allp[:, 1].min() - pad, allp[:, 1].max() + pad)
    ax.axhline(0, color="gray", lw=0.6)
    ax.axvline(0, color="gray", lw=0.6)
    ax.set_xlabel(f"(Φ1 − Φ2)_{i}")
    ax.set_ylabel(f"(Φ1 − Φ2)_{j}")
    ax.set_title(
        f"reachable discrepancy set, outputs {i} and {j}\n({pr.get('n_projected', len(pr['polygons']))} of {pr.get('n_stars', '?')} stars)",
        fontsize=10,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def _round_series(rounds: list[dict[str, Any]]) -> tuple[list[float], dict[str, list[float]]]:
    xs: list[float] = []
    series: dict[str, list[float]] = {}
    keys: list[str] = []
    for r in rounds:
        for k, v in r.items():
            if (
                k not in keys
                and k not in ("round", "iteration", "step")
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
            ):
                keys.append(k)
    for idx, r in enumerate(rounds):
        x = r.get("round", r.get("iteration", r.get("step", idx)))
        xs.append(float(x) if isinstance(x, (int, float)) else float(idx))
        for k in keys:
            v = r.get(k)
            series.setdefault(k, []).append(
                float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")
            )
    return xs, series


_DISC_UPPER, _DISC_LOWER = "delta_upper_max", "delta_lower_max"


def _repair_runs(e: Entry) -> dict[str, list[dict[str, Any]]]:
    if e.runs:
        return {k: v for k, v in e.runs.items() if v}
    return {"run": e.rounds} if e.rounds else {}


def plot_repair(e: Entry) -> bytes | None:
    """PNG of :func:`repair_figure` (None when the entry has no rounds)."""
    fig = repair_figure(e)
    return None if fig is None else _png(fig)


def repair_figure(e: Entry) -> Any:
    """Curves per round: the discrepancy bound per run (α) and the validation accuracy per run.

    Round records of ``equivrepair repair`` draw ``delta_upper_max`` (solid: the verified upper
    bound on max|Φ1 − Φ2|∞ over the repair boxes) and ``delta_lower_max`` (dashed: the witness
    value) per α, and ``accuracy``; other records draw every numeric field, grouped by name.
    """
    runs = _repair_runs(e)
    if not runs:
        return None
    series = {label: _round_series(rounds) for label, rounds in runs.items()}
    keys: list[str] = []
    for _, ser in series.values():
        keys += [k for k in ser if k not in keys]
    if not keys:
        return None
    if _DISC_UPPER in keys:  # `equivrepair repair` rounds
        groups = {"discrepancy": [_DISC_UPPER] + ([_DISC_LOWER] if _DISC_LOWER in keys else [])}
        if "accuracy" in keys:
            groups["accuracy"] = ["accuracy"]
    else:
        groups = {
            "discrepancy": [
                k for k in keys if "delta" in k.lower() or "disc" in k.lower() or k.lower() in ("lower", "upper")
            ],
            "accuracy": [k for k in keys if "acc" in k.lower() or "agree" in k.lower()],
        }
        used = {k for g in groups.values() for k in g}
        groups["other"] = [k for k in keys if k not in used]
    # a group is drawn when some run has a finite value in it
    groups = {
        g: ks
        for g, ks in groups.items()
        if any(np.isfinite(ser.get(k, [np.nan])).any() for k in ks for _, ser in series.values())
    }
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for ax, (g, ks) in zip(axes[0], groups.items()):
        positive = True
        for n_run, (label, (xs, ser)) in enumerate(series.items()):
            color = colors[n_run % len(colors)]
            for n_key, k in enumerate(ks[:6]):
                ys = np.asarray(ser.get(k, [np.nan] * len(xs)), float)
                ok = np.isfinite(ys)
                if not ok.any():
                    continue
                positive &= bool(np.all(ys[ok] > 0))
                if k == _DISC_UPPER:
                    name = f"{label}: upper bound" if len(ks) > 1 else label
                elif k == _DISC_LOWER:
                    name = f"{label}: witness"
                elif len(ks) == 1:
                    name = label
                else:
                    name = f"{label}: {k}" if len(series) > 1 else k
                style = {"ls": "--", "marker": "x"} if k == _DISC_LOWER else {"ls": "-", "marker": "o"}
                if k not in (_DISC_UPPER, _DISC_LOWER) and len(series) == 1:
                    color = colors[n_key % len(colors)]
                ax.plot(np.asarray(xs)[ok], ys[ok], ms=3.5, color=color, label=name, **style)
        if g == "discrepancy" and positive:
            ax.set_yscale("log")
        ax.set_xlabel("round")
        ax.set_ylabel(
            {"discrepancy": "max |Φ1 − Φ2|∞ on the repair boxes", "accuracy": "validation accuracy"}.get(g, "")
        )
        ax.set_title({"discrepancy": "discrepancy per round", "accuracy": "accuracy per round"}.get(g, g), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle("repair rounds" + (f" ({len(series)} runs)" if len(series) > 1 else ""), fontsize=11, y=1.03)
    return fig


def plot_witness_image(e: Entry) -> bytes | None:
    """A square-input witness (e.g. 28 x 28 MNIST) as a grey image."""
    if not e.witness:
        return None
    x = np.asarray(e.witness, float).ravel()
    s = int(round(math.sqrt(x.size)))
    if s * s != x.size or s < 8:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2.4, 2.4))
    ax.imshow(x.reshape(s, s), cmap="gray")
    ax.set_axis_off()
    ax.set_title("witness", fontsize=9)
    return _png(fig)


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


def _witness_text(e: Entry, limit: int = 12) -> str | None:
    if not e.witness:
        return None
    x = np.asarray(e.witness, float).ravel()
    s = ", ".join(f"{v:.6g}" for v in x[:limit])
    more = f", … ({x.size} values)" if x.size > limit else ""
    return f"[{s}{more}]"


def _arrow(a: float | None, b: float | None, digits: int = 4) -> str:
    if a is None and b is None:
        return "–"
    if a is None or b is None or a == b:
        return _fmt(b if b is not None else a, digits)
    return f"{_fmt(a, digits)} → {_fmt(b, digits)}"


def _repair_summary_table(e: Entry) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows of the per-run table of a repair entry (one row per α)."""
    runs = (e.repair or {}).get("runs") or []
    if not runs:
        return None
    ta = (e.repair or {}).get("test_accuracy") or {}
    hb = (e.repair or {}).get("heldout_before")
    head = ["run", "rounds", "outcome", "δ upper bound (first → last)", "δ witness (last)", "val. accuracy"]
    with_test = any(r["test_accuracy"] is not None for r in runs)
    with_held = any(r["heldout_upper_mean"] is not None for r in runs)
    if with_test:
        head.append("test accuracy" + (f" (Φ2: {_fmt(_f(ta.get('compressed')), 4)})" if ta.get("compressed") else ""))
    if with_held:
        head.append("held-out δ_max mean")
    head.append("repaired network")
    rows = []
    for r in runs:
        outcome = r["reason"] or {True: "target set met", False: "target set not met"}.get(r["met"], "–")
        row = [
            r["label"],
            str(r["rounds"]),
            outcome,
            _arrow(r["delta_upper_first"], r["delta_upper_last"]),
            _fmt(r["delta_lower_last"], 4),
            _arrow(r["accuracy_first"], r["accuracy_last"]),
        ]
        if with_test:
            row.append(_fmt(r["test_accuracy"], 4))
        if with_held:
            row.append(_arrow(hb, r["heldout_upper_mean"]))
        row.append(r["output"] or "–")
        rows.append(row)
    return head, rows


_ROUND_COLUMNS = ("delta_upper_max", "delta_upper_mean", "delta_lower_max", "accuracy", "n_exact")


def _round_table(rounds: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    xs, series = _round_series(rounds)
    keys = [k for k in _ROUND_COLUMNS if k in series] or list(series)[:8]
    rows = [[_fmt(x)] + [_fmt(series[k][i]) for k in keys] for i, x in enumerate(xs)]
    return ["round"] + keys, rows


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    return (
        "<table><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</table>"
    )


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(map(cell, r)) + " |" for r in rows
    ]


@dataclass
class _Section:
    title: str
    entries: list[Entry] = field(default_factory=list)


def _group(entries: list[Entry]) -> list[_Section]:
    sections: dict[tuple[str, str], _Section] = {}
    for e in entries:
        key = e.pair
        if key not in sections:
            sections[key] = _Section(f"{e.orig}  vs  {e.comp}")
        sections[key].entries.append(e)
    return list(sections.values())


def _entry_title(e: Entry) -> str:
    parts = []
    if e.kind == "repair":
        parts.append("repair run")
    if e.input_set:
        parts.append(f"input set {e.input_set}")
    if e.epsilon is not None:
        parts.append(f"ε = {e.epsilon:g}")
    if e.method:
        parts.append(f"method {e.method}")
    return ", ".join(parts) or e.source or "result"


def _outcome(e: Entry) -> str:
    if e.error:
        return "error"
    return e.verdict or e.status or "–"


def build_report(
    entries: list[Entry], problems: Sequence[str] = (), title: str = "equivrepair report"
) -> dict[str, Any]:
    """Render every plot; returns a structure that :func:`write_report` turns into HTML or Markdown."""
    sections = []
    for sec in _group(entries):
        items = []
        for e in sec.entries:
            items.append(
                {
                    "entry": e,
                    "title": _entry_title(e),
                    "intervals": plot_intervals(e) if e.kind != "repair" else None,
                    "projection": plot_projection(e),
                    "repair": plot_repair(e),
                    "witness_image": plot_witness_image(e),
                }
            )
        sections.append({"title": sec.title, "items": items})
    return {"title": title, "sections": sections, "problems": list(problems), "n_entries": len(entries)}


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:1.6em;border-bottom:2px solid #2b5d8a;padding-bottom:4px}
h2{font-size:1.25em;margin-top:2em;background:#eef3f8;padding:6px 8px;border-left:4px solid #2b5d8a}
h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:8px 0;font-size:0.92em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.equivalent{color:#1e8449;font-weight:bold}.not_equivalent{color:#c0392b;font-weight:bold}
.unknown,.bounded{color:#b9770e;font-weight:bold}.error{color:#922b21;font-weight:bold}.exact{color:#1e8449}
.plots img{max-width:100%;margin:4px 12px 4px 0;vertical-align:top;border:1px solid #eee}
code{font-size:0.9em;background:#f6f6f6;padding:1px 3px}
.small{color:#666;font-size:0.85em}
"""


def _img_html(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _render_html(rep: dict[str, Any]) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(rep['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(rep['title'])}</h1>",
        f"<p class='small'>generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} by equivrepair; "
        f"{rep['n_entries']} results in {len(rep['sections'])} network pairs</p>",
    ]
    # summary table
    out.append(
        "<table><tr><th>pair</th><th>input set</th><th>ε</th><th>method</th><th>outcome</th><th>δ lower</th><th>δ upper</th><th>time (s)</th></tr>"
    )
    for sec in rep["sections"]:
        for it in sec["items"]:
            e = it["entry"]
            oc = _outcome(e)
            out.append(
                f"<tr><td>{esc(sec['title'])}</td><td>{esc(e.input_set)}</td><td>{_fmt(e.epsilon)}</td><td>{esc(e.method)}</td>"
                f"<td class='{esc(oc)}'>{esc(oc)}</td><td>{_fmt(e.lower)}</td><td>{_fmt(e.upper)}</td><td>{_fmt(e.time, 3)}</td></tr>"
            )
    out.append("</table>")
    for sec in rep["sections"]:
        out.append(f"<h2>{esc(sec['title'])}</h2>")
        for it in sec["items"]:
            e = it["entry"]
            oc = _outcome(e)
            out.append(f"<h3>{esc(it['title'])}</h3>")
            rows = [
                ("outcome", f"<span class='{esc(oc)}'>{esc(oc)}</span>"),
                ("status", esc(e.status or "–")),
            ]
            if e.kind != "repair":
                rows += [
                    ("max |Φ1 − Φ2|∞", f"[{_fmt(e.lower, 9)}, {_fmt(e.upper, 9)}]"),
                    ("δ_max", _fmt(e.delta_max, 9)),
                ]
            if e.time is not None:
                rows.append(("time", f"{e.time:.3f} s"))
            wt = _witness_text(e)
            if wt:
                wo = f" (output {e.witness_output})" if e.witness_output is not None else ""
                rows.append(("witness" + wo, f"<code>{esc(wt)}</code>"))
            if e.message:
                rows.append(("note", esc(e.message)))
            if e.error:
                rows.append(("error", f"<code>{esc(e.error)}</code>"))
            if e.source:
                rows.append(("source", f"<span class='small'>{esc(e.source)}</span>"))
            out.append("<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>")
            if e.per_output and e.kind != "repair":
                out.append("<table><tr><th>output</th><th>lower</th><th>upper</th><th>at witness</th></tr>")
                for j, (lo, hi) in enumerate(e.per_output):
                    if lo is None and hi is None:
                        continue
                    w = e.witness_delta[j] if e.witness_delta and j < len(e.witness_delta) else None
                    out.append(
                        f"<tr><td>{j}</td><td>{_fmt(lo, 9)}</td><td>{_fmt(hi, 9)}</td><td>{_fmt(w, 9)}</td></tr>"
                    )
                out.append("</table>")
            if e.kind == "repair":
                ta = (e.repair or {}).get("test_accuracy") or {}
                if ta:
                    out.append(
                        "<p>test accuracy: "
                        + ", ".join(f"{esc(str(k))} {_fmt(_f(v), 4)}" for k, v in ta.items())
                        + "</p>"
                    )
                tab = _repair_summary_table(e)
                if tab:
                    out.append(_html_table(*tab))
                for label, rounds in _repair_runs(e).items():
                    out.append(
                        f"<details><summary>rounds of {esc(label)} ({len(rounds)})</summary>"
                        + _html_table(*_round_table(rounds))
                        + "</details>"
                    )
            imgs = "".join(_img_html(it[k], k) for k in ("intervals", "projection", "repair", "witness_image") if it[k])
            if imgs:
                out.append(f"<div class='plots'>{imgs}</div>")
    if rep["problems"]:
        out.append(
            "<h2>inputs not read</h2><ul>"
            + "".join(f"<li><code>{esc(p)}</code></li>" for p in rep["problems"])
            + "</ul>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def _render_markdown(rep: dict[str, Any], out: Path) -> str:
    img_dir = out.with_name(out.stem + "_files")
    n_img = 0

    def img(png: bytes | None, alt: str) -> str:
        nonlocal n_img
        if not png:
            return ""
        img_dir.mkdir(parents=True, exist_ok=True)
        n_img += 1
        p = img_dir / f"fig{n_img:03d}_{alt}.png"
        p.write_bytes(png)
        return f"![{alt}]({img_dir.name}/{p.name})\n"

    md = [f"# {rep['title']}", "", f"{rep['n_entries']} results in {len(rep['sections'])} network pairs.", ""]
    md.append("| pair | input set | ε | method | outcome | δ lower | δ upper | time (s) |")
    md.append("|---|---|---|---|---|---|---|---|")
    for sec in rep["sections"]:
        for it in sec["items"]:
            e = it["entry"]
            md.append(
                f"| {sec['title']} | {e.input_set} | {_fmt(e.epsilon)} | {e.method} | {_outcome(e)} | {_fmt(e.lower)} | {_fmt(e.upper)} | {_fmt(e.time, 3)} |"
            )
    for sec in rep["sections"]:
        md += ["", f"## {sec['title']}"]
        for it in sec["items"]:
            e = it["entry"]
            md += ["", f"### {it['title']}", "", f"- outcome: **{_outcome(e)}** (status {e.status or '–'})"]
            if e.kind != "repair":
                md.append(f"- max |Φ1 − Φ2|∞ in [{_fmt(e.lower, 9)}, {_fmt(e.upper, 9)}], δ_max {_fmt(e.delta_max, 9)}")
            wt = _witness_text(e)
            if wt:
                md.append(f"- witness{'' if e.witness_output is None else f' (output {e.witness_output})'}: `{wt}`")
            if e.error:
                md.append(f"- error: `{e.error}`")
            if e.per_output and e.kind != "repair":
                md += ["", "| output | lower | upper |", "|---|---|---|"]
                for j, (lo, hi) in enumerate(e.per_output):
                    if lo is not None or hi is not None:
                        md.append(f"| {j} | {_fmt(lo, 9)} | {_fmt(hi, 9)} |")
            if e.kind == "repair":
                ta = (e.repair or {}).get("test_accuracy") or {}
                if ta:
                    md.append("- test accuracy: " + ", ".join(f"{k} {_fmt(_f(v), 4)}" for k, v in ta.items()))
                tab = _repair_summary_table(e)
                if tab:
                    md += [""] + _md_table(*tab)
                for label, rounds in _repair_runs(e).items():
                    md += ["", f"rounds of {label}:", ""] + _md_table(*_round_table(rounds))
            md.append("")
            for k in ("intervals", "projection", "repair", "witness_image"):
                s = img(it[k], k)
                if s:
                    md.append(s)
    if rep["problems"]:
        md += ["", "## inputs not read", ""] + [f"- `{p}`" for p in rep["problems"]]
    return "\n".join(md) + "\n"


def write_report(rep: dict[str, Any], out: str | Path, fmt: str | None = None) -> Path:
    """Write the report: ``fmt`` ``"html"`` (self-contained, images inline) or ``"md"`` (PNGs in ``<stem>_files/``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt is None:
        fmt = "md" if out.suffix.lower() in (".md", ".markdown") else "html"
    if fmt == "html":
        out.write_text(_render_html(rep), encoding="utf-8")
    elif fmt == "md":
        out.write_text(_render_markdown(rep, out), encoding="utf-8")
    else:
        raise ValueError(f"unknown report format {fmt!r} (html or md)")
    return out
