"""Compare two prepared answers (see :mod:`.normalize`), given a scalar comparison.

The same structural rules serve the in-process fast path (scalars compared as exact
rationals, ``None`` when a scalar is not a plain number) and the worker (scalars compared
with sympy). Three-valued: ``True``, ``False`` or ``None`` ("cannot decide here").

Rules: a one-element set equals its element; bracketed sequences need the same brackets
and the same items in order (a bare list matches a sequence in order); sets and bare lists
match as multisets (order-insensitive); anything else of different shapes is unequal.
Scalars: the same spelling is equal without evaluation (so ``Monday`` equals ``Monday``),
except a literal undefined value; a relation (``<``, ``\\le``, ``\\ne`` ...) never equals a
non-relation; an undefined value (``nan``, ``zoo``, a division by zero) equals nothing,
itself included: the scalar comparison raises :class:`Undefined` naming the side.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable

from .normalize import parse_fraction

__all__ = ["compare_trees", "fast_scalar", "tolerant_equal", "Options", "Undefined", "is_relation"]

Scalar = Callable[[Any, Any], "bool | None"]
_RELATION = re.compile(r"<|>|!=|\\(?:[lg]eq?|[lg]t|ne)(?![A-Za-z])")
_UNDEFINED_WORD = re.compile(r"[+-]?\s*(?:nan|zoo)", re.IGNORECASE)
# a literal zero denominator: "1/0", "2 / (0)", "\frac{1}{0}"; "1/(1-1)" is left to sympy
_ZERO_DENOMINATOR = re.compile(r"/\s*\(?\s*[+-]?0+(?:\.0*)?\s*\)?(?![\d.])|\\frac\s*(?:\{[^{}]*\}|\d)\s*\{\s*[+-]?0+(?:\.0*)?\s*\}")


class Undefined(Exception):
    """A scalar is undefined (``nan``, ``zoo``, a division by zero): it equals nothing."""

    def __init__(self, gold: bool) -> None:
        super().__init__("undefined value (a division by zero or nan)")
        self.gold = gold


def is_relation(text: str) -> bool:
    """Does ``text`` state an inequality or a relation other than ``=``?"""
    return _RELATION.search(text) is not None


def _literally_undefined(text: str) -> bool:
    return _UNDEFINED_WORD.fullmatch(text.strip()) is not None


class Options:
    """Comparison options after validation (plain attributes; JSON-friendly via ``as_dict``)."""

    __slots__ = ("rel_tol", "abs_tol", "units", "percent")

    def __init__(self, rel_tol: float = 1e-9, abs_tol: float = 0.0, units: bool = False, percent: bool = True):
        self.rel_tol, self.abs_tol, self.units, self.percent = rel_tol, abs_tol, units, percent

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def tolerant_equal(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool:
    """``|a-b| <= max(rel_tol*max(|a|,|b|), abs_tol)``; exact for Fractions."""
    if a == b:
        return True
    diff = abs(a - b)
    scale = max(abs(a), abs(b))
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return diff <= max(Fraction(rel_tol) * scale, Fraction(abs_tol))
    return bool(diff <= max(rel_tol * scale, abs_tol))


def _candidates(value: Any, percent: bool, allow: bool) -> list[Any]:
    return [value, value / 100] if percent and allow else [value]


def fast_scalar(opts: Options) -> Scalar:
    """Scalar comparison on exact rationals; ``None`` when either side is not a plain number."""

    def eq(g: Any, p: Any) -> bool | None:
        _, gt, gpct = g
        _, pt, ppct = p
        if _literally_undefined(pt):
            raise Undefined(gold=False)
        if _literally_undefined(gt):
            raise Undefined(gold=True)
        # "1/0" spelled twice is still undefined: only sympy can say (and then refuses)
        if gpct == ppct and not (_ZERO_DENOMINATOR.search(gt) or _ZERO_DENOMINATOR.search(pt)):
            if gt == pt or gt.replace(" ", "") == pt.replace(" ", ""):
                return True
        if is_relation(gt) != is_relation(pt):
            return False  # "x < 2" is no number, and "1/2" no relation
        gv, pv = parse_fraction(gt), parse_fraction(pt)
        if gv is None or pv is None:
            return None
        for a in _candidates(gv, gpct, opts.percent):
            for b in _candidates(pv, ppct, opts.percent):
                if tolerant_equal(a, b, opts.rel_tol, opts.abs_tol):
                    return True
        return False

    return eq


def _unwrap(t: Any) -> Any:
    while t[0] in ("set", "list") and len(t[1]) == 1:
        t = t[1][0]
    return t


def _items(t: Any) -> list[Any]:
    return t[3] if t[0] == "seq" else t[1]


def compare_trees(g: Any, p: Any, scalar: Scalar) -> bool | None:
    g, p = _unwrap(g), _unwrap(p)
    gk, pk = g[0], p[0]
    if gk == "expr" and pk == "expr":
        return scalar(g, p)
    if gk == "expr" or pk == "expr":
        return False
    gi, pi = _items(g), _items(p)
    if len(gi) != len(pi):
        return False
    if gk == "seq" or pk == "seq":
        if gk == "seq" and pk == "seq" and (g[1], g[2]) != (p[1], p[2]):
            return False
        if "set" in (gk, pk):
            return False  # a set is never a tuple or an interval
        return _all_ordered(gi, pi, scalar)
    return _multiset(gi, pi, scalar)


def _all_ordered(gi: list[Any], pi: list[Any], scalar: Scalar) -> bool | None:
    unknown = False
    for a, b in zip(gi, pi):
        r = compare_trees(a, b, scalar)
        if r is False:
            return False
        unknown |= r is None
    return None if unknown else True


def _multiset(gi: list[Any], pi: list[Any], scalar: Scalar) -> bool | None:
    """A perfect matching by augmenting paths; ``None`` if an undecided pair matters."""
    n = len(gi)
    table = [[compare_trees(a, b, scalar) for b in pi] for a in gi]
    if any(all(r is False for r in row) for row in table):
        return False
    if any(all(table[i][j] is False for i in range(n)) for j in range(n)):
        return False
    if _has_matching(table, lambda r: r is True, n):
        return True
    if any(r is None for row in table for r in row):
        return None if _has_matching(table, lambda r: r is not False, n) else False
    return False


def _has_matching(table: list[list[Any]], ok: Callable[[Any], bool], n: int) -> bool:
    match_of: list[int] = [-1] * n  # prediction index -> gold index

    def augment(i: int, seen: list[bool]) -> bool:
        for j in range(n):
            if ok(table[i][j]) and not seen[j]:
                seen[j] = True
                if match_of[j] < 0 or augment(match_of[j], seen):
                    match_of[j] = i
                    return True
        return False

    return all(augment(i, [False] * n) for i in range(n))
