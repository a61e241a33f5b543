"""Scorers grade the form of a completion: tags, length, closeness, keywords.

Each is a :class:`rewardkit.Scorer`: it never raises on model output, declares the closed
``range`` its values fall in, validates its configuration at construction (raising
``InvalidArgument`` that names the field and its value), and is a TRL reward function as
it stands (``__name__`` is its stable ``name``). ``Status.OK`` means the form is exactly
what was asked for; ``Status.WRONG`` carries partial or zero credit.

The corrected defaults fix the classic GSM8K rules (see :mod:`rewardkit.classic`): tags
are found across lines, a completion may end right at ``</answer>``, and text after the
closing tag costs a smooth, bounded penalty instead of a cliff.

Limits: tags are literal and case-sensitive; ``Length(unit="words")`` splits on
whitespace; ``unit="tokens"`` needs a tokenizer; ``Proximity`` compares floats, so
answers beyond about 1e308 or with more than 1,000 characters count as unparseable.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable

from ._checks import _column, _extractor, _number, _one_of, _safe_extract
from ._component import Scorer, prompt_text, value_text
from .matching import Contains, ExactMatch
from ._score import Score
from .errors import invalid
from .extract import DEFAULT, _check_tag_name, _tag_pair, extract_after, extract_last_number, parse_number

__all__ = ["Format", "XMLCount", "Proximity", "Length", "Contains", "ExactMatch", "template_echo", "placeholder"]

_WS = re.compile(r"\s*")
_MARKUP = re.compile(r"</?[A-Za-z_][\w:.-]*\s*>")
#: answer (or reasoning) contents that only echo a format template, compared casefolded
PLACEHOLDERS = frozenset({
    "answer", "your answer", "the answer", "final answer", "your final answer", "answer here",
    "your answer here", "insert answer here", "reasoning", "your reasoning", "reasoning here",
    "your reasoning here", "step by step reasoning", "tbd", "todo", "n/a",
})  # fmt: skip


def _blocks(text: str, pair: tuple[str, str]) -> list[str]:
    """Contents of every ``open ... close`` block in ``text`` (linear)."""
    out, pos = [], 0
    while True:
        start = text.find(pair[0], pos)
        if start < 0:
            return out
        end = text.find(pair[1], start + len(pair[0]))
        if end < 0:
            return out
        out.append(text[start + len(pair[0]) : end])
        pos = end + len(pair[1])


def placeholder(content: str, examples: frozenset[str] = frozenset()) -> bool:
    """Whether a block's content only echoes a template: blank, no letter or digit at all
    (``...``, ``…``, ``___``), a stock phrase (:data:`PLACEHOLDERS`), or one of
    ``examples`` (the prompt's own example contents), compared casefolded and trimmed."""
    core = " ".join(content.split()).casefold()
    if not any(ch.isalnum() for ch in core):
        return True
    return core in PLACEHOLDERS or core in examples


@functools.lru_cache(maxsize=64)  # a group's G completions share one prompt
def _examples(shown: str, answer: tuple[str, str], reasoning: tuple[str, str] | tuple) -> frozenset[str]:
    """The contents of the answer and reasoning blocks the prompt itself shows."""
    return frozenset(" ".join(c.split()).casefold() for pair in (answer, reasoning) if pair
                     for c in _blocks(shown, pair))  # fmt: skip


def template_echo(text: str, answer: tuple[str, str], reasoning: tuple[str, str] | tuple = (),
                  prompt: Any = None) -> str:
    """Why ``text`` echoes a format template instead of using it, or "" when it does not.

    A template echo is: more than one answer block; an answer (or reasoning) block whose
    content is a placeholder (:func:`placeholder`, with the example contents of the same
    tags in ``prompt`` as more placeholders); or markup (another tag) after the first
    answer block. Plain trailing text is each scorer's own business.
    """
    if text.count(answer[0]) > 1:
        return f"{text.count(answer[0])} {answer[0]} blocks, not one"
    answers = _blocks(text, answer)
    thoughts = _blocks(text, reasoning) if reasoning else []
    if answers or thoughts:  # only then can a block echo the prompt's own examples
        examples = _examples(prompt_text(prompt)[:100_000], answer, reasoning)
        if answers and placeholder(answers[0], examples):
            return f"the answer {answers[0].strip()[:40]!r} is a template placeholder"
        if thoughts and placeholder(thoughts[0], examples):
            return f"the reasoning {thoughts[0].strip()[:40]!r} is a template placeholder"
    if answers:
        tail = text[text.find(answer[1], text.find(answer[0])) + len(answer[1]) :]
        if _MARKUP.search(tail):
            return f"markup after {answer[1]}: {_MARKUP.search(tail).group(0)}"
    return ""


# ---------------------------------------------------------------------------------------
class Format(Scorer):
    """1.0 when the completion has the reasoning-then-answer layout, else 0.0.

    ``style="strict"``: the whole completion is ``<reasoning>\\n...\\n</reasoning>\\n<answer>\\n
    ...\\n</answer>`` with one optional trailing newline, each tag exactly once, both parts
    non-blank; the reasoning may span many lines. ``style="lenient"``: somewhere in the
    text a ``<reasoning>...</reasoning>`` block is followed, after optional whitespace, by an
    ``<answer>...</answer>`` block with a non-blank answer. ``reasoning_tag=None`` checks
    only the answer block (strict: the completion ends with it). A tag is a name
    (``"think"`` means ``<think>``...``</think>``) or a literal (opening, closing) pair such
    as ``("<start_working_out>", "<end_working_out>")``.

    Either style pays nothing for a template echo (:func:`template_echo`): more than one
    answer block, a placeholder answer or reasoning (``...``, blank, "your answer", or the
    prompt's own example text when the row has a ``prompt``), or any text after the answer
    block (``style="lenient"`` too).
    """

    default_name = "format"
    range = (0.0, 1.0)

    def __init__(
        self,
        style: str = "strict",
        reasoning_tag: str | None = "reasoning",
        answer_tag: str = "answer",
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.style = _one_of("style", style, ("strict", "lenient"))
        self.reasoning_tag = None if reasoning_tag is None else _check_tag_name(reasoning_tag, "reasoning_tag")
        self.answer_tag = _check_tag_name(answer_tag, "answer_tag")
        self._answer = _tag_pair(self.answer_tag)
        self._reasoning = () if self.reasoning_tag is None else _tag_pair(self.reasoning_tag)
        if set(self._answer) & set(self._reasoning):
            raise invalid("answer_tag", answer_tag, "must differ from reasoning_tag")

    def _score(self, text: str, **columns: Any) -> Score:
        problem = template_echo(text, self._answer, self._reasoning, columns.get("prompt"))
        if not problem:
            problem = self._strict(text) if self.style == "strict" else self._lenient(text)
        if problem:
            return Score.wrong(0.0, reason=problem)
        return Score.ok(1.0, reason=f"{self.style} format")

    def _strict(self, text: str) -> str:
        a_open, a_close = self._answer
        t = text[:-1] if text.endswith("\n") else text
        for tag in self._answer + self._reasoning:
            if t.count(tag) != 1:
                return f"{tag} appears {t.count(tag)} times, not once"
        if not t.endswith(f"\n{a_close}"):
            return f"the completion does not end with \\n{a_close}"
        if self.reasoning_tag is None:
            start = t.find(a_open + "\n")
            if start < 0:
                return f"{a_open} is not followed by a newline"
            answer = t[start + len(a_open) + 1 : -len(a_close) - 1]
            return "" if answer.strip() else "the answer is blank"
        r_open, r_close = self._reasoning
        if not t.startswith(r_open + "\n"):
            return f"the completion does not start with {r_open} and a newline"
        sep = f"\n{r_close}\n{a_open}\n"
        mid = t.find(sep)
        if mid < 0:
            return f"{r_close} and {a_open} are not on their own lines, one after the other"
        reasoning = t[len(r_open) + 1 : mid]
        answer = t[mid + len(sep) : -len(a_close) - 1]
        if not reasoning.strip():
            return "the reasoning is blank"
        return "" if answer.strip() else "the answer is blank"

    def _lenient(self, text: str) -> str:
        a_open, a_close = self._answer
        if self.reasoning_tag is None:
            start = text.find(a_open)
            if start < 0:
                return f"no {a_open}"
            return self._answer_block(text, start, a_open, a_close)
        r_open, r_close = self._reasoning
        pos = text.find(r_open)
        if pos < 0:
            return f"no {r_open}"
        close = text.find(r_close, pos + len(r_open))
        if close < 0:
            return f"no {r_close} after {r_open}"
        while close >= 0:  # each whitespace run is skipped once: linear overall
            after = _WS.match(text, close + len(r_close)).end()
            if text.startswith(a_open, after):
                return self._answer_block(text, after, a_open, a_close)
            close = text.find(r_close, close + len(r_close))
        return f"no {a_open} right after {r_close}"

    @staticmethod
    def _answer_block(text: str, start: int, a_open: str, a_close: str) -> str:
        end = text.find(a_close, start + len(a_open))
        if end < 0:
            return f"no {a_close} after {a_open}"
        if not text[start + len(a_open) : end].strip():
            return "the answer is blank"
        tail = text[end + len(a_close) :].strip()
        return f"{len(tail)} characters after {a_close}" if tail else ""


# ---------------------------------------------------------------------------------------
class XMLCount(Scorer):
    """Partial credit for each of the four tags, corrected.

    ``tag_reward`` (0.125) for each of ``<reasoning>``, ``</reasoning>``, ``<answer>``,
    ``</answer>`` that appears exactly once, wherever the newlines are; minus
    ``junk_penalty`` (0.001) per character after the last ``</answer>`` (surrounding
    whitespace trimmed, so a final newline is free), at most ``max_junk_penalty`` (default ``tag_reward``), floored at 0.
    A completion that stops right at ``</answer>`` gets full marks: no cliff. Tags are
    names or literal (opening, closing) pairs, as in :class:`Format`. A template echo
    (:func:`template_echo`: several answer blocks, a placeholder answer or reasoning, or
    markup after the answer) gets 0; plain trailing text keeps the smooth penalty.
    """

    default_name = "xmlcount"

    def __init__(
        self,
        reasoning_tag: str = "reasoning",
        answer_tag: str = "answer",
        *,
        tag_reward: float = 0.125,
        junk_penalty: float = 0.001,
        max_junk_penalty: float | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.reasoning_tag = _check_tag_name(reasoning_tag, "reasoning_tag")
        self.answer_tag = _check_tag_name(answer_tag, "answer_tag")
        self._tags = _tag_pair(self.reasoning_tag) + _tag_pair(self.answer_tag)
        if len(set(self._tags)) != 4:
            raise invalid("answer_tag", answer_tag, "must differ from reasoning_tag")
        self.tag_reward = float(_number("tag_reward", tag_reward, positive=True))
        self.junk_penalty = float(_number("junk_penalty", junk_penalty, minimum=0))
        if max_junk_penalty is None:
            max_junk_penalty = self.tag_reward
        self.max_junk_penalty = float(_number("max_junk_penalty", max_junk_penalty, minimum=0))
        self.range = (0.0, 4 * self.tag_reward)

    def _score(self, text: str, **columns: Any) -> Score:
        tags = self._tags
        echo = template_echo(text, tags[2:], tags[:2], columns.get("prompt"))
        if echo:
            return Score.wrong(0.0, reason=echo)
        counts = {tag: text.count(tag) for tag in tags}
        credit = self.tag_reward * sum(1 for c in counts.values() if c == 1)
        junk = 0
        last_close = text.rfind(tags[3])
        if last_close >= 0:
            junk = len(text[last_close + len(tags[3]) :].strip())
        penalty = min(self.max_junk_penalty, self.junk_penalty * junk)
        value = min(self.range[1], max(0.0, credit - penalty))
        details = {"counts": counts, "trailing_chars": junk}
        if value >= self.range[1]:
            return Score.ok(value, reason="each tag once, nothing after the answer", **details)
        missing = [t for t, c in counts.items() if c != 1]
        reason = (f"not exactly once: {' '.join(missing)}" if missing else "") + (
            f"{'; ' if missing else ''}{junk} characters after {tags[3]}" if junk else ""
        )
        return Score.wrong(value, reason=reason, **details)


# ---------------------------------------------------------------------------------------
def _gold_number(gold: Any) -> float | None:
    if not isinstance(gold, (int, float)):
        gold = value_text(gold)[0]  # bytes decoded; a hostile object reads as no number
    value = parse_number(gold)
    if value is None and isinstance(gold, str):
        # a full GSM8K solution ("... #### 72") or a number with words around it
        value = parse_number(extract_after(gold, "####"))
        if value is None:
            value = parse_number(extract_last_number(gold))
    return value


class Proximity(Scorer):
    """More reward the closer a numeric answer is to the gold one; far outliers negative.

    The distance is ``d = |prediction - gold| / scale`` with ``scale`` defaulting to
    ``max(|gold|, 1)`` (relative error). Closeness ``c(d)`` falls from 1 at ``d = 0``:
    ``"linear"`` ``max(0, 1 - d)``; ``"exponential"`` ``0.5 ** d``; ``"inverse"``
    ``1 / (1 + d)``. The value is ``low + (high - low) * c`` for ``range=(low, high)``
    (default ``(-1, 1)``). No parseable number gives ``Status.UNPARSEABLE`` with ``low``;
    a missing or non-numeric gold answer abstains.
    """

    default_name = "proximity"

    def __init__(
        self,
        answer_column: str = "answer",
        *,
        extractor: Callable[[str], str | None] = DEFAULT,
        decay: str = "linear",
        scale: float | None = None,
        range: tuple[float, float] = (-1.0, 1.0),  # noqa: A002 - the name users expect
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.answer_column = _column("answer_column", answer_column)
        self.extractor = _extractor(extractor)
        self.decay = _one_of("decay", decay, ("linear", "exponential", "inverse"))
        self.scale = None if scale is None else float(_number("scale", scale, positive=True))
        if not isinstance(range, (tuple, list)) or len(range) != 2:
            raise invalid("range", range, "must be a (low, high) pair")
        low, high = (float(_number("range", v)) for v in range)
        if not low < high:
            raise invalid("range", range, "must have low < high")
        self.range = (low, high)

    def _closeness(self, d: float) -> float:
        if self.decay == "linear":
            return max(0.0, 1.0 - d)
        if self.decay == "exponential":
            return 0.5**d
        return 1.0 / (1.0 + d)

    def _score(self, text: str, **columns: Any) -> Score:
        if self.answer_column not in columns or columns[self.answer_column] is None:
            return Score.abstain(f"no {self.answer_column!r} column")
        gold = _gold_number(columns[self.answer_column])
        if gold is None:
            shown = value_text(columns[self.answer_column])[0]
            return Score.abstain(f"gold answer {(shown or '?')[:40]!r} is not a number")
        found = _safe_extract(self.extractor, text)
        pred = parse_number(found)
        if pred is None and found is not None:
            pred = parse_number(extract_last_number(found))
        low, high = self.range
        if pred is None:
            return Score.unparseable(low, reason="no number in the answer", answer=found)
        scale = self.scale if self.scale is not None else max(abs(gold), 1.0)
        diff = abs(pred - gold)
        d = diff / scale if math.isfinite(diff) else math.inf
        value = low + (high - low) * self._closeness(d)
        value = min(high, max(low, value))
        details = {"gold": gold, "prediction": pred, "distance": d}
        if d == 0:
            return Score.ok(value, reason="exact", answer=found, **details)
        return Score.wrong(value, reason=f"off by {diff:.6g}", answer=found, **details)


# ---------------------------------------------------------------------------------------
class Length(Scorer):
    """Length shaping: a target band, a DAPO soft overlong penalty, or both (summed).

    ``target=(lo, hi)``: 1.0 inside the band; below it ``n / lo``; above it
    ``max(0, 1 - (n - hi) / hi)``. ``max_completion_len=L, soft_punish_cache=C`` (TRL's
    names for DAPO's rule): 0 up to ``L - C``, linear down to -1 at ``L``, -1 beyond.
    ``unit`` is ``"chars"``, ``"words"`` (whitespace split) or ``"tokens"`` (needs
    ``tokenizer``: a callable text -> ids or an object with ``encode``).
    """

    default_name = "length"

    def __init__(
        self,
        target: tuple[int, int] | None = None,
        *,
        max_completion_len: int | None = None,
        soft_punish_cache: int = 0,
        unit: str = "chars",
        tokenizer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if target is None and max_completion_len is None:
            raise invalid("target", target, "needs max_completion_len= when not given (give one or both)")
        self.target = None
        if target is not None:
            if not isinstance(target, (tuple, list)) or len(target) != 2:
                raise invalid("target", target, "must be a (min, max) pair")
            lo, hi = (int(_number("target", v, minimum=0, integer=True)) for v in target)
            if hi <= 0 or lo > hi:
                raise invalid("target", target, "must have 0 <= min <= max and max > 0")
            self.target = (lo, hi)
        self.max_completion_len = None
        if max_completion_len is not None:
            self.max_completion_len = int(_number("max_completion_len", max_completion_len, positive=True, integer=True))
        self.soft_punish_cache = int(_number("soft_punish_cache", soft_punish_cache, minimum=0, integer=True))
        if self.max_completion_len is not None and self.soft_punish_cache > self.max_completion_len:
            raise invalid(
                "soft_punish_cache",
                soft_punish_cache,
                f"must be <= max_completion_len={self.max_completion_len}",
            )
        self.unit = _one_of("unit", unit, ("chars", "words", "tokens"))
        if self.unit == "tokens" and not (callable(tokenizer) or hasattr(tokenizer, "encode")):
            raise invalid("tokenizer", tokenizer, "must be callable or have .encode when unit='tokens'")
        self.tokenizer = tokenizer
        self.range = (
            -1.0 if self.max_completion_len is not None else 0.0,
            1.0 if self.target is not None else 0.0,
        )

    def _count(self, text: str) -> int:
        if self.unit == "chars":
            return len(text)
        if self.unit == "words":
            return len(text.split())
        tok = self.tokenizer
        ids = tok.encode(text, add_special_tokens=False) if hasattr(tok, "encode") else tok(text)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # an HF BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    def _score(self, text: str, **columns: Any) -> Score:
        n = self._count(text)
        value = 0.0
        reasons = []
        if self.target is not None:
            lo, hi = self.target
            if n < lo:
                value += n / lo
                reasons.append(f"{n} {self.unit} < {lo}")
            elif n > hi:
                value += max(0.0, 1.0 - (n - hi) / hi)
                reasons.append(f"{n} {self.unit} > {hi}")
            else:
                value += 1.0
        if self.max_completion_len is not None:
            limit, cache = self.max_completion_len, self.soft_punish_cache
            if n > limit:
                value -= 1.0
                reasons.append(f"{n} {self.unit} > max_completion_len={limit}")
            elif cache and n > limit - cache:
                value += ((limit - cache) - n) / cache
                reasons.append(f"{n} {self.unit} in the soft punishment zone")
        value = min(self.range[1], max(self.range[0], value))
        if reasons:
            return Score.wrong(value, reason="; ".join(reasons), length=n)
        return Score.ok(value, reason=f"{n} {self.unit}", length=n)
