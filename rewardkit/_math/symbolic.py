"""Parse and compare with sympy. Runs ONLY inside worker processes (see :mod:`.pool`).

``parse_expr`` evaluates Python; before it runs, the text must pass an allow-list:
ASCII letters, digits, ``+-*/^().,=<>!`` and spaces; no ``__``, no attribute access, no
Python keywords, identifiers at most 24 characters; names resolve in a dictionary of
whitelisted sympy names with empty builtins. LaTeX goes to sympy's own
``parse_latex`` (ANTLR backend, which builds unevaluated trees).

Trees are evaluated bottom-up by :func:`bounded_eval`, which refuses an integer power,
factorial or binomial whose exact value would exceed ``MAX_DIGITS`` digits before sympy
tries (``9**9**9``, ``10^{10^{10}}``, ``100000!``). The worker's deadline and memory limit
are the backstop for anything this misses.

Equality of two scalars: structural equality; equations are equal when ``lhs - rhs`` of
one is a nonzero constant multiple of the other's (so equivalent lines match);
inequalities likewise with a positive multiple; constants are compared numerically at 30
digits with the relative/absolute tolerance; expressions with free symbols are first
expanded, then evaluated at several random positive points (a probabilistic identity
test; it assumes symbols are positive reals, the usual convention of answer keys).
"""

from __future__ import annotations

import keyword
import sys
import math
import random
import re
from typing import Any

import sympy as sp
from sympy.core.function import UndefinedFunction
from sympy.core.relational import Relational
from .texplain import tex_to_plain
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

__all__ = ["Unparseable", "TooLarge", "Relational", "parse", "bounded_eval", "scalar_equal", "MAX_DIGITS", "sp"]

MAX_DIGITS = 20_000
MAX_LEN = 600
MAX_NESTING = 40
_PLAIN_OK = re.compile(r"[0-9A-Za-z_+\-*/^().,=<>! ]+")
_ATTR = re.compile(r"\.\s*[A-Za-z_]|__")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)
# Functions parse as *undefined* sympy functions (nothing runs at parse time: a literal
# factorial(factorial(20)) would otherwise be computed inside parse_expr), and become the
# real ones in bounded_eval, after the size checks.
_REAL = {n: getattr(sp, n) for n in """
sqrt cbrt root exp log sin cos tan sec csc cot asin acos atan asec acsc acot sinh cosh
tanh asinh acosh atanh factorial factorial2 binomial gamma floor ceiling gcd lcm
""".split()}
_REAL.update({"ln": sp.log, "abs": sp.Abs, "Abs": sp.Abs, "arcsin": sp.asin, "arccos": sp.acos,
              "arctan": sp.atan, "ceil": sp.ceiling})
_GLOBALS: dict[str, Any] = {n: sp.Function(n) for n in _REAL}
_GLOBALS.update({"__builtins__": {}, "pi": sp.pi, "E": sp.E, "I": sp.I, "oo": sp.oo, "inf": sp.oo,
                 "infty": sp.oo, "infinity": sp.oo, "Integer": sp.Integer, "Float": sp.Float,
                 "Rational": sp.Rational, "Symbol": sp.Symbol, "Function": sp.Function})
# the operator classes parse_expr(evaluate=False) emits calls to
_GLOBALS.update({n: getattr(sp, n) for n in "Add Mul Pow Eq Ne Lt Le Gt Ge Not And Or".split()})
_BIG_LITERAL = re.compile(r"[eE][+-]?\d{4,}|\d{401,}")
# the ANTLR parser leaves these as plain symbols
_CONSTANTS = {sp.Symbol("e"): sp.E, sp.Symbol("i"): sp.I, sp.Symbol("pi"): sp.pi, sp.Symbol("infty"): sp.oo}


class Unparseable(ValueError):
    """The text is not an expression we will parse."""


class _SyntaxProblem(Unparseable):
    """Allowed characters, but not a Python-style expression: the LaTeX parser may read it."""


class TooLarge(ValueError):
    """Evaluating exactly would need more than ``MAX_DIGITS`` digits."""


def _nesting(text: str) -> int:
    depth = best = 0
    for c in text:
        if c in "({[":
            depth += 1
            best = max(best, depth)
        elif c in ")}]":
            depth -= 1
    return best


def _parse_plain(text: str) -> Any:
    if not _PLAIN_OK.fullmatch(text) or _ATTR.search(text):
        raise Unparseable("characters outside the allow-list")
    if re.search(r"\d_", text):  # Python would read 1_000 as 1000, and 1011_2 as 10112
        raise Unparseable("digit before '_' (a base-b numeral?)")
    if _BIG_LITERAL.search(text):
        raise Unparseable("number literal too large")
    for name in _IDENT.findall(text):
        if len(name) > 24 or keyword.iskeyword(name):
            raise Unparseable(f"name {name[:24]!r} not allowed")
    sides = re.split(r"(?<![<>=!])=(?!=)", text)
    if len(sides) == 2:
        return sp.Eq(_parse_plain(sides[0]), _parse_plain(sides[1]), evaluate=False)
    if len(sides) > 2:
        raise Unparseable("more than one '='")
    try:
        return parse_expr(text, global_dict=dict(_GLOBALS), local_dict={}, transformations=_TRANSFORMS, evaluate=False)
    except Exception as exc:  # SyntaxError, TokenError, TypeError, ...
        raise _SyntaxProblem(f"{type(exc).__name__}") from None


def _parse_latex(text: str) -> Any:
    from sympy.parsing.latex import parse_latex

    try:
        # strict: the lenient mode silently drops what it cannot read ("1,2" -> 1)
        return parse_latex(text, backend="antlr", strict=True)
    except ImportError:
        raise Unparseable("LaTeX parser unavailable (needs antlr4-python3-runtime==4.11)") from None
    except Exception as exc:
        raise Unparseable(f"LaTeX: {type(exc).__name__}") from None


def parse(text: str) -> Any:
    """Unevaluated sympy tree for ``text`` (LaTeX or plain), constants ``e``/``i`` mapped."""
    text = text.strip()
    if not text:
        raise Unparseable("empty")
    if len(text) > MAX_LEN:
        raise Unparseable(f"longer than {MAX_LEN} characters")
    if _nesting(text) > MAX_NESTING:
        raise Unparseable(f"nested deeper than {MAX_NESTING}")
    latex = "\\" in text or "{" in text
    plain = tex_to_plain(text) if latex else text
    try:
        if plain is None:
            tree = _parse_latex(text)
        else:
            tree = _parse_plain(plain)
    except Unparseable:
        if plain is text and not isinstance(sys.exc_info()[1], _SyntaxProblem):
            raise  # plain text outside the allow-list: never hand it to another parser
        tree = _parse_latex(text)
    if not isinstance(tree, sp.Basic):
        raise Unparseable("not an expression")
    return tree.xreplace(_CONSTANTS)


def _digits(base: Any, exp: Any) -> float:
    """Decimal digits of ``base**exp`` for rationals (an overestimate)."""
    b = abs(base)
    size = max(abs(int(b.p)), abs(int(b.q)), 2)
    return float(abs(exp)) * math.log10(size)


def _check(func: Any, args: list[Any]) -> None:
    if func is sp.Pow:
        base, exp = args
        if exp.is_Rational and base.is_Rational and abs(base) not in (0, 1):
            if _digits(base, sp.floor(abs(exp)) if not exp.is_Integer else exp) > MAX_DIGITS:
                raise TooLarge("power too large to evaluate exactly")
        if exp.is_Integer and abs(exp) > 200 and isinstance(base, sp.Add) and base.free_symbols:
            raise TooLarge("symbolic power too large to expand")
    elif func in (sp.factorial, sp.factorial2, sp.subfactorial, sp.gamma) and args[0].is_Number:
        if abs(args[0]) > 10_000:
            raise TooLarge("factorial too large to evaluate exactly")
    elif func is sp.binomial and args[0].is_Number and args[1].is_Number:
        n, k = args
        if abs(n) > MAX_DIGITS and min(abs(k), abs(n - k)) > 1000:
            raise TooLarge("binomial too large to evaluate exactly")


def bounded_eval(tree: Any) -> Any:
    """Rebuild ``tree`` bottom-up with evaluation, refusing huge exact numbers."""
    if tree.is_Atom or not tree.args:
        return tree
    args = [bounded_eval(a) for a in tree.args]
    func = tree.func
    if isinstance(func, UndefinedFunction):
        func = _REAL.get(func.__name__, func)
    _check(func, args)
    if isinstance(tree, Relational):
        return func(*args, evaluate=False)
    try:
        return func(*args)
    except TypeError:
        return tree.func(*args, evaluate=False)


# --- equality --------------------------------------------------------------------------
def _close(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool | None:
    """Numeric closeness of two constants at 30 digits; None if not numbers."""
    va, vb = sp.N(a, 30), sp.N(b, 30)
    if not (va.is_number and vb.is_number) or va.has(sp.nan, sp.zoo) or vb.has(sp.nan, sp.zoo):
        return None
    if va.has(sp.oo, -sp.oo) or vb.has(sp.oo, -sp.oo):
        return bool(va == vb)
    diff = abs(sp.N(va - vb, 30))
    scale = max(abs(va), abs(vb))
    # 1e-25 relative slack absorbs 30-digit rounding; the tolerances are the user's
    limit = max(sp.Float(rel_tol, 30) * scale, sp.Float(abs_tol, 30), sp.Float("1e-25", 30) * scale)
    try:
        return bool(diff <= limit)
    except TypeError:
        return None


def _points(symbols: list[Any], n: int, seed: int) -> list[dict[Any, Any]]:
    rng = random.Random(seed)
    # Floats, not Rationals: x**(10**9) at a Float costs nothing, at a Rational it is huge
    return [{s: sp.Float(rng.randint(50, 350) / 100 + 1 / (7 + k), 30) for s in symbols} for k in range(n)]


def _identity(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool | None:
    """Probabilistic identity test of two expressions with free symbols."""
    try:
        if sp.expand(a - b) == 0:
            return True
    except TooLarge:
        raise
    except Exception:
        pass
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    decided = 0
    for point in _points(symbols, 5, seed=len(symbols)):
        r = _close(a.xreplace(point), b.xreplace(point), rel_tol, abs_tol)
        if r is False:
            return False
        decided += r is True
    if decided >= 3:
        return True
    return bool(sp.simplify(a - b) == 0) or None


def _proportional(f: Any, g: Any, positive: bool) -> bool:
    """Is ``f`` a nonzero constant (positive if asked) multiple of ``g``?"""
    if f == g:
        return True
    symbols = sorted(f.free_symbols | g.free_symbols, key=str)
    ratio = None
    for point in _points(symbols, 5, seed=len(symbols) + 1):
        vf, vg = sp.N(f.xreplace(point), 30), sp.N(g.xreplace(point), 30)
        if not (vf.is_number and vg.is_number) or vg == 0 or vf == 0:
            continue
        r = vf / vg
        if ratio is None:
            ratio = r
            if positive and not (r.is_real and r > 0):
                return False
        elif _close(r, ratio, 1e-12, 0.0) is not True:
            return False
    return ratio is not None


def _relation_equal(a: Any, b: Any) -> bool:
    if isinstance(a, sp.Equality) and isinstance(b, sp.Equality):
        return _proportional(a.lhs - a.rhs, b.lhs - b.rhs, positive=False)
    if isinstance(a, sp.Equality) or isinstance(b, sp.Equality):
        return False

    def norm(r: Any) -> tuple[Any, bool]:  # as (f, strict) meaning f > 0 or f >= 0
        if isinstance(r, (sp.StrictGreaterThan, sp.GreaterThan)):
            return r.lhs - r.rhs, isinstance(r, sp.StrictGreaterThan)
        if isinstance(r, (sp.StrictLessThan, sp.LessThan)):
            return r.rhs - r.lhs, isinstance(r, sp.StrictLessThan)
        raise Unparseable("unsupported relation")

    (f, sf), (g, sg) = norm(a), norm(b)
    return sf == sg and _proportional(f, g, positive=True)


def scalar_equal(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool:
    """Mathematical equality of two evaluated sympy objects (see the module docstring)."""
    if a == b:
        return True
    a_rel, b_rel = isinstance(a, Relational), isinstance(b, Relational)
    if a_rel or b_rel:
        return a_rel and b_rel and _relation_equal(a, b)
    if not isinstance(a, sp.Expr) or not isinstance(b, sp.Expr):
        return False
    if not (a.free_symbols or b.free_symbols):
        return bool(_close(a, b, rel_tol, abs_tol))
    return bool(_identity(a, b, rel_tol, abs_tol))
