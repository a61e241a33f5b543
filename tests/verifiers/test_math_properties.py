"""Property tests: every rendering of a value equals it; distinct values differ; no input
makes the verifier raise or overrun its deadline."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rewardkit.testing.math import canonical, rationals, rendered, renderings, surd_renderings
from rewardkit.verifiers import MathEquivalence
from rewardkit.verifiers.math import math_verdict


@pytest.fixture(autouse=True, scope="module")
def _warm_math_workers():
    # A call's timeout now covers a cold worker's start-up (seconds on a loaded box):
    # start them first, as the docs advise, so the cases test verdicts, not start-up.
    MathEquivalence.warm()


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(rendered())
def test_every_rendering_equals_the_value(pair):
    value, text = pair
    assert math_verdict(canonical(value), text) == ("ok", "equal"), text


@FAST
@given(rationals().flatmap(lambda v: st.tuples(renderings(v), renderings(v))))
def test_two_renderings_of_one_value_are_equal(pair):
    a, b = pair
    assert math_verdict(a, b)[0] == "ok", (a, b)


@FAST
@given(rendered(), rendered())
def test_distinct_values_are_unequal(first, second):
    (v1, t1), (v2, t2) = first, second
    assume(v1 != v2 and v1 != 100 * v2 and v2 != 100 * v1)  # "x%" also means x
    assert math_verdict(t1, t2)[0] == "wrong", (t1, t2)


@settings(max_examples=25, deadline=None)
@given(surd_renderings())
def test_surds_through_sympy(case):
    a, b, equal = case
    assert (math_verdict(a, b)[0] == "ok") is equal, (a, b)


_TOKENS = list("0123456789+-*/^()[]{}\\,.=xe!% ") + ["\\frac", "\\sqrt", "^{", "10", "\\pm", "\\boxed{"]
_MATHY = st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join)


@settings(max_examples=60, deadline=None)
@given(st.one_of(_MATHY, st.text(max_size=60)), st.one_of(_MATHY, st.sampled_from(["1", "x", "\\frac{1}{2}"])))
def test_never_raises_nor_overruns(pred, gold):
    start = time.monotonic()
    status, reason = math_verdict(gold, pred, timeout=2.0)
    # the deadline, plus a replacement worker's start-up if an earlier case was killed
    assert time.monotonic() - start < 2.0 + 30.0
    assert status in {"ok", "wrong", "unparseable", "timeout", "error"} and isinstance(reason, str)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_verifier_never_raises(text):
    score = MathEquivalence().score(text, answer="42")
    assert score.value in (0.0, 1.0)
