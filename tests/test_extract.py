"""rewardkit.extract: what each extractor finds, and that it never raises."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument
from rewardkit.extract import (
    DEFAULT,
    After,
    AnswerIs,
    Boxed,
    Choice,
    FirstOf,
    LastNumber,
    Pattern,
    Tag,
    extract_after,
    extract_answer_is,
    extract_boxed,
    extract_choice,
    extract_last_number,
    extract_tag,
    parse_number,
)

# --- boxed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, which, expected",
    [
        (r"\boxed{5}", "last", "5"),
        (r"so \boxed{\frac{1}{2}} and \boxed{3}", "last", "3"),
        (r"so \boxed{\frac{1}{2}} and \boxed{3}", "first", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}}}", "last", r"\sqrt{\frac{a}{b}}"),
        (r"\fbox{x+1}", "last", "x+1"),
        (r"$\boxed 42$", "last", "42"),
        (r"\boxed{\{1,2\}}", "last", r"\{1,2\}"),  # escaped braces do not count
        (r"\boxed{5} then \boxed{6", "last", "5"),  # unclosed last box: the previous one
        (r"\boxed{ 7 }", "last", "7"),
        (r"\boxed{}", "last", None),
        (r"\boxed{", "last", None),
        (r"\boxed{{1}", "last", None),
        (r"\boxedsymbol{5}", "last", None),  # another macro
        (r"\boxed5", "last", None),
        ("no box", "last", None),
        ("}}}{{{", "last", None),
    ],
)
def test_extract_boxed(text, which, expected):
    assert extract_boxed(text, which=which) == expected
    assert Boxed(which)(text) == expected


# --- tags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, name, which, expected",
    [
        ("<answer>\n42\n</answer>", "answer", "last", "42"),
        ("<answer>1</answer> then <answer>2</answer>", "answer", "last", "2"),
        ("<answer>1</answer> then <answer>2</answer>", "answer", "first", "1"),
        ("<answer>1</answer><answer> 43", "answer", "last", "43"),  # unclosed: the rest
        ("<think>\nlong\nthought\n</think> ok", "think", "last", "long\nthought"),
        ("<start_working_out>w<end_working_out><SOLUTION>7</SOLUTION>", "SOLUTION", "last", "7"),
        ("<start_working_out>w<end_working_out>", ("<start_working_out>", "<end_working_out>"), "last", "w"),
        ("[[1]] [[2]]", ("[[", "]]"), "first", "1"),
        ("<answer></answer>", "answer", "last", None),
        ("</answer>", "answer", "last", None),
        ("<Answer>5</Answer>", "answer", "last", None),  # case-sensitive on purpose
        ("", "answer", "last", None),
    ],
)
def test_extract_tag(text, name, which, expected):
    assert extract_tag(text, name, which=which) == expected
    assert Tag(name, which)(text) == expected


# --- after a marker / answer-is -------------------------------------------------------


@pytest.mark.parametrize(
    "text, marker, expected",
    [
        ("Natalia sold 48 clips...\n#### 72", "####", "72"),
        ("#### 1\n#### 2\nmore", "####", "2"),
        ("#### 1,234 \n", "####", "1,234"),
        ("Final: 9", "Final:", "9"),
        ("####", "####", None),
        ("nothing", "####", None),
    ],
)
def test_extract_after(text, marker, expected):
    assert extract_after(text, marker) == expected
    assert After(marker)(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 42.", "42"),
        ("So the final answer is $\\boxed{5}$.", "5"),
        ("**Answer:** 42. Hope this helps", "42"),
        ("The answer is 3.5.", "3.5"),
        ("Answer:\n\n  17", "17"),
        ("The answer is: $x^2$", "x^2"),
        ("answer is 1 ... no wait, the answer is 2", "2"),
        ("**Final Answer**: 12", "12"),
        ("Answer\uff1a 8", "8"),
        ("The answer is", None),
        ("answers are everywhere", None),
        ("no marker 42", None),
    ],
)
def test_extract_answer_is(text, expected):
    assert extract_answer_is(text) == expected
    assert AnswerIs()(text) == expected


# --- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("it costs $1,234.50.", "$1,234.50"),
        ("temperature fell to -1,234.5 today", "-1,234.5"),
        ("ratio 3/4", "3/4"),
        ("tiny 1e-3 ok", "1e-3"),
        ("up 12%", "12%"),
        ("list 1,2,3", "3"),
        ("5-3", "3"),  # a hyphen between operands is not a sign
        ("x = -3", "-3"),
        ("5 - 3", "3"),
        ("it is 7.", "7"),
        ("\u22125", "\u22125"),
        ("value .5", ".5"),
        ("1,000,000 people", "1,000,000"),
        ("no digits", None),
        ("", None),
    ],
)
def test_extract_last_number(text, expected):
    assert extract_last_number(text) == expected
    assert LastNumber()(text) == expected


@pytest.mark.parametrize(
    "s, expected",
    [
        ("1,234", 1234.0),
        ("-1,234.5", -1234.5),
        ("+7", 7.0),
        ("\u22127", -7.0),
        ("3/4", 0.75),
        ("-3/4", -0.75),
        ("1e-3", 0.001),
        ("2.5E3", 2500.0),
        ("$5", 5.0),
        ("\\$5", 5.0),
        ("12%", 12.0),
        (".5", 0.5),
        ("5.", 5.0),
        (" 42 ", 42.0),
        ("1{,}000", 1000.0),
        ("\\frac{3}{4}", 0.75),
        ("-\\dfrac{1}{2}", -0.5),
        (7, 7.0),
        (2.5, 2.5),
        ("1,2", None),  # a list, not a number
        ("1,2345", None),
        ("abc", None),
        ("72 dollars", None),
        ("1/0", None),
        ("1e400", None),
        ("nan", None),
        ("inf", None),
        (float("inf"), None),
        (True, None),
        (None, None),
        ("", None),
        ("1" * 2000, None),
    ],
)
def test_parse_number(s, expected):
    assert parse_number(s) == expected


# --- multiple choice ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, choices, expected",
    [
        ("The answer is (C).", "ABCD", "C"),
        ("I think A cat is (B) so the answer is (C).", "ABCD", "C"),
        ("Answer: b", "ABCD", "B"),
        ("\\boxed{D}", "ABCD", "D"),
        ("<answer>A</answer>", "ABCD", "A"),
        ("A cat sat. Option D looks right", "ABCD", "D"),
        ("Between (A) and (B), B", "ABCD", "B"),
        ("I believe it", "ABCD", None),
        ("The answer is Paris", "ABCD", None),
        ("pick E", "ABCDE", "E"),
        ("option 3", "1234", "3"),
    ],
)
def test_extract_choice(text, choices, expected):
    assert extract_choice(text, choices) == expected
    assert Choice(choices)(text) == expected


# --- Pattern / FirstOf / DEFAULT ------------------------------------------------------


def test_pattern_groups_and_which():
    assert Pattern(r"ans=(\d+)")("ans=3 ans=4") == "4"
    assert Pattern(r"ans=(\d+)", which="first")("ans=3 ans=4") == "3"
    assert Pattern(r"ans=(?P<v>\d+)", group="v")("ans=5") == "5"
    assert Pattern(r"\d+", group=0)("a 12 b 34") == "34"
    assert Pattern(r"ANS=(\d+)", flags=2)("ans=9") == "9"  # regex.IGNORECASE == 2
    assert Pattern(r"x(\d)?")("x") is None  # the group did not take part
    assert Pattern(r"ans=(\d+)")("nothing") is None


def test_pattern_times_out_to_none():
    evil = Pattern(r"(a+)+$", group=0, timeout=0.1)
    assert evil("a" * 50_000 + "b") is None


def test_first_of_tries_in_order_and_survives_a_raising_extractor():
    def boom(text):
        raise RuntimeError("user bug")

    chain = FirstOf(boom, Tag("answer"), Boxed())
    assert chain(r"\boxed{1} <answer>2</answer>") == "2"
    assert chain(r"\boxed{1}") == "1"
    assert chain("nothing") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>7</answer> \\boxed{8}", "7"),
        ("so \\boxed{8}\n#### 9", "8"),
        ("steps\n#### 9", "9"),
        ("The answer is 10.", "10"),
        ("we get 11 apples", "11"),
        ("no answer", None),
    ],
)
def test_default_order(text, expected):
    assert DEFAULT(text) == expected


def test_chat_messages_are_read_as_text():
    messages = [{"role": "assistant", "content": "<answer>5</answer>"}]
    assert extract_tag(messages) == "5"
    assert DEFAULT(messages) == "5"


@pytest.mark.parametrize(
    "extractor",
    [Boxed(), Boxed("first"), Tag("think"), After("Final:"), AnswerIs(), LastNumber(), Choice("ABCDE"),
     Pattern(r"x=(\d+)", timeout=0.5), FirstOf(Tag(), Pattern(r"(\d)")), DEFAULT],
    ids=repr,
)
def test_extractors_pickle_and_compare(extractor):
    clone = pickle.loads(pickle.dumps(extractor))
    assert clone == extractor and hash(clone) == hash(extractor)
    text = "<think>t</think> x=12 \\boxed{3} Final: 4 The answer is (E)."
    assert clone(text) == extractor(text)
    assert isinstance(extractor.name, str) and extractor.name


def test_extractors_differ_by_parameters():
    assert Tag("answer") != Tag("think")
    assert Boxed() != Boxed("first")
    assert Pattern(r"(a)") != Pattern(r"(b)")


# --- invalid configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, kwargs, field",
    [
        (Boxed, {"which": "middle"}, "which"),
        (Tag, {"name": ""}, "name"),
        (Tag, {"name": "<answer>"}, "name"),
        (Tag, {"name": "a b"}, "name"),
        (Tag, {"which": 1}, "which"),
        (Tag, {"name": ("<a>",)}, "name"),
        (Tag, {"name": ("<a>", "")}, "name"),
        (Tag, {"name": ("<a>", "<a>")}, "name"),
        (After, {"marker": ""}, "marker"),
        (Choice, {"choices": ""}, "choices"),
        (Choice, {"choices": "AAB"}, "choices"),
        (Choice, {"choices": "A,B"}, "choices"),
        (Pattern, {"pattern": "("}, "pattern"),
        (Pattern, {"pattern": ""}, "pattern"),
        (Pattern, {"pattern": 5}, "pattern"),
        (Pattern, {"pattern": r"\d+"}, "group"),  # no group 1
        (Pattern, {"pattern": r"(\d+)", "group": 2}, "group"),
        (Pattern, {"pattern": r"(\d+)", "group": "v"}, "group"),
        (Pattern, {"pattern": r"(\d+)", "group": True}, "group"),
        (Pattern, {"pattern": r"(\d+)", "timeout": 0}, "timeout"),
        (Pattern, {"pattern": r"(\d+)", "timeout": float("inf")}, "timeout"),
        (Pattern, {"pattern": r"(\d+)", "timeout": "1"}, "timeout"),
        (Pattern, {"pattern": r"(\d+)", "flags": -1}, "flags"),
        (Pattern, {"pattern": r"(\d+)", "which": "all"}, "which"),
    ],
)
def test_invalid_arguments(factory, kwargs, field):
    with pytest.raises(InvalidArgument, match=rf"^{field}="):
        factory(**kwargs)


def test_first_of_validation():
    with pytest.raises(InvalidArgument, match=r"^extractors="):
        FirstOf()
    with pytest.raises(InvalidArgument, match=r"^extractors\[1\]="):
        FirstOf(Tag(), "not callable")


def test_functions_reject_bad_configuration_too():
    with pytest.raises(InvalidArgument):
        extract_boxed("x", which="both")
    with pytest.raises(InvalidArgument):
        extract_choice("x", choices="")


# --- properties -----------------------------------------------------------------------

_ALL = [Boxed(), Boxed("first"), Tag(), Tag(which="first"), After(), AnswerIs(), LastNumber(), Choice(), DEFAULT]
_pieces = st.sampled_from(
    ["<answer>", "</answer>", "\\boxed{", "\\boxed ", "{", "}", "####", "The answer is ", "Answer:",
     "-", "1,234", ".5", "3/4", "e-3", "$", "%", "\n", " ", "(B)", "A ", "\x00", "\u202e", "\u0301", "\ud800"]
)
_texts = st.one_of(st.text(max_size=300), st.lists(st.one_of(_pieces, st.text(max_size=5)), max_size=40).map("".join))


@settings(max_examples=150, deadline=None)
@given(_texts)
def test_extractors_return_none_or_a_stripped_piece_of_the_input(text):
    for ex in _ALL:
        out = ex(text)
        assert out is None or (isinstance(out, str) and out == out.strip() and out)
        if out is not None and not isinstance(ex, Choice) and ex is not DEFAULT:
            assert out in text
        assert ex(text) == out  # deterministic


@settings(max_examples=150, deadline=None)
@given(_texts)
def test_choice_is_one_of_the_choices(text):
    out = extract_choice(text, "ABCD")
    assert out is None or out in "ABCD"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_pieces, max_size=6).map("".join)))
def test_parse_number_is_finite_or_none(s):
    value = parse_number(s)
    assert value is None or (isinstance(value, float) and math.isfinite(value))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=-10**15, max_value=10**15).map(str),
        st.integers(min_value=-10**12, max_value=10**12).map(lambda n: f"{n:,}"),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12).map(repr),
    )
)
def test_last_number_round_trips_through_parse(number):
    text = f"so the total is {number} units"
    found = extract_last_number(text)
    assert found == number
    assert parse_number(found) == pytest.approx(float(number.replace(",", "")), rel=1e-12)
