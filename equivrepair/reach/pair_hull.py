"""Convex hulls of twin ReLU pairs: a pool of valid cuts for the compact big-M MILP.

Why. Φ2 is a compressed copy of Φ1, so each neuron of Φ1 and its twin in Φ2 see nearly the same
pre-activation: z1 − z2 lies in a thin strip [dl, du] (the differential bounds). The big-M model
relaxes each ReLU of the pair on its own (its triangle, plus the chords on a1 − a2), but the pair
jointly can only sit in one of four linear pieces (both active, both inactive, or one of the two
thin mismatch slabs). The convex hull of the pair's pieces, lifted with their phase binaries
(z1, z2, a1, a2, δ1, δ2), is the tightest description of the pair alone, and its facets are rows
of at most six non-zeros. On a face δ1 = 1 (or 0) it is the hull of the pieces left, so once the
branch and bound fixes a binary these cuts describe the pair's remaining pieces exactly: on
MNIST 3×100 ±2/±3 models the phase branch and bound needs about half the nodes with them (see
:mod:`.phase_bab`; less on 256x4, and more on one of its models).

Validity. Each pair's MILP-feasible points lie in the union of its pieces, each piece the linear
image of a polygon (the bounds box of z1, z2 cut by the strip and the phases' sign conditions),
so they lie in the hull of the pieces' lifted vertices; every cut's right-hand side is the
maximum of its normal over those vertices plus a margin of 1e-11·(1 + Σ|n_i·p_i|) for the
round-off of the polygon clipping. A cut is valid for any normal whatsoever, so qhull's own
round-off cannot make one invalid. Pairs whose points span less than the full dimension are
skipped (no cut is ever needed for soundness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .lp import LPModel

MARGIN = 1e-11  # relative slack added to every cut's right-hand side (see the module docstring)


@dataclass
class PairCuts:
    """Rows ``A v <= upper`` over a model's columns, valid for its MILP; ``pairs`` hulls taken."""

    A: sp.csr_matrix
    upper: np.ndarray
    pairs: int

    @property
    def size(self) -> int:
        return int(self.upper.size)

    def appended_to(self, model: LPModel) -> LPModel:
        """``model`` with these rows (``A v <= upper``) appended after its own."""
        if not self.size:
            return model
        return LPModel(
            sp.vstack([model.A, self.A]).tocsc(),
            np.concatenate([model.row_lower, np.full(self.size, -np.inf)]),
            np.concatenate([model.row_upper, self.upper]),
            model.col_lower,
            model.col_upper,
            model.x_cols,
            model.y_cols,
            model.integer_cols,
            model.n_unstable,
            model.layout,
        )


class PairHulls:
    """The twin pairs of a compact model (``layout`` with ``half``, as
    :func:`.compact.build_compact` writes it for same-architecture merged networks) and, on
    demand, each pair's hull facets (kept once computed): lifted with the pair's phase binaries
    where the model has them and ``lift`` asks for it, else the hull of (z1, z2, a1, a2).

    A hull costs 2–4 ms a pair (qhull and the clipping), so :meth:`violated` computes the hulls
    of only the pairs whose point is off their graph (a fractional binary, or a ≠ relu(z)): a
    point on the graph lies in one of the pieces, so no facet of the hull can cut it off."""

    def __init__(self, model: LPModel, lift: bool = True) -> None:
        self.model = model
        self.diff = _difference_rows(model)
        cols: list[tuple[int, int, int, int, int, int]] = []
        for lay in model.layout or []:
            s = lay.get("half")
            if not s:
                continue
            zmap = dict(zip(*(a.tolist() for a in lay["z"])))
            amap = dict(zip(*(a.tolist() for a in lay["a"])))
            dmap = dict(zip(*(a.tolist() for a in lay["phase"]))) if lift else {}
            for j in range(s):
                t = j + s
                if j in zmap and t in zmap and (j in amap or t in amap):
                    a1, a2, d1, d2 = amap.get(j, -1), amap.get(t, -1), dmap.get(j, -1), dmap.get(t, -1)
                    cols.append((zmap[j], zmap[t], a1, a2, d1, d2))
        # per pair: columns z1, z2, a1, a2, δ1, δ2 (−1 where a member has none)
        self.cols = np.array(cols, dtype=np.int64).reshape(-1, 6)
        self._facets: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def size(self) -> int:
        return int(self.cols.shape[0])

    def facets(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair i's facets: (columns (k,), normals (F, k), right-hand sides (F,)); F = 0 where its
        points span less than the full dimension."""
        if i not in self._facets:
            z1, z2, a1, a2, d1, d2 = (int(c) if c >= 0 else None for c in self.cols[i])
            self._facets[i] = _pair_facets(self.model, self.diff, (z1, z2), (a1, a2), (d1, d2))
        return self._facets[i]

    def off_graph(self, v: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """The pairs whose point in v is off their graph (only those can violate a facet)."""
        off = np.zeros(self.size, dtype=bool)
        for m in (0, 1):
            z, a, d = self.cols[:, m], self.cols[:, 2 + m], self.cols[:, 4 + m]
            ka, kd = a >= 0, d >= 0
            off[ka] |= np.abs(v[a[ka]] - np.maximum(v[z[ka]], 0.0)) > tol * (1.0 + np.abs(v[z[ka]]))
            off[kd] |= np.minimum(np.abs(v[d[kd]]), np.abs(1.0 - v[d[kd]])) > tol
        return np.flatnonzero(off)

    def violated(self, v: np.ndarray, rel: float, skip: set[tuple[int, int]]) -> list[tuple[int, int]]:
        """The facets (pair, index) that v violates by more than rel·(1 + |rhs|), not in ``skip``."""
        out = []
        for i in self.off_graph(v).tolist():
            cols, N, g = self.facets(i)
            if g.size:
                for f in np.flatnonzero(N @ v[cols] - g > rel * (1.0 + np.abs(g))).tolist():
                    if (i, f) not in skip:
                        out.append((i, f))
        return out

    def rows(self, which: list[tuple[int, int]]) -> PairCuts:
        """The facets ``which`` as rows over the model's columns."""
        if not which:
            return PairCuts(sp.csr_matrix((0, self.model.n_cols)), np.zeros(0), 0)
        r, c, v, g = [], [], [], []
        for k, (i, f) in enumerate(which):
            cols, N, rhs = self.facets(i)
            nz = N[f] != 0.0
            r.append(np.full(int(nz.sum()), k))
            c.append(cols[nz])
            v.append(N[f][nz])
            g.append(rhs[f])
        A = sp.csr_matrix(
            (np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(len(which), self.model.n_cols)
        )
        return PairCuts(A, np.array(g), len({i for i, _ in which}))


def pair_hull_cuts(model: LPModel, lift: bool = True) -> PairCuts:
    """Every facet of every twin pair's hull in a compact model (see :class:`PairHulls`)."""
    hulls = PairHulls(model, lift)
    return hulls.rows([(i, f) for i in range(hulls.size) for f in range(hulls.facets(i)[2].size)])


def _difference_rows(model: LPModel) -> dict[tuple[int, int], tuple[float, float]]:
    """The bounds dl <= z1 − z2 <= du of the model's two-entry rows (+1, −1), by column pair."""
    A = model.A.tocsr()
    out: dict[tuple[int, int], tuple[float, float]] = {}
    for r in np.flatnonzero(np.diff(A.indptr) == 2):
        c = A.indices[A.indptr[r] : A.indptr[r + 1]]
        v = A.data[A.indptr[r] : A.indptr[r + 1]]
        lo, hi = float(model.row_lower[r]), float(model.row_upper[r])
        if v[0] == 1.0 and v[1] == -1.0:
            out[(int(c[0]), int(c[1]))] = (lo, hi)
        elif v[0] == -1.0 and v[1] == 1.0:
            out[(int(c[1]), int(c[0]))] = (-hi, -lo)
    return out


def _pair_facets(
    model: LPModel,
    diff: dict[tuple[int, int], tuple[float, float]],
    z: tuple[int, int],
    a: tuple[int | None, int | None],
    d: tuple[int | None, int | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hull's facets of one twin pair: (columns, normals (F, k), right-hand sides (F,)), with
    F = 0 where the hull is not full-dimensional."""
    from scipy.spatial import ConvexHull, QhullError

    cols = np.array(
        [z[0], z[1]] + [c for ai, di in zip(a, d) if ai is not None for c in ((ai, di) if di is not None else (ai,))],
        dtype=np.int64,
    )
    none = (cols, np.zeros((0, cols.size)), np.zeros(0))
    l1, u1 = float(model.col_lower[z[0]]), float(model.col_upper[z[0]])
    l2, u2 = float(model.col_lower[z[1]]), float(model.col_upper[z[1]])
    dl, du = diff.get(z, (-np.inf, np.inf))
    dl, du = max(dl, l1 - u2), min(du, u1 - l2)
    if not (l1 <= u1 and l2 <= u2 and dl <= du):
        return none
    base = _clip([np.array(p) for p in ((l1, l2), (u1, l2), (u1, u2), (l1, u2))], (1.0, -1.0), du)
    base = _clip(base, (-1.0, 1.0), -dl)
    phases = [_phases(l1, u1, a[0] is not None), _phases(l2, u2, a[1] is not None)]
    pts = []
    for s1 in phases[0]:
        for s2 in phases[1]:
            poly = _clip(_clip(base, (-s1, 0.0), 0.0), (0.0, -s2), 0.0)
            for p in poly:
                pts.append(_lift(p, (s1, s2), a, d))
    if not pts:
        return none
    P = np.unique(np.array(pts), axis=0)
    if P.shape[0] <= P.shape[1]:
        return none
    try:
        eq = ConvexHull(P).equations
    except (QhullError, ValueError):
        return none  # fewer dimensions than coordinates: no full-dimensional hull, no cuts
    N = eq[:, :-1].copy()
    N[np.abs(N) < 1e-12] = 0.0
    g = (P @ N.T).max(axis=0) + MARGIN * (1.0 + (np.abs(P) @ np.abs(N.T)).max(axis=0))
    return cols, N, g


def _phases(lo: float, hi: float, unstable: bool) -> tuple[float, ...]:
    """The signs a ReLU's pre-activation may take: both when unstable, else its stable one."""
    if unstable:
        return (1.0, -1.0)
    return (1.0,) if lo >= 0.0 else (-1.0,)


def _lift(
    p: np.ndarray, signs: tuple[float, float], a: tuple[int | None, int | None], d: tuple[int | None, int | None]
) -> tuple[float, ...]:
    """A point of the (z1, z2) plane in a piece, with a (and δ, where it has a column) of each
    unstable member."""
    out = [float(p[0]), float(p[1])]
    for zi, si, ai, di in zip(p, signs, a, d):
        if ai is not None:
            out.append(float(zi) if si > 0 else 0.0)
            if di is not None:
                out.append(1.0 if si > 0 else 0.0)
    return tuple(out)


def _clip(poly: list[np.ndarray], n: tuple[float, float], b: float) -> list[np.ndarray]:
    """The convex polygon ``poly`` (vertices in order) cut to n·p <= b (Sutherland–Hodgman)."""
    if not np.isfinite(b):
        return poly
    nv = np.asarray(n)
    out = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        fp, fq = float(nv @ p) - b, float(nv @ q) - b
        if fp <= 0.0:
            out.append(p)
        if fp * fq < 0.0:
            out.append(p + fp / (fp - fq) * (q - p))
    return out
