"""Triangle LP relaxation of the merged network, solved with HiGHS (highspy) or through cvxpy.

Formulation (one box, ``merged = merge(orig, comp)``, all hidden layers ReLU):

* columns: the input x ∈ [lo, hi]; per hidden layer the pre-activations z ∈ [l, u] and the
  activations a ∈ [relu(l), relu(u)], from sound pre-activation bounds; the outputs y (= Φ1 − Φ2)
  within the output bounds;
* rows: z_i − W_i a_{i−1} = b_i (a_{−1} = x), y − W_L a_{L−1} = b_L; per neuron a = z when stably
  active, a = 0 (by its bounds) when stably inactive, otherwise the triangle a >= z,
  a <= λ(z − l) with λ = u/(u − l) (a >= 0 by the column bound); the set's A x <= c; optionally
  the *difference cuts* from the differential analysis: dl <= z1 − z2 <= du, and, where either
  ReLU is unstable, the chords of min(0, Δz) <= a1 − a2 <= max(0, Δz) (relu is monotone and
  1-Lipschitz). They are valid and give back the correlation between the two networks that
  separate triangles lose; with them the LP contains every relaxation the differential analysis
  uses, so it is at least as tight.

Soundness of the reported numbers. An LP solver returns an optimum only up to its feasibility
tolerances (HiGHS: primal/dual feasibility 1e-7), so the optimal value itself is not a safe bound.
We instead turn the solver's row duals y into a rigorous bound (Neumaier & Shcherbina 2004,
"Safe bounds in linear and mixed-integer programming"): every column is boxed, so for *any* y

    min c·v >= Σ_i min(y_i r^l_i, y_i r^u_i) + Σ_j min(d_j v^l_j, d_j v^u_j),   d = c − Aᵀy,

(with y_i clipped to the sign its finite row bounds allow), whether or not y is dual feasible.
The reported bound is that value, lowered by ``FP_REL`` times the magnitudes summed (float64
round-off of this final computation). ``LPBounds.tolerance`` records how far the safe bound lies
from the solver's optimum (typically 1e-9 or less); it is what the upper bound may exceed the
true LP optimum by. Because the bound holds for any y, it stays sound even if the solver stops
early (time limit) or returns an inaccurate basis; then it is merely looser. Both backends use the
same post-processing, so they agree to within the LP tolerances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..nets.ir import FNN
from ..spec.sets import Box
from .bounds import FP_REL, _interval_affine, best_witness, default_candidates, merged_pre_bounds
from .result import Discrepancy


@dataclass
class LPModel:
    """A linear (or mixed-integer) relaxation in the form r_l <= A v <= r_u, v_l <= v <= v_u."""

    A: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    x_cols: np.ndarray
    y_cols: np.ndarray
    integer_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    n_unstable: int = 0
    layout: list | None = None  # per hidden layer, which neuron each column holds (compact models)

    @property
    def n_cols(self) -> int:
        return int(self.A.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])


class _Builder:
    def __init__(self) -> None:
        self.col_lo: list[np.ndarray] = []
        self.col_hi: list[np.ndarray] = []
        self.n_cols = 0
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.rl: list[np.ndarray] = []
        self.ru: list[np.ndarray] = []
        self.n_rows = 0

    def add_cols(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        k = lo.size
        idx = np.arange(self.n_cols, self.n_cols + k)
        self.col_lo.append(np.asarray(lo, dtype=np.float64))
        self.col_hi.append(np.asarray(hi, dtype=np.float64))
        self.n_cols += k
        return idx

    def add_rows(self, r: np.ndarray, c: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Rows given in coordinate form with local row numbers 0..len(lo)-1."""
        self.rows.append(np.asarray(r, dtype=np.int64) + self.n_rows)
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.asarray(v, dtype=np.float64))
        self.rl.append(np.asarray(lo, dtype=np.float64))
        self.ru.append(np.asarray(hi, dtype=np.float64))
        self.n_rows += len(lo)

    def add_dense_rows(self, M: np.ndarray, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        r, c = np.nonzero(M)
        self.add_rows(r, cols[c], M[r, c], lo, hi)

    def build(self) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cat = lambda xs, dt=np.float64: np.concatenate(xs) if xs else np.zeros(0, dtype=dt)  # noqa: E731
        A = sp.coo_matrix(
            (cat(self.vals), (cat(self.rows, np.int64), cat(self.cols, np.int64))), shape=(self.n_rows, self.n_cols)
        ).tocsc()
        A.sum_duplicates()
        return A, cat(self.rl), cat(self.ru), cat(self.col_lo), cat(self.col_hi)


def check_merged(net: FNN, pre_bounds: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Number of hidden layers, after checking ``net`` has ReLU hidden layers, a linear output
    layer, and a pre-activation bound for each hidden layer."""
    layers = net.layers
    if any(layer.activation != "relu" for layer in layers[:-1]) or layers[-1].activation != "linear":
        raise ValueError("the LP needs ReLU hidden layers and a linear output layer (normalise/merge first)")
    n_hidden = len(layers) - 1
    if len(pre_bounds) < n_hidden:
        raise ValueError(f"need pre-activation bounds for {n_hidden} hidden layers, got {len(pre_bounds)}")
    return n_hidden


def layer_bounds(
    W: np.ndarray,
    bias: np.ndarray,
    given: tuple[np.ndarray, np.ndarray] | None,
    prev_lo: np.ndarray,
    prev_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``given`` bounds of W a + b intersected with the interval image of a ∈ [prev_lo, prev_hi]
    (valid too, and always finite); a round-off crossing is widened, never narrowed."""
    zl, zu = _interval(W, bias, prev_lo, prev_hi)
    if given is not None:
        zl = np.maximum(zl, np.asarray(given[0], dtype=np.float64))
        zu = np.minimum(zu, np.asarray(given[1], dtype=np.float64))
    return zl, np.maximum(zu, zl)


def build_relaxation(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    A: np.ndarray | None = None,
    c: np.ndarray | None = None,
    delta_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    integer: bool = False,
) -> LPModel:
    """The triangle LP (``integer=False``) or the big-M MILP (``integer=True``) of ``net``.

    ``net`` has ReLU hidden layers and a linear last layer (a merged network does). ``pre_bounds``
    are sound pre-activation bounds of every hidden layer (an extra last entry bounds the output;
    otherwise interval bounds are used). ``delta_bounds[i] = (dl, du)`` bounds the difference of
    the first and second halves of hidden layer i (merged networks of equal architectures).
    MILP rows for an unstable neuron: a >= z, a <= z − l(1 − δ), a <= u δ, δ ∈ {0, 1}.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    layers = net.layers
    n_hidden = check_merged(net, pre_bounds)
    b = _Builder()
    x_cols = b.add_cols(lo, hi)
    prev_cols, prev_lo, prev_hi = x_cols, lo, hi
    int_cols: list[np.ndarray] = []
    n_unstable = 0
    for i in range(n_hidden):
        W, bias = layers[i].W, layers[i].b
        zl, zu = layer_bounds(W, bias, pre_bounds[i], prev_lo, prev_hi)
        n = zl.size
        z = b.add_cols(zl, zu)
        al, au = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
        a = b.add_cols(al, au)
        # z − W a_prev = b
        Mrow = np.hstack([np.eye(n), -W])
        b.add_dense_rows(Mrow, np.concatenate([z, prev_cols]), bias, bias)
        active = zl >= 0.0
        unstable = (zl < 0.0) & (zu > 0.0)
        k = np.nonzero(active)[0]
        if k.size:  # a − z = 0
            r = np.arange(k.size)
            b.add_rows(
                np.concatenate([r, r]),
                np.concatenate([a[k], z[k]]),
                np.concatenate([np.ones(k.size), -np.ones(k.size)]),
                np.zeros(k.size),
                np.zeros(k.size),
            )
        k = np.nonzero(unstable)[0]
        n_unstable += k.size
        if k.size:
            unstable_rows(b, z[k], a[k], zl[k], zu[k], integer, int_cols)
        if delta_bounds is not None and i < len(delta_bounds) and n % 2 == 0:
            dl = np.asarray(delta_bounds[i][0], dtype=np.float64)
            du = np.asarray(delta_bounds[i][1], dtype=np.float64)
            if dl.size == n // 2:
                difference_cuts(b, z, a, zl, zu, unstable, dl, du, np.ones(n // 2, dtype=bool))
        prev_cols, prev_lo, prev_hi = a, al, au
    W, bias = layers[-1].W, layers[-1].b
    yl, yu = layer_bounds(W, bias, pre_bounds[n_hidden] if len(pre_bounds) > n_hidden else None, prev_lo, prev_hi)
    m = yl.size
    y = b.add_cols(yl, yu)
    b.add_dense_rows(np.hstack([np.eye(m), -W]), np.concatenate([y, prev_cols]), bias, bias)
    if A is not None:
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        cc = np.asarray(c, dtype=np.float64).ravel()
        b.add_dense_rows(A, x_cols, np.full(cc.size, -np.inf), cc)
    Am, rl, ru, cl, cu = b.build()
    ints = np.concatenate(int_cols) if int_cols else np.zeros(0, dtype=int)
    return LPModel(Am, rl, ru, cl, cu, x_cols, y, ints, n_unstable)


def unstable_rows(
    b: _Builder,
    z: np.ndarray,
    a: np.ndarray,
    lk: np.ndarray,
    uk: np.ndarray,
    integer: bool,
    int_cols: list[np.ndarray],
) -> None:
    """Rows of unstable ReLUs (columns z, a): a >= z, plus the big-M rows with a new binary δ
    (a − z − l δ <= −l, a − u δ <= 0; δ's columns appended to ``int_cols``) or the triangle's
    chord a − λ z <= −λ l."""
    k = z.size
    r = np.arange(k)
    ones = np.ones(k)
    b.add_rows(
        np.concatenate([r, r]), np.concatenate([a, z]), np.concatenate([ones, -ones]), np.zeros(k), np.full(k, np.inf)
    )
    if integer:
        d = b.add_cols(np.zeros(k), np.ones(k))
        int_cols.append(d)
        b.add_rows(
            np.concatenate([r, r, r]),
            np.concatenate([a, z, d]),
            np.concatenate([ones, -ones, -lk]),
            np.full(k, -np.inf),
            -lk,
        )
        b.add_rows(
            np.concatenate([r, r]),
            np.concatenate([a, d]),
            np.concatenate([ones, -uk]),
            np.full(k, -np.inf),
            np.zeros(k),
        )
        return
    lam = uk / (uk - lk)
    rhs = -lam * lk + FP_REL * (np.abs(lam * lk) + np.abs(uk))
    b.add_rows(np.concatenate([r, r]), np.concatenate([a, z]), np.concatenate([ones, -lam]), np.full(k, -np.inf), rhs)


def difference_cuts(
    b: _Builder,
    z: np.ndarray,
    a: np.ndarray,
    zl: np.ndarray,
    zu: np.ndarray,
    unstable: np.ndarray,
    dl: np.ndarray,
    du: np.ndarray,
    where: np.ndarray,
) -> None:
    """The differential analysis's bounds as rows on a merged layer of 2s neurons (columns z, a):
    dl <= z1 − z2 <= du where that says more than the separate bounds (pairs in ``where``), and
    the Lipschitz chords on a1 − a2 where either ReLU is unstable."""
    s = dl.size
    tol = 1e-9 * (1.0 + np.abs(dl) + np.abs(du))
    useful = where & ((dl > zl[:s] - zu[s:] + tol) | (du < zu[:s] - zl[s:] - tol))
    k = np.nonzero(useful)[0]
    if k.size:
        r = np.arange(k.size)
        ones = np.ones(k.size)
        b.add_rows(
            np.concatenate([r, r]), np.concatenate([z[k], z[s + k]]), np.concatenate([ones, -ones]), dl[k], du[k]
        )
    _lipschitz_cuts(b, z[:s], z[s:], a[:s], a[s:], unstable[:s] | unstable[s:], dl, du)


def new_highs() -> Any:
    """A quiet single-threaded ``highspy.Highs``: every solver of the project runs on one thread.

    HiGHS keeps one thread scheduler per process, sized by the first run; an instance asking for
    another count afterwards fails to run (model status "Not Set", since highspy 1.16). Giving
    every instance the same count avoids that; :func:`run_highs` recovers where another library
    (cvxpy's HiGHS interface) sized the scheduler first.
    """
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h


_BOOL_WORDS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}


def _highs_value(kind: Any, val: Any) -> Any:
    """``val`` as a value of the HiGHS option type ``kind`` (strings from a command line parsed)."""
    import highspy

    T = highspy.HighsOptionType
    if kind == T.kBool:
        return _BOOL_WORDS[val.lower()] if isinstance(val, str) else bool(val)
    if kind == T.kInt:
        v = float(val) if isinstance(val, float) else int(val)
        if v != int(v):
            raise ValueError(val)
        return int(v)
    if kind == T.kDouble:
        return float(val)
    return str(val)


def set_highs_options(h: Any, options: dict[str, Any] | None) -> None:
    """Apply user HiGHS options (name -> value; strings from a command line are converted to the
    option's type). Unknown names and values HiGHS refuses raise ``ValueError`` naming them;
    ``threads`` is refused: every HiGHS instance of the process must run on one thread (see
    :func:`new_highs`); so is ``objective_bound``: the MILPs set it themselves (a cutoff at the best
    witness), and HiGHS's dual bound says nothing about the nodes it prunes."""
    import highspy

    for key, val in (options or {}).items():
        if key == "threads":
            raise ValueError("HiGHS option 'threads' cannot be set: every solver of the process runs on one thread")
        if key == "objective_bound":
            raise ValueError(
                "HiGHS option 'objective_bound' cannot be set: the MILPs set it to the best witness"
                " and account for what it prunes; HiGHS's dual bound alone would not be sound"
            )
        status, kind = h.getOptionType(key)
        if status != highspy.HighsStatus.kOk:
            raise ValueError(f"unknown HiGHS option {key!r}")
        try:
            v = _highs_value(kind, val)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"HiGHS option {key!r}: {val!r} is not a valid {kind.name[1:].lower()}") from None
        if h.setOptionValue(key, v) != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS option {key!r}: HiGHS refused the value {val!r}")


def run_highs(h: Any) -> Any:
    """``h.run()``; when the run failed before solving (scheduler sized by someone else), reset
    HiGHS's global scheduler and run once more. Returns the HiGHS status of the last run."""
    import highspy

    status = h.run()
    if status == highspy.HighsStatus.kError and h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        highspy.Highs.resetGlobalScheduler(True)
        status = h.run()
    return status


def set_time_left(h: Any, left: float | None) -> None:
    """Let the next run of ``h`` take at most ``left`` seconds (None: no limit). HiGHS's simplex
    compares its ``time_limit`` with the run time the object has accumulated over all its runs
    (its MIP solver does not), so on a reused model the limit is that run time plus ``left``: a
    plain ``left`` stops every LP at once once the earlier LPs have taken that long in all."""
    limit = float("inf") if left is None or not np.isfinite(left) else float(h.getRunTime()) + max(float(left), 1e-3)
    h.setOptionValue("time_limit", limit)


def highs_model(model: LPModel, integer: bool = False) -> Any:
    """A ``highspy.Highs`` holding ``model`` (zero costs; integrality of its binaries if asked)."""
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = np.zeros(model.n_cols)
    lp.col_lower_ = model.col_lower
    lp.col_upper_ = model.col_upper
    inf = highspy.kHighsInf
    lp.row_lower_ = np.where(np.isfinite(model.row_lower), model.row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(model.row_upper), model.row_upper, inf)
    A = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    if integer:
        integ = [highspy.HighsVarType.kContinuous] * model.n_cols
        for k in model.integer_cols:
            integ[int(k)] = highspy.HighsVarType.kInteger
        lp.integrality_ = integ
    h = new_highs()
    h.passModel(lp)
    return h


def _lipschitz_cuts(
    b: _Builder,
    z1: np.ndarray,
    z2: np.ndarray,
    a1: np.ndarray,
    a2: np.ndarray,
    where: np.ndarray,
    dl: np.ndarray,
    du: np.ndarray,
) -> None:
    """Cuts linking Δa = a1 − a2 to Δz = z1 − z2 for neurons where either ReLU is unstable.

    relu is monotone and 1-Lipschitz, so Δa lies between min(0, Δz) and max(0, Δz); over
    Δz ∈ [dl, du] these are bounded by their chords (the same rule the differential analysis
    uses): Δa − λΔz <= −λ dl and Δa − μΔz >= λ dl with λ = du/(du − dl), μ = −dl/(du − dl);
    for dl >= 0: 0 <= Δa <= Δz; for du <= 0: Δz <= Δa <= 0.
    """
    k = np.nonzero(where)[0]
    if k.size == 0:
        return
    dlk, duk = dl[k], du[k]
    nonneg = dlk >= 0.0
    nonpos = (duk <= 0.0) & ~nonneg
    cross = ~(nonneg | nonpos)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(cross, duk / (duk - dlk), 0.0)
        mu = np.where(cross, -dlk / (duk - dlk), 0.0)
    # upper: Δa − su Δz <= tu ; lower: Δa − sl Δz >= tl
    su = np.where(nonneg, 1.0, lam)
    tu = np.where(cross, -lam * dlk + FP_REL * (np.abs(lam * dlk) + np.abs(duk)), 0.0)
    sl = np.where(nonpos, 1.0, mu)
    tl = np.where(cross, lam * dlk - FP_REL * (np.abs(lam * dlk) + np.abs(dlk)), 0.0)
    n = k.size
    r = np.arange(n)
    rr = np.concatenate([r, r, r, r])
    ones = np.ones(n)
    cols = np.concatenate([a1[k], a2[k], z1[k], z2[k]])
    b.add_rows(rr, cols, np.concatenate([ones, -ones, -su, su]), np.full(n, -np.inf), tu)
    b.add_rows(rr, cols, np.concatenate([ones, -ones, -sl, sl]), tl, np.full(n, np.inf))


def _interval(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zl, zu = _interval_affine(W, np.abs(W), b, lo[None], hi[None])
    return zl[0], zu[0]


# --------------------------------------------------------------------------------------------
# safe bounds from duals
# --------------------------------------------------------------------------------------------
def safe_lower_bound(model: LPModel, cost: np.ndarray, y: np.ndarray | None) -> float:
    """A rigorous lower bound on min cost·v over the model's LP relaxation from any row multipliers y.

    Tries y and −y (solvers differ in their sign convention) and returns the larger bound.
    """
    return SafeBound(model)(cost, y)


class SafeBound:
    """:func:`safe_lower_bound` for one model, with its transposes computed once and the column
    bounds replaceable (a branch-and-bound node's, e.g. binaries fixed)."""

    def __init__(self, model: LPModel) -> None:
        self.model = model
        self.AT = model.A.T.tocsr()
        self.absAT = abs(self.AT)
        rl, ru = model.row_lower, model.row_upper
        self.fl, self.fu = np.isfinite(rl), np.isfinite(ru)
        self.rl0, self.ru0 = np.where(self.fl, rl, 0.0), np.where(self.fu, ru, 0.0)
        # rows with both sides finite (the equality rows, dense on the compact models) take y and
        # −y unclipped, so one product serves both signs (see signed_bounds); the others are split off
        self.two = self.fl & self.fu
        self.AT_two, self.AT_one = self.AT[:, self.two], self.AT[:, ~self.two]
        self.absAT_two, self.absAT_one = self.absAT[:, self.two], self.absAT[:, ~self.two]

    def __call__(
        self, cost: np.ndarray, y: np.ndarray | None, cl: np.ndarray | None = None, cu: np.ndarray | None = None
    ) -> float:
        """The best bound from y, −y and 0 (0: the column bounds alone)."""
        return float(np.max(self.signed_bounds(cost, y, cl, cu)))

    def signed_bounds(
        self, cost: np.ndarray, y: np.ndarray | None, cl: np.ndarray | None = None, cu: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`bounds` of the multipliers :meth:`multipliers` gives (0, and y, −y when usable),
        with one product by Aᵀ and one by |A|ᵀ on the two-sided rows instead of one per multiplier
        (a third of the work on a phase branch-and-bound node, the sums' order aside)."""
        Y = np.stack(self.multipliers(y), axis=1)
        if Y.shape[1] != 3:
            return self.bounds(cost, Y, cl, cu)
        yt = Y[self.two, 1]  # never clipped: both sides of these rows are finite
        g, ga = self.AT_two @ yt, self.absAT_two @ np.abs(yt)
        Y1 = self._clip(Y[~self.two], ~self.two)
        ATY = np.stack([np.zeros_like(g), g, -g], axis=1) + self.AT_one @ Y1
        absATY = np.stack([np.zeros_like(ga), ga, ga], axis=1) + self.absAT_one @ np.abs(Y1)
        Y[~self.two] = Y1  # the one-sided rows clipped once, here
        return self._finish(cost, Y, ATY, absATY, cl, cu)

    def multipliers(self, y: np.ndarray | None) -> list[np.ndarray]:
        """The multipliers worth trying for a solver's row duals y: none (0), and y with both sign
        conventions when y is a finite vector of the right size (anything else is ignored)."""
        ys = [np.zeros(self.model.n_rows)]
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            if y.shape == (self.model.n_rows,) and np.all(np.isfinite(y)):
                ys += [y, -y]
        return ys

    def bounds(
        self, cost: np.ndarray, Y: np.ndarray, cl: np.ndarray | None = None, cu: np.ndarray | None = None
    ) -> np.ndarray:
        """The bound of each column of Y (rows × k multipliers), in one pass."""
        Y = self._clip(Y)
        return self._finish(cost, Y, self.AT @ Y, self.absAT @ np.abs(Y), cl, cu)

    def _clip(self, Y: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Y (multipliers of every row, or of the rows a mask selects) with the sign each row's
        finite sides allow (0 where a row has none)."""
        fl, fu = (self.fl, self.fu) if rows is None else (self.fl[rows], self.fu[rows])
        Y = np.where(fl[:, None], Y, np.minimum(Y, 0.0))
        return np.where(fu[:, None], Y, np.maximum(Y, 0.0))

    def _finish(
        self,
        cost: np.ndarray,
        Y: np.ndarray,
        ATY: np.ndarray,
        absATY: np.ndarray,
        cl: np.ndarray | None,
        cu: np.ndarray | None,
    ) -> np.ndarray:
        """The bounds from clipped multipliers Y and their products Aᵀ Y and |A|ᵀ |Y|."""
        cl = self.model.col_lower if cl is None else cl
        cu = self.model.col_upper if cu is None else cu
        row_term = Y * np.where(Y > 0, self.rl0[:, None], self.ru0[:, None])
        D = cost[:, None] - ATY
        col_term = np.minimum(D * cl[:, None], D * cu[:, None])
        err = np.abs(row_term).sum(axis=0) + np.abs(col_term).sum(axis=0)
        err += ((np.abs(cost)[:, None] + absATY) * np.maximum(np.abs(cl), np.abs(cu))[:, None]).sum(axis=0)
        out = row_term.sum(axis=0) + col_term.sum(axis=0) - FP_REL * err
        return np.where(np.all(np.isfinite(col_term), axis=0), out, -np.inf)


# --------------------------------------------------------------------------------------------
# solving
# --------------------------------------------------------------------------------------------
@dataclass
class LPBounds:
    """Sound bounds on objectives C_r·y over the relaxation (k objectives)."""

    lower: np.ndarray  # (k,) safe lower bounds of min C_r·y
    upper: np.ndarray  # (k,) safe upper bounds of max C_r·y
    raw_lower: np.ndarray  # solver's optimal values (not safe)
    raw_upper: np.ndarray
    x_lower: np.ndarray  # (k, n) input parts of the minimisers (NaN when unavailable)
    x_upper: np.ndarray
    status: list[str]
    tolerance: float  # max over objectives of safe-vs-raw distance
    n_lps: int
    time: float
    backend: str
    n_unstable: int = 0


def _objectives(objectives: Any, m: int) -> np.ndarray:
    if objectives is None or (isinstance(objectives, str) and objectives == "outputs"):
        return np.eye(m)
    C = np.atleast_2d(np.asarray(objectives, dtype=np.float64))
    if C.shape[1] != m:
        raise ValueError(f"objectives must have {m} columns (one per output), got shape {C.shape}")
    return C


def lp_bounds_merged(
    net: FNN,
    lo: np.ndarray,
    hi: np.ndarray,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    A: np.ndarray | None = None,
    c: np.ndarray | None = None,
    objectives: Any = None,
    *,
    backend: str = "highs",
    delta_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    time_limit: float | None = None,
    compact: bool = False,
    skip: np.ndarray | None = None,
) -> LPBounds:
    """Minimise and maximise each objective row C_r·y (default: each output) over the triangle LP.

    ``objectives``: None / ``"outputs"`` for every output, or a (k, m) matrix of linear
    combinations of the outputs. ``backend``: ``"highs"`` (highspy, one model, objectives
    swapped and re-solved warm) or ``"cvxpy"`` (cvxpy with solver HiGHS; for cross-checking).
    ``compact=True`` solves the same relaxation with stable neurons substituted away
    (:mod:`compact`; far smaller when few neurons are unstable). Returned bounds are sound (see the
    module docstring). ``skip`` (k, 2) booleans: the (lower, upper) LPs not to solve, e.g. those
    a caller has settled already; they come back as −inf / +inf with status ``"skipped"``.
    """
    t0 = time.perf_counter()
    if compact:
        from .compact import build_compact

        model = build_compact(net, lo, hi, pre_bounds, A, c, delta_bounds, integer=False)
    else:
        model = build_relaxation(net, lo, hi, pre_bounds, A, c, delta_bounds, integer=False)
    C = _objectives(objectives, model.y_cols.size)
    if backend == "highs":
        solve = _HighsLP(model, time_limit, t0)
    elif backend == "cvxpy":
        solve = _CvxpyLP(model, time_limit, t0)
    else:
        raise ValueError(f"unknown LP backend {backend!r} (known: 'highs', 'cvxpy')")
    k, n = C.shape[0], model.x_cols.size
    out = {key: np.full(k, np.nan) for key in ("lower", "upper", "raw_lower", "raw_upper")}
    xs = {"lower": np.full((k, n), np.nan), "upper": np.full((k, n), np.nan)}
    status: list[str] = []
    tol = 0.0
    n_lps = 0
    bound = SafeBound(model)  # the model's transposes once, not per LP
    skip = np.zeros((k, 2), dtype=bool) if skip is None else np.asarray(skip, dtype=bool).reshape(k, 2)
    for r in range(k):
        for side, sense in enumerate(("lower", "upper")):
            if skip[r, side]:
                out[sense][r] = out["raw_" + sense][r] = -np.inf if sense == "lower" else np.inf
                status.append("skipped")
                continue
            cost = np.zeros(model.n_cols)
            cost[model.y_cols] = C[r] if sense == "lower" else -C[r]
            st, val, x, y = solve(cost)
            n_lps += 1
            safe = bound(cost, y)
            status.append(st)
            if sense == "lower":
                out["lower"][r], out["raw_lower"][r] = safe, val
            else:
                out["upper"][r], out["raw_upper"][r] = -safe, -val
            if np.isfinite(val):
                tol = max(tol, abs(val - safe))
            if x is not None:
                xs[sense][r] = x[model.x_cols]
    return LPBounds(
        lower=out["lower"],
        upper=out["upper"],
        raw_lower=out["raw_lower"],
        raw_upper=out["raw_upper"],
        x_lower=xs["lower"],
        x_upper=xs["upper"],
        status=status,
        tolerance=tol,
        n_lps=n_lps,
        time=time.perf_counter() - t0,
        backend=backend,
        n_unstable=model.n_unstable,
    )


class _HighsLP:
    def __init__(self, model: LPModel, time_limit: float | None, t0: float) -> None:
        import highspy

        self.hp = highspy
        self.t0, self.time_limit = t0, time_limit
        h = highs_model(model)
        # HiGHS presolve wrongly declares some of these LPs infeasible (tiny difference bounds
        # next to large activations); the models are small, so solve them without presolve and
        # retry once with presolve if the simplex run itself fails.
        h.setOptionValue("presolve", "off")
        # only the objective changes between solves, so the last basis stays primal feasible:
        # primal simplex restarts from it (measured 5x fewer iterations than dual on MNIST balls)
        h.setOptionValue("simplex_strategy", 4)
        # ... but primal simplex can stall on these degenerate models (MNIST 256x4 ±1 image 97:
        # 489,511 iterations in 20 s on a 110-row LP that dual simplex solves in 979), so each
        # primal run gets an iteration cap and a stalled one is finished by dual simplex, which
        # this model then keeps.
        self.cap = _primal_iteration_cap(model.n_rows, model.n_cols)
        h.setOptionValue("simplex_iteration_limit", self.cap)
        self.stalls = 0
        self.h = h
        self.n = model.n_cols
        self.idx = np.arange(model.n_cols, dtype=np.int32)

    def __call__(self, cost: np.ndarray) -> tuple[str, float, np.ndarray | None, np.ndarray | None]:
        h = self.h
        if self.time_limit is not None:
            left = self.time_limit - (time.perf_counter() - self.t0)
            if left <= 0:
                return "time_limit", np.nan, None, None
            set_time_left(h, left)
        h.changeColsCost(self.n, self.idx, cost)
        run_highs(h)
        ms = h.getModelStatus()
        if ms == self.hp.HighsModelStatus.kIterationLimit:
            self._to_dual()
            run_highs(h)
            ms = h.getModelStatus()
        if ms not in (self.hp.HighsModelStatus.kOptimal, self.hp.HighsModelStatus.kTimeLimit):
            h.clearSolver()
            h.setOptionValue("presolve", "on")
            run_highs(h)
            h.setOptionValue("presolve", "off")
            ms = h.getModelStatus()
        name = h.modelStatusToString(ms)
        sol = h.getSolution()
        if ms == self.hp.HighsModelStatus.kOptimal:
            st = "optimal"
        elif ms == self.hp.HighsModelStatus.kInfeasible:
            st = "infeasible"
        elif ms == self.hp.HighsModelStatus.kTimeLimit:
            st = "time_limit"
        else:
            st = name
        val = float(h.getInfo().objective_function_value) if st == "optimal" else np.nan
        x = np.asarray(sol.col_value) if sol.value_valid else None
        y = np.asarray(sol.row_dual) if sol.dual_valid else None
        return st, val, x, y

    def set_col_bounds(self, col: int, lower: float, upper: float) -> None:
        """Tighten one column's bounds for the LPs still to come (the basis is kept)."""
        self.h.changeColsBounds(1, np.array([col], dtype=np.int32), np.array([lower]), np.array([upper]))

    def _to_dual(self) -> None:
        """Give up primal simplex on this model: dual simplex, no iteration cap, from here on."""
        self.stalls += 1
        self.h.setOptionValue("simplex_strategy", 1)
        self.h.setOptionValue("simplex_iteration_limit", _NO_ITERATION_LIMIT)


_NO_ITERATION_LIMIT = 2**31 - 1  # HiGHS's default simplex_iteration_limit (kHighsIInf)


def _primal_iteration_cap(n_rows: int, n_cols: int) -> int:
    """Simplex iterations after which a warm primal run counts as stalled (a few times what a
    solve from scratch takes on these models: ~1k iterations on a 110 x 840 MNIST LP)."""
    return int(max(5_000, 10 * (n_rows + n_cols)))


class _CvxpyLP:
    def __init__(self, model: LPModel, time_limit: float | None, t0: float) -> None:
        import cvxpy as cp

        self.cp = cp
        self.t0, self.time_limit = t0, time_limit
        A = model.A.tocsr()
        rl, ru = model.row_lower, model.row_upper
        eq = np.isfinite(rl) & np.isfinite(ru) & (rl == ru)
        le = np.isfinite(ru) & ~eq
        ge = np.isfinite(rl) & ~eq
        self.eq, self.le, self.ge = (np.nonzero(m)[0] for m in (eq, le, ge))
        v = cp.Variable(model.n_cols)
        self.cost = cp.Parameter(model.n_cols)
        cons = []
        self.kinds = []
        for kind, rows, rhs in (("eq", self.eq, rl), ("le", self.le, ru), ("ge", self.ge, rl)):
            if rows.size == 0:
                continue
            M = A[rows]
            if kind == "eq":
                cons.append(M @ v == rhs[rows])
            elif kind == "le":
                cons.append(M @ v <= ru[rows])
            else:
                cons.append(M @ v >= rl[rows])
            self.kinds.append((kind, rows))
        cons += [v >= model.col_lower, v <= model.col_upper]
        self.cons = cons
        self.v = v
        self.n_rows = model.n_rows
        self.prob = cp.Problem(cp.Minimize(self.cost @ v), cons)

    def __call__(self, cost: np.ndarray) -> tuple[str, float, np.ndarray | None, np.ndarray | None]:
        cp = self.cp
        opts: dict[str, Any] = {}
        if self.time_limit is not None:
            left = self.time_limit - (time.perf_counter() - self.t0)
            if left <= 0:
                return "time_limit", np.nan, None, None
            opts["time_limit"] = float(left)
        self.cost.value = cost
        try:
            self.prob.solve(solver=cp.HIGHS, **opts)
        except cp.error.SolverError as exc:
            return f"error: {exc}", np.nan, None, None
        st = self.prob.status
        if st not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return str(st), np.nan, None, None
        y = np.zeros(self.n_rows)
        # cvxpy's duals: λ >= 0 for "<=" and ">=" rows, ν for "=="; in the d = c − Aᵀy convention
        # a binding "<=" row has y = −λ, a binding ">=" row y = +λ, an equality y = −ν.
        for con, (kind, rows) in zip(self.cons, self.kinds):
            dv = np.asarray(con.dual_value, dtype=np.float64).ravel()
            y[rows] += -dv if kind in ("eq", "le") else dv
        x = np.asarray(self.v.value, dtype=np.float64).ravel()
        return "optimal", float(self.prob.value), x, y


# --------------------------------------------------------------------------------------------
# the verification method
# --------------------------------------------------------------------------------------------
def method_lp(
    orig: FNN,
    comp: FNN,
    box: Box,
    *,
    backend: str = "highs",
    delta_cuts: bool = True,
    time_limit: float | None = None,
    n_samples: int = 64,
    seed: int = 0,
) -> Discrepancy:
    """Triangle-LP bounds on Φ1 − Φ2 over ``box`` (status ``bounded``).

    Pre-activation bounds are the elementwise tightest of interval, symbolic (merged) and
    differential; the per-output result is also intersected with them (all sound).
    """
    t0 = time.perf_counter()
    box.check_dim(orig.n_inputs)
    net, pre, delta = merged_pre_bounds(orig, comp, box.lower, box.upper)
    res = lp_bounds_merged(
        net,
        box.lower,
        box.upper,
        pre,
        box.A,
        box.c,
        backend=backend,
        delta_bounds=delta if delta_cuts else None,
        time_limit=time_limit,
    )
    lo_pre, hi_pre = pre[-1]
    per = np.stack([np.maximum(res.lower, lo_pre), np.minimum(res.upper, hi_pre)], axis=1)
    cand = [default_candidates(box, n_samples, seed), res.x_lower, res.x_upper]
    lower, w, j, n_c = best_witness(orig, comp, box, np.vstack(cand))
    timed_out = any(s == "time_limit" for s in res.status)
    msg = f"triangle LP on the merged network ({backend}); {res.n_unstable} unstable ReLUs"
    if delta_cuts and delta is not None:
        msg += "; with difference cuts"
    if timed_out:
        msg += "; time limit reached (bounds from the solves that finished)"
    return Discrepancy(
        per_output=per,
        lower=lower,
        upper=float(np.max(np.abs(per))),
        witness=w,
        status="bounded",
        method="lp",
        tolerance=float(res.tolerance),
        witness_output=j,
        message=msg,
        stats={
            "time": time.perf_counter() - t0,
            "method": "lp",
            "backend": backend,
            "backend_version": _versions(backend),
            "lps": res.n_lps,
            "unstable": res.n_unstable,
            "lp_status": res.status,
            "candidates": n_c,
        },
    )


def _versions(backend: str) -> str:
    import highspy

    v = getattr(highspy, "__version__", None)
    if v is None:
        try:
            from importlib.metadata import version

            v = version("highspy")
        except Exception:  # pragma: no cover
            v = "?"
    if backend == "cvxpy":
        import cvxpy

        return f"cvxpy {cvxpy.__version__} / highspy {v}"
    return f"highspy {v}"


__all__ = [
    "LPBounds",
    "LPModel",
    "build_relaxation",
    "lp_bounds_merged",
    "method_lp",
    "safe_lower_bound",
]
