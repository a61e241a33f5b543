"""Hostile answers: huge numbers, deep nesting, code injection, giant strings, a stuck
worker. Each must give a verdict in bounded time; none may raise."""

from __future__ import annotations

import time

import pytest

from rewardkit import Status
from rewardkit.verifiers import MathEquivalence
from rewardkit.verifiers.math import math_verdict


@pytest.fixture(autouse=True, scope="module")
def _warm_math_workers():
    # A call's timeout now covers a cold worker's start-up (seconds on a loaded box):
    # start them first, as the docs advise, so the cases test verdicts, not start-up.
    MathEquivalence.warm()


HUGE = [
    "9**9**9", "10^{10^{10}}", "2^{2^{2^{2^{2^{2}}}}}", "100000!", "(2^{64})!", "factorial(factorial(20))",
    r"\binom{10^9}{5 \cdot 10^8}", "(x+1)^{100000}", "1e999999", "10^{999999}", "(1/2)^{10^{10}}",
]
NESTED = ["(" * 500 + "1" + ")" * 500, r"\frac{" * 200 + "1" + "}{2}" * 200, r"\sqrt{" * 100 + "2" + "}" * 100,
          "{" * 900, r"\boxed{" * 300 + "1" + "}" * 300, "-" * 900 + "1"]
INJECTION = ["__import__('os').system('touch /tmp/rk_pwned')", "().__class__.__bases__", "x.evalf()",
             "lambda: 1", "exec('1')", "open('/etc/passwd')", "eval", "[1]*10**9"]


@pytest.mark.parametrize("text", HUGE + NESTED + INJECTION)
@pytest.mark.parametrize("side", ["gold", "prediction"])
def test_bounded_and_never_raises(text, side):
    gold, pred = (text, "5") if side == "gold" else ("5", text)
    start = time.monotonic()
    status, reason = math_verdict(gold, pred, timeout=3.0)
    assert time.monotonic() - start < 3.0 + 30.0  # deadline + a replacement worker's start (slow on a loaded box)
    assert status in {"wrong", "unparseable", "error", "timeout"}, (status, reason)


def test_huge_numbers_are_refused_before_evaluating():
    status, reason = math_verdict("5", "10^{10^{10}}")
    assert status == "unparseable" and "too large" in reason


def test_injection_never_runs(tmp_path):
    target = tmp_path / "pwned"
    math_verdict("1", f"__import__('os').system('touch {target}')")
    math_verdict("1", f"open('{target}', 'w')")
    assert not target.exists()


def test_megabyte_completion_is_quick():
    v = MathEquivalence()
    text = "9" * (1 << 20)
    start = time.monotonic()
    score = v.score(text, answer="9")
    assert time.monotonic() - start < 5.0
    assert score.status in (Status.UNPARSEABLE, Status.WRONG)


def test_odd_unicode():
    for text in ["\x00\x01\x02", "\ud800", "𝟙𝟚", "٤٢", "\u202e42", "⁴²", "½"]:
        status, _ = math_verdict("42", text)
        assert status in {"ok", "wrong", "unparseable"}


def test_fullwidth_and_vulgar_fraction_digits_still_compare():
    assert math_verdict("12", "𝟙𝟚")[0] == "ok"
    assert math_verdict("1/2", "½")[0] == "ok"


def test_a_stuck_comparison_times_out_and_the_pool_recovers():
    # an integral sympy cannot finish quickly: the worker is killed at the deadline
    slow = r"\int_0^{1} e^{x^{7}} \sin(x^{5}) \cos(x^{3}) dx"
    start = time.monotonic()
    status, reason = math_verdict("0.123456789", slow, timeout=0.5)
    assert status in {"timeout", "wrong", "unparseable"}
    assert time.monotonic() - start < 0.5 + 30.0
    # a fresh worker answers; its start-up (seconds on a loaded box) is on this call's clock
    assert math_verdict(r"\sqrt{50}", r"5\sqrt{2}", timeout=60)[0] == "ok"


def test_worker_is_killed_at_the_deadline():
    # the LaTeX parser plus a numeric integral take far longer than a millisecond
    status, reason = math_verdict(r"\sqrt{7}", r"\int_{0}^{1} x^{7} \sin(x) \, dx", timeout=0.001)
    assert status == "timeout" and "0.001" in reason
    assert math_verdict(r"\sqrt{7}", r"\sqrt{11}", timeout=60)[0] == "wrong"


def test_verifier_reports_timeout_with_the_wrong_reward():
    v = MathEquivalence(timeout=0.001, wrong_reward=-1.0)
    score = v.score(r"<answer>\int_{0}^{2} y^{5} \cos(y) \, dy</answer>", answer=r"\sqrt{17}")
    assert score.status is Status.TIMEOUT and score.value == -1.0


def test_a_closed_pool_leaves_no_process_behind():
    from rewardkit._math.pool import Pool

    pool = Pool(1)
    assert pool.run({"g": r"\sqrt{4}", "p": "2", "o": {}}, timeout=30.0)["s"] == "ok"
    (worker,) = pool._idle
    pool.close()
    assert worker.proc.poll() is not None  # killed and reaped
    with pytest.raises(RuntimeError):
        pool.run({"g": "1", "p": "1", "o": {}}, timeout=1.0)


# --- non-string inputs: Python values, not text, where an answer belongs -------------
from hypothesis import HealthCheck, given, settings  # noqa: E402

from rewardkit.rubrics import math_rubric  # noqa: E402
from rewardkit.testing import HOSTILE_VALUES, Raising, hostile_values  # noqa: E402
from rewardkit.testing.contracts import deeply_nested  # noqa: E402
from rewardkit.verifiers import math_equal  # noqa: E402

VERDICTS = {"ok", "wrong", "unparseable", "error", "timeout"}


class _UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no message either")


class _RaisesUnprintable:
    def __str__(self):
        raise _UnprintableError()

    __repr__ = __str__


@pytest.mark.parametrize(
    "value, status",
    [
        (10**5000, "unparseable"),  # str() refuses ints past 4,300 digits: ValueError
        (Raising(), "unparseable"),  # RuntimeError
        (_RaisesUnprintable(), "unparseable"),  # an exception whose own __str__ raises
        (deeply_nested(5000), "unparseable"),  # RecursionError
        (deeply_nested(5000, "dict"), "unparseable"),
    ],
    ids=["huge_int", "raising_str", "unprintable_error", "nested_list", "nested_dict"],
)
def test_math_verdict_on_unwritable_values(value, status):
    assert math_equal("42", value) is False
    pred = math_verdict("42", value)
    assert pred[0] == status and pred[1].startswith("prediction: "), pred
    gold = math_verdict(value, "42")
    assert gold[0] == "error" and gold[1].startswith("gold: "), gold


def test_written_values_still_compare():
    assert math_verdict("42", 42) == ("ok", "equal")
    assert math_verdict(b"42", "42.0")[0] == "ok"
    assert math_verdict("0.5", 0.5)[0] == "ok"
    assert math_verdict(10**100, "1e100")[0] == "ok"


@pytest.mark.parametrize("value", HOSTILE_VALUES + (_RaisesUnprintable(),), ids=lambda v: type(v).__name__)
def test_verifier_and_rubric_take_hostile_values_as_completion_and_gold(value):
    v = MathEquivalence()
    for score in (v.score(value, answer="42"), v.score(r"\boxed{42}", answer=value)):
        assert score.status in (Status.UNPARSEABLE, Status.ERROR, Status.WRONG, Status.OK), score
        assert score.reason
    assert v.score(r"\boxed{42}", answer=10**5000).status is Status.ERROR
    result = math_rubric().score(value, answer=value)
    assert result.total is not None
    assert len(math_rubric()(completions=[value, "42"], answer=[value, "42"])) == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_values(max_depth=3000), hostile_values(max_depth=3000))
def test_fuzz_non_string_gold_and_prediction(gold, pred):
    status, reason = math_verdict(gold, pred, timeout=3.0)
    assert status in VERDICTS and isinstance(reason, str)
    score = MathEquivalence(timeout=3.0).score(pred, answer=gold)
    assert score.status in (Status.OK, Status.WRONG, Status.UNPARSEABLE, Status.ERROR, Status.TIMEOUT, Status.ABSTAIN)
