"""VNN-LIB reader and writers: shared properties, round trips, the top-1 encoding, malformed files."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equivrepair.errors import FormatError
from equivrepair.spec.sets import Box, InputSetError, load_input_set
from equivrepair.spec.vnnlib import (
    LinearConstraint,
    VnnlibDimensionError,
    parse_vnnlib,
    read_vnnlib,
    top1_dnf,
    write_epsilon_equivalence,
    write_threshold,
    write_top1,
    write_vnnlib,
)


def _props(data: Path) -> list[Path]:
    return sorted(data.glob("acasxu/prop_*.vnnlib")) + [data / "mnistfc" / "prop_0_0.03.vnnlib"]


# -- shared properties -------------------------------------------------------------------------


def test_parse_all_shared_properties(data):
    props = _props(data)
    assert len(props) == 11
    for f in props:
        acas = "acasxu" in str(f)
        prop = read_vnnlib(f, n_inputs=5 if acas else 784, n_outputs=5 if acas else 10)
        assert prop.cases
        for case in prop.cases:
            assert np.all(np.isfinite(case.box.lower)) and np.all(np.isfinite(case.box.upper))
            assert np.all(case.box.lower <= case.box.upper)
            assert case.output, f"{f}: empty output DNF"
            for conj in case.output:
                for con in conj:
                    assert con.a.shape == (prop.n_outputs,)


def _simple_bounds(path: Path) -> tuple[dict[int, float], dict[int, float]]:
    """Independent reading of one-line ``(assert (<= X_i v))`` / ``(>= ...)`` statements."""
    lo, hi = {}, {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\(assert \((<=|>=) X_(\d+) (\S+)\)\)", line.strip())
        if m:
            (hi if m.group(1) == "<=" else lo)[int(m.group(2))] = float(m.group(3))
    return lo, hi


def test_prop1_box_matches_the_file(data):
    f = data / "acasxu" / "prop_1.vnnlib"
    box = read_vnnlib(f).input_box()
    lo, hi = _simple_bounds(f)
    assert sorted(lo) == sorted(hi) == list(range(5))
    np.testing.assert_array_equal(box.lower, [lo[i] for i in range(5)])
    np.testing.assert_array_equal(box.upper, [hi[i] for i in range(5)])
    assert box.A is None
    # the same through the input-set loader
    np.testing.assert_array_equal(load_input_set(f, n_inputs=5).lower, box.lower)


def test_prop1_output_constraint(data):
    prop = read_vnnlib(data / "acasxu" / "prop_1.vnnlib")
    (conj,) = prop.output_dnf
    (con,) = conj
    t = 3.991125645861615
    assert prop.evaluate_output(np.array([t, 0, 0, 0, 0]))
    assert not prop.evaluate_output(np.array([np.nextafter(t, 0), 9, 9, 9, 9]))
    np.testing.assert_array_equal(con.a, [-1, 0, 0, 0, 0])
    assert con.c == -t


def test_prop2_and_mnist_output_semantics(data):
    rng = np.random.default_rng(0)
    p2 = read_vnnlib(data / "acasxu" / "prop_2.vnnlib")  # unsafe iff Y_0 is maximal
    y = rng.integers(0, 3, size=(500, 5)).astype(float)
    np.testing.assert_array_equal(p2.evaluate_output(y), y[:, 0] >= y.max(axis=1))
    pm = read_vnnlib(data / "mnistfc" / "prop_0_0.03.vnnlib")  # unsafe iff some Y_k >= Y_5, k != 5
    y = rng.integers(0, 4, size=(500, 10)).astype(float)
    others = np.delete(y, 5, axis=1)
    np.testing.assert_array_equal(pm.evaluate_output(y), others.max(axis=1) >= y[:, 5])
    box = pm.input_box()
    lo, hi = _simple_bounds(data / "mnistfc" / "prop_0_0.03.vnnlib")
    np.testing.assert_array_equal(box.lower, [lo[i] for i in range(784)])
    np.testing.assert_array_equal(box.upper, [hi[i] for i in range(784)])


def test_prop6_has_two_input_regions(data):
    f = data / "acasxu" / "prop_6.vnnlib"
    prop = read_vnnlib(f)
    assert len(prop.cases) == 2
    assert prop.cases[0].box.upper[1] == 0.499999896 and prop.cases[0].box.lower[1] == 0.11140846
    assert prop.cases[1].box.upper[1] == -0.11140846 and prop.cases[1].box.lower[1] == -0.499999896
    assert len(prop.output_dnf) == 4
    with pytest.raises(FormatError, match="prop_6.vnnlib.*2 input regions"):
        prop.input_box()
    x_in = prop.cases[1].box.center
    y_bad = np.array([0.0, 1.0, 1.0, 1.0, 1.0])  # COC minimal, but Y_1 <= Y_0 fails for all -> safe
    assert not prop.is_counterexample(x_in, y_bad)
    assert prop.is_counterexample(x_in, np.array([1.0, 0.5, 2.0, 2.0, 2.0]))
    assert not prop.is_counterexample(np.zeros(5), np.array([1.0, 0.5, 2.0, 2.0, 2.0]))  # x outside


# -- syntax ---------------------------------------------------------------------------------------

HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"


def test_terms_numbers_and_connectives():
    text = (
        HEADER
        + "; comment (with parens\n"
        + "(assert (and (<= X_0 1.5e-1) (>= X_0 (- 3.0))))\n"
        + "(assert (<= -2 X_1 +2.5E0))\n"  # chain
        + "(assert (<= (+ X_0 (* 2 X_1) (- X_1)) 1))\n"  # X_0 + X_1 <= 1
        + "(assert (not (> (- Y_0 Y_1) (/ 1 4))))\n"  # Y_0 - Y_1 <= 0.25
        + "(assert (or (= Y_0 0) (< Y_1 (- 1))))\n"
    )
    prop = parse_vnnlib(text, source="t.vnnlib")
    box = prop.input_box()
    np.testing.assert_array_equal(box.lower, [-3.0, -2.0])
    np.testing.assert_array_equal(box.upper, [0.15, 2.5])
    np.testing.assert_array_equal(box.A, [[1.0, 1.0]])
    np.testing.assert_array_equal(box.c, [1.0])
    dnf = prop.output_dnf
    assert len(dnf) == 2
    assert prop.evaluate_output([0.0, 5.0]) is True  # Y_0 = 0, Y_0 - Y_1 <= 0.25
    assert prop.evaluate_output([0.0, -5.0]) is False  # Y_0 - Y_1 = 5 > 0.25
    assert prop.evaluate_output([-2.0, -1.5]) is True  # Y_1 < -1 and Y_0 - Y_1 = -0.5
    assert prop.evaluate_output([-2.0, -1.0]) is False  # strict: Y_1 = -1 is not < -1
    assert prop.evaluate_output([-2.0, -1.0], tol=1e-9) is True


def test_linear_input_constraints_bound_missing_variables():
    text = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    text += "(assert (>= X_0 0))\n(assert (>= X_1 0))\n(assert (<= (+ X_0 X_1) 1))\n(assert (>= Y_0 1))\n"
    box = parse_vnnlib(text).input_box()
    np.testing.assert_allclose(box.upper, [1.0, 1.0])
    assert box.has_constraints


# -- writers: round trips ---------------------------------------------------------------------------


def _random_box(rng: np.random.Generator, n: int) -> Box:
    a = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)
    b = a + np.abs(rng.normal(size=n)) * 10.0 ** rng.integers(-12, 3, size=n)
    return Box(a, b)


def test_epsilon_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    box = _random_box(rng, 7)
    eps = 0.1 + 1e-17  # any double, written with repr
    f = write_epsilon_equivalence(tmp_path / "eps.vnnlib", box, 4, eps)
    text = f.read_text()
    assert text.startswith(";") and "SAT" in text and "counterexample" in text
    prop = read_vnnlib(f, n_inputs=7, n_outputs=4)
    np.testing.assert_array_equal(prop.input_box().lower, box.lower)
    np.testing.assert_array_equal(prop.input_box().upper, box.upper)
    assert len(prop.output_dnf) == 8
    y = rng.normal(scale=0.15, size=(2000, 4))
    y[:10, 2] = eps
    y[10:20, 3] = -eps
    np.testing.assert_array_equal(prop.evaluate_output(y), np.any(np.abs(y) >= eps, axis=1))
    sel = read_vnnlib(write_epsilon_equivalence(tmp_path / "sel.vnnlib", box, 4, 0.05, outputs=[1]))
    np.testing.assert_array_equal(sel.evaluate_output(y), np.abs(y[:, 1]) >= 0.05)
    with pytest.raises(ValueError):
        write_epsilon_equivalence(tmp_path / "bad.vnnlib", box, 4, -1.0)
    with pytest.raises(ValueError):
        write_epsilon_equivalence(tmp_path / "bad.vnnlib", box, 4, 0.1, outputs=[4])


def test_threshold_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    box = _random_box(rng, 3)
    y = rng.normal(size=(1000, 5))
    t = 0.3
    y[:5, 2] = t
    y[5:10, 2] = -t
    up = read_vnnlib(write_threshold(tmp_path / "up.vnnlib", box, 2, t, ">=", n_outputs=5), n_outputs=5)
    lo = read_vnnlib(write_threshold(tmp_path / "lo.vnnlib", box, 2, t, "<=", n_outputs=5), n_outputs=5)
    np.testing.assert_array_equal(up.evaluate_output(y), y[:, 2] >= t)
    np.testing.assert_array_equal(lo.evaluate_output(y), y[:, 2] <= -t)
    np.testing.assert_array_equal(up.input_box().upper, box.upper)
    default_n = read_vnnlib(write_threshold(tmp_path / "d.vnnlib", box, 2, t))
    assert default_n.n_outputs == 3


def test_box_with_linear_constraints_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(3, 4))
    box = Box(-np.ones(4), np.ones(4), A, rng.normal(size=3))
    f = write_vnnlib(tmp_path / "lin.vnnlib", box, 2, [[LinearConstraint([1.0, -2.5], 0.125)]])
    prop = read_vnnlib(f)
    got = prop.input_box()
    np.testing.assert_array_equal(got.A, box.A)
    np.testing.assert_array_equal(got.c, box.c)
    (conj,) = prop.output_dnf
    np.testing.assert_array_equal(conj[0].a, [1.0, -2.5])
    assert conj[0].c == 0.125


def test_cases_roundtrip(data, tmp_path):
    prop = read_vnnlib(data / "acasxu" / "prop_6.vnnlib")
    f = write_vnnlib(tmp_path / "p6.vnnlib", prop.cases, 5, comment="copy of prop 6")
    back = read_vnnlib(f)
    assert len(back.cases) == 2
    for a, b in zip(prop.cases, back.cases):
        np.testing.assert_array_equal(a.box.lower, b.box.lower)
        np.testing.assert_array_equal(a.box.upper, b.box.upper)
        assert set(a.output) == set(b.output)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e300, 1e300, allow_nan=False, allow_subnormal=True),
            st.floats(-1e300, 1e300, allow_nan=False, allow_subnormal=True),
        ),
        min_size=1,
        max_size=6,
    ),
    st.floats(1e-300, 1e300),
)
def test_numbers_read_back_exactly(tmp_path_factory, bounds, eps):
    lo = [min(a, b) for a, b in bounds]
    hi = [max(a, b) for a, b in bounds]
    box = Box(lo, hi)
    f = tmp_path_factory.mktemp("rt") / "p.vnnlib"
    prop = read_vnnlib(write_epsilon_equivalence(f, box, 2, eps))
    np.testing.assert_array_equal(prop.input_box().lower, box.lower)
    np.testing.assert_array_equal(prop.input_box().upper, box.upper)
    assert {con.c for conj in prop.output_dnf for con in conj} == {-eps}


# -- top-1 ----------------------------------------------------------------------------------------


def _top1_brute(y1: np.ndarray, y2: np.ndarray) -> bool:
    """Counterexample iff the two argmax sets are not the same single class."""
    a1 = set(np.flatnonzero(y1 == y1.max()).tolist())
    a2 = set(np.flatnonzero(y2 == y2.max()).tolist())
    return not (len(a1) == 1 and a1 == a2)


def _eval_dnf_by_hand(dnf, y) -> bool:
    return any(all(float(np.dot(c.a, y)) <= c.c for c in conj) for conj in dnf)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_top1_encoding_against_brute_force(tmp_path, m):
    rng = np.random.default_rng(m)
    box = Box(np.zeros(3), np.ones(3))
    prop = read_vnnlib(write_top1(tmp_path / "top1.vnnlib", box, m), n_inputs=3, n_outputs=2 * m)
    assert len(prop.output_dnf) == m * (m - 1)
    assert set(prop.output_dnf) == set(top1_dnf(m))
    # small integers: ties are frequent; plus continuous values
    ys = np.vstack([rng.integers(0, 3, size=(3000, 2 * m)).astype(float), rng.normal(size=(1000, 2 * m))])
    want = np.array([_top1_brute(y[:m], y[m:]) for y in ys])
    got = prop.evaluate_output(ys)
    np.testing.assert_array_equal(got, want)
    assert want.any() and (~want).any()
    for y in ys[:300]:
        assert _eval_dnf_by_hand(prop.output_dnf, y) == _top1_brute(y[:m], y[m:])


def test_top1_exhaustive_small():
    m = 3
    dnf = top1_dnf(m)
    for y in itertools.product([0.0, 1.0, 2.0], repeat=2 * m):
        y = np.array(y)
        assert _eval_dnf_by_hand(dnf, y) == _top1_brute(y[:m], y[m:])


# -- malformed files ------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "bad.vnnlib") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


BOUNDS = "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= X_1 1))\n(assert (>= X_1 0))\n"


@pytest.mark.parametrize(
    "body, line, pattern",
    [
        (BOUNDS + "(assert (<= Y_0 1)\n", 9, r"unbalanced.*never closed"),
        (BOUNDS + "(assert (<= Y_0 1)))\n", 9, r"unbalanced.*closes nothing"),
        (BOUNDS + "(assert (max Y_0 Y_1))\n", 9, r"unknown operator 'max'"),
        (BOUNDS + "(assert (<= (foo Y_0) 1))\n", 9, r"unknown operator 'foo'"),
        (BOUNDS + "(assert (<= Y_7 1))\n", 9, r"undeclared variable Y_7"),
        (BOUNDS + "(assert (<= Z 1))\n", 9, r"unknown token 'Z'"),
        (BOUNDS + "(assert (<= (* Y_0 Y_1) 1))\n", 9, r"nonlinear"),
        (BOUNDS + "(assert (<= X_0 Y_1))\n", 9, r"mixing input and output"),
        (BOUNDS + "(check-everything)\n", 9, r"unknown command"),
        (BOUNDS + "(assert (<= Y_0 1e))\n", 9, r"unknown token '1e'"),
        ("(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (>= X_1 0))\n", 2, r"X_1 has no upper bound"),
        ("(assert (<= X_0 0))\n(assert (>= X_0 1))\n(assert (<= X_1 1))\n(assert (>= X_1 0))\n", 6, r"empty"),
    ],
)
def test_malformed(tmp_path, body, line, pattern):
    f = _write(tmp_path, HEADER + body)
    with pytest.raises(FormatError, match=pattern) as exc:
        read_vnnlib(f)
    msg = str(exc.value)
    assert f"{f}:{line}:" in msg, msg


def test_unbounded_input_names_variable(tmp_path):
    f = _write(tmp_path, HEADER + "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (>= Y_0 1))\n")
    with pytest.raises(FormatError, match=r"X_1 has no lower bound") as exc:
        read_vnnlib(f)
    assert f"{f}:2:" in str(exc.value)  # the declaration of X_1


def test_dimension_mismatch(data, tmp_path):
    f = data / "acasxu" / "prop_1.vnnlib"
    with pytest.raises(FormatError, match=r"prop_1.vnnlib: the file declares 5 inputs.*network has 784") as exc:
        read_vnnlib(f, n_inputs=784)
    assert isinstance(exc.value, InputSetError) and isinstance(exc.value, VnnlibDimensionError)
    with pytest.raises(FormatError, match=r"5 outputs.*network has 10"):
        read_vnnlib(f, n_outputs=10)
    with pytest.raises(FormatError):
        load_input_set(f, n_inputs=784)


def test_declaration_errors(tmp_path):
    f = _write(tmp_path, "(declare-const X_0 Real)\n(declare-const X_2 Real)\n")
    with pytest.raises(FormatError, match=r"bad.vnnlib:2: X_2 is declared but X_1 is not"):
        read_vnnlib(f)
    f = _write(tmp_path, "(declare-const X_0 Int)\n")
    with pytest.raises(FormatError, match=r"bad.vnnlib:1: .*sort 'Int'"):
        read_vnnlib(f)
    f = _write(tmp_path, "(declare-const X_0 Real)\n\n(declare-const X_0 Real)\n")
    with pytest.raises(FormatError, match=r"bad.vnnlib:3: X_0 is declared twice"):
        read_vnnlib(f)
    f = _write(tmp_path, "(declare-const X_0 Real)\n(assert (<= X_0 1))\n stray\n")
    with pytest.raises(FormatError, match=r"bad.vnnlib:3: unexpected token 'stray'"):
        read_vnnlib(f)


def test_vnncomp_style_mixed_disjunction_groups_by_input_region():
    text = (
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
        "(assert (or\n"
        "  (and (<= X_0 1) (>= X_0 0) (>= Y_0 Y_1))\n"
        "  (and (<= X_0 1) (>= X_0 0) (>= Y_0 3))\n"
        "  (and (< X_0 5) (> X_0 2) (<= Y_1 -1))))\n"
    )
    prop = parse_vnnlib(text)
    assert len(prop.cases) == 2
    assert len(prop.cases[0].output) == 2 and len(prop.cases[1].output) == 1
    np.testing.assert_array_equal(prop.cases[1].box.lower, [2.0])  # strict input bounds read as closed
    assert prop.is_counterexample([0.5], [4.0, 5.0])  # Y_0 >= 3 in region 0
    assert not prop.is_counterexample([3.0], [4.0, 5.0])  # region 1 needs Y_1 <= -1
    assert prop.is_counterexample([3.0], [4.0, -1.0])
    with pytest.raises(FormatError, match="different output constraints"):
        prop.evaluate_output([0.0, 0.0])
