"""The Component base: never raises on model output, TRL's call contract, names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument, Score, Scorer, Status, completion_text


class LongEnough(Scorer):
    def _score(self, text, **columns):
        return len(text) >= 4


class Boom(Scorer):
    def _score(self, text, **columns):
        raise RuntimeError("boom")


class EchoColumn(Scorer):
    def _score(self, text, *, answer=None, **columns):
        return Score.ok(1.0 if text == answer else 0.0, answer=text)


def test_name_is_stable_and_is_dunder_name():
    assert LongEnough().__name__ == "long_enough"
    assert LongEnough(name="len4").__name__ == "len4"
    assert LongEnough.__name__ == "LongEnough"  # the class keeps its own name


@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_bad_name_raises_naming_the_field(bad):
    with pytest.raises(InvalidArgument, match="name="):
        LongEnough(name=bad)


def test_exceptions_become_error_scores():
    s = Boom().score("anything")
    assert s.status is Status.ERROR and "boom" in s.reason and s.elapsed >= 0


def test_trl_signature_plain_and_conversational():
    conv = [[{"role": "assistant", "content": "hello"}], [{"role": "assistant", "content": "hi"}]]
    assert LongEnough()(prompts=["p", "q"], completions=conv) == [1.0, 0.0]
    assert LongEnough()(completions=["abcd", "a"], trainer_state=object(), log_metric=print) == [1.0, 0.0]


def test_dataset_columns_arrive_per_row():
    out = EchoColumn()(prompts=["p1", "p2"], completions=["7", "8"], answer=["7", "9"])
    assert out == [1.0, 0.0]


@pytest.mark.parametrize(
    "completion, text",
    [
        (None, ""),
        (b"bytes", "bytes"),
        ({"role": "assistant", "content": "x"}, "x"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "t"}, {"type": "image"}]}], "t"),
        (42, "42"),
    ],
)
def test_completion_text_shapes(completion, text):
    assert completion_text(completion) == text


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=10))
def test_completion_text_never_raises(obj):
    assert isinstance(completion_text(obj), str)


def test_completion_text_of_hostile_values():
    from rewardkit.testing import HOSTILE_VALUES, Raising

    assert completion_text(10**5000) == ""  # str() refuses it: no text, no ValueError
    assert completion_text([{"role": "assistant", "content": Raising()}]) == ""
    for value in HOSTILE_VALUES:
        assert isinstance(completion_text(value), str)
        assert LongEnough().score(value).status in (Status.OK, Status.WRONG)


class _UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no message")


class RaisesUnprintable(Scorer):
    def _score(self, text, **columns):
        raise _UnprintableError()


def test_an_exception_that_cannot_print_itself_is_still_an_error_score():
    s = RaisesUnprintable().score("x")
    assert s.status is Status.ERROR and "_UnprintableError" in s.reason


@pytest.mark.parametrize(
    "columns, match",
    [({"answer": ["7"]}, "1 for 2 completions"), ({"answer": "7"}, "not a single str"), ({"answer": 7}, "not a single int")],
)
def test_a_column_of_the_wrong_shape_raises_naming_it(columns, match):
    with pytest.raises(InvalidArgument, match="answer=.*" + match):
        EchoColumn().score_batch(["7", "8"], **columns)
    with pytest.raises(InvalidArgument, match="answer="):
        EchoColumn()(prompts=["p", "q"], completions=["7", "8"], **columns)


def test_prompts_of_the_wrong_length_raise():
    with pytest.raises(InvalidArgument, match="prompts="):
        EchoColumn().score_batch(["7", "8"], prompts=["p"], answer=["7", "8"])


def test_every_batched_scorer_checks_the_batch_shape_before_scoring():
    """score_batch and ascore_batch of the components that batch on their own (judges,
    the code verifier, the math verifier's threads) check prompts and columns like the base:
    a prompt list of another length raises InvalidArgument naming it (a judge once zipped
    it away and returned fewer scores than completions), before any request or run."""
    import asyncio

    from rewardkit import InvalidArgument
    from rewardkit.judge import GroupJudge, Judge
    from rewardkit.verifiers import CodeTests, MathEquivalence

    dead = "http://127.0.0.1:9/v1"  # nothing listens: a request would fail, not raise
    for component in (Judge("Is it right?", base_url=dead, model="m"), GroupJudge(base_url=dead, model="m"),
                      CodeTests(), MathEquivalence()):
        with pytest.raises(InvalidArgument, match="prompts"):
            component.score_batch(["a", "b", "c"], prompts=["p1", "p2"])
        with pytest.raises(InvalidArgument, match="answer"):
            component.score_batch(["a", "b"], answer=["1"])
    for judge in (Judge("Is it right?", base_url=dead, model="m"), GroupJudge(base_url=dead, model="m")):
        with pytest.raises(InvalidArgument, match="prompts"):
            asyncio.run(judge.ascore_batch(["a", "b"], prompts=["p"]))
