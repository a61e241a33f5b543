"""Score and Status: the value object every component returns."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit import Score, Status


def test_constructors_set_status_and_value():
    assert Score.ok(2.0).status is Status.OK and Score.ok(2.0).value == 2.0
    assert Score.wrong().status is Status.WRONG and Score.wrong().value == 0.0
    assert Score.unparseable().status is Status.UNPARSEABLE
    assert Score.abstain().value is None and Score.abstain().status is Status.ABSTAIN
    assert Score.timeout().status is Status.TIMEOUT
    assert Score.error().status is Status.ERROR


def test_status_accepts_its_string_value():
    assert Score(1.0, "wrong").status is Status.WRONG
    assert str(Status.TIMEOUT) == "timeout"
    with pytest.raises(ValueError):
        Score(1.0, "bogus")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        Score(bad)


def test_reason_and_answer_are_clipped():
    s = Score.ok(1.0, reason="r" * 10_000, answer="a" * 10_000)
    assert len(s.reason) <= 300 and len(s.answer) <= 200


def test_as_dict_is_json_friendly():
    import json

    d = Score.wrong(0.0, reason="off by one", answer="41", expected="42").as_dict()
    assert json.loads(json.dumps(d))["details"] == {"expected": "42"}
    assert d["status"] == "wrong"


def test_score_is_immutable():
    s = Score.ok()
    with pytest.raises(AttributeError):
        s.value = 3.0  # type: ignore[misc]


@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(list(Status)))
def test_any_finite_value_round_trips(value, status):
    s = Score(value, status)
    assert s.value == value and s.status is status
