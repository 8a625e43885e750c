"""Our engine for one network and a general VNN-LIB property (the ``vnnlib`` command, the VNN-COMP scripts).

The question: is there an x in some input region of the property whose output y = net(x) satisfies
the region's unsafe output DNF (an OR of conjunctions of ``a·y <= c``)? ``sat`` (with a concrete
counterexample) or ``unsat`` (a proof), else ``timeout``/``unknown``.

How
---
* The output constraints are folded into the network: the last (linear) layer is replaced by the
  constraint rows ``g_r(x) = a_r·net(x) − c_r``, so every bound is a bound on a constraint directly
  (much tighter than combining per-output bounds, e.g. for ``Y_0 >= Y_i``). A conjunction holds
  at x iff every one of its rows is ``<= 0``.
* Falsification first: random points and box vertices, then projected sign-gradient descent on
  ``max_{r in conj} g_r`` from the most promising of them.
* Low-dimensional inputs (``n <= bab_max_dim``, e.g. ACAS Xu's 5): input-splitting branch and
  bound, batched over hundreds of boxes. Each box is bounded by back-substitution (CROWN, every
  intermediate bound too; a child re-bounds only the neurons unstable in its parent and keeps the
  parent's bounds where they are tighter), and the boxes CROWN leaves open get a few Adam steps
  on their lower ReLU slopes per output row (alpha-CROWN, :func:`alpha_lower`): on ACAS Xu 3_3
  property 2 this refutes 91 of 100 boxes where fixed slopes refute 13, and the two ACAS-HARD
  instances that were open after 150 s (3_3 and 4_2, property 2) are proved in 21 s and 12 s.
  A conjunction is refuted on a box when the lower bound of one of its rows is positive, or when
  a non-negative combination of its rows' linear lower functions is positive on the whole box
  (pairs, a few weights). Branching (default ``alternate``) alternates rounds of strong branching
  (every free dimension is tried, the split whose worse child is closest to refuted wins) and
  smear branching (|coefficient| x width, with an aspect guard: a dimension already 100 times
  narrower, relative to the root box, than the widest one does not win). Measured on the ACAS Xu
  instances nnenum alone solved before (60 s): smear alone left 12 of them open; strong alone
  solved most but was slower on others (3_6 property 1: > 90 s against 12 s); alternating solved
  all ten in 1.1–3.0 s each.
  Every child evaluates the vertex that minimises the upper linear function of its hardest row,
  plus its centre; local search runs from the best of them now and then.
* High-dimensional inputs: a big-M MILP of the network per conjunction (HiGHS via highspy),
  ``min t`` subject to ``g_r(x) <= t`` for the conjunction's rows, with pre-activation bounds
  from the symbolic pass. ``t* > 0`` (the solver's dual bound, less its tolerance) refutes the
  conjunction; a solution with ``t < 0`` is a candidate counterexample.

Soundness
---------
``unsat`` only when every box (every conjunction, every case) is refuted, with a floating-point
slack on every bound (or, for the MILP, when the dual bound minus the solver tolerances is
positive). ``sat`` only with a concrete x, rounded to float32 inside the input region (what an
ONNX runtime is fed), whose output computed in float64 on the network satisfies the conjunction
exactly (strict constraints strictly), and, when an ONNX file is given, whose onnxruntime output
satisfies it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..nets.ir import FNN, Layer
from ..spec.vnnlib import DNF, VnnlibProperty
from .bab import bisect
from .lp import new_highs, run_highs
from .symbolic import symbolic_bounds

FP_SLACK = 1e-9  # relative slack on every float64 bound (round-off in the bound arithmetic)
ASPECT = 0.01  # smear-split guard (see _smear_dims)
BRANCHING = "alternate"  # see _branch_dims
RESTART_SHARE = (0.25, 0.1)  # share of branch-and-bound time given to random restarts: first ...
RESTART_SWITCH = 20.0  # ... for this many seconds, then the second (long proofs pay less)
RESTART_WARMUP = 1.0  # seconds of branch and bound before the first random restarts
RESTART_STARTS = 512  # local searches per restart batch (random starts x conjunctions)
ALPHA_ITERS = 5  # Adam steps on the lower ReLU slopes of boxes CROWN leaves open (see alpha_lower)
ALPHA_LR = 0.2
MILP_TOL = 1e-6  # absolute slack added to MILP dual bounds (HiGHS feasibility / integrality tolerances)

__all__ = ["PropertyResult", "verify_property", "verify_vnnlib_files"]


@dataclass
class PropertyResult:
    """Answer for one property: ``sat`` (``x``, ``y`` a checked counterexample), ``unsat``, ``timeout``, ``unknown``."""

    status: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    case: int | None = None
    time: float = 0.0
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "x": None if self.x is None else self.x.tolist(),
            "y": None if self.y is None else self.y.tolist(),
            "case": self.case,
            "time": self.time,
            "message": self.message,
            "stats": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.stats.items()},
        }


class _Timeout(Exception):
    pass


# ------------------------------------------------------------------------------------------
# the network with the output constraints folded in
# ------------------------------------------------------------------------------------------


def _normalise(net: FNN) -> FNN:
    from ..merge import normalise

    return normalise(net)


class _Case:
    """One input region and its DNF, compiled: unique rows G y <= c, conjunction membership."""

    def __init__(self, net: FNN, box: Any, dnf: DNF) -> None:
        self.box = box
        self.dnf = dnf
        rows: dict[tuple[bytes, float], int] = {}
        G, c, strict = [], [], []
        self.conj_rows: list[np.ndarray] = []
        for conj in dnf:
            idx = []
            for con in conj:
                key = (con.a.tobytes(), con.c)
                if key not in rows:
                    rows[key] = len(G)
                    G.append(con.a)
                    c.append(con.c)
                    strict.append(con.strict)
                elif con.strict:
                    strict[rows[key]] = True
                idx.append(rows[key])
            self.conj_rows.append(np.array(sorted(set(idx)), dtype=int))
        m = net.n_outputs
        self.G = np.array(G, dtype=np.float64).reshape(-1, m)
        self.c = np.array(c, dtype=np.float64)
        self.strict = np.array(strict, dtype=bool)
        R, K = len(G), len(self.conj_rows)
        self.M = np.zeros((K, R), dtype=bool)
        for k, idx in enumerate(self.conj_rows):
            self.M[k, idx] = True
        base = _normalise(net)
        last = base.layers[-1]
        if R:
            aug_last = Layer(self.G @ last.W, self.G @ last.b - self.c, "linear")
            self.aug = base.with_layers(list(base.layers[:-1]) + [aug_last])
        else:
            self.aug = None
        self.net = net

    @property
    def n_conj(self) -> int:
        return len(self.conj_rows)

    def g(self, x: np.ndarray) -> np.ndarray:
        """Constraint values g_r(x) (<= 0 means row r holds), batched, through the folded network."""
        return self.aug.forward(x)

    def conj_excess(self, gval: np.ndarray) -> np.ndarray:
        """(P, K): max over a conjunction's rows of g_r (<= 0: holds up to strictness)."""
        out = np.empty((gval.shape[0], self.n_conj))
        for k, idx in enumerate(self.conj_rows):
            out[:, k] = gval[:, idx].max(axis=1) if idx.size else -np.inf
        return out

    def exact_holds(self, y: np.ndarray) -> np.ndarray:
        """(P,) does some conjunction hold at outputs y, evaluated constraint by constraint (no folding)?"""
        y = np.atleast_2d(y)
        ok = np.zeros(len(y), dtype=bool)
        for conj in self.dnf:
            h = np.ones(len(y), dtype=bool)
            for con in conj:
                h &= np.asarray(con.holds(y), dtype=bool)
            ok |= h
        return ok


def _grad_rows(net: FNN, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Gradient of net(x)[rows[i]] at x[i] (ReLU subgradient 0 at 0), batched."""
    acts = [x]
    h = x
    for layer in net.layers:
        h = layer(h)
        acts.append(h)
    g = net.layers[-1].W[rows].copy()
    for li in range(len(net.layers) - 2, -1, -1):
        layer = net.layers[li]
        if layer.activation == "relu":
            g = g * (acts[li + 1] > 0)
        g = g @ layer.W
    return g


def _local_search(
    case: _Case, x0: np.ndarray, conj: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Projected sign-gradient descent on ``max_{r in conj} g_r`` inside [lo, hi]; returns (best x, best value)."""
    x = np.clip(x0, lo, hi)
    P = len(x)
    member = case.M[conj]  # (P, R)

    def value(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gv = np.where(member, case.g(z), -np.inf)
        r = np.argmax(gv, axis=1)
        return gv[np.arange(P), r], r

    best, (best_val, r) = x.copy(), value(x)
    step = 0.25 * (hi - lo)
    for _ in range(steps):
        grad = _grad_rows(case.aug, x, r)
        x = np.clip(x - step * np.sign(grad), lo, hi)
        val, r_new = value(x)
        better = val < best_val
        best[better] = x[better]
        best_val = np.where(better, val, best_val)
        # restart from the best point where the step did not help, with a smaller step
        x = np.where(better[:, None], x, best)
        _, r = value(x) if not better.all() else (val, r_new)
        step = step * 0.8
    return best, best_val


# ------------------------------------------------------------------------------------------
# CROWN / DeepPoly bounds (back-substitution), batched over boxes
# ------------------------------------------------------------------------------------------


@dataclass
class _Linear:
    """Linear bounds of the folded rows on N boxes (the fields of :class:`symbolic.LinearBounds`),
    and ``pre`` (N, 2, H): the lower/upper pre-activation bounds of the H hidden neurons."""

    Lw: np.ndarray
    Lc: np.ndarray
    Uw: np.ndarray
    Uc: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    pre: np.ndarray

    def take(self, idx: np.ndarray) -> _Linear:
        """The bounds of boxes ``idx``."""
        return _Linear(*(getattr(self, f)[idx] for f in _LINEAR_FIELDS))


_LINEAR_FIELDS = ("Lw", "Lc", "Uw", "Uc", "lower", "upper", "pre")


def _relax(lo: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ReLU relaxation: upper ``su·z + tu``, lower ``al·z`` (DeepPoly's choice of al)."""
    act, dead = lo >= 0, u <= 0
    unst = ~act & ~dead
    su = np.where(act, 1.0, np.where(dead, 0.0, u / np.maximum(u - lo, 1e-300)))
    tu = np.where(unst, -su * lo, 0.0)
    al = np.where(act, 1.0, np.where(dead, 0.0, (u > -lo).astype(np.float64)))
    return su, tu, al


def _back(layers, j: int, relax: list, center: np.ndarray, radius: np.ndarray, rows: np.ndarray | None = None):
    """Upper bounds of ±(pre-activation of layer j) by back-substitution; returns (Lam (N,2m,n), const (N,2m), ub).

    ``rows`` (N, k): bound only these neurons of each box (then m = k)."""
    N = center.shape[0]
    W, b = layers[j].W, layers[j].b
    if rows is None:
        m = W.shape[0]
        Lam = np.empty((N, 2 * m, W.shape[1]))
        Lam[:, :m] = W
        Lam[:, m:] = -W
        const = np.empty((N, 2 * m))
        const[:, :m] = b
        const[:, m:] = -b
    else:
        Lam = np.concatenate([W[rows], -W[rows]], axis=1)
        const = np.concatenate([b[rows], -b[rows]], axis=1)
    return _backsub(layers, j, Lam, const, relax, None, center, radius)


def _backsub(layers, j: int, Lam, const, relax: list, slopes: list | None, center, radius, tape: list | None = None):
    """Back-substitute rows ``Lam`` (N, R, m_j) on the input of layer j through layers j-1 .. 0 and
    concretise: upper bounds ``ub`` (N, R). Lower ReLU slopes: the relaxation's (``slopes`` None) or
    ``slopes[k]`` (N, R, m_k) per row. ``tape`` receives (Lam, positive part) per layer, last first."""
    N = center.shape[0]
    for k in range(j - 1, -1, -1):
        su, tu, al = relax[k]
        P = np.maximum(Lam, 0.0)
        S = P * su[:, None, :] + (Lam - P) * (al[:, None, :] if slopes is None else slopes[k])
        const = const + np.einsum("nrk,nk->nr", P, tu) + S @ layers[k].b
        if tape is not None:
            tape.append((Lam, P))
        kk = S.shape[2]
        Lam = (S.reshape(-1, kk) @ layers[k].W).reshape(N, S.shape[1], -1)
    ub = np.einsum("nrd,nd->nr", Lam, center) + const + np.einsum("nrd,nd->nr", np.abs(Lam), radius)
    return Lam, const, ub


def _layer_bounds(layers, j: int, relax: list, center, radius, prior: np.ndarray | None):
    """Pre-activation bounds (lower, upper) of hidden layer j; with ``prior`` (N, 2, m), bounds valid
    on a superset of each box (its parent's), only the neurons unstable there are back-substituted
    and every bound is intersected with the prior one."""
    m = layers[j].n_out
    if prior is None:
        _, _, ub = _back(layers, j, relax, center, radius)
        return -ub[:, m:], ub[:, :m]
    lp, up = prior[:, 0], prior[:, 1]
    unstable = (lp < 0) & (up > 0)
    k = int(unstable.sum(axis=1).max(initial=0))
    if k == 0:
        return lp, up
    rows = np.argsort(~unstable, axis=1, kind="stable")[:, :k]
    _, _, ub = _back(layers, j, relax, center, radius, rows)
    lo, hi = lp.copy(), up.copy()
    np.put_along_axis(lo, rows, np.maximum(np.take_along_axis(lp, rows, 1), -ub[:, k:]), 1)
    np.put_along_axis(hi, rows, np.minimum(np.take_along_axis(up, rows, 1), ub[:, :k]), 1)
    return lo, hi


def crown_bounds(net: FNN, lo: np.ndarray, hi: np.ndarray, chunk: int = 48, prior: np.ndarray | None = None) -> _Linear:
    """Output linear bounds of ``net`` on each box, every intermediate bound by back-substitution (DeepPoly/CROWN).

    ``prior`` (N, 2, H): hidden pre-activation bounds valid on a superset of each box (the ``pre``
    of its parent box); a neuron stable there is stable here, so only the unstable ones are bounded
    again (ACAS Xu 3_3 property 2 after 20 s of branching: 29 of 300 per box, median).
    """
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    if len(lo) > chunk:
        order = np.arange(len(lo))
        if prior is not None:  # boxes with as many unstable neurons share a chunk (less padding)
            order = np.argsort(((prior[:, 0] < 0) & (prior[:, 1] > 0)).sum(axis=1), kind="stable")
        parts = []
        for i in range(0, len(lo), chunk):
            sel = order[i : i + chunk]
            parts.append(crown_bounds(net, lo[sel], hi[sel], chunk, None if prior is None else prior[sel]))
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        return _Linear(*(np.concatenate([getattr(p, f) for p in parts])[inv] for f in _LINEAR_FIELDS))
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    layers = net.layers
    relax, pre, off = [], [], 0
    for j in range(len(layers) - 1):
        m = layers[j].n_out
        pj = None if prior is None else prior[:, :, off : off + m]
        lj, uj = _layer_bounds(layers, j, relax, center, radius, pj)
        relax.append(_relax(lj, uj))
        pre.append(np.stack([lj, uj], axis=1))
        off += m
    m = layers[-1].n_out
    Lam, const, ub = _back(layers, len(layers) - 1, relax, center, radius)
    # second output bound with the lower slopes of unstable ReLUs set to u/(u − l) (also valid:
    # relu(z) >= a z for any a in [0, 1]); each row keeps the tighter one. ACAS Xu 1_1 property 5:
    # open at 60 s before, unsat in 29 s; about 20% more work per box.
    alt = [(su, tu, np.where((su > 0) & (su < 1), su, al)) for su, tu, al in relax]
    Lam2, const2, ub2 = _back(layers, len(layers) - 1, alt, center, radius)
    better = ub2 < ub
    Lam = np.where(better[..., None], Lam2, Lam)
    const = np.where(better, const2, const)
    ub = np.minimum(ub, ub2)
    pre_all = np.concatenate(pre, axis=2) if pre else np.zeros((len(lo), 2, 0))
    return _Linear(-Lam[:, m:], -const[:, m:], Lam[:, :m], const[:, :m], -ub[:, m:], ub[:, :m], pre_all)


def _alpha_backsub(layers, relax: list, alpha: list, center: np.ndarray, radius: np.ndarray, grad: bool):
    """Upper bound of every row of ``-(last layer)`` with lower ReLU slopes ``alpha[k]`` (N, R, m_k)
    per box, row and neuron; with ``grad``, also d(bound)/d(alpha[k]) by reverse-mode through the
    back-substitution. Returns (Lam (N,R,n), const (N,R), ub (N,R), grads)."""
    last = layers[-1]
    N, R = center.shape[0], last.n_out
    Lam0 = np.broadcast_to(-last.W, (N, R, last.W.shape[1]))
    tape: list = []
    Lam, const, ub = _backsub(
        layers, len(layers) - 1, Lam0, np.broadcast_to(-last.b, (N, R)), relax, alpha, center, radius, tape
    )
    if not grad:
        return Lam, const, ub, None
    g = center[:, None, :] + np.sign(Lam) * radius[:, None, :]  # d ub / d Lam
    grads = [None] * (len(layers) - 1)
    for k in range(len(layers) - 1):
        Lk, pos = tape[len(layers) - 2 - k]
        su, tu, _ = relax[k]
        gS = g @ layers[k].W.T + layers[k].b
        grads[k] = gS * (Lk - pos)
        up = Lk > 0
        g = gS * np.where(up, su[:, None, :], alpha[k]) + np.where(up, tu[:, None, :], 0.0)
    return Lam, const, ub, grads


def alpha_lower(
    net: FNN, lo: np.ndarray, hi: np.ndarray, pre: np.ndarray, iters: int = ALPHA_ITERS, lr: float = ALPHA_LR
):
    """Lower linear bounds of ``net``'s outputs on each box with the lower slopes of unstable ReLUs
    optimised per box and output (alpha-CROWN, Adam on the bound, slopes kept in [0, 1] so every
    iterate is sound), intermediate bounds ``pre`` fixed. Returns (Lw, Lc, lower): the best iterate.

    Why: on the boxes branched after 15 s on ACAS Xu 3_3 property 2, CROWN's fixed slopes refute
    13 of 100, the LP of the triangle relaxation 94, and 5 Adam steps here 91.
    """
    layers = net.layers
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    relax, unstable, alpha, off = [], [], [], 0
    R = layers[-1].n_out
    for j in range(len(layers) - 1):
        m = layers[j].n_out
        rel = _relax(pre[:, 0, off : off + m], pre[:, 1, off : off + m])
        off += m
        su, _, al = rel
        relax.append(rel)
        unstable.append(((su > 0) & (su < 1))[:, None, :])
        alpha.append(np.repeat(np.where(unstable[-1][:, 0], su, al)[:, None, :], R, axis=1))
    best_Lam, best_c, best_ub = None, None, None
    m1 = [np.zeros_like(a) for a in alpha]
    m2 = [np.zeros_like(a) for a in alpha]
    for it in range(1, iters + 2):
        Lam, const, ub, grads = _alpha_backsub(layers, relax, alpha, center, radius, grad=it <= iters)
        if best_ub is None:
            best_Lam, best_c, best_ub = Lam.copy(), const, ub
        else:
            better = ub < best_ub
            best_Lam = np.where(better[..., None], Lam, best_Lam)
            best_c = np.where(better, const, best_c)
            best_ub = np.minimum(ub, best_ub)
        if grads is None:
            break
        for k, gk in enumerate(grads):
            gk = np.where(unstable[k], gk, 0.0)
            m1[k] = 0.9 * m1[k] + 0.1 * gk
            m2[k] = 0.999 * m2[k] + 0.001 * gk * gk
            step = lr * (m1[k] / (1 - 0.9**it)) / (np.sqrt(m2[k] / (1 - 0.999**it)) + 1e-12)
            alpha[k] = np.where(unstable[k], np.clip(alpha[k] - step, 0.0, 1.0), alpha[k])
    return -best_Lam, -best_c, -best_ub


# ------------------------------------------------------------------------------------------
# counterexample checking (float32 rounding, float64 forward, onnxruntime)
# ------------------------------------------------------------------------------------------


def _round_inside(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Round to float32, stepping back inside [lo, hi] where rounding left it."""
    x32 = np.clip(x, lo, hi).astype(np.float32)
    for _ in range(3):
        x64 = x32.astype(np.float64)
        up = x64 > hi
        dn = x64 < lo
        if not (up.any() or dn.any()):
            break
        x32 = np.where(up, np.nextafter(x32, np.float32(-np.inf)), x32)
        x32 = np.where(dn, np.nextafter(x32, np.float32(np.inf)), x32)
    return x32.astype(np.float64)


class _Checker:
    """Confirms candidate counterexamples: float32 input inside the region, float64 net, onnxruntime."""

    def __init__(self, net: FNN, onnx_path: str | Path | None, stats: dict) -> None:
        self.net = net
        self.onnx_path = onnx_path
        self.stats = stats
        self._sess = None

    def _ort(self, x: np.ndarray) -> np.ndarray:
        from ..nets.onnx_io import onnx_runtime_forward

        return np.atleast_2d(onnx_runtime_forward(self.onnx_path, x))

    def confirm(self, case: _Case, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The first of ``xs`` (already believed to violate) that is a true counterexample, or None."""
        box = case.box
        for x in xs[:8]:
            xr = _round_inside(x, box.lower, box.upper)
            if not bool(box.contains(xr, tol=0.0)):
                continue
            y = self.net.forward(xr)
            if not case.exact_holds(y)[0]:
                continue
            self.stats["cex_checked_float64"] = True
            if self.onnx_path is not None:
                y_ort = self._ort(xr)[0]
                if not case.exact_holds(y_ort)[0]:
                    self.stats["cex_rejected_by_onnxruntime"] = self.stats.get("cex_rejected_by_onnxruntime", 0) + 1
                    continue
                self.stats["cex_checked_onnxruntime"] = True
                return xr, y_ort
            return xr, y
        return None


# ------------------------------------------------------------------------------------------
# falsification
# ------------------------------------------------------------------------------------------


def _feasible_mask(case: _Case, x: np.ndarray) -> np.ndarray:
    if case.box.A is None:
        return np.ones(len(x), dtype=bool)
    return np.all(x @ case.box.A.T <= case.box.c, axis=1)


def _falsify(
    case: _Case,
    checker: _Checker,
    rng: np.random.Generator,
    deadline: float,
    n_samples: int,
    n_starts: int,
    stats: dict,
) -> tuple[np.ndarray, np.ndarray] | None:
    box = case.box
    lo, hi = box.lower, box.upper
    n = lo.size
    pts = [box.center[None], rng.uniform(lo, hi, size=(n_samples, n))]
    if n <= 12:
        corners = rng.integers(0, 2, size=(min(2**n, 64), n)).astype(bool)
        pts.append(np.where(corners, hi, lo))
    X = np.vstack(pts)
    X = X[_feasible_mask(case, X)]
    if len(X) == 0:
        return None
    ex = case.conj_excess(case.g(X))  # (P, K)
    stats["falsify_points"] = stats.get("falsify_points", 0) + len(X)
    hit = np.flatnonzero(ex.min(axis=1) <= 0)
    if hit.size:
        res = checker.confirm(case, X[hit[np.argsort(ex[hit].min(axis=1))]])
        if res is not None:
            return res
    if time.perf_counter() > deadline:
        raise _Timeout
    # local search from the best starts of every conjunction
    K = case.n_conj
    per = max(1, n_starts // max(K, 1))
    starts, conj = [], []
    for k in range(K):
        order = np.argsort(ex[:, k])[:per]
        starts.append(X[order])
        conj.append(np.full(len(order), k))
    S, C = np.vstack(starts), np.concatenate(conj)
    best, val = _local_search(case, S, C, lo, hi)
    ok = _feasible_mask(case, best)
    stats["local_searches"] = stats.get("local_searches", 0) + len(S)
    cand = np.flatnonzero((val <= 0) & ok)
    if cand.size:
        return checker.confirm(case, best[cand[np.argsort(val[cand])]])
    return None


# ------------------------------------------------------------------------------------------
# input-splitting branch and bound
# ------------------------------------------------------------------------------------------

_LAMBDAS = np.array([0.25, 0.5, 0.75])


class _BoxBounder:
    """Bounds the folded network's rows on a batch of boxes; says which conjunctions are refuted."""

    def __init__(self, case: _Case, stats: dict, pair_cuts: bool = True, alpha_iters: int = ALPHA_ITERS) -> None:
        self.case = case
        self.alpha_iters = alpha_iters
        self.stats = stats
        pairs = []
        if pair_cuts:
            for idx in case.conj_rows:
                for a in range(len(idx)):
                    for b in range(a + 1, len(idx)):
                        pairs.append((idx[a], idx[b]))
        self.pairs = np.array(pairs, dtype=int).reshape(-1, 2)
        # conjunction membership of each pair
        self.pair_conj = np.zeros((case.n_conj, len(pairs)), dtype=bool)
        for p, (r, s) in enumerate(pairs):
            self.pair_conj[:, p] = case.M[:, r] & case.M[:, s]

    def _refuted_rows(self, lower: np.ndarray) -> np.ndarray:
        """(N, K): conjunctions refuted because one of their rows has a positive lower bound."""
        refuted_row = lower > FP_SLACK * (1.0 + np.abs(lower))  # (N, R)
        return (refuted_row.astype(np.float64) @ self.case.M.T.astype(np.float64)) > 0

    def __call__(self, lo: np.ndarray, hi: np.ndarray, prior: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``prior``: the parents' hidden bounds (:attr:`_Linear.pre`), valid on supersets of the boxes."""
        case = self.case
        sym = crown_bounds(case.aug, lo, hi, prior=prior)
        self.stats["boxes_bounded"] += len(lo)
        refuted = self._refuted_rows(sym.lower)
        if self.alpha_iters and not refuted.all():
            sel = np.flatnonzero(~refuted.all(axis=1))
            Lw, Lc, low = alpha_lower(case.aug, lo[sel], hi[sel], sym.pre[sel], self.alpha_iters)
            better = low > sym.lower[sel]
            sym.Lw[sel] = np.where(better[..., None], Lw, sym.Lw[sel])
            sym.Lc[sel] = np.where(better, Lc, sym.Lc[sel])
            sym.lower[sel] = np.maximum(low, sym.lower[sel])
            refuted = self._refuted_rows(sym.lower)
        lower, upper = sym.lower, sym.upper
        if len(self.pairs) and not refuted.all():
            center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
            r, s = self.pairs[:, 0], self.pairs[:, 1]
            Lr, Ls = sym.Lw[:, r, :], sym.Lw[:, s, :]  # (N, P, n)
            cr, cs = sym.Lc[:, r], sym.Lc[:, s]
            for lam in _LAMBDAS:
                w = lam * Lr + (1 - lam) * Ls
                cc = lam * cr + (1 - lam) * cs
                mn = np.einsum("npd,nd->np", w, center) + cc - np.einsum("npd,nd->np", np.abs(w), radius)
                ok = mn > FP_SLACK * (1.0 + np.abs(mn) + np.abs(cc))
                if ok.any():
                    refuted |= (ok.astype(np.float64) @ self.pair_conj.T.astype(np.float64)) > 0
        # score of a conjunction on a box: how far from refuted (max over its rows of -lower; > 0 = open)
        neg = np.where(case.M[None, :, :], -lower[:, None, :], np.inf).min(axis=2)  # (N, K)
        return {"lower": lower, "upper": upper, "refuted": refuted, "gap": neg, "sym": sym}


def _input_infeasible(case: _Case, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    A = case.box.A
    if A is None:
        return np.zeros(len(lo), dtype=bool)
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    mn = center @ A.T - radius @ np.abs(A).T
    return np.any(mn > case.box.c + 1e-9 * (1 + np.abs(case.box.c)), axis=1)


def _score(b: dict[str, np.ndarray], alive: np.ndarray) -> np.ndarray:
    """(N,) how far the box is from refuted: max over alive conjunctions of the gap (-inf when none)."""
    return np.where(alive, b["gap"], -np.inf).max(axis=1)


def _bab(
    case: _Case,
    checker: _Checker,
    rng: np.random.Generator,
    deadline: float,
    stats: dict,
    batch: int,
    branching: str,
    max_frontier: int,
    progress: Callable[[dict], None] | None,
    aspect: float = 0.0,
    alpha_iters: int = ALPHA_ITERS,
) -> tuple[str, tuple[np.ndarray, np.ndarray] | None]:
    box = case.box
    bounder = _BoxBounder(case, stats, alpha_iters=alpha_iters)
    lo0, hi0 = box.lower[None].copy(), box.upper[None].copy()
    b = bounder(lo0, hi0)
    alive0 = ~b["refuted"]
    F_lo, F_hi = lo0, hi0
    F_alive = alive0
    F_score = _score(b, alive0)
    F_coef = None
    F_pre = b["sym"].pre  # hidden bounds of each open box, the prior of its children
    keep = F_alive.any(axis=1) & ~_input_infeasible(case, F_lo, F_hi)
    F_lo, F_hi, F_alive, F_score, F_pre = F_lo[keep], F_hi[keep], F_alive[keep], F_score[keep], F_pre[keep]
    if len(F_lo):
        F_coef = _hardest_coef(case, b, F_alive)[keep]
    it = 0
    t_start, t_search = time.perf_counter(), 0.0
    per_box: dict[str, float] = {}  # seconds per branched box in the last round of each mode
    while len(F_lo):
        now = time.perf_counter()
        if now > deadline:
            stats["open_boxes"] = int(len(F_lo))
            return "timeout", None
        if now - t_start > RESTART_WARMUP and t_search < _restart_budget(now - t_start):
            res = _restarts(case, checker, rng, max(16, RESTART_STARTS // case.n_conj), stats, F_lo, F_hi)
            t_search += time.perf_counter() - now
            if res is not None:
                return "sat", res
        if len(F_lo) > max_frontier:
            stats["open_boxes"] = int(len(F_lo))
            return "unknown", None
        it += 1
        t_round = time.perf_counter()
        mode = branching if branching != "alternate" else ("strong" if it % 2 else "smear")
        take = min(batch, len(F_lo))
        if np.isfinite(deadline) and per_box.get(mode, 0.0) > 0.0:
            # near the deadline, only as many boxes as the time left allows
            take = max(1, int(min(take, 0.8 * (deadline - t_round) / per_box[mode])))
        if take < len(F_lo):
            sel = np.argpartition(-F_score, take - 1)[:take]
            rest = np.ones(len(F_lo), dtype=bool)
            rest[sel] = False
        else:
            sel = np.arange(len(F_lo))
            rest = np.zeros(len(F_lo), dtype=bool)
        s_lo, s_hi, s_alive, s_pre = F_lo[sel], F_hi[sel], F_alive[sel], F_pre[sel]
        dims = _branch_dims(s_lo, s_hi, F_coef[sel], box.upper - box.lower, mode, aspect)
        if dims.shape[1] > 1:
            c_lo, c_hi, cb, c_alive = _strong_split(bounder, s_lo, s_hi, s_alive, s_pre, dims)
        else:
            c_lo, c_hi = bisect(s_lo, s_hi, dims[:, 0])
            cb = bounder(c_lo, c_hi, np.concatenate([s_pre, s_pre]))
            c_alive = np.concatenate([s_alive, s_alive]) & ~cb["refuted"]
        stats["branches"] += take
        stats["rounds"] = it
        per_box[mode] = (time.perf_counter() - t_round) / take
        # candidates: the vertex minimising the upper function of the hardest row of the worst conjunction
        cand = _candidates(case, cb, c_lo, c_hi, c_alive)
        res = _check_points(case, checker, cand)
        if res is not None:
            return "sat", res
        if it % 8 == 1:
            res = _search_from(case, checker, cb, cand, c_alive, box.lower, box.upper)
            if res is not None:
                return "sat", res
        c_alive &= ~_input_infeasible(case, c_lo, c_hi)[:, None]
        live = c_alive.any(axis=1)
        c_score = _score(cb, c_alive)
        c_coef = _hardest_coef(case, cb, c_alive)
        F_lo = np.concatenate([F_lo[rest], c_lo[live]])
        F_hi = np.concatenate([F_hi[rest], c_hi[live]])
        F_alive = np.concatenate([F_alive[rest], c_alive[live]])
        F_pre = np.concatenate([F_pre[rest], cb["sym"].pre[live]])
        F_score = np.concatenate([F_score[rest], c_score[live]])
        if c_coef is not None:
            F_coef = np.concatenate([F_coef[rest], c_coef[live]])
        stats["max_frontier"] = max(stats["max_frontier"], int(len(F_lo)))
        if progress is not None and it % 20 == 0:
            progress({"time": now, "open": int(len(F_lo)), "branches": stats["branches"]})
    return "unsat", None


def _hardest_coef(case: _Case, b: dict, alive: np.ndarray) -> np.ndarray:
    """(N, n) lower-function coefficients of the row that decides the worst open conjunction of each box."""
    gap = np.where(alive, b["gap"], -np.inf)
    k = np.argmax(gap, axis=1)
    low = np.where(case.M[k], b["lower"], -np.inf)  # (N, R)
    r = np.argmax(low, axis=1)
    N = len(k)
    return b["sym"].Lw[np.arange(N), r, :]


def _smear_dims(lo: np.ndarray, hi: np.ndarray, coef: np.ndarray, root_width: np.ndarray, aspect: float) -> np.ndarray:
    """Split dimension per box: largest smear (|coefficient| x width), unless that dimension is already
    ``aspect`` times narrower (relative to the root box) than the relatively widest one, which then wins.

    The smear sees only the final linear function; the looseness of unstable ReLUs' relaxations comes
    from every dimension's width, so without the guard a box can be cut a million times along one
    axis while another keeps its full width (ACAS Xu 1_1, property 4).
    """
    width = hi - lo
    smear = np.abs(coef) * width
    smear = smear / np.maximum(smear.max(axis=1, keepdims=True), 1e-300)
    smear = smear + 0.05 * width / np.maximum(width.max(axis=1, keepdims=True), 1e-300)
    dim = np.argmax(smear, axis=1)
    if aspect > 0:
        rel = width / np.where(root_width > 0, root_width, np.inf)
        widest = np.argmax(rel, axis=1)
        rows = np.arange(len(dim))
        flat = rel[rows, dim] < aspect * rel[rows, widest]
        dim = np.where(flat, widest, dim)
    return dim


def _strong_split(
    bounder: _BoxBounder, lo: np.ndarray, hi: np.ndarray, alive: np.ndarray, pre: np.ndarray, dims: np.ndarray
):
    """Split each box along each of its candidate dimensions ``dims`` (take, c); keep the split whose
    worse child is closest to refuted. ``pre``: the boxes' hidden bounds (the children's prior)."""
    take, c = dims.shape
    all_lo, all_hi = [], []
    for j in range(c):
        c_lo, c_hi = bisect(lo, hi, dims[:, j])
        all_lo.append(c_lo)
        all_hi.append(c_hi)
    A_lo, A_hi = np.concatenate(all_lo), np.concatenate(all_hi)
    b = bounder(A_lo, A_hi, np.tile(pre, (2 * c, 1, 1)))
    A_alive = np.tile(alive, (2 * c, 1)) & ~b["refuted"]
    sc = _score(b, A_alive).reshape(c, 2, take)
    sc = np.where(np.isneginf(sc), -1e300, sc)
    score = np.maximum(sc[:, 0], sc[:, 1]) + 1e-3 * np.minimum(sc[:, 0], sc[:, 1])
    rows = np.arange(take)
    flat = (hi - lo)[rows[None, :], dims.T] <= 0  # (c, take) zero-width: both children equal the parent
    score = np.where(flat, np.inf, score)
    best = np.argmin(score, axis=0)
    rows = np.arange(take)
    idx = np.concatenate([best * 2 * take + rows, best * 2 * take + take + rows])
    sub = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in b.items() if k != "sym"}
    sub["sym"] = b["sym"].take(idx)
    return A_lo[idx], A_hi[idx], sub, A_alive[idx]


def _branch_dims(lo: np.ndarray, hi: np.ndarray, coef: np.ndarray, root_width: np.ndarray, mode: str, aspect: float):
    """(take, c) candidate split dimensions per box: ``smear`` the one of :func:`_smear_dims`,
    ``strong`` every dimension the root box does not fix."""
    if mode == "strong":
        free = np.flatnonzero(root_width > 0)
        return np.tile(free if free.size else np.arange(lo.shape[1]), (len(lo), 1))
    return _smear_dims(lo, hi, coef, root_width, aspect)[:, None]


def _candidates(case: _Case, b: dict, lo: np.ndarray, hi: np.ndarray, alive: np.ndarray) -> np.ndarray:
    N = len(lo)
    live = alive.any(axis=1)
    if not live.any():
        return np.zeros((0, lo.shape[1]))
    gap = np.where(alive, b["gap"], -np.inf)
    k = np.argmax(gap, axis=1)
    low = np.where(case.M[k], b["lower"], -np.inf)
    r = np.argmax(low, axis=1)
    Uw = b["sym"].Uw[np.arange(N), r, :]
    vert = np.where(Uw > 0, lo, hi)
    return np.vstack([vert[live], (0.5 * (lo + hi))[live]])


def _check_points(case: _Case, checker: _Checker, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(X) == 0:
        return None
    ex = case.conj_excess(case.g(X)).min(axis=1)
    hit = np.flatnonzero((ex <= 0) & _feasible_mask(case, X))
    if hit.size:
        return checker.confirm(case, X[hit[np.argsort(ex[hit])]])
    return None


def _search_from(case, checker, b, cand, alive, lo, hi):
    """Local search from the most promising candidates of this round (whole region as the box)."""
    if len(cand) == 0:
        return None
    gv = case.conj_excess(case.g(cand))
    k = np.argmin(gv, axis=1)
    best = np.argsort(gv[np.arange(len(cand)), k])[:16]
    x, val = _local_search(case, cand[best], k[best], lo, hi, steps=20)
    hit = np.flatnonzero((val <= 0) & _feasible_mask(case, x))
    if hit.size:
        return checker.confirm(case, x[hit[np.argsort(val[hit])]])
    return None


def _restart_budget(elapsed: float) -> float:
    """Seconds of random restarts allowed after ``elapsed`` seconds of branch and bound."""
    first, later = RESTART_SHARE
    return first * min(elapsed, RESTART_SWITCH) + later * max(elapsed - RESTART_SWITCH, 0.0)


def _restarts(
    case: _Case, checker: _Checker, rng: np.random.Generator, n: int, stats: dict, F_lo: np.ndarray, F_hi: np.ndarray
):
    """Local search from ``n`` fresh random starts (each for every conjunction) over the whole region.

    Some counterexample regions are too small for the bound-guided candidates to land in (ACAS Xu
    5_3 property 2: one point in a million uniform samples violates); many cheap restarts of the
    sign-gradient search find them, while the branch and bound goes on for the proof. Half of the
    starts are uniform in randomly chosen open boxes of the frontier (where no proof exists yet),
    half uniform in the region with each coordinate moved to its lower or upper end with
    probability 1/4 each (ACAS Xu counterexamples sit on faces: 1_9 property 7 gets 11x more hits
    per start than from uniform starts, 5_3 property 2 as many).
    """
    lo, hi = case.box.lower, case.box.upper
    X = rng.uniform(lo, hi, size=(n, lo.size))
    face = rng.random(X.shape)
    X = np.where(face < 0.25, lo, np.where(face < 0.5, hi, X))
    if len(F_lo):
        pick = rng.integers(len(F_lo), size=n // 2)
        X[: n // 2] = rng.uniform(F_lo[pick], F_hi[pick])
    X = X[_feasible_mask(case, X)]
    K = case.n_conj
    if len(X) == 0 or K == 0:
        return None
    S, C = np.repeat(X, K, axis=0), np.tile(np.arange(K), len(X))
    x, val = _local_search(case, S, C, lo, hi, steps=40)
    stats["restart_searches"] = stats.get("restart_searches", 0) + len(S)
    hit = np.flatnonzero((val <= 0) & _feasible_mask(case, x))
    if hit.size:
        return checker.confirm(case, x[hit[np.argsort(val[hit])]])
    return None


# ------------------------------------------------------------------------------------------
# MILP for high-dimensional inputs
# ------------------------------------------------------------------------------------------


def _milp_conj(case: _Case, k: int, deadline: float, stats: dict) -> tuple[str, np.ndarray | None]:
    """``min t`` s.t. g_r(x) <= t for the rows of conjunction k, x in the region, big-M ReLUs.

    Returns ("refuted", None), ("candidate", x) or ("timeout", None)/("unknown", None).
    """
    import highspy
    from scipy import sparse

    box = case.box
    net = case.aug
    lo, hi = box.lower, box.upper
    _, pre = symbolic_bounds(net, lo[None], hi[None])
    n = lo.size
    inf = highspy.kHighsInf
    # columns: x (n), then per hidden layer: a (relu outputs) and d (binaries for unstable), then t
    col_lo: list[np.ndarray] = [lo.copy()]
    col_hi: list[np.ndarray] = [hi.copy()]
    integ: list[np.ndarray] = [np.zeros(n, dtype=np.int32)]
    rows_i, rows_j, rows_v, r_lo, r_hi = [], [], [], [], []
    n_cols = n
    n_rows = 0

    def add_row(cols: np.ndarray, vals: np.ndarray, rl: float, ru: float) -> None:
        nonlocal n_rows
        rows_i.append(np.full(len(cols), n_rows))
        rows_j.append(cols)
        rows_v.append(vals)
        r_lo.append(rl)
        r_hi.append(ru)
        n_rows += 1

    prev = np.arange(n)  # column indices of the previous layer's output
    layers = net.layers
    for li, layer in enumerate(layers[:-1]):
        zl, zu = pre[li][0][0], pre[li][1][0]
        m = layer.n_out
        W, bvec = layer.W, layer.b
        a_cols = np.arange(n_cols, n_cols + m)
        n_cols += m
        col_lo.append(np.zeros(m))
        col_hi.append(np.maximum(zu, 0.0))
        integ.append(np.zeros(m, dtype=np.int32))
        unstable = (zl < 0) & (zu > 0)
        d_cols = np.full(m, -1)
        nu = int(unstable.sum())
        d_cols[unstable] = np.arange(n_cols, n_cols + nu)
        n_cols += nu
        col_lo.append(np.zeros(nu))
        col_hi.append(np.ones(nu))
        integ.append(np.ones(nu, dtype=np.int32))
        for i in range(m):
            w = W[i]
            nz = np.flatnonzero(w)
            cols, vals = prev[nz], w[nz]
            if zu[i] <= 0:  # dead: a = 0
                col_hi[-2][i] = 0.0
                continue
            if zl[i] >= 0:  # active: a = z
                add_row(np.append(cols, a_cols[i]), np.append(vals, -1.0), -bvec[i], -bvec[i])
                continue
            # a >= z ; a <= z - l (1 - d) ; a <= u d
            add_row(np.append(cols, a_cols[i]), np.append(vals, -1.0), -inf, -bvec[i])
            add_row(
                np.concatenate([cols, [a_cols[i], d_cols[i]]]),
                np.concatenate([-vals, [1.0, -zl[i]]]),
                -inf,
                bvec[i] - zl[i],
            )
            add_row(np.array([a_cols[i], d_cols[i]]), np.array([1.0, -zu[i]]), -inf, 0.0)
        prev = a_cols
    t_col = n_cols
    n_cols += 1
    col_lo.append(np.array([-inf]))
    col_hi.append(np.array([inf]))
    integ.append(np.zeros(1, dtype=np.int32))
    last = layers[-1]
    for r in case.conj_rows[k]:
        w = last.W[r]
        nz = np.flatnonzero(w)
        add_row(np.append(prev[nz], t_col), np.append(w[nz], -1.0), -inf, -last.b[r])
    if box.A is not None:
        for row, cc in zip(box.A, box.c):
            nz = np.flatnonzero(row)
            add_row(nz, row[nz], -inf, cc)
    A = sparse.csc_matrix(
        (np.concatenate(rows_v), (np.concatenate(rows_i), np.concatenate(rows_j))), shape=(n_rows, n_cols)
    )
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    cost = np.zeros(n_cols)
    cost[t_col] = 1.0
    lp.col_cost_ = cost
    lp.col_lower_ = np.concatenate(col_lo)
    lp.col_upper_ = np.concatenate(col_hi)
    lp.row_lower_ = np.array(r_lo)
    lp.row_upper_ = np.array(r_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    lp.integrality_ = [highspy.HighsVarType(int(v)) for v in np.concatenate(integ)]
    h = new_highs()
    left = deadline - time.perf_counter()
    if left <= 0:
        return "timeout", None
    h.setOptionValue("time_limit", float(left))
    # stop as soon as a solution with t < 0 exists, or the dual bound is above 0
    h.setOptionValue("objective_bound", float(MILP_TOL))
    h.passModel(lp)
    t0 = time.perf_counter()
    run_highs(h)
    stats["milp_time"] = stats.get("milp_time", 0.0) + time.perf_counter() - t0
    stats["milps"] = stats.get("milps", 0) + 1
    ms = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    sol = h.getSolution()
    x = np.asarray(sol.col_value)[:n] if sol.value_valid else None
    if ms == S.kInfeasible:
        return "refuted", None
    if ms in (S.kOptimal, S.kObjectiveBound, S.kInterrupt, S.kTimeLimit, S.kSolutionLimit):
        dual = float(info.mip_dual_bound)
        primal = float(info.objective_function_value) if x is not None else np.inf
        if x is not None and primal <= 0:
            return "candidate", x
        if ms == S.kObjectiveBound or (np.isfinite(dual) and dual > MILP_TOL):
            return "refuted", None
        if ms == S.kOptimal and primal > MILP_TOL and dual > MILP_TOL:
            return "refuted", None
        return ("timeout" if ms == S.kTimeLimit else "unknown"), x
    return "unknown", x


def _milp_case(case: _Case, checker: _Checker, deadline: float, stats: dict):
    # root bounds first: conjunctions refuted by symbolic bounds need no MILP
    b = _BoxBounder(case, stats)(case.box.lower[None], case.box.upper[None])
    open_k = np.flatnonzero(~b["refuted"][0])
    status = "unsat"
    for k in open_k:
        st, x = _milp_conj(case, int(k), deadline, stats)
        if st == "refuted":
            continue
        if x is not None:
            res = _check_points(case, checker, x[None])
            if res is None:
                # the MILP point may sit on the boundary: search around it
                xs, val = _local_search(case, x[None], np.array([k]), case.box.lower, case.box.upper, steps=30)
                res = _check_points(case, checker, xs)
            if res is not None:
                return "sat", res
        status = "timeout" if st == "timeout" or time.perf_counter() > deadline else "unknown"
        if status == "timeout":
            break
    return status, None


# ------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------


def verify_property(
    net: FNN,
    prop: VnnlibProperty,
    time_limit: float | None = None,
    *,
    onnx_path: str | Path | None = None,
    seed: int = 0,
    batch: int = 256,
    bab_max_dim: int = 64,
    branching: str = BRANCHING,
    n_samples: int = 512,
    n_starts: int = 64,
    max_frontier: int = 4_000_000,
    aspect: float = ASPECT,
    alpha_iters: int = ALPHA_ITERS,
    progress: Callable[[dict], None] | None = None,
) -> PropertyResult:
    """Decide the property on ``net``: ``sat`` with a checked counterexample, ``unsat``, or ``timeout``/``unknown``.

    ``onnx_path``: the ONNX file ``net`` was read from; counterexamples are re-checked with
    onnxruntime on it. ``bab_max_dim``: input-splitting branch and bound up to this many inputs,
    the MILP above. ``branching``: ``smear``, ``strong`` or ``mixed`` (see :func:`_branch_dims`);
    ``aspect``: the guard of :func:`_smear_dims` (0 turns it off); ``alpha_iters``: optimisation
    steps of the lower ReLU slopes on boxes CROWN leaves open (0: plain CROWN, see :func:`alpha_lower`).
    """
    t0 = time.perf_counter()
    deadline = np.inf if time_limit is None else t0 + float(time_limit)
    if branching not in ("smear", "strong", "alternate"):
        raise ValueError(f"branching must be 'smear', 'strong' or 'alternate', not {branching!r}")
    if prop.n_inputs != net.n_inputs or prop.n_outputs != net.n_outputs:
        from ..spec.vnnlib import VnnlibDimensionError

        raise VnnlibDimensionError(
            f"{prop.source}: property has {prop.n_inputs} inputs and {prop.n_outputs} outputs, "
            f"network has {net.n_inputs} and {net.n_outputs}"
        )
    stats: dict[str, Any] = {"boxes_bounded": 0, "branches": 0, "max_frontier": 0, "cases": len(prop.cases)}
    rng = np.random.default_rng(seed)
    checker = _Checker(net, onnx_path, stats)
    cases = [_Case(net, case.box, case.output) for case in prop.cases]
    statuses = []

    def done(status: str, res=None, case_no=None, msg="") -> PropertyResult:
        stats["engine"] = "bab" if net.n_inputs <= bab_max_dim else "milp"
        r = PropertyResult(status, case=case_no, time=time.perf_counter() - t0, message=msg, stats=stats)
        if res is not None:
            r.x, r.y = res
        return r

    try:
        # trivial cases and falsification on every case first (cheap, finds most counterexamples)
        for ci, case in enumerate(cases):
            if case.n_conj == 0:
                continue
            if any(len(idx) == 0 for idx in case.conj_rows):
                res = _check_points_any(case, checker, rng)
                if res is not None:
                    return done("sat", res, ci, "the output constraint is always true")
            res = _falsify(case, checker, rng, deadline, n_samples, n_starts, stats)
            if res is not None:
                return done("sat", res, ci, "counterexample found by falsification")
            if time.perf_counter() > deadline:
                raise _Timeout
        for ci, case in enumerate(cases):
            if case.n_conj == 0:
                statuses.append("unsat")
                continue
            if any(len(idx) == 0 for idx in case.conj_rows):
                statuses.append("unknown")
                continue
            if net.n_inputs <= bab_max_dim:
                st, res = _bab(
                    case, checker, rng, deadline, stats, batch, branching, max_frontier, progress, aspect, alpha_iters
                )
            else:
                st, res = _milp_case(case, checker, deadline, stats)
            if st == "sat":
                return done("sat", res, ci, "counterexample found by branch and bound")
            statuses.append(st)
            if st == "timeout":
                raise _Timeout
    except _Timeout:
        return done("timeout", msg="time limit reached")
    if all(s == "unsat" for s in statuses):
        return done("unsat", msg="every input region proved")
    return done("unknown", msg="undecided: " + ", ".join(statuses))


def _check_points_any(case: _Case, checker: _Checker, rng: np.random.Generator):
    box = case.box
    X = np.vstack([box.center[None], rng.uniform(box.lower, box.upper, size=(64, box.dim))])
    X = X[_feasible_mask(case, X)]
    hit = np.flatnonzero(case.exact_holds(case.net.forward(X)))
    return checker.confirm(case, X[hit]) if hit.size else None


def verify_vnnlib_files(
    onnx_path: str | Path, vnnlib_path: str | Path, time_limit: float | None = None, **options: Any
) -> PropertyResult:
    """Read a network (ONNX, .nnet, ...) and a VNN-LIB file and decide the property."""
    from ..nets.load import load_network
    from ..spec.vnnlib import read_vnnlib

    t0 = time.perf_counter()
    net = load_network(onnx_path)
    prop = read_vnnlib(vnnlib_path, n_inputs=net.n_inputs, n_outputs=net.n_outputs)
    is_onnx = str(onnx_path).lower().endswith(".onnx")
    left = None if time_limit is None else max(0.0, float(time_limit) - (time.perf_counter() - t0))
    res = verify_property(net, prop, left, onnx_path=onnx_path if is_onnx else None, **options)
    res.stats["load_time"] = res.time and (time.perf_counter() - t0 - res.time)
    res.time = time.perf_counter() - t0
    return res
