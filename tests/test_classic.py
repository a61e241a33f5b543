"""rewardkit.classic: the published GSM8K rules, each known defect shown, and the fix."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import classic
from rewardkit.classic import (
    correctness_reward_func,
    count_xml,
    extract_hash_answer,
    extract_xml_answer,
    int_reward_func,
    soft_format_reward_func,
    strict_format_reward_func,
    xmlcount_reward_func,
)
from rewardkit.scorers import Format, XMLCount

ONE_LINE = "<reasoning>\n2 + 2 = 4\n</reasoning>\n<answer>\n4\n</answer>\n"
MULTI_LINE = "<reasoning>\nFirst, 2 + 2.\nThat is 4.\n</reasoning>\n<answer>\n4\n</answer>\n"


def chat(text):
    return [{"role": "assistant", "content": text}]


# --- extraction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>\n 4 \n</answer>", "4"),
        ("<answer>1</answer><answer>2</answer>", "2"),
        ("<answer>7", "7"),
        ("no tags at all", "no tags at all"),  # defect: the whole text comes back
        ("x</answer>", "x"),
    ],
)
def test_extract_xml_answer(text, expected):
    assert extract_xml_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("Janet has 3...\n#### 18", "18"), ("#### 1,000 ", "1,000"), ("no marker", None), ("#### 1 #### 2", "1")],
)
def test_extract_hash_answer(text, expected):
    assert extract_hash_answer(text) == expected


# --- the five functions: values and the TRL contract ----------------------------------


def test_values_on_a_perfect_one_line_completion():
    completions = [chat(ONE_LINE)]
    assert correctness_reward_func(prompts=[[]], completions=completions, answer=["4"]) == [2.0]
    assert int_reward_func(completions=completions) == [0.5]
    assert strict_format_reward_func(completions=completions) == [0.5]
    assert soft_format_reward_func(completions=completions) == [0.0]  # defect: see below
    assert soft_format_reward_func(completions=[chat("<reasoning>r</reasoning> <answer>4</answer>")]) == [0.5]
    assert xmlcount_reward_func(completions=completions) == [pytest.approx(0.5)]


def test_plain_strings_and_trl_keywords():
    kwargs = {"prompts": ["q1", "q2"], "completions": [ONE_LINE, "<answer>5</answer>"], "answer": ["4", "4"],
              "completion_ids": [[1], [2]], "trainer_state": object()}
    assert correctness_reward_func(**kwargs) == [2.0, 0.0]
    assert int_reward_func(**kwargs) == [0.5, 0.5]
    assert strict_format_reward_func(**kwargs) == [0.5, 0.0]
    assert soft_format_reward_func(**kwargs) == [0.0, 0.0]
    assert len(xmlcount_reward_func(**kwargs)) == 2


def test_signatures_and_names_match_the_notebooks():
    assert list(inspect.signature(correctness_reward_func).parameters) == ["prompts", "completions", "answer", "kwargs"]
    for f in (int_reward_func, strict_format_reward_func, soft_format_reward_func, xmlcount_reward_func):
        assert list(inspect.signature(f).parameters) == ["completions", "kwargs"]
    assert xmlcount_reward_func([ONE_LINE]) == [pytest.approx(0.5)]  # positional use, as in the notebooks
    for name in ("correctness", "int", "strict_format", "soft_format", "xmlcount"):
        assert getattr(classic, f"{name}_reward_func").__name__ == f"{name}_reward_func"


def test_docstrings_list_the_defects():
    doc = classic.__doc__
    for word in ("DOTALL", "446", "isdigit", "0.055"):
        assert word in doc


# --- defects, each next to the corrected scorer ---------------------------------------


def test_defect_strict_format_only_matches_one_line_reasoning():
    assert strict_format_reward_func([ONE_LINE, MULTI_LINE]) == [0.5, 0.0]
    assert [Format("strict").score(t).value for t in (ONE_LINE, MULTI_LINE)] == [1.0, 1.0]


def test_defect_strict_format_demands_the_trailing_newline():
    at_eos = ONE_LINE.rstrip("\n")
    assert strict_format_reward_func([at_eos]) == [0.0]
    assert Format("strict").score(at_eos).value == 1.0


def test_defect_soft_format_never_matches_multi_line():
    multi = "<reasoning>line one\nline two</reasoning>\n<answer>4</answer>"
    # not even the layout strict_format asks for: its reasoning has newlines in it
    assert soft_format_reward_func([multi, MULTI_LINE, ONE_LINE]) == [0.0, 0.0, 0.0]
    assert [Format("lenient").score(t).value for t in (multi, MULTI_LINE, ONE_LINE)] == [1.0, 1.0, 1.0]


def test_defect_xmlcount_cliff_at_eos():
    shell = "<reasoning>\n\n</reasoning>\n<answer>\n42\n</answer>"
    text = shell.replace("\n\n</reasoning>", "\n" + "x" * (446 - len(shell)) + "\n</reasoning>")
    assert len(text) == 446 and text.endswith("\n</answer>")
    assert count_xml(text) == pytest.approx(0.055)  # REFERENCE.md's number
    assert count_xml(text + "\n") == pytest.approx(0.5)  # one newline more: full marks
    assert XMLCount().score(text).value == 0.5 == XMLCount().score(text + "\n").value


def test_defect_xmlcount_goes_negative_but_corrected_is_bounded():
    long_tail = ONE_LINE + "junk " * 400
    assert count_xml(long_tail) < 0
    assert XMLCount().score(long_tail).value == pytest.approx(0.375)


def test_defect_isdigit_rejects_negatives_and_decimals():
    completions = [f"<answer>{a}</answer>" for a in ("-3", "2.5", "1,000", "12", "\u00b2")]
    assert int_reward_func(completions) == [0.0, 0.0, 0.0, 0.5, 0.5]  # and accepts "²"


def test_defect_correctness_is_string_equality():
    assert correctness_reward_func(None, ["<answer>1,000</answer>", "<answer>1000.0</answer>"], ["1000", "1000"]) == [0.0, 0.0]


# --- the patterns are exactly the published ones --------------------------------------


def test_patterns_are_the_published_ones():
    assert classic._STRICT.pattern == r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
    assert classic._SOFT.pattern == r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
    assert classic._STRICT.flags & 16 == 0 and classic._SOFT.flags & 16 == 0  # re.DOTALL == 16


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["<reasoning>\n", "\n</reasoning>\n", "\n<answer>\n", "\n</answer>", "\n", "x", "42"]),
                max_size=12).map("".join))
def test_count_xml_matches_its_rule(text):
    expected = 0.0
    if text.count("<reasoning>\n") == 1:
        expected += 0.125
    if text.count("\n</reasoning>\n") == 1:
        expected += 0.125
    if text.count("\n<answer>\n") == 1:
        expected += 0.125 - 0.001 * len(text.split("\n</answer>\n")[-1])
    if text.count("\n</answer>") == 1:
        expected += 0.125 - 0.001 * (len(text.split("\n</answer>")[-1]) - 1)
    assert count_xml(text) == pytest.approx(expected)
    assert count_xml(text) <= 0.5 + 0.001 + 1e-12
