"""The five classic GSM8K reward functions, reproduced exactly, defects included.

These are the rules of the widely copied GRPO seed notebooks (rewardkit's REFERENCE.md
section 2), re-implemented from their description so published runs can be reproduced
number for number. Use them for that; for new work prefer the corrected scorers:
:class:`rewardkit.scorers.Format`, :class:`rewardkit.scorers.XMLCount` and a verifier
such as ``rewardkit.verifiers.MathEquivalence``.

Known defects (each one has a test in ``tests/test_classic.py``):

- ``strict_format_reward_func`` and ``soft_format_reward_func`` compile without DOTALL:
  strict only matches one-line reasoning and answer; soft never matches a completion
  with a newline inside a tag pair, not even the very layout strict asks for
  (``<reasoning>\n...\n</reasoning>``), so format rewards silently stay 0.
- ``strict_format_reward_func`` also demands the final newline after ``</answer>``,
  which generation usually stops before.
- ``xmlcount_reward_func`` subtracts 0.001 per character after the last
  ``"\\n</answer>\\n"``; a completion that ends at ``</answer>`` with no newline (the usual
  EOS case) has no such marker, so the whole text counts: 446 characters score 0.055
  instead of 0.5. Its value can go negative.
- ``int_reward_func`` uses ``str.isdigit``: ``-3`` and ``2.5`` get nothing, while
  unicode digits such as ``"²"`` do.
- ``correctness_reward_func`` compares strings: ``"1,000"`` is not ``"1000"``.
- ``extract_xml_answer`` returns the whole text when there is no ``<answer>`` tag.

The TRL call contract holds (keyword ``prompts``/``completions``/``answer`` plus
``**kwargs``; a list of floats back). Completions may be chat messages, read as
``completion[0]["content"]`` like the originals, or plain strings. The originals print
each question and answer; these do not.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

__all__ = [
    "extract_xml_answer",
    "extract_hash_answer",
    "correctness_reward_func",
    "int_reward_func",
    "strict_format_reward_func",
    "soft_format_reward_func",
    "xmlcount_reward_func",
    "count_xml",
]

# exactly the published patterns: no DOTALL, used with re.match
_STRICT = re.compile(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$")
_SOFT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>")


def extract_xml_answer(text: str) -> str:
    """Text between the last ``<answer>`` and the ``</answer>`` after it, stripped.

    Defect kept: with no ``<answer>`` at all, the whole text (up to any ``</answer>``) comes back.
    """
    answer = text.split("<answer>")[-1]
    answer = answer.split("</answer>")[0]
    return answer.strip()


def extract_hash_answer(text: str) -> str | None:
    """GSM8K's gold answer: the text after ``####``, stripped; None without the marker.

    Defect kept: with several markers, only the text between the first and second counts.
    """
    if "####" not in text:
        return None
    return text.split("####")[1].strip()


def _content(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    return completion[0]["content"]


def _texts(completions: Sequence[Any] | None) -> list[str]:
    return [_content(c) for c in (completions or [])]


def correctness_reward_func(prompts: Any, completions: Sequence[Any], answer: Sequence[str], **kwargs: Any) -> list[float]:
    """2.0 when the ``<answer>`` text equals the gold string exactly, else 0.0."""
    extracted = [extract_xml_answer(r) for r in _texts(completions)]
    return [2.0 if r == a else 0.0 for r, a in zip(extracted, answer)]


def int_reward_func(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """0.5 when the ``<answer>`` text passes ``str.isdigit()`` (so no negatives or decimals)."""
    extracted = [extract_xml_answer(r) for r in _texts(completions)]
    return [0.5 if r.isdigit() else 0.0 for r in extracted]


def strict_format_reward_func(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """0.5 when the whole text matches the strict one-line-per-part layout (no DOTALL)."""
    return [0.5 if _STRICT.match(r) else 0.0 for r in _texts(completions)]


def soft_format_reward_func(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """0.5 when the text starts with a reasoning block then an answer block (no DOTALL)."""
    return [0.5 if _SOFT.match(r) else 0.0 for r in _texts(completions)]


def count_xml(text: str) -> float:
    """The classic per-tag count with its trailing-text penalties (can be negative)."""
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1]) * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (len(text.split("\n</answer>")[-1]) - 1) * 0.001
    return count


def xmlcount_reward_func(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """:func:`count_xml` of each completion (max 0.5; the EOS cliff is kept)."""
    return [count_xml(c) for c in _texts(completions)]
