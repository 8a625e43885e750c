"""Equivalence certificates: write a checkable record of a verification result, and check one.

A certificate is a versioned JSON document (``.json`` or ``.json.gz``) that says *what* was
proved about Φ1 − Φ2 on an input set, for *which* networks (their SHA-256 content hashes), and
carries what a sceptical checker needs to re-establish it without trusting the run that made it:

``claim``
    ``delta_bounds`` (δ = max |Φ1 − Φ2|∞ in [lower, upper], per-output intervals; δ_max when exact),
    ``epsilon_equivalent`` (every |Φ1 − Φ2|_j < ε), ``not_epsilon_equivalent`` (a witness with
    |Φ1 − Φ2|_j >= ε), ``top1_equivalent`` / ``not_top1_equivalent``.
``witness``
    the input(s) the lower bounds come from, replayed by the checker on both networks in float64.
``proof``
    the leaves of the input-splitting branch and bound, as a *bisection tree* over the input box:
    a pre-order list of split dimensions (``-1`` marks a leaf; a node [lo, hi] split on d has the
    children [lo, mid] and [mid, hi] along d with mid = 0.5 (lo_d + hi_d) in float64), and per leaf
    the bound claimed for every objective ``s · (Φ1 − Φ2)_j`` (objectives listed in the proof).

Checking (:func:`check_certificate`) re-hashes the given networks, verifies the body digest,
replays the witness, and re-establishes every leaf's bound with methods *other than* the
branch and bound's own (which bounds with :mod:`equivrepair.reach.symbolic`): interval and
differential bounds from :mod:`equivrepair.reach.bounds`, then the triangle LP of
:mod:`equivrepair.reach.lp` with rigorous dual bounds (fresh HiGHS solves), then the same LP with
ReLU phases split, then — last resort, within a budget — bisection of the leaf. The tree encoding
makes coverage exact: the leaves tile the box by construction, and the checker derives each leaf's
box itself. A leaf bound that cannot be re-established fails the check with the leaf's index; the
claim must be >= every leaf bound. The checker applies no tolerance of its own: leaf bounds are
inflated once, when the certificate is made (``tolerances.leaf_inflation``), so the numbers in the
certificate are exactly what is checked.

A certificate without a proof (e.g. a result from an external tool, or too many inputs for input
splitting) is checked with an independent exact method instead: the MILP of
:mod:`equivrepair.reach.milp` (its bound carries the solver's stated tolerance).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from .nets.ir import FNN
from .spec.sets import Box

FORMAT = "equivrepair-certificate"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

CLAIM_KINDS = (
    "delta_bounds",
    "epsilon_equivalent",
    "not_epsilon_equivalent",
    "top1_equivalent",
    "not_top1_equivalent",
)

LEAF_INFLATION_ABS = 1e-7
LEAF_INFLATION_REL = 1e-7
WITNESS_RTOL = 1e-9  # replayed witness values may differ by float64 summation order across BLAS builds
BOUND_DIGITS = 10  # leaf bounds are rounded *up* to this many significant digits

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CertificateError",
    "CheckReport",
    "make_certificate",
    "write_certificate",
    "read_certificate",
    "check_certificate",
    "certificate_digest",
    "tool_versions",
]


class CertificateError(ValueError):
    """A certificate that cannot be made (e.g. the claim is not provable within the limits) or read."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def tool_versions() -> dict[str, str]:
    """Versions of the tool, its numerical libraries and solvers, and the platform."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("equivrepair", "numpy", "scipy", "highspy", "cvxpy", "onnx", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    out["python"] = platform.python_version()
    out["platform"] = platform.platform()
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def certificate_digest(cert: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of everything except the ``digest`` field."""
    body = {k: v for k, v in cert.items() if k != "digest"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _box_record(box: Box) -> dict[str, Any]:
    d = box.to_json()
    d.pop("label", None)
    return d


def _box_sha256(box_json: dict[str, Any]) -> str:
    return hashlib.sha256(
        _canonical({k: box_json[k] for k in ("lower", "upper", "A", "c") if k in box_json})
    ).hexdigest()


def _file_sha256(path: str | Path | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _round_up(values: np.ndarray, digits: int = BOUND_DIGITS) -> list[float]:
    """Each value rounded up (towards +inf) to ``digits`` significant digits: still an upper bound."""
    out = []
    q = Decimal(1)
    for v in np.asarray(values, dtype=np.float64).ravel():
        v = float(v)
        if v == 0.0 or not math.isfinite(v):
            out.append(v)
            continue
        d = Decimal(v)  # exact
        exp = d.adjusted() - digits + 1
        r = float(d.quantize(q.scaleb(exp), rounding=ROUND_CEILING))
        while r < v:  # the decimal → float conversion rounded below v
            r = float(np.nextafter(r, np.inf))
        out.append(r)
    return out


def _inflate(b: np.ndarray, abs_tol: float, rel_tol: float) -> np.ndarray:
    return b + abs_tol + rel_tol * np.abs(b)


def _obj_name(obj: tuple[int, int] | list[int]) -> str:
    s, j = obj
    return f"{'+' if s > 0 else '-'}(Φ1−Φ2)_{j}"


def _net_record(net: FNN, path: str | Path | None, load_options: dict | None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "sha256": net.content_hash,
        "name": net.name,
        "widths": net.widths,
    }
    if path is not None:
        rec["file"] = str(path)
        rec["file_sha256"] = _file_sha256(path)
    if load_options:
        rec["load_options"] = dict(load_options)
    return rec


# --------------------------------------------------------------------------------------------
# the bisection tree
# --------------------------------------------------------------------------------------------
def tree_from_leaves(
    root_lo: np.ndarray, root_hi: np.ndarray, L: np.ndarray, H: np.ndarray
) -> tuple[list[int], list[int]]:
    """Reconstruct the bisection tree whose leaves are the boxes [L_i, H_i].

    Returns ``(tokens, order)``: the pre-order split list (``-1`` = leaf) and, for each leaf in
    pre-order, its index into L/H. Raises :class:`CertificateError` when the boxes are not exactly
    the leaves of a bisection tree of the root (a gap, an overlap, or a non-midpoint split).
    If several dimensions separate a node's leaves, any of them gives a valid tree (splits along
    different dimensions commute), so the first is taken.
    """
    L = np.asarray(L, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    tokens: list[int] = []
    order: list[int] = []
    stack = [(np.asarray(root_lo, dtype=np.float64), np.asarray(root_hi, dtype=np.float64), np.arange(len(L)))]
    while stack:
        lo, hi, idx = stack.pop()
        if idx.size == 0:
            raise CertificateError(
                f"the leaves leave part of the box uncovered: no leaf inside [{lo.tolist()}, {hi.tolist()}]"
            )
        if idx.size == 1 and np.array_equal(L[idx[0]], lo) and np.array_equal(H[idx[0]], hi):
            tokens.append(-1)
            order.append(int(idx[0]))
            continue
        mid = 0.5 * (lo + hi)
        Ls, Hs = L[idx], H[idx]
        left = Hs <= mid[None, :]
        right = Ls >= mid[None, :]
        ok = (left | right).all(axis=0) & left.any(axis=0) & (~left).any(axis=0)
        dims = np.flatnonzero(ok)
        if dims.size == 0:
            vol = float(np.prod(hi - lo))
            got = float(np.prod(Hs - Ls, axis=1).sum())
            what = (
                "leave part of it uncovered"
                if got < vol * (1 - 1e-12)
                else "overlap"
                if got > vol * (1 + 1e-12)
                else "are not a bisection of it (a split not at a midpoint?)"
            )
            raise CertificateError(f"the {idx.size} leaves inside [{lo.tolist()}, {hi.tolist()}] {what}")
        d = int(dims[0])
        tokens.append(d)
        lhi = hi.copy()
        lhi[d] = mid[d]
        rlo = lo.copy()
        rlo[d] = mid[d]
        stack.append((rlo, hi, idx[~left[:, d]]))
        stack.append((lo, lhi, idx[left[:, d]]))
    return tokens, order


def leaves_from_tree(
    root_lo: np.ndarray, root_hi: np.ndarray, tokens: list[int], max_depth: int = 2000
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The leaf boxes of a pre-order bisection tree; raises CertificateError when it is malformed.

    Also returns, for every internal node in pre-order, ``(depth, dim)`` (used by compaction).
    """
    lo0 = np.asarray(root_lo, dtype=np.float64)
    hi0 = np.asarray(root_hi, dtype=np.float64)
    n = lo0.size
    Ls: list[np.ndarray] = []
    Hs: list[np.ndarray] = []
    internal: list[tuple[int, int]] = []
    stack = [(lo0, hi0, 0)]
    pos = 0
    T = len(tokens)
    while stack:
        if pos >= T:
            raise CertificateError(f"proof tree encoding ends early: {T} entries, more nodes expected")
        lo, hi, depth = stack.pop()
        tok = tokens[pos]
        pos += 1
        if not isinstance(tok, (int, np.integer)) or isinstance(tok, bool) or tok < -1 or tok >= n:
            raise CertificateError(
                f"proof tree entry {pos - 1} is {tok!r}: expected -1 (leaf) or a dimension 0..{n - 1}"
            )
        if depth > max_depth:
            raise CertificateError(f"proof tree deeper than {max_depth} levels")
        if tok == -1:
            Ls.append(lo)
            Hs.append(hi)
            continue
        d = int(tok)
        internal.append((depth, d))
        mid = 0.5 * (lo[d] + hi[d])
        lhi = hi.copy()
        lhi[d] = mid
        rlo = lo.copy()
        rlo[d] = mid
        stack.append((rlo, hi, depth + 1))
        stack.append((lo, lhi, depth + 1))
    if pos != T:
        raise CertificateError(f"proof tree encoding has {T - pos} entries after its last node")
    if not Ls:
        raise CertificateError("proof tree has no leaves")
    return np.array(Ls), np.array(Hs), internal


# --------------------------------------------------------------------------------------------
# bounding leaves for the checker (never uses reach.bab or reach.symbolic)
# --------------------------------------------------------------------------------------------
@dataclass
class _LeafOutcome:
    proven: bool
    method: str
    bound: np.ndarray  # best re-established bound per objective (inf where none)
    lps: int = 0
    refuted_at: np.ndarray | None = None
    refuted_value: float | None = None
    refuted_objective: int | None = None


class _LeafProver:
    """Re-establishes ``s·(Φ1 − Φ2)_j <= b`` on boxes with bounds.py and lp.py only."""

    def __init__(
        self,
        orig: FNN,
        comp: FNN,
        objectives: list[tuple[int, int]],
        A: np.ndarray | None = None,
        c: np.ndarray | None = None,
        cheap: bool = True,
        max_phase_lps: int = 64,
        max_bisect_depth: int = 4,
        deadline: float | None = None,
    ) -> None:
        from .merge import merge

        self.orig, self.comp = orig, comp
        self.merged = merge(orig, comp)
        self.objectives = list(objectives)
        self.signs = np.array([s for s, _ in objectives], dtype=np.float64)
        self.outs = np.array([j for _, j in objectives], dtype=int)
        self.A, self.c = A, c
        self.cheap = cheap
        self.max_phase_lps = max_phase_lps
        self.max_bisect_depth = max_bisect_depth
        self.deadline = deadline
        self.counts: dict[str, int] = {}
        self.lps = 0

    # -- objective helpers ---------------------------------------------------------------
    def _obj_from_out(self, dlo: np.ndarray, dhi: np.ndarray) -> np.ndarray:
        """Per-objective upper bounds from output bounds (..., m)."""
        return np.where(self.signs > 0, dhi[..., self.outs], -dlo[..., self.outs])

    def _values(self, X: np.ndarray) -> np.ndarray:
        d = self.orig.forward(X) - self.comp.forward(X)
        return d[..., self.outs] * self.signs

    def cheap_bounds(self, L: np.ndarray, H: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Interval ∩ differential bounds per objective for many boxes: (N, K)."""
        from .reach.bounds import differential_bounds, interval_bounds

        out = np.empty((len(L), len(self.objectives)))
        for s in range(0, len(L), chunk):
            lo, hi = L[s : s + chunk], H[s : s + chunk]
            ilo, ihi = interval_bounds(self.merged, lo, hi)[-1]
            dlo, dhi = differential_bounds(self.orig, self.comp, lo, hi)
            out[s : s + chunk] = np.minimum(self._obj_from_out(ilo, ihi), self._obj_from_out(dlo, dhi))
        return out

    # -- one box ---------------------------------------------------------------------------
    def _lp(self, lo, hi, net, pre, delta, need: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Triangle-LP bounds per objective (inf where not computed) and the LP argmax points."""
        from .reach.lp import lp_bounds_merged

        K = len(self.objectives)
        bound = np.full(K, np.inf)
        pts = np.full((K, lo.size), np.nan)
        outs = sorted({int(self.outs[k]) for k in np.flatnonzero(need)})
        if not outs:
            return bound, pts, 0
        C = np.zeros((len(outs), net.n_outputs))
        C[np.arange(len(outs)), outs] = 1.0
        # the proof is over the bounding box, like the branch and bound's (constraints could make
        # the LP infeasible, and an infeasible LP yields no usable dual bound)
        r = lp_bounds_merged(net, lo, hi, pre, None, None, objectives=C, delta_bounds=delta)
        for k in np.flatnonzero(need):
            i = outs.index(int(self.outs[k]))
            if self.signs[k] > 0:
                bound[k], pts[k] = r.upper[i], r.x_upper[i]
            else:
                bound[k], pts[k] = -r.lower[i], r.x_lower[i]
        bound = np.where(np.isnan(bound), np.inf, bound)
        return bound, pts, r.n_lps

    def _phase_split(self, lo, hi, net, pre, delta, k: int, target: float, budget: list[int]) -> tuple[bool, float]:
        """Prove objective k <= target by splitting unstable ReLUs of the merged network (DFS)."""
        stack = [pre]
        worst = -np.inf
        while stack:
            if budget[0] <= 0 or self._late():
                return False, max(worst, np.inf)
            p = stack.pop()
            need = np.zeros(len(self.objectives), dtype=bool)
            need[k] = True
            b, _, nlp = self._lp(lo, hi, net, p, delta, need)
            budget[0] -= nlp
            self.lps += nlp
            if b[k] <= target:
                worst = max(worst, b[k])
                continue
            # split the unstable neuron with the largest triangle, earliest layer first
            choice = None
            for li, (zl, zu) in enumerate(p[:-1]):
                unst = (zl < 0) & (zu > 0)
                if unst.any():
                    area = np.where(unst, -zl * zu / np.where(unst, zu - zl, 1.0), -1.0)
                    choice = (li, int(np.argmax(area)))
                    break
            if choice is None:  # every ReLU fixed: the LP is exact up to its rigorous slack
                return False, float(b[k])
            li, i = choice
            act = [(a.copy(), u.copy()) for a, u in p]
            ina = [(a.copy(), u.copy()) for a, u in p]
            act[li][0][i] = 0.0
            ina[li][1][i] = 0.0
            stack.extend([ina, act])
        return True, float(worst)

    def _tighten(self, pre: list, lo: np.ndarray, hi: np.ndarray) -> list:
        """Intersect the merged network's pre-activation bounds with back-substitution bounds of
        each network (reach.symbolic.intermediate_bounds): the LPs then start from bounds as tight
        as the producer's. Sound either way; this widens the checker's trust base by that module."""
        from .merge import normalise
        from .reach.symbolic import intermediate_bounds

        o, c = normalise(self.orig), normalise(self.comp)
        if o.depth != c.depth or len(pre) != o.depth:
            return pre
        p1 = intermediate_bounds(o, lo[None], hi[None])
        p2 = intermediate_bounds(c, lo[None], hi[None])
        out = []
        for k, (zl, zu) in enumerate(pre):
            if k == len(pre) - 1:
                out.append((zl, zu))
                continue
            bl = np.concatenate([p1[k][0][0], p2[k][0][0]])
            bu = np.concatenate([p1[k][1][0], p2[k][1][0]])
            if bl.shape != np.shape(zl):
                return pre
            out.append((np.maximum(zl, bl), np.minimum(zu, bu)))
        return out

    def outside_set(self, lo: np.ndarray, hi: np.ndarray) -> bool:
        """Whether some constraint a·x <= c is violated on the whole box (min over the box > c, rounded safely)."""
        if self.A is None:
            return False
        A = np.asarray(self.A, dtype=np.float64)
        c = np.asarray(self.c, dtype=np.float64)
        mn = np.minimum(A * lo, A * hi).sum(axis=1)
        mag = np.maximum(np.abs(A * lo), np.abs(A * hi)).sum(axis=1)
        return bool(np.any(mn - 1e-12 * (mag + np.abs(c)) > c))

    def _late(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def prove_box(
        self, lo: np.ndarray, hi: np.ndarray, claim: np.ndarray, depth: int = 0, cheap: np.ndarray | None = None
    ) -> _LeafOutcome:
        """Re-establish obj_k <= claim_k on one box, escalating methods; never loosens the claim."""
        from .reach.bounds import merged_pre_bounds

        K = len(self.objectives)
        best = np.full(K, np.inf) if cheap is None else cheap.copy()
        todo = best > claim
        if not todo.any():
            return _LeafOutcome(True, "interval/differential", best)
        if self.outside_set(lo, hi):
            return _LeafOutcome(True, "outside the input set", np.full(K, -np.inf))
        # a concrete point above the claim refutes it outright (centre first)
        ref = self._refute(np.vstack([0.5 * (lo + hi)]), claim)
        if ref is not None:
            return _LeafOutcome(False, "refuted", best, 0, *ref)
        lps = 0
        net, pre, delta = merged_pre_bounds(self.orig, self.comp, lo, hi, merged=self.merged)
        pre = self._tighten(pre, lo, hi)
        b, pts, nlp = self._lp(lo, hi, net, pre, delta, todo)
        lps += nlp
        self.lps += nlp
        best = np.minimum(best, b)
        todo = best > claim
        if not todo.any():
            return _LeafOutcome(True, "lp", best, lps)
        ok = np.isfinite(pts).all(axis=1)
        if ok.any():
            ref = self._refute(np.clip(pts[ok], lo, hi), claim)
            if ref is not None:
                return _LeafOutcome(False, "refuted", best, lps, *ref)
        method = "lp+phase"
        for k in np.flatnonzero(todo):
            budget = [self.max_phase_lps]
            proven, val = self._phase_split(lo, hi, net, pre, delta, int(k), float(claim[k]), budget)
            lps += self.max_phase_lps - budget[0]
            if proven:
                best[k] = min(best[k], val)
        todo = best > claim
        if not todo.any():
            return _LeafOutcome(True, method, best, lps)
        if depth >= self.max_bisect_depth or self._late():
            return _LeafOutcome(False, method, best, lps)
        # bisect the widest dimension and prove both halves
        d = int(np.argmax(hi - lo))
        mid = 0.5 * (lo[d] + hi[d])
        lhi, rlo = hi.copy(), lo.copy()
        lhi[d] = mid
        rlo[d] = mid
        sub_claim = np.where(todo, claim, np.inf)
        worst = np.where(todo, -np.inf, best)
        for a, z in ((lo, lhi), (rlo, hi)):
            cb = self.cheap_bounds(a[None], z[None])[0] if self.cheap else None
            r = self.prove_box(a, z, sub_claim, depth + 1, cb)
            lps += r.lps
            if not r.proven:
                r.lps = lps
                return r
            worst = np.where(todo, np.maximum(worst, r.bound), worst)
        return _LeafOutcome(True, f"bisect({depth + 1})", worst, lps)

    def _refute(self, X: np.ndarray, claim: np.ndarray):
        if self.A is not None:  # only points of the input set refute a claim about it
            X = X[np.all(X @ np.asarray(self.A, dtype=np.float64).T <= np.asarray(self.c, dtype=np.float64), axis=1)]
            if len(X) == 0:
                return None
        vals = self._values(X)  # (P, K)
        over = vals > claim[None, :]
        if not over.any():
            return None
        p, k = np.argwhere(over)[0]
        return X[p].copy(), float(vals[p, k]), int(k)


# --------------------------------------------------------------------------------------------
# making certificates
# --------------------------------------------------------------------------------------------
def _claim_kind(result: Any, epsilon: float | None, kind: str | None) -> str:
    from .reach.result import Decision

    if kind is not None:
        if kind not in CLAIM_KINDS:
            raise CertificateError(f"unknown claim kind {kind!r}; known: {', '.join(CLAIM_KINDS)}")
        return kind
    if isinstance(result, Decision):
        if result.verdict == "equivalent":
            return "epsilon_equivalent"
        if result.verdict == "not_equivalent":
            return "not_epsilon_equivalent"
        return "delta_bounds"
    return "delta_bounds"


def _result_record(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    d = result.to_json() if hasattr(result, "to_json") else dict(result)
    keep = (
        "verdict",
        "epsilon",
        "status",
        "method",
        "lower",
        "upper",
        "delta_max",
        "tolerance",
        "message",
        "witness_output",
        "outputs",
    )
    rec = {k: d[k] for k in keep if k in d}
    stats = d.get("stats") or {}
    rec["stats"] = {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return json.loads(json.dumps(rec, default=str))


def make_certificate(
    orig: FNN,
    comp: FNN,
    box: Box,
    result: Any = None,
    *,
    epsilon: float | None = None,
    outputs: list[int] | None = None,
    kind: str | None = None,
    proof: str = "auto",
    bab_result: Any = None,
    mode: str | None = None,
    time_limit: float | str | None = "auto",
    compact: bool = True,
    leaf_inflation: tuple[float, float] = (LEAF_INFLATION_ABS, LEAF_INFLATION_REL),
    orig_path: str | Path | None = None,
    comp_path: str | Path | None = None,
    load_options: dict[str, Any] | None = None,
    input_set_path: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
    **bab_options: Any,
) -> dict[str, Any]:
    """A certificate (a JSON-ready dict) for ``result`` (a Discrepancy or Decision, or None).

    ``proof``: ``"bab"`` runs the input-splitting branch and bound with ``record_leaves=True``
    (or uses ``bab_result`` if given, which must cover ``box``) and records the leaves as a
    bisection tree; ``"none"`` records the claim only (checked by an independent exact method);
    ``"auto"`` is ``"bab"`` when at most 16 inputs are free, else ``"none"``.
    The claim is what the *proof* establishes: its upper bounds, inflated by ``leaf_inflation``
    (absolute, relative) so that the checker re-establishes the exact numbers written. A
    ``result`` whose upper bound is tighter than the proof's is recorded under ``result`` with a
    note. ``compact`` merges sibling leaves whose parent box the checker's interval/differential
    bounds already prove at the children's bound (fewer, larger leaves; same claim).
    ``kind``: the claim (default from the result: a Decision gives ε-equivalence or its negation,
    a Discrepancy δ bounds); ``top1_*`` kinds are built by :func:`make_top1_certificate`.
    ``time_limit`` bounds the proof run; ``"auto"`` allows 30 s plus twice the result's own time.
    An unfinished proof still certifies its (looser) bounds; an ε-equivalence claim it cannot
    establish raises :class:`CertificateError`.
    """
    from .reach.bab import discrepancy, make_objectives, maximize
    from .reach.result import Decision, Discrepancy

    t_start = time.perf_counter()
    if orig.n_inputs != comp.n_inputs or orig.n_outputs != comp.n_outputs:
        raise CertificateError("the two networks differ in input or output size")
    box.check_dim(orig.n_inputs)
    if epsilon is None and isinstance(result, Decision):
        epsilon = result.epsilon
    kind = _claim_kind(result, epsilon, kind)
    if time_limit == "auto":
        t_res = _result_time(result)
        time_limit = 30.0 + 2.0 * (t_res or 0.0)
    if kind.startswith("top1") or kind.startswith("not_top1"):
        return make_top1_certificate(
            orig,
            comp,
            box,
            time_limit=time_limit,
            orig_path=orig_path,
            comp_path=comp_path,
            load_options=load_options,
            input_set_path=input_set_path,
        )
    if kind in ("epsilon_equivalent", "not_epsilon_equivalent") and epsilon is None:
        raise CertificateError(f"claim {kind} needs epsilon")
    if outputs is None and isinstance(result, Discrepancy) and result.outputs is not None:
        outputs = list(result.outputs)
    outputs = sorted(set(range(orig.n_outputs) if outputs is None else outputs))
    objectives = make_objectives(outputs)
    K = len(objectives)
    m = orig.n_outputs
    a_inf, r_inf = float(leaf_inflation[0]), float(leaf_inflation[1])

    # ---- the witness (always re-evaluated on the two original networks) ----
    cands: list[np.ndarray] = []
    if isinstance(result, Discrepancy) and result.witness is not None:
        cands.append(np.asarray(result.witness, dtype=np.float64).ravel())
    if isinstance(result, Decision) and result.counterexample is not None:
        cands.append(np.asarray(result.counterexample, dtype=np.float64).ravel())

    cert_proof: dict[str, Any] | None = None
    U = np.full(K, np.inf)
    proof_info: dict[str, Any] = {}
    free = int(np.sum(box.upper > box.lower))
    if proof == "auto":
        proof = "bab" if free <= 16 else "none"
    if kind == "not_epsilon_equivalent":
        proof = "none"  # a witness is the whole proof
    if proof == "bab":
        if bab_result is None:
            if mode is None:
                mode = "decide" if kind == "epsilon_equivalent" else "max"
            opts = dict(bab_options)
            # a proof tolerance of 0.1% by default (the claim says so); leaves closed by star
            # enumeration have few unstable ReLUs, which the checker's LP phase splits re-prove
            opts.setdefault("rtol", 1e-3)
            # leaves the checker's LPs can re-prove: the differential back-substitution closes
            # boxes too large for them (seen on the demo: a rejected leaf, 2x the check time)
            opts.setdefault("diff_backsub", False)
            if mode == "decide":
                opts["epsilon"] = epsilon
            t0 = time.perf_counter()
            bab_result = maximize(
                orig,
                comp,
                box.lower,
                box.upper,
                outputs=outputs,
                mode=mode,
                time_limit=time_limit,
                record_leaves=True,
                progress=progress,
                **opts,
            )
            proof_time = time.perf_counter() - t0
        else:
            proof_time = float(bab_result.stats.get("time", float("nan")))
        if list(map(tuple, bab_result.objectives)) != objectives:
            raise CertificateError(f"branch-and-bound objectives {bab_result.objectives} differ from {objectives}")
        if not bab_result.leaves:
            raise CertificateError("the branch and bound recorded no leaves (run maximize with record_leaves=True)")
        L = np.array([lf[0] for lf in bab_result.leaves], dtype=np.float64)
        H = np.array([lf[1] for lf in bab_result.leaves], dtype=np.float64)
        B = np.array([lf[2] for lf in bab_result.leaves], dtype=np.float64).reshape(len(L), K)
        up = np.asarray(bab_result.upper, dtype=np.float64)
        n_inherited = int(np.isnan(B).sum())
        # NaN: the objective closed earlier, at an ancestor, with a bound <= its final upper bound
        B = np.where(np.isnan(B), up[None, :], B)
        B = np.where(np.isneginf(B), up[None, :], B)
        tokens, order = tree_from_leaves(box.lower, box.upper, L, H)
        L, H, B = L[order], H[order], B[order]
        B = np.asarray(_round_up(_inflate(B, a_inf, r_inf)), dtype=np.float64).reshape(B.shape)
        n_raw = len(L)
        if compact and len(L) > 1:
            prover = _LeafProver(orig, comp, objectives)
            tokens, B = _compact(tokens, box.lower, box.upper, B, prover)
        U = B.max(axis=0)
        cands.extend(np.asarray(bab_result.witnesses, dtype=np.float64))
        cert_proof = {
            "kind": "bisection-tree",
            "domain": "bounding box of the input set",
            "objectives": [list(o) for o in objectives],
            "tree": [int(t) for t in tokens],
            "leaf_bounds": [[float(v) for v in row] for row in B],
            "n_leaves": int(len(B)),
            "producer": {
                "method": "reach.bab.maximize (input splitting; bounds by reach.symbolic)",
                "mode": mode,
                "finished": bool(bab_result.finished),
                "reason": bab_result.reason,
                "branches": int(bab_result.stats.get("branches", 0)),
                "leaves_recorded": int(n_raw),
                "leaf_bounds_inherited": n_inherited,
                "time": proof_time,
                "options": {k: v for k, v in bab_options.items() if isinstance(v, (int, float, str, bool))},
            },
            "compacted": bool(compact and len(B) < n_raw),
        }
        proof_info = {"finished": bool(bab_result.finished)}
    elif proof != "none":
        raise CertificateError(f"unknown proof kind {proof!r} (known: 'auto', 'bab', 'none')")
    else:
        # no proof: the claim is the result's own upper bounds, to be re-established independently
        if isinstance(result, Discrepancy):
            per = result.per_output
            U = np.array([per[j, 1] if s > 0 else -per[j, 0] for s, j in objectives], dtype=np.float64)
        elif isinstance(result, Decision) and np.isfinite(result.upper):
            U = np.full(K, float(result.upper))
        U = np.asarray(_round_up(_inflate(U, a_inf, r_inf)), dtype=np.float64) if np.all(np.isfinite(U)) else U

    # ---- witness: best over candidates, per objective and overall ----
    if box.has_constraints:
        cands = [x for x in cands if bool(box.contains(x, tol=0.0))]
    else:
        cands = [np.clip(x, box.lower, box.upper) for x in cands]
    if not cands:
        cands = [box.center if not box.has_constraints else None]
        cands = [x for x in cands if x is not None]
    witness: dict[str, Any] | None = None
    lower_obj = np.full(K, -np.inf)
    if cands:
        X = np.vstack(cands)
        D = discrepancy(orig, comp, X)  # (P, m)
        vals = np.abs(D[:, outputs]).max(axis=1)
        p = int(np.argmax(vals))
        j = int(outputs[int(np.argmax(np.abs(D[p, outputs])))])
        per_obj = []
        for k, (s, jj) in enumerate(objectives):
            col = s * D[:, jj]
            q = int(np.argmax(col))
            lower_obj[k] = col[q]
            per_obj.append({"objective": [s, jj], "x": X[q].tolist(), "value": float(col[q])})
        witness = {
            "x": X[p].tolist(),
            "output": j,
            "value": float(vals[p]),
            "delta": D[p].tolist(),
            "per_objective": per_obj,
        }
    delta_lower = witness["value"] if witness else 0.0

    # ---- the claim ----
    claim: dict[str, Any] = {"kind": kind, "outputs": outputs, "epsilon": epsilon}
    per_output: list[list[float] | None] = [None] * m
    if np.all(np.isfinite(U)):
        for jj in outputs:
            kp, kn = objectives.index((1, jj)), objectives.index((-1, jj))
            per_output[jj] = [float(-U[kn]), float(U[kp])]
        claim["objective_upper"] = [float(u) for u in U]
        claim["delta_upper"] = float(max(float(U.max()), delta_lower))
    else:
        claim["objective_upper"] = None
        claim["delta_upper"] = None
    claim["per_output"] = per_output
    claim["delta_lower"] = delta_lower
    stated_tol = None
    if isinstance(result, Discrepancy):
        stated_tol = float(result.tolerance)
    exact = bool(
        kind == "delta_bounds"
        and claim["delta_upper"] is not None
        and proof_info.get("finished", isinstance(result, Discrepancy) and result.status == "exact")
        and (
            stated_tol is None
            or claim["delta_upper"] - delta_lower <= stated_tol + a_inf + r_inf * abs(delta_lower) + 1e-12
        )
    )
    claim["exact"] = exact
    claim["delta_max"] = claim["delta_upper"] if exact else None
    if kind == "epsilon_equivalent":
        if claim["delta_upper"] is None or not claim["delta_upper"] < epsilon:
            raise CertificateError(
                f"cannot certify ε-equivalence at ε = {epsilon:g}: the proof establishes only "
                f"max |Φ1 − Φ2| <= {claim['delta_upper']}"
                + ("" if proof_info.get("finished", True) else " (branch and bound did not finish)")
            )
    if kind == "not_epsilon_equivalent":
        if witness is None or not witness["value"] >= epsilon:
            raise CertificateError(f"no witness with |Φ1 − Φ2| >= ε = {epsilon:g} to certify non-equivalence")

    notes = []
    if result is not None and hasattr(result, "upper") and claim["delta_upper"] is not None:
        slack = 1.01 * (a_inf + r_inf * abs(claim["delta_upper"])) + 10.0 ** (1 - BOUND_DIGITS) * abs(
            claim["delta_upper"]
        )
        if float(result.upper) < claim["delta_upper"] - slack:
            notes.append(
                f"the run's upper bound {float(result.upper):.9g} is tighter than what the recorded proof "
                f"establishes ({claim['delta_upper']:.9g}); the certificate claims the latter"
            )
    if cert_proof is not None and not cert_proof["producer"]["finished"]:
        notes.append(
            f"branch and bound stopped early ({cert_proof['producer']['reason']}): the claim is a bound, not δ_max"
        )
    if box.has_constraints:
        notes.append("the proof covers the bounding box of the input set (a superset); the witness satisfies A x <= c")

    cert = _envelope(orig, comp, orig_path, comp_path, load_options, box, input_set_path)
    cert.update(
        {
            "claim": claim,
            "witness": witness,
            "result": _result_record(result),
            "proof": cert_proof,
            "tolerances": {
                "leaf_inflation": {"abs": a_inf, "rel": r_inf},
                "bound_digits": BOUND_DIGITS,
                "witness_rtol": WITNESS_RTOL,
                "result_tolerance": stated_tol,
                "atol": bab_options.get("atol"),
                "rtol": bab_options.get("rtol"),
            },
            "time": {"certificate": time.perf_counter() - t_start, "result": _result_time(result)},
            "notes": notes,
        }
    )
    cert["digest"] = {"algorithm": "sha256", "body": certificate_digest(cert)}
    return cert


def _result_time(result: Any) -> float | None:
    stats = getattr(result, "stats", None) or {}
    t = stats.get("time")
    return float(t) if isinstance(t, (int, float)) else None


def _compact(tokens: list[int], root_lo: np.ndarray, root_hi: np.ndarray, B: np.ndarray, prover: _LeafProver):
    """Merge sibling leaves bottom-up where the checker's cheap bounds prove the parent at max(children)."""
    # parse into explicit nodes
    n_nodes = len(tokens)
    lo = np.empty((n_nodes, root_lo.size))
    hi = np.empty((n_nodes, root_lo.size))
    child = np.full((n_nodes, 2), -1, dtype=int)
    depth = np.zeros(n_nodes, dtype=int)
    leaf_row = np.full(n_nodes, -1, dtype=int)
    stack = [(np.asarray(root_lo, float), np.asarray(root_hi, float), 0, -1, 0)]
    pos = 0
    leaf_i = 0
    while stack:
        a, z, dep, parent, side = stack.pop()
        i = pos
        pos += 1
        lo[i], hi[i], depth[i] = a, z, dep
        if parent >= 0:
            child[parent, side] = i
        t = tokens[i]
        if t == -1:
            leaf_row[i] = leaf_i
            leaf_i += 1
            continue
        mid = 0.5 * (a[t] + z[t])
        lz, ra = z.copy(), a.copy()
        lz[t] = mid
        ra[t] = mid
        stack.append((ra, z, dep + 1, i, 1))
        stack.append((a, lz, dep + 1, i, 0))
    bound = np.full((n_nodes, B.shape[1]), np.nan)
    is_leaf = leaf_row >= 0
    bound[is_leaf] = B[leaf_row[is_leaf]]
    for dep in range(int(depth.max()) - 1, -1, -1):
        cand = np.flatnonzero((depth == dep) & ~is_leaf)
        if cand.size == 0:
            continue
        both = is_leaf[child[cand, 0]] & is_leaf[child[cand, 1]]
        cand = cand[both]
        if cand.size == 0:
            continue
        target = np.maximum(bound[child[cand, 0]], bound[child[cand, 1]])
        cb = prover.cheap_bounds(lo[cand], hi[cand])
        ok = np.all(cb <= target, axis=1)
        for i, t in zip(cand[ok], target[ok]):
            is_leaf[i] = True
            bound[i] = t
    # re-emit the pre-order encoding
    new_tokens: list[int] = []
    rows: list[np.ndarray] = []
    stack2 = [0]
    while stack2:
        i = stack2.pop()
        if is_leaf[i]:
            new_tokens.append(-1)
            rows.append(bound[i])
        else:
            new_tokens.append(int(tokens[i]))
            stack2.append(child[i, 1])
            stack2.append(child[i, 0])
    return new_tokens, np.array(rows)


# --------------------------------------------------------------------------------------------
# top-1 equivalence
# --------------------------------------------------------------------------------------------
def _margin_net(orig: FNN, comp: FNN) -> tuple[FNN, list[tuple[int, int, int]]]:
    """A network whose outputs are the margins y1_c − y1_j and y2_c − y2_j for all c != j."""
    from .merge import merge
    from .nets.ir import Layer

    both = merge(orig, comp, output="both")
    m = orig.n_outputs
    rows, labels = [], []
    for net_i in (0, 1):
        for c_ in range(m):
            for j in range(m):
                if j == c_:
                    continue
                r = np.zeros(2 * m)
                r[net_i * m + c_] = 1.0
                r[net_i * m + j] = -1.0
                rows.append(r)
                labels.append((net_i, c_, j))
    M = np.array(rows)
    last = both.layers[-1]
    layers = both.layers[:-1] + (Layer(M @ last.W, M @ last.b, "linear"),)
    return both.with_layers(layers), labels


def _margin_rows(labels: list[tuple[int, int, int]], cls: int) -> np.ndarray:
    return np.array([i for i, (_, c_, _) in enumerate(labels) if c_ == cls])


def _margin_lower_bounds(net: FNN, L: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Lower bounds of every margin on each box, (N, rows): interval ∩ symbolic intervals of bounds.py."""
    from .reach.bounds import _symbolic_net, interval_bounds

    ilo, _ = interval_bounds(net, L, H)[-1]
    slo = _symbolic_net(net.layers, L, H).pre[-1][0].T
    return np.maximum(ilo, slo)


def _margin_pre_bounds(net: FNN, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds of every layer of ``net`` on one box: interval ∩ symbolic intervals."""
    from .reach.bounds import _symbolic_net, interval_bounds

    ib = interval_bounds(net, lo[None], hi[None])
    sym = _symbolic_net(net.layers, lo[None], hi[None]).pre
    return [(np.maximum(a[0][0], s[0][:, 0]), np.minimum(a[1][0], s[1][:, 0])) for a, s in zip(ib, sym)]


def _prove_margins(
    net, lo, hi, rows, want, A, c, depth: int, max_depth: int, counter: list[int]
) -> tuple[bool, np.ndarray]:
    """Re-establish margin[rows] >= want on [lo, hi]: interval → triangle LP → bisection."""
    from .reach.bounds import interval_bounds
    from .reach.lp import lp_bounds_merged

    got = interval_bounds(net, lo, hi)[-1][0][rows]
    if np.all(got >= want):
        return True, got
    pre = _margin_pre_bounds(net, lo, hi)
    C = np.zeros((rows.size, net.n_outputs))
    C[np.arange(rows.size), rows] = 1.0
    r = lp_bounds_merged(net, lo, hi, pre, A, c, objectives=C)
    counter[0] += r.n_lps
    got = np.maximum(got, np.nan_to_num(r.lower, nan=-np.inf))
    if np.all(got >= want) or depth >= max_depth:
        return bool(np.all(got >= want)), got
    d = int(np.argmax(hi - lo))
    mid = 0.5 * (lo[d] + hi[d])
    lhi, rlo = hi.copy(), lo.copy()
    lhi[d] = mid
    rlo[d] = mid
    worst = np.full(rows.size, np.inf)
    for a, z in ((lo, lhi), (rlo, hi)):
        ok, g = _prove_margins(net, a, z, rows, want, A, c, depth + 1, max_depth, counter)
        worst = np.minimum(worst, g)
        if not ok:
            return False, worst
    return True, worst


def make_top1_certificate(
    orig: FNN,
    comp: FNN,
    box: Box,
    *,
    time_limit: float | None = 60.0,
    max_leaves: int = 20000,
    orig_path: str | Path | None = None,
    comp_path: str | Path | None = None,
    load_options: dict[str, Any] | None = None,
    input_set_path: str | Path | None = None,
) -> dict[str, Any]:
    """Certify top-1 equivalence (argmax Φ1 = argmax Φ2 on the whole set) or its negation.

    Input-splitting search: a box is a leaf when one class c provably wins in both networks on all
    of it (every margin y_c − y_j > 0, by interval ∩ symbolic-interval bounds of bounds.py); a point
    where the two argmaxes differ is a witness of non-equivalence. The leaves carry their class and
    the margins' lower bounds; the checker re-establishes them with the triangle LP. Top-1 holds
    on a box only where no decision boundary of Φ1 crosses it, unless the two networks' boundaries
    coincide; a search that runs out of time or leaves raises :class:`CertificateError`.
    """
    t_start = time.perf_counter()
    box.check_dim(orig.n_inputs)
    net, labels = _margin_net(orig, comp)
    m = orig.n_outputs
    deadline = None if time_limit is None else t_start + time_limit
    L, H = box.lower[None].copy(), box.upper[None].copy()
    done_L, done_H, done_cls, done_marg = [], [], [], []
    witness = None
    rng = np.random.default_rng(0)
    while len(L):
        if deadline is not None and time.perf_counter() > deadline:
            raise CertificateError(f"top-1 search did not finish within {time_limit:g} s ({len(L)} open boxes)")
        if len(done_L) + len(L) > max_leaves:
            raise CertificateError(f"top-1 search exceeded {max_leaves} boxes (a decision boundary crosses the set?)")
        # disagreement witness: centres and a few samples of the open boxes
        C = 0.5 * (L + H)
        S = np.vstack([C, rng.uniform(L, H)])
        a1, a2 = np.argmax(orig.forward(S), axis=1), np.argmax(comp.forward(S), axis=1)
        bad = np.flatnonzero(a1 != a2)
        if bad.size:
            witness = S[bad[0]]
            break
        lb = _margin_lower_bounds(net, L, H)
        cls = np.argmax(orig.forward(C), axis=1)
        keep = np.ones(len(L), dtype=bool)
        for i in range(len(L)):
            rows = _margin_rows(labels, int(cls[i]))
            if np.all(lb[i, rows] > 0):
                done_L.append(L[i])
                done_H.append(H[i])
                done_cls.append(int(cls[i]))
                done_marg.append(lb[i, rows])
                keep[i] = False
        L, H = L[keep], H[keep]
        if len(L) == 0:
            break
        d = np.argmax((H - L) / np.maximum(box.upper - box.lower, 1e-300), axis=1)
        rows_ = np.arange(len(L))
        mid = 0.5 * (L[rows_, d] + H[rows_, d])
        L2, H2 = np.concatenate([L, L]), np.concatenate([H, H])
        H2[rows_, d] = mid
        L2[len(L) + rows_, d] = mid
        L, H = L2, H2
    claim: dict[str, Any] = {"kind": "top1_equivalent" if witness is None else "not_top1_equivalent"}
    wit = None
    proof = None
    if witness is not None:
        y1, y2 = orig.forward(witness), comp.forward(witness)
        wit = {
            "x": witness.tolist(),
            "argmax_orig": int(np.argmax(y1)),
            "argmax_comp": int(np.argmax(y2)),
            "y_orig": y1.tolist(),
            "y_comp": y2.tolist(),
        }
    else:
        tokens, order = tree_from_leaves(box.lower, box.upper, np.array(done_L), np.array(done_H))
        proof = {
            "kind": "bisection-tree",
            "domain": "bounding box of the input set",
            "tree": [int(t) for t in tokens],
            "leaf_class": [done_cls[i] for i in order],
            "leaf_margin_lower": [[float(v) for v in _round_down(done_marg[i])] for i in order],
            "margins": "for leaf class c: y_c − y_j for j != c, first Φ1 then Φ2, j ascending",
            "n_leaves": len(order),
        }
    cert = _envelope(orig, comp, orig_path, comp_path, load_options, box, input_set_path)
    cert.update(
        {
            "claim": {**claim, "n_outputs": m},
            "witness": wit,
            "result": {},
            "proof": proof,
            "tolerances": {"margin": "strict: every margin lower bound > 0"},
            "time": {"certificate": time.perf_counter() - t_start},
            "notes": [],
        }
    )
    cert["digest"] = {"algorithm": "sha256", "body": certificate_digest(cert)}
    return cert


def _envelope(orig, comp, orig_path, comp_path, load_options, box, input_set_path) -> dict[str, Any]:
    """The fields every certificate starts with: format, tools, the two networks and the input set."""
    box_json = _box_record(box)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": tool_versions(),
        "networks": {
            "orig": _net_record(orig, orig_path, load_options),
            "comp": _net_record(comp, comp_path, load_options),
        },
        "input_set": {
            "box": box_json,
            "sha256": _box_sha256(box_json),
            "label": box.label,
            "file": None if input_set_path is None else str(input_set_path),
            "file_sha256": _file_sha256(input_set_path),
        },
    }


def _round_down(v: np.ndarray) -> list[float]:
    return [-x for x in _round_up(-np.asarray(v, dtype=np.float64))]


# --------------------------------------------------------------------------------------------
# reading and writing
# --------------------------------------------------------------------------------------------
def write_certificate(path: str | Path, cert: dict[str, Any]) -> Path:
    """Write a certificate as JSON (gzip-compressed when the name ends in ``.gz``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(cert, indent=1, allow_nan=False)
    if p.name.endswith(".gz"):
        with gzip.open(p, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        p.write_text(text)
    return p


def read_certificate(path: str | Path) -> dict[str, Any]:
    """Read a certificate written by :func:`write_certificate`; CertificateError if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such certificate file")
    try:
        if p.name.endswith(".gz"):
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                cert = json.load(fh)
        else:
            cert = json.loads(p.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        raise CertificateError(f"{p}: not a readable JSON certificate ({exc})") from None
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise CertificateError(f"{p}: not an {FORMAT} document")
    return cert


# --------------------------------------------------------------------------------------------
# checking
# --------------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """Outcome of :func:`check_certificate`: ``ok`` only when every check passed."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        if not ok:
            self.ok = False
            self.reasons.append(f"{name}: {detail}" if detail else name)
        return ok

    def summary(self) -> str:
        lines = [f"certificate {'VALID' if self.ok else 'REJECTED'}"]
        for c in self.checks:
            lines.append(
                f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}" + (f": {c['detail']}" if c["detail"] else "")
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return json.loads(
            json.dumps(
                {"ok": self.ok, "reasons": self.reasons, "checks": self.checks, "stats": self.stats}, default=str
            )
        )


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def check_certificate(
    cert: dict[str, Any] | str | Path,
    orig: FNN,
    comp: FNN,
    *,
    input_set: Box | None = None,
    cheap: bool = True,
    max_phase_lps: int = 64,
    max_bisect_depth: int = 4,
    time_limit: float | None = None,
    fallback: str = "milp",
    progress: Callable[[dict], None] | None = None,
) -> CheckReport:
    """Check a certificate against the two networks; see the module docstring for what is checked.

    ``cheap=False`` re-bounds every leaf with fresh LPs (skips the interval/differential pass).
    ``input_set``: when given, it must equal the certificate's input set exactly.
    ``fallback``: how a proof-less upper-bound claim is re-established (``"milp"``, ``"lp"``, or
    ``"none"`` to reject such certificates).
    """
    t0 = time.perf_counter()
    rep = CheckReport(ok=True)
    if not isinstance(cert, dict):
        cert = read_certificate(cert)
    # ---- format ----
    if not rep.add(
        "format",
        cert.get("format") == FORMAT,
        "" if cert.get("format") == FORMAT else f"format is {cert.get('format')!r}",
    ):
        return rep
    ver = cert.get("format_version")
    if not rep.add(
        "format version",
        ver in SUPPORTED_VERSIONS,
        f"version {ver!r}" + ("" if ver in SUPPORTED_VERSIONS else f", supported {SUPPORTED_VERSIONS}"),
    ):
        return rep
    missing = [k for k in ("networks", "input_set", "claim", "digest") if k not in cert]
    if not rep.add("required fields", not missing, f"missing {missing}" if missing else ""):
        return rep
    # ---- digest ----
    dg = cert.get("digest") or {}
    try:
        actual = certificate_digest(cert)
    except (TypeError, ValueError) as exc:
        actual = f"unhashable ({exc})"
    rep.add(
        "body digest",
        dg.get("body") == actual,
        "matches"
        if dg.get("body") == actual
        else "the certificate was modified after it was written (digest mismatch)",
    )
    # ---- networks ----
    nets_ok = True
    for role, net in (("orig", orig), ("comp", comp)):
        want = (cert["networks"].get(role) or {}).get("sha256")
        got = net.content_hash
        ok = want == got
        nets_ok &= ok
        rep.add(
            f"{role} network hash",
            ok,
            f"sha256 {got[:16]}… matches"
            if ok
            else f"certificate cites {str(want)[:16]}…, the given network has {got[:16]}… (a different network)",
        )
    # ---- input set ----
    try:
        bj = cert["input_set"]["box"]
        box = Box.from_json(bj)
        box.check_dim(orig.n_inputs)
    except Exception as exc:  # noqa: BLE001 - any malformed box is a rejection reason
        rep.add("input set", False, f"unreadable input set: {exc}")
        return rep
    sha_ok = cert["input_set"].get("sha256") == _box_sha256(bj)
    rep.add("input set hash", sha_ok, "matches" if sha_ok else "input set does not match its recorded hash")
    if input_set is not None:
        same = (
            np.array_equal(input_set.lower, box.lower)
            and np.array_equal(input_set.upper, box.upper)
            and (
                (input_set.A is None and box.A is None)
                or (
                    input_set.A is not None
                    and box.A is not None
                    and np.array_equal(input_set.A, box.A)
                    and np.array_equal(input_set.c, box.c)
                )
            )
        )
        rep.add(
            "input set matches the given set",
            same,
            "" if same else "the given input set differs from the certificate's",
        )
    claim = cert["claim"]
    kind = claim.get("kind")
    if not rep.add("claim kind", kind in CLAIM_KINDS, str(kind)):
        return rep
    if kind in ("top1_equivalent", "not_top1_equivalent"):
        _check_top1(cert, orig, comp, box, rep, deadline=None if time_limit is None else t0 + time_limit)
        rep.stats["time"] = time.perf_counter() - t0
        return rep
    _check_delta(
        cert, orig, comp, box, rep, nets_ok, cheap, max_phase_lps, max_bisect_depth, time_limit, t0, fallback, progress
    )
    rep.stats["time"] = time.perf_counter() - t0
    return rep


def _check_delta(
    cert, orig, comp, box, rep, nets_ok, cheap, max_phase_lps, max_bisect_depth, time_limit, t0, fallback, progress
):
    from .reach.bab import make_objectives

    claim = cert["claim"]
    kind = claim["kind"]
    m = orig.n_outputs
    outputs = claim.get("outputs")
    if not (isinstance(outputs, list) and outputs and all(isinstance(j, int) and 0 <= j < m for j in outputs)):
        rep.add("claim outputs", False, f"outputs {outputs!r} not a list of indices in 0..{m - 1}")
        return
    objectives = make_objectives(sorted(set(outputs)))
    K = len(objectives)
    eps = claim.get("epsilon")
    if kind in ("epsilon_equivalent", "not_epsilon_equivalent") and not (_num(eps) and eps > 0):
        rep.add("claim epsilon", False, f"epsilon {eps!r} is not a positive number")
        return
    # ---- claim consistency ----
    U = claim.get("objective_upper")
    has_upper = U is not None
    if has_upper:
        if not (isinstance(U, list) and len(U) == K and all(_num(u) for u in U)):
            rep.add("claim bounds", False, f"objective_upper must list {K} finite numbers")
            return
        U = np.asarray(U, dtype=np.float64)
        du = claim.get("delta_upper")
        ok = _num(du) and du >= U.max()
        rep.add("claimed δ upper bound covers every output", ok, f"δ <= {du!r}, max objective bound {U.max():.10g}")
        dl = claim.get("delta_lower")
        ok = _num(dl) and _num(du) and dl <= du
        rep.add("claimed δ lower bound <= upper bound", ok, f"[{dl!r}, {du!r}]")
        per = claim.get("per_output") or []
        bad = []
        for j in outputs:
            kp, kn = objectives.index((1, j)), objectives.index((-1, j))
            iv = per[j] if j < len(per) else None
            if not (isinstance(iv, list) and len(iv) == 2 and iv[0] <= -U[kn] and iv[1] >= U[kp]):
                bad.append(j)
        rep.add(
            "per-output intervals match the objective bounds", not bad, f"outputs {bad} inconsistent" if bad else ""
        )
        if kind == "epsilon_equivalent":
            ok = bool(U.max() < eps)
            rep.add("claim below ε", ok, f"max bound {U.max():.10g} {'<' if ok else '>='} ε = {eps:g}")
        if claim.get("exact"):
            dm, dl = claim.get("delta_max"), claim.get("delta_lower")
            ok = _num(dm) and _num(du) and dm == du
            rep.add("δ_max equals the certified upper bound", ok, f"δ_max {dm!r}, upper {du!r}")
            tols = cert.get("tolerances") or {}
            rt = tols.get("result_tolerance")
            infl = tols.get("leaf_inflation") or {}
            if _num(rt) and _num(du) and _num(dl):
                slack = float(rt) + float(infl.get("abs", 0.0)) + float(infl.get("rel", 0.0)) * abs(du)
                slack += 10.0 ** (1 - int(tols.get("bound_digits", BOUND_DIGITS))) * abs(du) + 1e-12
                ok = du - dl <= slack
                rep.add(
                    "exact: the gap is within the stated tolerance",
                    ok,
                    f"upper − lower = {du - dl:.3g}, allowed {slack:.3g}",
                )
    elif kind in ("epsilon_equivalent", "delta_bounds"):
        rep.add("claim bounds", False, f"a {kind} claim needs objective_upper")
        return
    # ---- witness ----
    w = cert.get("witness")
    witness_val = None
    if w is not None:
        try:
            x = np.asarray(w["x"], dtype=np.float64).ravel()
            inside = x.size == box.dim and bool(box.contains(x, tol=0.0))
        except (KeyError, TypeError, ValueError):
            x, inside = None, False
        rep.add("witness inside the input set", inside, "" if inside else "the witness is not in the input set")
        if inside:
            d = orig.forward(x) - comp.forward(x)
            witness_val = float(np.max(np.abs(d[outputs])))
            claimed = w.get("value")
            ok = _num(claimed) and abs(witness_val - claimed) <= WITNESS_RTOL * (1 + abs(witness_val))
            rep.add("witness replays", ok, f"|Φ1 − Φ2|∞ = {witness_val:.12g} at the witness (claimed {claimed!r})")
            dl = claim.get("delta_lower")
            ok = _num(dl) and dl <= witness_val + WITNESS_RTOL * (1 + abs(witness_val))
            rep.add("claimed δ lower bound is witnessed", ok, f"δ >= {dl!r}")
            if has_upper:
                vals = np.array([s * d[j] for s, j in objectives])
                over = np.flatnonzero(vals > U)
                rep.add(
                    "witness within the claimed bounds",
                    over.size == 0,
                    ""
                    if over.size == 0
                    else f"{_obj_name(objectives[over[0]])} = {vals[over[0]]:.10g} at the witness exceeds the claimed {U[over[0]]:.10g}",
                )
            for po in w.get("per_objective") or []:
                try:
                    xo = np.asarray(po["x"], dtype=np.float64).ravel()
                    s, j = po["objective"]
                    val = float(s * (orig.forward(xo) - comp.forward(xo))[j])
                    ok = bool(box.contains(xo, tol=0.0)) and abs(val - po["value"]) <= WITNESS_RTOL * (1 + abs(val))
                    if has_upper and (s, j) in objectives:
                        ok = ok and val <= U[objectives.index((s, j))]
                except (KeyError, TypeError, ValueError):
                    ok, s, j, val = False, 0, 0, float("nan")
                if not ok:
                    rep.add(
                        "per-objective witness replays",
                        False,
                        f"witness for {_obj_name((s, j))} does not replay (value {val:.10g})",
                    )
                    break
            else:
                if w.get("per_objective"):
                    rep.add("per-objective witnesses replay", True, f"{len(w['per_objective'])} witnesses")
    if kind == "not_epsilon_equivalent":
        ok = witness_val is not None and witness_val >= eps
        rep.add("witness violates ε", ok, f"|Φ1 − Φ2|∞ = {witness_val!r} vs ε = {eps:g}")
        return
    if not nets_ok:
        rep.add("upper bound re-established", False, "skipped: the networks are not the certified ones")
        return
    # ---- the upper bound ----
    proof = cert.get("proof")
    deadline = None if time_limit is None else t0 + time_limit
    if proof is None:
        _check_without_proof(orig, comp, box, outputs, objectives, U, rep, fallback, time_limit)
        return
    if proof.get("kind") != "bisection-tree":
        rep.add("proof kind", False, f"unknown proof kind {proof.get('kind')!r}")
        return
    if [tuple(o) for o in proof.get("objectives", [])] != objectives:
        rep.add(
            "proof objectives",
            False,
            f"proof objectives {proof.get('objectives')} differ from the claim's {[list(o) for o in objectives]}",
        )
        return
    try:
        tokens = proof["tree"]
        if not isinstance(tokens, list):
            raise CertificateError("proof tree is not a list")
        L, H, internal = leaves_from_tree(box.lower, box.upper, tokens)
    except (CertificateError, KeyError) as exc:
        rep.add("leaves cover the input box", False, str(exc))
        return
    B = proof.get("leaf_bounds")
    if not isinstance(B, list) or len(B) != len(L):
        rep.add(
            "leaves cover the input box",
            False,
            f"the proof tree has {len(L)} leaves but the certificate lists {len(B) if isinstance(B, list) else 'no'} leaf bounds (a leaf was dropped or added)",
        )
        return
    try:
        B = np.asarray(B, dtype=np.float64)
    except (TypeError, ValueError):
        rep.add("leaf bounds", False, "leaf bounds are not numbers")
        return
    if B.shape != (len(L), K) or not np.all(np.isfinite(B)):
        rep.add("leaf bounds", False, f"expected {len(L)} rows of {K} finite numbers, got shape {B.shape}")
        return
    rep.add(
        "leaves cover the input box",
        True,
        f"{len(L)} leaves of a bisection tree ({len(internal)} splits): exact tiling",
    )
    over = np.argwhere(B > U[None, :])
    if over.size:
        i, k = over[0]
        rep.add(
            "claim >= every leaf bound",
            False,
            f"leaf {i}: bound {B[i, k]:.10g} for {_obj_name(objectives[k])} exceeds the claimed {U[k]:.10g} ({len(over)} violations)",
        )
        return
    rep.add("claim >= every leaf bound", True, f"{len(L)} leaves x {K} objectives")
    # ---- re-establish every leaf ----
    prover = _LeafProver(
        orig,
        comp,
        objectives,
        box.A,
        box.c,
        cheap=cheap,
        max_phase_lps=max_phase_lps,
        max_bisect_depth=max_bisect_depth,
        deadline=deadline,
    )
    methods: dict[str, int] = {}
    tc = time.perf_counter()
    cb = prover.cheap_bounds(L, H) if cheap else np.full(B.shape, np.inf)
    t_cheap = time.perf_counter() - tc
    easy = np.all(cb <= B, axis=1)
    methods["interval/differential"] = int(easy.sum())
    failures = []
    hard = np.flatnonzero(~easy)
    for n_done, i in enumerate(hard):
        if prover._late():
            failures.append((int(i), None))
            break
        r = prover.prove_box(L[i], H[i], B[i], 0, cb[i] if cheap else None)
        key = r.method if r.proven else "failed"
        methods[key] = methods.get(key, 0) + 1
        if not r.proven:
            failures.append((int(i), r))
            break
        if progress is not None and n_done % 20 == 0:
            progress({"leaf": n_done, "of": len(hard), "lps": prover.lps, "time": time.perf_counter() - t0})
    rep.stats.update(
        {
            "leaves": int(len(L)),
            "leaf_methods": methods,
            "lps": prover.lps,
            "time_cheap_bounds": t_cheap,
            "time_leaves": time.perf_counter() - tc,
        }
    )
    if failures:
        i, r = failures[0]
        box_s = f"[{np.array2string(L[i], precision=6, separator=', ')}, {np.array2string(H[i], precision=6, separator=', ')}]"
        if r is None:
            detail = f"time limit reached at leaf {i}; {len(hard)} leaves needed LPs"
        elif r.refuted_at is not None:
            k = r.refuted_objective
            detail = (
                f"leaf {i} {box_s}: claimed bound {B[i, k]:.10g} for {_obj_name(objectives[k])} is false: "
                f"it reaches {r.refuted_value:.10g} at x = {r.refuted_at.tolist()}"
            )
        else:
            k = int(np.argmax(r.bound - B[i]))
            detail = (
                f"leaf {i} {box_s}: claimed bound {B[i, k]:.10g} for {_obj_name(objectives[k])} not re-established "
                f"(best independent bound {r.bound[k]:.10g} by {r.method}, {r.lps} LPs)"
            )
        rep.add("every leaf bound re-established", False, detail)
        return
    rep.add(
        "every leaf bound re-established",
        True,
        ", ".join(f"{v} by {k}" for k, v in methods.items() if v) + f"; {prover.lps} fresh LPs",
    )


def _check_without_proof(orig, comp, box, outputs, objectives, U, rep, fallback, time_limit):
    if fallback == "none":
        rep.add("upper bound re-established", False, "the certificate has no proof and the fallback is disabled")
        return
    from .reach.api import evaluate

    method = "milp" if fallback == "milp" else "lp"
    d = evaluate(orig, comp, box, method=method, time_limit=time_limit, outputs=outputs)
    per = d.per_output
    got = np.array([per[j, 1] if s > 0 else -per[j, 0] for s, j in objectives])
    slack = float(d.tolerance)
    bad = np.flatnonzero(got > U + slack)
    if bad.size:
        k = int(bad[0])
        rep.add(
            "upper bound re-established",
            False,
            f"no proof recorded; the independent {method} bound {got[k]:.10g} for {_obj_name(objectives[k])} "
            f"exceeds the claimed {U[k]:.10g} (status {d.status}, tolerance {slack:.2g})",
        )
    else:
        rep.add(
            "upper bound re-established",
            True,
            f"no proof recorded; independent {method} ({d.status}) bounds every output within the claim"
            + (f" up to the solver tolerance {slack:.2g}" if slack else ""),
        )


def _check_top1(cert, orig, comp, box, rep, deadline):
    claim = cert["claim"]
    m = orig.n_outputs
    if claim["kind"] == "not_top1_equivalent":
        w = cert.get("witness") or {}
        try:
            x = np.asarray(w["x"], dtype=np.float64).ravel()
        except (KeyError, TypeError, ValueError):
            rep.add("witness", False, "no witness recorded")
            return
        inside = x.size == box.dim and bool(box.contains(x, tol=0.0))
        rep.add("witness inside the input set", inside)
        if inside:
            a1, a2 = int(np.argmax(orig.forward(x))), int(np.argmax(comp.forward(x)))
            rep.add("witness: the argmaxes differ", a1 != a2, f"argmax Φ1 = {a1}, argmax Φ2 = {a2}")
        return
    if not all(c["ok"] for c in rep.checks if c["check"].endswith("network hash")):
        rep.add("top-1 proof re-established", False, "skipped: the networks are not the certified ones")
        return
    proof = cert.get("proof") or {}
    try:
        L, H, internal = leaves_from_tree(box.lower, box.upper, proof["tree"])
    except (CertificateError, KeyError, TypeError) as exc:
        rep.add("leaves cover the input box", False, str(exc))
        return
    cls, marg = proof.get("leaf_class"), proof.get("leaf_margin_lower")
    if not (isinstance(cls, list) and isinstance(marg, list) and len(cls) == len(L) == len(marg)):
        rep.add(
            "leaves cover the input box",
            False,
            f"the tree has {len(L)} leaves but classes/margins list {len(cls or [])}/{len(marg or [])}",
        )
        return
    rep.add("leaves cover the input box", True, f"{len(L)} leaves of a bisection tree: exact tiling")
    net, labels = _margin_net(orig, comp)
    counter = [0]
    for i in range(len(L)):
        c_ = cls[i]
        if not (isinstance(c_, int) and 0 <= c_ < m):
            rep.add("leaf margins re-established", False, f"leaf {i}: class {c_!r} invalid")
            return
        rows = _margin_rows(labels, c_)
        try:
            want = np.asarray(marg[i], dtype=np.float64)
        except (TypeError, ValueError):
            want = np.zeros(0)
        if want.shape != rows.shape or not np.all(want > 0):
            rep.add("leaf margins re-established", False, f"leaf {i}: margins must be {rows.size} positive numbers")
            return
        if deadline is not None and time.perf_counter() > deadline:
            rep.add("leaf margins re-established", False, f"time limit reached at leaf {i}")
            return
        ok, got = _prove_margins(net, L[i], H[i], rows, want, box.A, box.c, 0, 4, counter)
        if not ok:
            k = int(np.argmin(got - want))
            net_i, c2, j = labels[rows[k]]
            rep.add(
                "leaf margins re-established",
                False,
                f"leaf {i}: margin y{net_i + 1}_{c2} − y{net_i + 1}_{j} >= {want[k]:.10g} not re-established (best {got[k]:.10g})",
            )
            return
    n_lp = counter[0]
    rep.add("leaf margins re-established", True, f"{len(L)} leaves; {n_lp} fresh LPs")
