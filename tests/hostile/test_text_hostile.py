"""Hostile text through extraction, scorers and the classic functions.

Bounds here are generous on purpose (seconds, on a loaded 2-core box): they catch a hang
or quadratic blow-up, not a slowdown. Speed numbers live in bench/, not here.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Score, Status
from rewardkit.classic import (
    correctness_reward_func,
    int_reward_func,
    soft_format_reward_func,
    strict_format_reward_func,
    xmlcount_reward_func,
)
from rewardkit.extract import (
    DEFAULT,
    After,
    AnswerIs,
    Boxed,
    Choice,
    LastNumber,
    Pattern,
    Tag,
    parse_number,
)
from rewardkit.scorers import Contains, ExactMatch, Format, Length, Proximity, XMLCount
from rewardkit.testing import check_component

MB = 1 << 20
BOUND = 5.0  # seconds: a hang or a quadratic scan on 1 MB takes minutes

EXTRACTORS = [Boxed(), Boxed("first"), Tag(), Tag(which="first"), After(), AnswerIs(), LastNumber(), Choice(), DEFAULT]

# shapes that defeat naive implementations: many openers, no closers, long digit runs...
ONE_MB = {
    "letters": "a" * MB,
    "open_boxes": "\\boxed{" * (MB // 7),
    "box_no_space": "\\boxed 1" * (MB // 8),
    "open_braces": "{" * MB,
    "close_braces": "}" * MB,
    "open_tags": "<answer>" * (MB // 8),
    "close_tags": "</answer>" * (MB // 9),
    "digits": "1" * MB,
    "digit_commas": "1," * (MB // 2),
    "signs": "-+" * (MB // 2),
    "answer_is": "the answer is " * (MB // 14),
    "hash_markers": "####" * (MB // 4),
    "articles": "A " * (MB // 2),
    "spaces_then_number": " " * MB + "5",
    "newlines": "\n" * MB,
    "nul_rtl_combining": "\x00\u202e\u0301\ud800" * (MB // 4),
    "reasoning_tags": "<reasoning></reasoning>" * (MB // 23),
    "number_window": "x" + "1e" * (MB // 2),
}


@pytest.mark.parametrize("shape", sorted(ONE_MB))
def test_extractors_on_one_megabyte(shape):
    text = ONE_MB[shape]
    for ex in EXTRACTORS:
        start = time.perf_counter()
        out = ex(text)
        elapsed = time.perf_counter() - start
        assert out is None or isinstance(out, str)
        assert elapsed < BOUND, f"{ex!r} took {elapsed:.1f}s on {shape}"


@pytest.mark.parametrize(
    "pattern, text",
    [
        (r"(a+)+$", "a" * 50_000 + "b"),
        (r"(a|a)*b", "a" * 50_000),
        (r"(a|aa)+$", "a" * 50_000 + "!"),
        (r"^(\w+\s?)*$", "word " * 10_000 + "!"),
        (r"(x+x+)+y", "x" * 50_000),
        (r"(.*a){20}", "a" * 50_000),
    ],
    ids=lambda v: v if len(v) < 30 else f"{len(v)} chars",
)
def test_redos_patterns_finish_fast(pattern, text):
    for which in ("first", "last"):
        ex = Pattern(pattern, group=0, which=which, timeout=0.2)
        start = time.perf_counter()
        out = ex(text)
        assert time.perf_counter() - start < BOUND
        assert out is None or isinstance(out, str)


def test_redos_timeout_reports_none_not_a_partial_answer():
    ex = Pattern(r"(a+)+$", group=0, timeout=0.1)
    assert ex("a" * 100_000 + "b") is None
    assert ex("aaa") == "aaa"  # the same pattern still works on benign input


@pytest.mark.parametrize(
    "scorer, columns",
    [
        (Format(), {}),
        (Format("lenient"), {}),
        (Format("lenient", reasoning_tag=None), {}),
        (XMLCount(), {}),
        (Proximity(), {"answer": "42"}),
        (Proximity(decay="exponential", scale=3.0), {"answer": "-7"}),
        (Length(target=(10, 2000), max_completion_len=4000, soft_punish_cache=500), {}),
        (Length(target=(1, 100), unit="words"), {}),
        (Contains(["answer", "42"], mode="fraction", whole_word=True), {"name": "Bo"}),
        (Contains(column="name"), {"name": ["Bo", "\ud800"]}),
        (ExactMatch(extractor=DEFAULT, numeric=True, ignore_punctuation=True), {"answer": "42"}),
        (ExactMatch("x" * 100), {}),
    ],
    ids=repr,
)
def test_scorers_keep_the_component_contract(scorer, columns):
    check_component(scorer, list(ONE_MB.values())[:6], columns=columns, max_seconds=BOUND)


_odd = st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\u200f", "\u0301", "\ufeff", "🙂", "\u2028", "ｆ", "İ", "ß"])
_piece = st.one_of(_odd, st.sampled_from(["<answer>", "</answer>", "<reasoning>", "\\boxed{", "}", "####", "-1,2", "\n"]))


@settings(max_examples=15, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=8).map("".join), st.integers(min_value=1, max_value=MB))
def test_repeated_hostile_unit_up_to_one_megabyte(unit, size):
    text = (unit * (size // len(unit) + 1))[:size]
    start = time.perf_counter()
    for ex in EXTRACTORS:
        out = ex(text)
        assert out is None or isinstance(out, str)
    for scorer in (Format(), Format("lenient"), XMLCount(), Proximity()):
        s = scorer.score(text, answer="12")
        assert isinstance(s, Score) and s.status is not Status.ERROR
    assert time.perf_counter() - start < 4 * BOUND


@pytest.mark.parametrize("value", [None, b"<answer>5</answer>", 12, 3.5, object(), [{"content": None}], {"x": 1}])
def test_non_string_input_never_raises(value):
    for ex in EXTRACTORS:
        out = ex(value)
        assert out is None or isinstance(out, str)
    assert parse_number(value) is None or isinstance(parse_number(value), float)


def test_classic_functions_survive_hostile_text():
    # the classic regexes are used as published; without DOTALL their .*? cannot cross lines
    texts = list(ONE_MB.values())
    start = time.perf_counter()
    for f in (int_reward_func, strict_format_reward_func, soft_format_reward_func, xmlcount_reward_func):
        out = f(completions=texts)
        assert len(out) == len(texts)
    assert correctness_reward_func(None, texts, ["1"] * len(texts)) == [0.0] * len(texts)
    assert time.perf_counter() - start < 6 * BOUND


# --- non-string values where text belongs: completions and dataset columns ------------
from rewardkit import Rubric  # noqa: E402
from rewardkit.testing import HOSTILE_VALUES, Raising, hostile_values  # noqa: E402

SCORERS = [
    Format(), XMLCount(), Proximity(), Length(target=(1, 50)), Contains(["4"]), Contains(column="answer"),
    ExactMatch(), ExactMatch(numeric=True, extractor=DEFAULT),
]


def _check_score(s):
    assert isinstance(s, Score) and isinstance(s.reason, str)
    assert s.status is not Status.ERROR or s.reason


class _UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("no message either")


class _Unprintable:
    def __str__(self):
        raise _UnprintableError()

    __repr__ = __str__


@pytest.mark.parametrize("value", HOSTILE_VALUES + (_Unprintable(),), ids=lambda v: type(v).__name__)
def test_scorers_take_hostile_values_in_the_gold_column(value):
    # a gold whose __str__ raises an exception that cannot print itself used to escape
    for scorer in SCORERS:
        _check_score(scorer.score("<answer>42</answer>", answer=value))
        _check_score(scorer.score(value, answer="42"))


def test_unreadable_gold_is_an_error_with_a_reason():
    s = ExactMatch().score("42", answer=Raising())
    assert s.status is Status.ERROR and "gold" in s.reason
    assert ExactMatch().score("42", answer=b"42").status is Status.OK  # bytes read as text


@settings(max_examples=30, deadline=None)
@given(hostile_values(max_depth=3000), hostile_values(max_depth=3000))
def test_fuzz_non_string_completions_and_columns(completion, gold):
    for ex in EXTRACTORS:
        out = ex(completion)
        assert out is None or isinstance(out, str)
    for scorer in SCORERS:
        _check_score(scorer.score(completion, answer=gold))
    rubric = Rubric({"format": Format("lenient"), "xml": (XMLCount(), 0.5), "exact": ExactMatch()})
    result = rubric.score(completion, answer=gold)
    assert all(isinstance(s, Score) for s in result.parts.values())
    assert len(rubric(completions=[completion, "x"], answer=[gold, "x"])) == 2
