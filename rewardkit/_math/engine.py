"""Verdicts: the in-process fast path and the full (sympy) comparison a worker runs.

A verdict is ``(status, reason)`` with status one of ``ok``, ``wrong``, ``unparseable``
(the prediction cannot be read), ``error`` (the gold cannot be read, or an internal
failure), ``timeout`` (set by the pool, never here).

The fast path imports no sympy: it decides whenever every scalar on both sides is a
plain number (exact rational arithmetic) or the two texts are identical after cleaning;
otherwise it returns ``None`` and the caller sends the pair to a worker.

Edge cases, decided (docs/math.md lists them): a relation against a non-relation is
``wrong``; the empty set (``\\emptyset``, ``\\varnothing``, ``\\{\\}``) is an answer, not an
empty one; an undefined prediction (``1/0``, ``0/0``, ``nan``) is ``unparseable`` and an
undefined gold ``error``, whatever the other side says; anything sympy raises while
reading one side makes that side unreadable (``unparseable`` / ``error``), never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from .compare import Options, Undefined, compare_trees, fast_scalar
from .normalize import _LHS, clean, prepare

__all__ = ["fast_verdict", "full_verdict", "Verdict"]

Verdict = tuple[str, str]
_REL = re.compile(r"\\[lg]eq?(?![A-Za-z])|\\[lg]t(?![A-Za-z])|<=|>=|<|>")


def _is_equation(text: str) -> bool:
    t = text.replace("==", "").replace("\\le", "").replace("\\ge", "").replace("<=", "").replace(">=", "")
    return "=" in t


def _trees(gold: str, pred: str, opts: Options) -> tuple[Any, Any]:
    g_clean, p_clean = clean(gold, units=opts.units), clean(pred, units=opts.units)
    g_eq, p_eq = _is_equation(g_clean), _is_equation(p_clean)
    g_lhs, p_lhs = _LHS.match(g_clean), _LHS.match(p_clean)
    if g_lhs and p_lhs and g_lhs.group(0).replace(" ", "") == p_lhs.group(0).replace(" ", ""):
        # "x = 1/2" against "x = 50%": the same variable named on both sides, compare values
        if not _is_equation(g_clean[g_lhs.end():]) and not _is_equation(p_clean[p_lhs.end():]):
            g_eq = p_eq = False
    gt = prepare(g_clean, units=opts.units, other_is_eq=p_eq, cleaned=True)
    pt = prepare(p_clean, units=opts.units, other_is_eq=g_eq, cleaned=True)
    return gt, pt


def _empty(tree: Any) -> bool:
    if tree[0] == "expr":
        return not tree[1].strip()
    if tree[0] == "set" and not tree[1]:
        return False  # the empty set is an answer
    items = tree[3] if tree[0] == "seq" else tree[1]
    return not items or any(_empty(t) for t in items)


def _relation_and_interval(gt: Any, pt: Any) -> tuple[Any, Any, bool] | None:
    """``(relation, interval, gold_is_relation)`` when one side is an inequality and the
    other an interval such as ``(2, \\infty)``; else None."""
    for rel, seq, gold_rel in ((gt, pt, True), (pt, gt, False)):
        if rel[0] == "expr" and seq[0] == "seq" and len(seq[3]) == 2 and seq[1] in "([" and seq[2] in ")]":
            if any(op in rel[1] for op in ("<", ">", "\\le", "\\ge", "\\lt", "\\gt")):
                if all(item[0] == "expr" for item in seq[3]):
                    return rel, seq, gold_rel
    return None


def fast_verdict(gold: str, pred: str, opts: Options) -> Verdict | None:
    gt, pt = _trees(gold, pred, opts)
    if _empty(pt):
        return ("unparseable", "empty answer after normalisation")
    if _empty(gt):
        return ("error", "empty gold answer after normalisation")
    if _relation_and_interval(gt, pt) is not None:
        return None  # "x > 2" against "(2, \\infty)": sympy's sets decide
    try:
        r = compare_trees(gt, pt, fast_scalar(opts))
    except Undefined as exc:
        return _undefined(exc)
    if r is True:
        return ("ok", "equal")
    if r is False:
        return ("wrong", "not equal")
    return None


def _undefined(exc: Undefined) -> Verdict:
    return ("error", f"gold: {exc}") if exc.gold else ("unparseable", f"prediction: {exc}")


class _GoldBad(Exception):
    pass


class _PredBad(Exception):
    pass


def full_verdict(gold: str, pred: str, opts: Options) -> Verdict:
    """The whole comparison, sympy included. Call only inside a worker process."""
    fast = fast_verdict(gold, pred, opts)
    if fast is not None:
        return fast
    from . import symbolic as sy

    gt, pt = _trees(gold, pred, opts)
    memo: dict[str, Any] = {}

    def load(text: str, bad: type[Exception]) -> Any:
        if text not in memo:
            try:
                value = sy.bounded_eval(sy.parse(text))
                memo[text] = Undefined if value.has(sy.sp.nan, sy.sp.zoo) else value
            except (sy.Unparseable, sy.TooLarge) as exc:
                memo[text] = str(exc)
            except MemoryError:
                raise
            except Exception as exc:  # sympy on odd input ("x < i": TypeError): unreadable
                memo[text] = f"{type(exc).__name__}: {exc}"[:150]
        value = memo[text]
        if value is Undefined:
            raise Undefined(gold=bad is _GoldBad)
        if isinstance(value, str):  # why the text could not be read
            raise bad(value)
        return value

    fast = fast_scalar(opts)

    def scalar(g: Any, p: Any) -> bool:
        quick = fast(g, p)
        if quick is not None:
            return quick
        b, a = load(p[1], _PredBad), load(g[1], _GoldBad)  # a bad prediction is reported first
        cands_a = [a, a / 100] if g[2] and opts.percent else [a]
        cands_b = [b, b / 100] if p[2] and opts.percent else [b]
        return any(sy.scalar_equal(x, y, opts.rel_tol, opts.abs_tol) for x in cands_a for y in cands_b)

    def as_sets(found: tuple[Any, Any, bool]) -> bool:
        rel, seq, gold_rel = found
        rel_bad, seq_bad = (_GoldBad, _PredBad) if gold_rel else (_PredBad, _GoldBad)
        parts, ops = _REL.split(rel[1]), _REL.findall(rel[1])
        if len(ops) == 2:  # "-1 \\le x \\le 3": two relations, intersected
            texts = [f"{parts[0]} {ops[0]} {parts[1]}", f"{parts[1]} {ops[1]} {parts[2]}"]
        else:
            texts = [rel[1]]
        relations = [load(t, rel_bad) for t in texts]
        low, high = (load(item[1], seq_bad) for item in seq[3])
        if any(not isinstance(r, sy.Relational) or len(r.free_symbols) != 1 for r in relations):
            return False
        solution = relations[0].as_set()
        for r in relations[1:]:
            solution = solution & r.as_set()
        interval = sy.sp.Interval(low, high, left_open=seq[1] == "(", right_open=seq[2] == ")")
        return bool(solution == interval)

    try:
        found = _relation_and_interval(gt, pt)
        r = as_sets(found) if found is not None else compare_trees(gt, pt, scalar)
    except Undefined as exc:
        return _undefined(exc)
    except _PredBad as exc:
        return ("unparseable", f"prediction: {exc}")
    except _GoldBad as exc:
        return ("error", f"gold: {exc}")
    except sy.TooLarge as exc:
        return ("unparseable", str(exc))
    return ("ok", "equal (sympy)") if r else ("wrong", "not equal (sympy)")
