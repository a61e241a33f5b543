"""The contract-testing kit catches each broken contract, and passes a sound component."""

from __future__ import annotations

import importlib.util
import random
import re
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardkit.testing as kit
from rewardkit import Score, Scorer, Verifier
from rewardkit.testing import (
    HOSTILE_SAMPLES,
    ContractViolation,
    check_component,
    check_text,
    contract_failures,
    harmless_variants,
)
from rewardkit.testing.strategies import answered_completions, completions, harmless_reformattings, hostile_text


class EndsWithAnswer(Verifier):
    """Sound: bounded work, strips whitespace, in range, deterministic."""

    def _score(self, text, answer="42", **columns):
        tail = text[-200:].strip()
        if not tail:
            return Score.unparseable()
        return Score.ok(1.0) if tail.endswith(str(answer)) else Score.wrong(0.0)


class Raises(Verifier):
    def score(self, completion, **columns):  # bypasses the safe base on purpose
        if "{" in completion:
            raise RuntimeError("brace")
        return Score.ok(1.0)


class NotAScore:
    range = (0.0, 1.0)

    def score(self, completion, **columns):
        return 1.0


class OutOfRange(Scorer):
    range = (0.0, 1.0)

    def _score(self, text, **columns):
        return 2.0 if "<answer>" in text else 0.5


class NoneWithOk(Scorer):
    def _score(self, text, **columns):
        return Score(None, "ok")


class Random(Verifier):
    def _score(self, text, **columns):
        return random.random() < 0.5


class Slow(Scorer):
    def _score(self, text, **columns):
        if len(text) > 500_000:
            time.sleep(0.3)
        return 0.0


class WhitespaceSensitive(Verifier):
    def _score(self, text, **columns):
        return text.endswith("42")


def test_sound_component_passes():
    check_component(EndsWithAnswer(), ["<answer>42</answer>", "I think 41", "it is\n42"], columns={"answer": "42"})


@pytest.mark.parametrize(
    "component, kwargs, expected",
    [
        (Raises(), {}, "raised RuntimeError: brace"),
        (NotAScore(), {}, "returned float, not Score"),
        (OutOfRange(), {}, "value 2.0 outside the declared range [0.0, 1.0]"),
        (NoneWithOk(), {}, "value None with status 'ok'"),
        (Random(), {"texts": ["x"] * 40}, "not deterministic"),
        (Slow(), {"max_seconds": 0.1}, "> max_seconds=0.1"),
        (WhitespaceSensitive(), {"texts": ["answer 42"]}, "verdict changed under harmless reformatting"),
    ],
)
def test_each_broken_contract_is_reported(component, kwargs, expected):
    texts = kwargs.pop("texts", None)
    with pytest.raises(ContractViolation) as info:
        check_component(component, texts, **kwargs)
    assert isinstance(info.value, AssertionError)
    assert any(expected in f for f in info.value.failures), info.value.failures[:5]


def test_formatting_invariance_defaults_by_kind():
    class Sensitive(Scorer):  # a scorer may legitimately see whitespace
        def _score(self, text, **columns):
            return text.endswith("\n")

    assert contract_failures(Sensitive(), hostile=False, texts=["abc"]) == []
    assert contract_failures(Sensitive(), hostile=False, texts=["abc"], invariant_under_formatting=True)


def test_hostile_corpus_is_hostile():
    assert max(len(s) for s in HOSTILE_SAMPLES) >= 1 << 20
    assert any("\ud800" in s for s in HOSTILE_SAMPLES)
    assert any(s.count("\\boxed{") >= 10_000 for s in HOSTILE_SAMPLES)


def _squash(text):
    return re.sub(r"\s+", " ", text).strip()


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=50).flatmap(lambda t: st.tuples(st.just(t), harmless_reformattings(t))))
def test_harmless_reformattings_only_touch_whitespace(pair):
    text, variant = pair
    assert _squash(variant) == _squash(text)
    assert variant != text or not harmless_variants(text)


def test_harmless_variants_cover_the_four_kinds():
    variants = harmless_variants("a\nb")
    assert "  a\nb  " in variants and "a\nb\n" in variants and "a\r\nb" in variants and "a\n\nb" in variants


@settings(max_examples=25, deadline=None)
@given(hostile_text())
def test_hostile_text_is_text_up_to_a_megabyte(text):
    assert isinstance(text, str) and len(text) <= (1 << 20) + 64


@settings(max_examples=25, deadline=None)
@given(hostile_text(max_size=20_000))
def test_sound_component_holds_under_hypothesis(text):
    check_text(EndsWithAnswer(), text, max_seconds=5.0)


@settings(max_examples=25, deadline=None)
@given(answered_completions())
def test_answered_completions_end_in_their_answer(pair):
    text, answer = pair
    # the answer is the last thing said: at most a closing tag or brace follows it
    assert answer in text
    assert len(text) - (text.rfind(answer) + len(answer)) <= len("\n</answer>")


@settings(max_examples=10, deadline=None)
@given(completions())
def test_completions_are_strings(text):
    assert isinstance(text, str) and text


def test_kit_imports_without_hypothesis():
    code = "import sys, rewardkit.testing as t; t.check_component; assert 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_lazy_names_and_unknown_attribute():
    assert kit.hostile_text is hostile_text
    with pytest.raises(AttributeError):
        kit.no_such_name  # noqa: B018


@pytest.mark.skipif(importlib.util.find_spec("rewardkit.testing.math") is None, reason="no math strategies yet")
def test_math_strategies_are_reexported():
    import rewardkit.testing.math as math_mod

    for name in math_mod.__all__:
        assert getattr(kit, name) is getattr(math_mod, name)
        assert name in dir(kit)


def test_builtin_components_keep_the_contract():
    # the kit is only useful if rewardkit's own components pass it
    from rewardkit.scorers import Format, XMLCount
    from rewardkit.verifiers import MathEquivalence

    texts = ["<reasoning>\nok\n</reasoning>\n<answer>\n42\n</answer>", "The answer is 42.", "\\boxed{41}"]
    check_component(MathEquivalence(), texts, columns={"answer": "42"}, max_seconds=10)
    check_component(Format(), texts, max_seconds=10)
    check_component(XMLCount(), texts, max_seconds=10)
