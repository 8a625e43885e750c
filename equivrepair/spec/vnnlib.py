"""VNN-LIB 1.0 properties: a reader (s-expression tokenizer and parser) and writers for merged networks.

Reading
-------
:func:`read_vnnlib` understands the VNN-COMP dialect of SMT-LIB: ``(declare-const X_i Real)`` and
``(declare-const Y_j Real)``, and ``(assert F)`` where ``F`` is built from ``and``, ``or``, ``not``,
``true``/``false`` and the comparisons ``<=``, ``>=``, ``<``, ``>``, ``=`` (chains such as
``(<= a b c)`` included). Terms are variables, numbers (``3``, ``-0.5``, ``1.5e-3``) and linear
expressions ``(+ ...)``, ``(- a)``, ``(- a b ...)``, ``(* c t)``, ``(/ t c)``. Comments run from
``;`` to the end of the line; ``set-logic``, ``set-info``, ``check-sat``, ``get-model`` and ``exit``
are accepted and ignored.

The conjunction of all asserts is brought to disjunctive normal form and split into *cases*: each
case is an input region (a :class:`~equivrepair.spec.sets.Box`, with rows ``A x <= c`` for
constraints over several inputs) and an output constraint in DNF, a list of conjunctions of linear
constraints ``a·y <= c``. The semantics is the usual "unsafe region" one: the property is SAT iff
some x in the input region of some case maps to a y that satisfies one of that case's
conjunctions. Input constraints are closed (``<`` reads as ``<=``, which is what every verifier
does); output constraints remember strictness for :meth:`VnnlibProperty.evaluate_output`.

Every error is a :class:`~equivrepair.errors.FormatError` naming the file, the line, and the
offending token or expression.

Writing
-------
The writers emit properties for a merged network (see :mod:`equivrepair.merge`); numbers are
written with ``repr`` so that they read back exactly:

* :func:`write_epsilon_equivalence` (``output="diff"``, Y = y1 − y2): SAT iff some x has
  ``|Y_j| >= ε`` for a selected j;
* :func:`write_threshold`: one side of one output, ``Y_j >= t`` or ``Y_j <= −t`` (bisection);
* :func:`write_top1` (``output="both"``, Y = [y1, y2]): SAT iff the top-1 classes can differ;
* :func:`write_vnnlib`: any box (or list of cases) with any output DNF.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import FormatError
from .sets import Box, InputSetError

__all__ = [
    "LinearConstraint",
    "VnnlibCase",
    "VnnlibProperty",
    "VnnlibDimensionError",
    "parse_vnnlib",
    "read_vnnlib",
    "write_vnnlib",
    "write_epsilon_equivalence",
    "write_threshold",
    "write_top1",
    "top1_dnf",
    "format_number",
    "tokenize",
    "parse_sexprs",
    "SAtom",
    "SList",
]

MAX_DNF_TERMS = 100_000
"""Refuse files whose disjunctive normal form would have more conjunctions than this."""


class VnnlibDimensionError(FormatError, InputSetError):
    """A VNN-LIB file whose number of inputs or outputs does not fit the network."""


# ------------------------------------------------------------------------------------------
# tokenizer and s-expression parser
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SAtom:
    """A token that is not a parenthesis: a symbol, a number or a string."""

    text: str
    line: int
    col: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SList:
    """A parenthesised list; ``line``/``col`` are those of its opening parenthesis."""

    items: tuple[SAtom | SList, ...]
    line: int
    col: int

    def __str__(self) -> str:
        return "(" + " ".join(str(i) for i in self.items) + ")"

    @property
    def head(self) -> str | None:
        return self.items[0].text if self.items and isinstance(self.items[0], SAtom) else None


SExpr = SAtom | SList

_DELIMS = set('();"')


def _where(source: str, line: int) -> str:
    return f"{source}:{line}"


def _show(expr: SExpr | str, limit: int = 80) -> str:
    s = str(expr)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def tokenize(text: str, source: str = "<string>") -> list[tuple[str, int, int]]:
    """Split into ``(token, line, column)``: ``(``, ``)``, strings and atoms; comments dropped."""
    tokens: list[tuple[str, int, int]] = []
    i, n, line, col0 = 0, len(text), 1, 0
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            col0 = i + 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == ";":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif ch in "()":
            tokens.append((ch, line, i - col0 + 1))
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 1
            if j >= n:
                raise FormatError(f"{_where(source, line)}: unterminated string starting {text[i : i + 20]!r}")
            tokens.append((text[i : j + 1], line, i - col0 + 1))
            line += text.count("\n", i, j)
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _DELIMS:
                j += 1
            tokens.append((text[i:j], line, i - col0 + 1))
            i = j
    return tokens


def parse_sexprs(text: str, source: str = "<string>") -> list[SList]:
    """Parse a whole file into its top-level lists; unbalanced parentheses are errors."""
    stack: list[tuple[list[SExpr], int, int]] = []
    top: list[SList] = []
    for tok, line, col in tokenize(text, source):
        if tok == "(":
            stack.append(([], line, col))
        elif tok == ")":
            if not stack:
                raise FormatError(f"{_where(source, line)}: unbalanced parentheses: ')' at column {col} closes nothing")
            items, l0, c0 = stack.pop()
            node = SList(tuple(items), l0, c0)
            if stack:
                stack[-1][0].append(node)
            else:
                top.append(node)
        else:
            if not stack:
                raise FormatError(
                    f"{_where(source, line)}: unexpected token {tok!r} outside parentheses (column {col})"
                )
            stack[-1][0].append(SAtom(tok, line, col))
    if stack:
        items, l0, c0 = stack[-1]
        head = items[0] if items else ""
        raise FormatError(
            f"{_where(source, l0)}: unbalanced parentheses: '(' at column {c0} is never closed"
            + (f" (expression starting with {str(head)!r})" if head else "")
        )
    return top


# ------------------------------------------------------------------------------------------
# linear constraints and properties
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LinearConstraint:
    """``a · y <= c`` (``<`` when ``strict``); ``a`` is dense over all outputs."""

    a: np.ndarray
    c: float
    strict: bool = False
    line: int | None = None

    def __post_init__(self) -> None:
        a = np.array(self.a, dtype=np.float64, copy=True).ravel()
        a.setflags(write=False)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "c", float(self.c))
        if not (np.all(np.isfinite(a)) and math.isfinite(self.c)):
            raise ValueError("linear constraint with a non-finite coefficient")

    @property
    def support(self) -> np.ndarray:
        """Indices of the non-zero coefficients."""
        return np.flatnonzero(self.a)

    def lhs(self, y: np.ndarray) -> np.ndarray | float:
        """``a · y`` summed over the non-zero coefficients only (so ``Y_i − Y_j`` is one rounding)."""
        y = np.asarray(y, dtype=np.float64)
        idx = self.support
        if idx.size == 0:
            return np.zeros(y.shape[:-1]) if y.ndim > 1 else 0.0
        return y[..., idx] @ self.a[idx]

    def holds(self, y: np.ndarray, tol: float = 0.0) -> np.ndarray | bool:
        v = self.lhs(y)
        return v < self.c + tol if self.strict else v <= self.c + tol

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinearConstraint):
            return NotImplemented
        return bool(np.array_equal(self.a, other.a) and self.c == other.c and self.strict == other.strict)

    def __hash__(self) -> int:
        return hash((self.a.tobytes(), self.c, self.strict))

    def __repr__(self) -> str:
        return f"LinearConstraint{_constraint_text(self.a, self.c, self.strict, 'Y')}"


Conjunction = tuple[LinearConstraint, ...]
DNF = tuple[Conjunction, ...]


class VnnlibCase(NamedTuple):
    """One input region and the unsafe output set (DNF) that goes with it."""

    box: Box
    output: DNF


def _dnf_holds(dnf: DNF, y: np.ndarray, tol: float) -> np.ndarray | bool:
    y = np.asarray(y, dtype=np.float64)
    batch = y.ndim > 1
    out = np.zeros(y.shape[0], dtype=bool) if batch else False
    for conj in dnf:
        ok = np.ones(y.shape[0], dtype=bool) if batch else True
        for con in conj:
            ok = ok & con.holds(y, tol)
        out = out | ok
    return out if batch else bool(out)


@dataclass(frozen=True, eq=False)
class VnnlibProperty:
    """A parsed VNN-LIB property: ``cases`` is a list of (input box, unsafe output DNF)."""

    source: str
    n_inputs: int
    n_outputs: int
    cases: tuple[VnnlibCase, ...]

    def input_box(self) -> Box:
        """The input set; an error when the file has several input regions (then use ``cases``)."""
        if len(self.cases) != 1:
            raise FormatError(
                f"{self.source}: the property has {len(self.cases)} input regions (a disjunction over inputs); "
                "a single input box is not defined: use .cases"
            )
        return self.cases[0].box

    @property
    def output_dnf(self) -> DNF:
        """The unsafe output set, when all cases share it (an error otherwise)."""
        first = self.cases[0].output
        for case in self.cases[1:]:
            if case.output != first:
                raise FormatError(f"{self.source}: the input regions have different output constraints; use .cases")
        return first

    def output_matrices(self, case: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each conjunction of a case's output DNF as ``(A, b)`` meaning ``A y <= b`` (strictness dropped)."""
        mats = []
        for conj in self.cases[case].output:
            if conj:
                A = np.vstack([con.a for con in conj])
                b = np.array([con.c for con in conj])
            else:
                A, b = np.zeros((0, self.n_outputs)), np.zeros(0)
            mats.append((A, b))
        return mats

    def evaluate_output(self, y: Any, x: Any = None, tol: float = 0.0) -> np.ndarray | bool:
        """Does ``y`` (one output vector or a batch) lie in the unsafe output set?

        With several cases whose output sets differ, pass ``x`` too: the cases whose box contains
        it decide. ``tol`` loosens every constraint (``a·y <= c + tol``).
        """
        y = np.asarray(y, dtype=np.float64)
        if y.shape[-1] != self.n_outputs:
            raise VnnlibDimensionError(
                f"{self.source}: output vector has {y.shape[-1]} values, property has {self.n_outputs} outputs"
            )
        if x is None:
            return _dnf_holds(self.output_dnf, y, tol)
        return self.is_counterexample(x, y, tol=tol, input_tol=0.0)

    def is_counterexample(self, x: Any, y: Any, tol: float = 0.0, input_tol: float = 1e-9) -> np.ndarray | bool:
        """``x`` in some case's input region and ``y`` in that case's unsafe output set."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape[-1] != self.n_inputs:
            raise VnnlibDimensionError(
                f"{self.source}: input vector has {x.shape[-1]} values, property has {self.n_inputs} inputs"
            )
        batch = y.ndim > 1
        out = np.zeros(y.shape[0], dtype=bool) if batch else False
        for case in self.cases:
            out = out | (case.box.contains(x, tol=input_tol) & _dnf_holds(case.output, y, tol))
        return out if batch else bool(out)


# ------------------------------------------------------------------------------------------
# from s-expressions to linear atoms
# ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_VARNAME = re.compile(r"([XY])_(0|[1-9]\d*)")
_IGNORED_COMMANDS = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}
_COMPARISONS = {"<=", ">=", "<", ">", "="}

Var = tuple[str, int]  # ("X", i) or ("Y", j)


class _Lin:
    """A linear expression ``sum coef[v] * v + const``."""

    __slots__ = ("coef", "const")

    def __init__(self, coef: dict[Var, float] | None = None, const: float = 0.0) -> None:
        self.coef = coef or {}
        self.const = const

    def is_const(self) -> bool:
        return all(v == 0.0 for v in self.coef.values())

    def scaled(self, k: float) -> _Lin:
        return _Lin({v: k * a for v, a in self.coef.items()}, k * self.const)

    def plus(self, other: _Lin, sign: float = 1.0) -> _Lin:
        coef = dict(self.coef)
        for v, a in other.coef.items():
            coef[v] = coef[v] + sign * a if v in coef else sign * a
        return _Lin(coef, self.const + sign * other.const)


@dataclass
class _Atom:
    """``sum coef·v <= rhs`` (``<`` if strict), with where it came from."""

    coef: dict[Var, float]
    rhs: float
    strict: bool
    line: int
    expr: str

    def kinds(self) -> set[str]:
        return {v[0] for v, a in self.coef.items() if a != 0.0}

    def negated(self) -> _Atom:
        # not (a·v <= r)  <=>  -a·v < -r ;  not (a·v < r)  <=>  -a·v <= -r
        return _Atom({v: -a for v, a in self.coef.items()}, -self.rhs, not self.strict, self.line, f"(not {self.expr})")

    def constant_truth(self) -> bool:
        return 0.0 < self.rhs if self.strict else 0.0 <= self.rhs


# formulas: ("atom", _Atom) | ("and", [f...]) | ("or", [f...]) | ("const", bool)
Formula = tuple


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: dict[Var, int] = {}  # variable -> line of its declaration

    def err(self, line: int, msg: str, expr: SExpr | str | None = None) -> FormatError:
        tail = f": {_show(expr)}" if expr is not None else ""
        return FormatError(f"{_where(self.source, line)}: {msg}{tail}")

    # -- commands ---------------------------------------------------------------------------
    def declare(self, cmd: SList) -> None:
        if len(cmd.items) != 3 or not all(isinstance(i, SAtom) for i in cmd.items[1:]):
            raise self.err(cmd.line, "malformed declaration, expected (declare-const NAME Real)", cmd)
        name, sort = cmd.items[1], cmd.items[2]
        m = _VARNAME.fullmatch(name.text)
        if not m:
            raise self.err(
                cmd.line,
                f"unsupported variable name {name.text!r}: VNN-LIB 1.0 names inputs X_0, X_1, ... and outputs Y_0, Y_1, ...",
                cmd,
            )
        if sort.text != "Real":
            raise self.err(cmd.line, f"variable {name.text} has sort {sort.text!r}; only Real is supported", cmd)
        var = (m.group(1), int(m.group(2)))
        if var in self.declared:
            raise self.err(cmd.line, f"{name.text} is declared twice (first at line {self.declared[var]})", cmd)
        self.declared[var] = cmd.line

    # -- terms ------------------------------------------------------------------------------
    def term(self, e: SExpr) -> _Lin:
        if isinstance(e, SAtom):
            if _NUMBER.fullmatch(e.text):
                return _Lin({}, float(e.text))
            m = _VARNAME.fullmatch(e.text)
            if m:
                var = (m.group(1), int(m.group(2)))
                if var not in self.declared:
                    raise self.err(e.line, f"undeclared variable {e.text} (add (declare-const {e.text} Real))", e)
                return _Lin({var: 1.0}, 0.0)
            if e.text in ("true", "false"):
                raise self.err(e.line, f"expected a number or variable, got the constraint {e.text}", e)
            raise self.err(e.line, f"unknown token {e.text!r}: expected a number or a declared variable", e)
        op = e.head
        args = e.items[1:]
        if op is None:
            raise self.err(e.line, "expected an operator after '('", e)
        if op in ("+", "-", "*", "/"):
            if not args:
                raise self.err(e.line, f"operator {op} needs arguments", e)
            vals = [self.term(a) for a in args]
            if op == "+":
                out = vals[0]
                for v in vals[1:]:
                    out = out.plus(v)
                return out
            if op == "-":
                if len(vals) == 1:
                    return vals[0].scaled(-1.0)
                out = vals[0]
                for v in vals[1:]:
                    out = out.plus(v, -1.0)
                return out
            if op == "*":
                out = _Lin({}, 1.0)
                for a, v in zip(args, vals):
                    if v.is_const():
                        out = out.scaled(v.const)
                    elif out.is_const():
                        out = v.scaled(out.const)
                    else:
                        raise self.err(a.line, "nonlinear term: a product of two variable expressions", e)
                return out
            # division by constants only
            out = vals[0]
            for a, v in zip(args[1:], vals[1:]):
                if not v.is_const():
                    raise self.err(a.line, "nonlinear term: division by a variable expression", e)
                if v.const == 0.0:
                    raise self.err(a.line, "division by zero", e)
                out = out.scaled(1.0 / v.const)
            return out
        if op in _COMPARISONS or op in ("and", "or", "not"):
            raise self.err(e.line, f"expected a number or variable, got the constraint ({op} ...)", e)
        raise self.err(e.line, f"unknown operator {op!r} in a term (known: + - * /)", e)

    # -- formulas ---------------------------------------------------------------------------
    def formula(self, e: SExpr) -> Formula:
        if isinstance(e, SAtom):
            if e.text == "true":
                return ("const", True)
            if e.text == "false":
                return ("const", False)
            raise self.err(e.line, f"expected a constraint, got {e.text!r}", e)
        op = e.head
        args = e.items[1:]
        if op is None:
            raise self.err(e.line, "expected an operator after '('", e)
        if op in ("and", "or"):
            if not args:
                return ("const", op == "and")
            return (op, [self.formula(a) for a in args])
        if op == "not":
            if len(args) != 1:
                raise self.err(e.line, "'not' takes exactly one argument", e)
            return _negate(self.formula(args[0]))
        if op in _COMPARISONS:
            if len(args) < 2:
                raise self.err(e.line, f"comparison {op} needs at least two arguments", e)
            terms = [self.term(a) for a in args]
            atoms: list[Formula] = []
            text = _show(e, 200)
            for lhs, rhs in zip(terms, terms[1:]):
                if op in ("<=", "<"):
                    atoms.append(("atom", _atom(lhs, rhs, op == "<", e.line, text)))
                elif op in (">=", ">"):
                    atoms.append(("atom", _atom(rhs, lhs, op == ">", e.line, text)))
                else:
                    atoms.append(("atom", _atom(lhs, rhs, False, e.line, text)))
                    atoms.append(("atom", _atom(rhs, lhs, False, e.line, text)))
            return atoms[0] if len(atoms) == 1 else ("and", atoms)
        if op in ("+", "-", "*", "/"):
            raise self.err(e.line, f"expected a constraint, got the term ({op} ...)", e)
        raise self.err(e.line, f"unknown operator {op!r} (known: and or not <= >= < > =)", e)


def _atom(lhs: _Lin, rhs: _Lin, strict: bool, line: int, text: str) -> _Atom:
    """``lhs <= rhs`` as ``sum coef·v <= const``; ``(<= X_0 c)`` gives coefficient 1 and ``c`` exactly."""
    diff = lhs.plus(rhs, -1.0)
    coef = {v: a for v, a in diff.coef.items() if a != 0.0}
    return _Atom(coef, -diff.const if diff.const != 0.0 else 0.0, strict, line, text)


def _negate(f: Formula) -> Formula:
    kind = f[0]
    if kind == "atom":
        return ("atom", f[1].negated())
    if kind == "const":
        return ("const", not f[1])
    if kind == "and":
        return ("or", [_negate(g) for g in f[1]])
    return ("and", [_negate(g) for g in f[1]])


def _dnf(f: Formula, source: str) -> list[list[_Atom]]:
    kind = f[0]
    if kind == "atom":
        return [[f[1]]]
    if kind == "const":
        return [[]] if f[1] else []
    parts = [_dnf(g, source) for g in f[1]]
    if kind == "or":
        out = [c for p in parts for c in p]
    else:
        out = [[]]
        for p in parts:
            if len(out) * len(p) > MAX_DNF_TERMS:
                raise FormatError(f"{source}: the disjunctive normal form has more than {MAX_DNF_TERMS} terms")
            out = [a + b for a in out for b in p]
    if len(out) > MAX_DNF_TERMS:
        raise FormatError(f"{source}: the disjunctive normal form has more than {MAX_DNF_TERMS} terms")
    return out


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def read_vnnlib(path: str | Path, n_inputs: int | None = None, n_outputs: int | None = None) -> VnnlibProperty:
    """Read a VNN-LIB file (``.vnnlib`` or ``.vnnlib.gz``); check its sizes when given."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"VNN-LIB file not found: {p}")
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            text = p.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise FormatError(f"{p}: cannot read as text ({exc})") from None
    return parse_vnnlib(text, source=str(p), n_inputs=n_inputs, n_outputs=n_outputs)


def parse_vnnlib(
    text: str, source: str = "<string>", n_inputs: int | None = None, n_outputs: int | None = None
) -> VnnlibProperty:
    """Parse VNN-LIB text; ``source`` names it in error messages."""
    reader = _Reader(source)
    asserts: list[tuple[SList, Formula]] = []
    for cmd in parse_sexprs(text, source):
        head = cmd.head
        if head == "declare-const":
            reader.declare(cmd)
        elif head == "assert":
            if len(cmd.items) != 2:
                raise reader.err(cmd.line, "assert takes exactly one formula", cmd)
            asserts.append((cmd, reader.formula(cmd.items[1])))
        elif head in _IGNORED_COMMANDS:
            continue
        elif head is None:
            raise reader.err(cmd.line, "expected a command such as declare-const or assert", cmd)
        else:
            raise reader.err(cmd.line, f"unknown command {head!r} (known: declare-const, assert)", cmd)

    nx = _count(reader, "X")
    ny = _count(reader, "Y")
    if nx == 0:
        raise FormatError(f"{source}: no input variables declared (expected (declare-const X_0 Real) ...)")
    if n_inputs is not None and nx != n_inputs:
        raise VnnlibDimensionError(
            f"{source}: the file declares {nx} inputs (X_0..X_{nx - 1}) but the network has {n_inputs}"
        )
    if n_outputs is not None and ny != n_outputs:
        raise VnnlibDimensionError(
            f"{source}: the file declares {ny} outputs"
            + (f" (Y_0..Y_{ny - 1})" if ny else "")
            + f" but the network has {n_outputs}"
        )
    cases = _build_cases(reader, asserts, nx, ny)
    return VnnlibProperty(source, nx, ny, tuple(cases))


def _count(reader: _Reader, kind: str) -> int:
    idx = sorted(i for k, i in reader.declared if k == kind)
    for want, got in enumerate(idx):
        if want != got:
            raise FormatError(
                f"{_where(reader.source, reader.declared[(kind, got)])}: {kind}_{got} is declared but "
                f"{kind}_{want} is not; variables must be numbered {kind}_0, {kind}_1, ... without gaps"
            )
    return len(idx)


def _split(reader: _Reader, conj: list[_Atom]) -> tuple[list[_Atom], list[_Atom]] | None:
    """Separate input atoms from output atoms; None when the conjunction is constant-false."""
    xs, ys = [], []
    for atom in conj:
        kinds = atom.kinds()
        if not kinds:
            if atom.constant_truth():
                continue
            return None
        if kinds == {"X", "Y"}:
            raise reader.err(atom.line, "a constraint mixing input and output variables is not supported", atom.expr)
        (xs if kinds == {"X"} else ys).append(atom)
    return xs, ys


def _product(lists: list[list[list[_Atom]]], source: str) -> list[list[_Atom]]:
    out: list[list[_Atom]] = [[]]
    for options in lists:
        if len(out) * len(options) > MAX_DNF_TERMS:
            raise FormatError(f"{source}: the disjunctive normal form has more than {MAX_DNF_TERMS} terms")
        out = [a + b for a in out for b in options]
    return out


def _build_cases(reader: _Reader, asserts: list[tuple[SList, Formula]], nx: int, ny: int) -> list[VnnlibCase]:
    source = reader.source
    common_x: list[_Atom] = []
    common_y: list[_Atom] = []
    x_multi: list[list[list[_Atom]]] = []
    y_multi: list[list[list[_Atom]]] = []
    mixed: list[list[tuple[list[_Atom], list[_Atom]]]] = []
    for cmd, formula in asserts:
        terms = [s for s in (_split(reader, c) for c in _dnf(formula, source)) if s is not None]
        if not terms:
            raise reader.err(cmd.line, "this assert can never hold (the property is vacuous)", cmd)
        if len(terms) == 1:
            common_x += terms[0][0]
            common_y += terms[0][1]
        elif all(not ys for _, ys in terms):
            x_multi.append([xs for xs, _ in terms])
        elif all(not xs for xs, _ in terms):
            y_multi.append([ys for _, ys in terms])
        else:
            mixed.append(terms)

    out_base = _product(y_multi, source)
    input_choices = _product(x_multi, source)
    mixed_choices: list[tuple[list[_Atom], list[_Atom]]] = [([], [])]
    for options in mixed:
        if len(mixed_choices) * len(options) > MAX_DNF_TERMS:
            raise FormatError(f"{source}: the disjunctive normal form has more than {MAX_DNF_TERMS} terms")
        mixed_choices = [(a[0] + b[0], a[1] + b[1]) for a in mixed_choices for b in options]
    if len(input_choices) * len(mixed_choices) * len(out_base) > MAX_DNF_TERMS:
        raise FormatError(f"{source}: the disjunctive normal form has more than {MAX_DNF_TERMS} terms")

    cases: dict[bytes, tuple[Box, list[Conjunction]]] = {}
    for ic in input_choices:
        for mx, my in mixed_choices:
            box = _box(reader, common_x + ic + mx, nx, len(cases))
            key = _box_key(box)
            conjs = [tuple(_out_constraint(a, ny) for a in common_y + my + yb) for yb in out_base]
            if key in cases:
                seen = cases[key][1]
                seen.extend(c for c in conjs if c not in seen)
            else:
                cases[key] = (box, conjs)
    result = []
    for k, (box, conjs) in enumerate(cases.values()):
        label = Path(source).name if len(cases) == 1 else f"{Path(source).name} case {k}"
        box = Box(box.lower, box.upper, box.A, box.c, label)
        result.append(VnnlibCase(box, tuple(conjs)))
    return result


def _box_key(box: Box) -> bytes:
    parts = [box.lower.tobytes(), box.upper.tobytes()]
    if box.A is not None:
        parts += [box.A.tobytes(), box.c.tobytes()]
    return b"|".join(parts)


def _out_constraint(atom: _Atom, ny: int) -> LinearConstraint:
    a = np.zeros(ny)
    for (_, j), v in atom.coef.items():
        a[j] += v
    return LinearConstraint(a, atom.rhs, atom.strict, atom.line)


def _box(reader: _Reader, atoms: list[_Atom], nx: int, case_no: int) -> Box:
    source = reader.source
    lo = np.full(nx, -np.inf)
    hi = np.full(nx, np.inf)
    lo_line = [0] * nx
    hi_line = [0] * nx
    rows: list[np.ndarray] = []
    rhs: list[float] = []
    for atom in atoms:
        items = [(i, a) for (_, i), a in atom.coef.items() if a != 0.0]
        if len(items) == 1:
            i, a = items[0]
            bound = atom.rhs / a + 0.0  # + 0.0 turns -0.0 into 0.0
            if a > 0:
                if bound < hi[i]:
                    hi[i], hi_line[i] = bound, atom.line
            elif bound > lo[i]:
                lo[i], lo_line[i] = bound, atom.line
        else:
            row = np.zeros(nx)
            for i, a in items:
                row[i] += a
            rows.append(row)
            rhs.append(atom.rhs)
    which = f" (input region {case_no})" if case_no else ""
    for i in range(nx):
        if lo[i] > hi[i]:
            raise FormatError(
                f"{_where(source, max(lo_line[i], hi_line[i]))}: the input region{which} is empty: "
                f"X_{i} >= {lo[i]!r} (line {lo_line[i]}) and X_{i} <= {hi[i]!r} (line {hi_line[i]})"
            )
    A = np.vstack(rows) if rows else None
    c = np.array(rhs) if rows else None
    missing = [i for i in range(nx) if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
    if missing and A is not None:
        lo, hi = _lp_bounds(reader, lo, hi, A, c, missing, which)
        missing = []
    if missing:
        i = missing[0]
        side = "lower" if not np.isfinite(lo[i]) else "upper"
        op = ">=" if side == "lower" else "<="
        more = f" (and {len(missing) - 1} more inputs)" if len(missing) > 1 else ""
        raise FormatError(
            f"{_where(source, reader.declared[('X', i)])}: input X_{i} has no {side} bound{which}{more}; "
            f"input sets must be bounded: add (assert ({op} X_{i} VALUE))"
        )
    try:
        return Box(lo, hi, A, c)
    except InputSetError as exc:
        raise FormatError(f"{source}: {exc}") from None


def _lp_bounds(
    reader: _Reader, lo: np.ndarray, hi: np.ndarray, A: np.ndarray, c: np.ndarray, missing: list[int], which: str
) -> tuple[np.ndarray, np.ndarray]:
    """Bound inputs that only multi-variable constraints limit, by linear programming."""
    from scipy.optimize import linprog

    lo, hi = lo.copy(), hi.copy()
    bounds = [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b) for a, b in zip(lo, hi)]
    for i in missing:
        for sign, arr, side in ((1.0, lo, "lower"), (-1.0, hi, "upper")):
            if np.isfinite(arr[i]):
                continue
            obj = np.zeros(lo.size)
            obj[i] = sign
            res = linprog(obj, A_ub=A, b_ub=c, bounds=bounds, method="highs")
            if res.status == 2:
                raise FormatError(f"{reader.source}: the input constraints{which} are infeasible")
            if res.status != 0:
                raise FormatError(
                    f"{_where(reader.source, reader.declared[('X', i)])}: input X_{i} has no {side} bound{which}; "
                    "input sets must be bounded"
                )
            arr[i] = sign * res.fun
    return lo, hi


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def format_number(v: float) -> str:
    """``repr`` of the float: the shortest text that reads back to exactly the same double."""
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"cannot write the non-finite number {v!r} to VNN-LIB")
    return repr(f)


def _linear_text(a: np.ndarray, var: str) -> str:
    idx = np.flatnonzero(a)
    if idx.size == 0:
        return "0.0"
    terms = [f"{var}_{i}" if a[i] == 1.0 else f"(* {format_number(a[i])} {var}_{i})" for i in idx]
    return terms[0] if len(terms) == 1 else "(+ " + " ".join(terms) + ")"


def _constraint_text(a: np.ndarray, c: float, strict: bool, var: str) -> str:
    """``a·v <= c`` in the most readable form that reads back to the same ``(a, c)`` exactly."""
    le, ge = ("<", ">") if strict else ("<=", ">=")
    idx = np.flatnonzero(a)
    if idx.size == 1 and a[idx[0]] in (1.0, -1.0):
        i = idx[0]
        if a[i] == 1.0:
            return f"({le} {var}_{i} {format_number(c)})"
        return f"({ge} {var}_{i} {format_number(-c)})"
    if idx.size == 2 and c == 0.0 and sorted(a[idx].tolist()) == [-1.0, 1.0]:
        p = idx[a[idx] == 1.0][0]
        n = idx[a[idx] == -1.0][0]
        return f"({le} {var}_{p} {var}_{n})"
    return f"({le} {_linear_text(a, var)} {format_number(c)})"


def _input_texts(box: Box) -> list[str]:
    out = []
    for i, (lo, hi) in enumerate(zip(box.lower, box.upper)):
        out.append(f"(<= X_{i} {format_number(hi)})")
        out.append(f"(>= X_{i} {format_number(lo)})")
    if box.A is not None:
        for row, c in zip(box.A, box.c):
            out.append(_constraint_text(row, c, False, "X"))
    return out


def _coerce_dnf(dnf: Sequence[Sequence[Any]], n_outputs: int) -> DNF:
    out = []
    for conj in dnf:
        cons = []
        for con in conj:
            if not isinstance(con, LinearConstraint):
                a, c = con[0], con[1]
                con = LinearConstraint(a, c, bool(con[2]) if len(con) > 2 else False)
            if con.a.size != n_outputs:
                raise ValueError(f"output constraint has {con.a.size} coefficients, expected {n_outputs}")
            cons.append(con)
        out.append(tuple(cons))
    return tuple(out)


def _comment_lines(comment: str | Sequence[str]) -> list[str]:
    lines = comment.splitlines() if isinstance(comment, str) else [ln for c in comment for ln in str(c).splitlines()]
    return [f"; {ln}".rstrip() for ln in lines]


def write_vnnlib(
    path: str | Path,
    region: Box | Sequence[VnnlibCase | tuple[Box, Any]],
    n_outputs: int,
    output_dnf: Sequence[Sequence[Any]] | None = None,
    comment: str | Sequence[str] = "",
) -> Path:
    """Write a property: an input box with an unsafe output DNF, or a list of (box, DNF) cases.

    ``output_dnf`` is a list of conjunctions of :class:`LinearConstraint` (or ``(a, c)`` pairs
    meaning ``a·y <= c``); ``[[]]`` means "any output", ``[]`` means "no output" (trivially UNSAT).
    Several cases are written VNN-COMP style as one ``(or (and <input bounds> <output constraints>) ...)``.
    """
    if isinstance(region, Box):
        if output_dnf is None:
            raise ValueError("write_vnnlib: output_dnf is required with a single box")
        cases = [(region, _coerce_dnf(output_dnf, n_outputs))]
    else:
        if output_dnf is not None:
            raise ValueError("write_vnnlib: with a list of cases, each case carries its own output DNF")
        cases = [(box, _coerce_dnf(dnf, n_outputs)) for box, dnf in region]
        if not cases:
            raise ValueError("write_vnnlib: no cases")
    n_in = cases[0][0].dim
    for box, _ in cases:
        box.check_dim(n_in, "first input region")
    lines = _comment_lines(comment)
    if lines:
        lines.append("")
    lines += [f"(declare-const X_{i} Real)" for i in range(n_in)]
    lines.append("")
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_outputs)]
    lines.append("")
    if len(cases) == 1:
        box, dnf = cases[0]
        lines.append("; input region")
        lines += [f"(assert {t})" for t in _input_texts(box)]
        lines.append("")
        lines.append("; unsafe outputs")
        lines += _dnf_asserts(dnf)
    else:
        disjuncts = []
        for box, dnf in cases:
            xs = _input_texts(box)
            for conj in dnf:
                ys = [_constraint_text(con.a, con.c, con.strict, "Y") for con in conj]
                disjuncts.append("    (and " + " ".join(xs + ys) + ")")
        lines.append("; input regions with their unsafe outputs")
        if disjuncts:
            lines += ["(assert (or", *disjuncts, "))"]
        else:
            lines.append("(assert false)")
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _dnf_asserts(dnf: DNF) -> list[str]:
    if not dnf:
        return ["(assert false)"]
    if len(dnf) == 1:
        return [f"(assert {_constraint_text(c.a, c.c, c.strict, 'Y')})" for c in dnf[0]]
    if any(not conj for conj in dnf):
        return []  # one conjunction is empty, i.e. true: any output is unsafe
    out = ["(assert (or"]
    for conj in dnf:
        out.append("    (and " + " ".join(_constraint_text(c.a, c.c, c.strict, "Y") for c in conj) + ")")
    out.append("))")
    return out


def _unit(j: int, n: int, sign: float = 1.0) -> np.ndarray:
    a = np.zeros(n)
    a[j] = sign
    return a


def _check_outputs(outputs: Sequence[int] | None, n: int) -> list[int]:
    if n < 1:
        raise ValueError(f"n_outputs must be >= 1, got {n}")
    sel = list(range(n)) if outputs is None else [int(j) for j in outputs]
    if not sel:
        raise ValueError("no outputs selected")
    for j in sel:
        if not 0 <= j < n:
            raise ValueError(f"output index {j} out of range for {n} outputs")
    return sel


def write_epsilon_equivalence(
    path: str | Path, box: Box, n_outputs: int, epsilon: float, outputs: Sequence[int] | None = None
) -> Path:
    """ε-equivalence of a merged network (``output="diff"``, ``Y_j = (Φ1(x) − Φ2(x))_j``).

    Unsafe set: ``Y_j >= ε`` or ``Y_j <= −ε`` for some selected j, an ``or`` of 2·|outputs| single
    constraints. SAT means a counterexample x with ``|Φ1(x) − Φ2(x)|_j >= ε``; UNSAT proves
    ``|Φ1(x) − Φ2(x)|_j < ε`` for every x in the box and every selected j.
    """
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    sel = _check_outputs(outputs, n_outputs)
    dnf = []
    for j in sel:
        dnf.append((LinearConstraint(_unit(j, n_outputs, -1.0), -eps),))  # Y_j >= eps
        dnf.append((LinearConstraint(_unit(j, n_outputs), -eps),))  # Y_j <= -eps
    which = "all outputs" if outputs is None else "outputs " + ", ".join(map(str, sel))
    comment = [
        "epsilon-equivalence of a merged network (equivrepair merge, output=diff): Y_j = (Phi1(x) - Phi2(x))_j",
        f"epsilon = {format_number(eps)}, checked on {which}",
        "SAT   = counterexample: some x in the input box has |Y_j| >= epsilon",
        "UNSAT = the networks are epsilon-equivalent on the box (|Y_j| < epsilon everywhere)",
    ]
    return write_vnnlib(path, box, n_outputs, dnf, comment)


def write_threshold(
    path: str | Path, box: Box, output: int, threshold: float, sense: str = ">=", n_outputs: int | None = None
) -> Path:
    """One side of one output of a merged network, for bisection on the discrepancy.

    ``sense=">="``: unsafe iff ``Y_output >= threshold``; ``sense="<="``: unsafe iff
    ``Y_output <= −threshold`` (the mirror image, so the same t bisects both sides of |Y_j|).
    SAT means the output reaches the level somewhere in the box; UNSAT means it stays strictly
    below (above). ``n_outputs`` (the merged network's output count) defaults to ``output + 1``.
    """
    t = float(threshold)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    if sense not in (">=", "<="):
        raise ValueError(f"sense must be '>=' or '<=', got {sense!r}")
    n = output + 1 if n_outputs is None else int(n_outputs)
    (j,) = _check_outputs([output], n)
    if sense == ">=":
        con = LinearConstraint(_unit(j, n, -1.0), -t)  # -Y_j <= -t
        text, holds = f"Y_{j} >= {format_number(t)}", f"Y_{j} < {format_number(t)}"
    else:
        con = LinearConstraint(_unit(j, n), -t)  # Y_j <= -t
        text, holds = f"Y_{j} <= {format_number(-t)}", f"Y_{j} > {format_number(-t)}"
    comment = [
        "one-sided threshold on a merged network (equivrepair merge, output=diff): Y_j = (Phi1(x) - Phi2(x))_j",
        f"SAT   = some x in the input box has {text}",
        f"UNSAT = {holds} for every x in the box",
    ]
    return write_vnnlib(path, box, n, [(con,)], comment)


def top1_dnf(n_outputs: int) -> DNF:
    """The unsafe set "the top-1 classes may differ" over ``[y1, y2]`` (2·n_outputs values).

    OR over i and j ≠ i of: ``y1_i >= y1_k`` for all k ≠ i (i is a top class of Φ1) and
    ``y2_j >= y2_i`` (i is not the strict unique top class of Φ2). It holds iff NOT (both argmaxes
    are unique and equal): ties, in y1 or in y2, count as counterexamples.
    """
    m = int(n_outputs)
    if m < 2:
        raise ValueError(f"top-1 needs at least 2 outputs per network, got {m}")
    dnf = []
    for i in range(m):
        base = []
        for k in range(m):
            if k != i:
                a = np.zeros(2 * m)
                a[k], a[i] = 1.0, -1.0  # y1_k - y1_i <= 0
                base.append(LinearConstraint(a, 0.0))
        for j in range(m):
            if j != i:
                a = np.zeros(2 * m)
                a[m + i], a[m + j] = 1.0, -1.0  # y2_i - y2_j <= 0
                dnf.append(tuple(base) + (LinearConstraint(a, 0.0),))
    return tuple(dnf)


def write_top1(path: str | Path, box: Box, n_outputs: int) -> Path:
    """Top-1 equivalence of a merged network built with ``output="both"``.

    The network has 2·n_outputs outputs: ``Y_0..Y_{m-1} = Φ1(x)`` and ``Y_m..Y_{2m-1} = Φ2(x)``.
    Unsafe set (:func:`top1_dnf`): some class i is a top class of Φ1 and some other class j scores
    at least as high as i in Φ2. SAT iff some x in the box does NOT have the same unique argmax
    in both networks, so ties count as counterexamples; UNSAT proves that on the whole box both
    argmaxes are unique and equal. Because verifiers read inequalities as closed, a box that
    crosses a decision boundary of either network is SAT even when the two networks are equal.
    """
    m = int(n_outputs)
    comment = [
        f"top-1 equivalence of a merged network (equivrepair merge, output=both): Y_0..Y_{m - 1} = Phi1(x), "
        f"Y_{m}..Y_{2 * m - 1} = Phi2(x)",
        "unsafe: OR over i, j != i of (Y_i >= Y_k for all k < m) and (Y_{m+j} >= Y_{m+i})",
        "SAT   = some x in the box where argmax Phi1 and argmax Phi2 are not the same unique class (ties count)",
        "UNSAT = on the whole box both argmaxes are unique and equal",
    ]
    return write_vnnlib(path, box, 2 * m, top1_dnf(m), comment)
