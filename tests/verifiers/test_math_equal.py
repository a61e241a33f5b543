"""math_equal and MathEquivalence: a table of equal / unequal answers, then the verifier."""

from __future__ import annotations

import asyncio
import pickle
import threading

import pytest

from rewardkit import InvalidArgument, Score, Status
from rewardkit.verifiers import MathEquivalence, math_equal
from rewardkit.verifiers.math import math_verdict


@pytest.fixture(autouse=True, scope="module")
def _warm_math_workers():
    # A call's timeout now covers a cold worker's start-up (seconds on a loaded box):
    # start them first, as the docs advise, so the cases test verdicts, not start-up.
    MathEquivalence.warm()


EQUAL = [
    # regressions users reported against Math-Verify
    (r"\text{13}", "13"),
    ("e^{16}", "exp(16)"),
    (r"\pi/2", r"\dfrac{\pi}{2}"),
    ("y = 2x + 1", "2x - y + 1 = 0"),
    # numbers
    ("42", "42.0"), ("1234", "1,234"), ("-7", "−7"), ("18", "$18"), ("18", r"\$18.00"),
    ("0.5", r"\frac{1}{2}"), ("0.5", r"\tfrac12"), ("5/2", r"2\frac{1}{2}"), ("5/2", "2 1/2"),
    ("1500", "1.5e3"), ("2500", r"2.5\times 10^{3}"), ("12%", "0.12"), ("12", r"12\%"),
    ("30", r"30^\circ"), ("30", r"30^{\circ}"), ("7", r"\boxed{7}"), ("7", "$\\boxed{7}$"),
    ("1000000", "1 000 000"), ("3", "(3)"), ("0.1", ".1"), ("-0.25", "-1/4"),
    # expressions
    (r"2\sqrt{2}", r"\sqrt{8}"), ("(x+1)^2", "x^2+2x+1"), (r"\frac{\sqrt{3}}{2}", r"\frac12\sqrt3"),
    (r"\sqrt[3]{8}", "2"), ("3+2i", "2i+3"), (r"\infty", "oo"), ("x^2", "x**2"), (r"2\cdot 3", "6"),
    (r"2 \times 3", "6"), (r"\left(\frac{1}{2}\right)^2", "1/4"), (r"\ln(e^2)", "2"),
    (r"\sin^2 x + \cos^2 x", "1"), (r"\binom{5}{2}", "10"), ("5!", "120"),
    # equations, tuples, sets, intervals, several answers
    ("x = 5", "5"), ("5", "x=5"), (r"x \in [1, 2]", "[1,2]"), (r"\{1,2\}", r"\{2,1\}"),
    ("(1,2)", r"\left(1, 2\right)"), ("[1,2)", "[1, 2)"), ("2, 3", "3, 2"), ("2, 3", "x = 3 or x = 2"),
    (r"\pm 2", "2, -2"), (r"(-\infty, 0) \cup (1, \infty)", r"(1,\infty)\cup(-\infty,0)"),
    ("x > 2", "2 < x"), ("2x = 10", "x = 5"),
    ("#### 72", "72"), ("Natalia sold 48 clips.\n#### 72", "72"),
]

UNEQUAL = [
    ("1/2004!", "1/2006!"),
    (r"\pm 2021", "2021"),
    ("42", "43"), ("1/3", "0.333"), ("0.5", "5"), ("(1,2)", "(2,1)"), ("[1,2)", "(1,2]"),
    (r"\{1,2\}", "(1,2)"), ("2, 3", "2"), ("2, 3", "2, 3, 4"), (r"\sqrt{2}", "1.41421356"),
    ("(x+1)^2", "x^2+1"), ("x^2 = 4", "x = 2"), ("x > 2", "x >= 2"), ("3+2i", "3-2i"),
    ("5", "5 cm"), ("1,234", "1.234"), (r"\frac{1}{2}", r"\frac{2}{1}"), ("-2", "2"), ("0", "1e-30"),
    ("y = 2x + 1", "y = 2x - 1"), (r"\pi", "3.14159"),
]


@pytest.mark.parametrize(("gold", "pred"), EQUAL)
def test_equal(gold, pred):
    assert math_equal(gold, pred), math_verdict(gold, pred)


@pytest.mark.parametrize(("gold", "pred"), UNEQUAL)
def test_unequal(gold, pred):
    assert not math_equal(gold, pred), math_verdict(gold, pred)


def test_units_are_stripped_only_when_asked():
    assert not math_equal("5", "5 cm")
    assert math_equal("5", "5 cm", units=True)
    assert math_equal("12", r"12 \text{ dollars}", units=True)
    assert not math_equal("5x", "5", units=True)  # a variable is not a unit


def test_tolerances():
    assert not math_equal("1/3", "0.333")
    assert math_equal("1/3", "0.333", rel_tol=1e-2)
    assert math_equal("100", "100.4", abs_tol=0.5)
    assert not math_equal("100", "100.6", abs_tol=0.5)
    assert math_equal(r"\sqrt{2}", "1.41421356", rel_tol=1e-6)


def test_percent_can_be_strict():
    assert math_equal("0.12", "12%")
    assert not math_equal("0.12", "12%", percent=False)
    assert math_equal("12", "12%", percent=False)


def test_verdict_statuses():
    assert math_verdict("5", "5")[0] == "ok"
    assert math_verdict("5", "6")[0] == "wrong"
    assert math_verdict("5", "$$")[0] == "unparseable"
    assert math_verdict("5", "x" * 5000)[0] == "unparseable"
    assert math_verdict("5", "__import__('os')")[0] == "unparseable"
    assert math_verdict("5", None)[0] == "unparseable"


def test_cache_makes_repeats_free():
    math_equal.cache_clear()
    math_verdict(r"\sqrt{18}", r"3\sqrt{2}")
    from rewardkit.verifiers import math as mod

    key = (r"\sqrt{18}", r"3\sqrt{2}", 1e-9, 0.0, False, True, 5.0)
    assert mod._cache.get(key) == ("ok", "equal (sympy)")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rel_tol": -1}, "rel_tol"), ({"abs_tol": float("nan")}, "abs_tol"), ({"timeout": 0}, "timeout"),
        ({"max_length": 0}, "max_length"), ({"units": "yes"}, "units"), ({"percent": 1}, "percent"),
        ({"correct_reward": float("inf")}, "correct_reward"), ({"wrong_reward": "x"}, "wrong_reward"),
        ({"answer_column": ""}, "answer_column"), ({"extractor": 3}, "extractor"), ({"bogus": 1}, "options"),
    ],
)
def test_invalid_configuration(kwargs, field):
    with pytest.raises(InvalidArgument, match=field):
        MathEquivalence(**kwargs)


def test_math_equal_rejects_bad_options():
    with pytest.raises(InvalidArgument, match="rel_tol"):
        math_equal("1", "1", rel_tol=-0.1)
    with pytest.raises(InvalidArgument, match="options"):
        math_equal("1", "1", tolerance=0.1)


def test_verifier_scores_and_statuses():
    v = MathEquivalence()
    assert v.name == "math_equivalence"
    ok = v.score(r"so the answer is \boxed{\frac{1}{2}}", answer="0.5")
    assert isinstance(ok, Score) and ok.status is Status.OK and ok.value == 1.0 and ok.answer == r"\frac{1}{2}"
    wrong = v.score("<answer>7</answer>", answer="#### 8")
    assert wrong.status is Status.WRONG and wrong.value == 0.0
    none = v.score("I do not know", answer="8")
    assert none.status is Status.UNPARSEABLE and none.value == 0.0
    missing = v.score("<answer>7</answer>")
    assert missing.status is Status.ERROR


def test_custom_rewards_column_and_extractor():
    v = MathEquivalence("solution", extractor=lambda t: t.split("=")[-1], correct_reward=2.0, wrong_reward=-1.0)
    assert v.range == (-1.0, 2.0)
    assert v.score("x = 4", solution="4").value == 2.0
    assert v.score("x = 5", solution="4").value == -1.0


def test_trl_call_contract_and_batch_order():
    v = MathEquivalence()
    completions = [[{"role": "assistant", "content": f"<answer>{i}</answer>"}] for i in range(6)]
    rewards = v(prompts=["q"] * 6, completions=completions, answer=["0", "1", "x", "3", r"\sqrt{16}", "5"])
    assert rewards == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]


def test_pickles_and_scores_after_round_trip():
    v = pickle.loads(pickle.dumps(MathEquivalence(rel_tol=1e-3)))
    assert v.score("<answer>0.333</answer>", answer="1/3").passed


def test_thread_safe():
    pairs = [(rf"\sqrt{{{k * k * 2}}}", rf"{k}\sqrt{{2}}") for k in range(1, 13)]
    results: list[bool] = []

    def work(pair):
        results.append(math_equal(*pair))

    threads = [threading.Thread(target=work, args=(p,)) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [True] * len(pairs)


def test_usable_from_asyncio():
    v = MathEquivalence()

    async def main():
        return await asyncio.gather(*(v.ascore(f"<answer>{k}</answer>", answer=f"{k}.0") for k in range(4)))

    scores = asyncio.run(main())
    assert [s.status for s in scores] == [Status.OK] * 4


def test_warm_starts_ready_workers():
    from rewardkit._math.pool import default_pool

    MathEquivalence.warm()
    pool = default_pool()
    assert pool._count == pool.size and all(w.ready for w in pool._idle)


@pytest.mark.parametrize(
    ("gold", "pred", "equal"),
    [
        (r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}", "(1, -2)", True),
        (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}", True),
        (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}", False),
        ("1011_2", "1011_{2}", True),
        ("1011_2", "11", True),  # the same number, written in base 10
        ("1011_2", "10112", False),  # not Python's 1_000 digit grouping
        ("a_{12}", "10", False),  # a subscripted variable is not a base-12 numeral
    ],
)
def test_matrices_and_base_numerals(gold, pred, equal):
    assert math_equal(gold, pred) is equal, math_verdict(gold, pred)


@pytest.mark.parametrize(
    ("gold", "pred", "equal"),
    [
        (r"(2, \infty)", "x > 2", True),
        (r"(2, \infty)", r"x \ge 2", False),
        (r"[-1, 3]", r"-1 \le x \le 3", True),
        (r"[-1, 3)", r"-1 \le x \le 3", False),
        (r"(-\infty, 5]", r"y \leq 5", True),
        ("x < 3", "(3, 4)", False),
    ],
)
def test_inequalities_against_intervals(gold, pred, equal):
    assert math_equal(gold, pred) is equal, math_verdict(gold, pred)


@pytest.mark.parametrize(
    ("gold", "pred", "status", "reason"),
    [
        # a relation is never a number, even one sympy cannot build ("x < i": TypeError inside)
        (r"\frac{1}{2}", "x<i", "wrong", "not equal"),
        ("5", r"x \le 5", "wrong", "not equal"),
        ("x<i", "y<i", "unparseable", "prediction: TypeError"),
        # the same spelling is equal, readable or not
        ("x<i", "x<i", "ok", "equal"),
        # the empty set, however spelled
        (r"\{\}", r"\{\}", "ok", "equal"),
        (r"\emptyset", r"\varnothing", "ok", "equal"),
        (r"\{ \}", r"\emptyset", "ok", "equal"),
        ("\u2205", r"\left\{ \right\}", "ok", "equal"),
        (r"\emptyset", "0", "wrong", "not equal"),
        (r"\emptyset", r"\{0\}", "wrong", "not equal"),
        # undefined values equal nothing, themselves included
        ("1/0", "2/0", "unparseable", "undefined"),
        ("1/0", "1/0", "unparseable", "undefined"),
        (r"\frac{1}{0}", r"\frac{1}{0}", "unparseable", "undefined"),
        ("0/0", "0/0", "unparseable", "undefined"),
        ("5", "1/(1-1)", "unparseable", "undefined"),
        ("nan", "nan", "unparseable", "undefined"),
        ("5", float("nan"), "unparseable", "undefined"),
        ("1/0", "5", "error", "gold: undefined"),
    ],
)
def test_edge_case_decisions(gold, pred, status, reason):
    got = math_verdict(gold, pred)
    assert got[0] == status and reason in got[1], got


def test_infinity_is_not_undefined():
    assert math_verdict(r"\infty", float("inf"))[0] == "ok"
    assert math_verdict(r"(2, \infty)", r"x > 2")[0] == "ok"
