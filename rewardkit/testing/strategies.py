"""Hypothesis strategies for testing verifiers and scorers (needs ``hypothesis``).

- :func:`hostile_text`: what a policy model can emit at its worst: up to 1 MB strings,
  odd unicode (surrogates, zero-width, RTL overrides, combining marks), unbalanced braces
  and tags, nested ``\\boxed``, huge numbers, ReDoS bait.
- :func:`completions` / :func:`answered_completions`: well-formed reasoning/answer
  completions in the layouts models actually use (tags, ``\\boxed``, ``####``,
  "The answer is"), the latter paired with the answer string.
- :func:`harmless_reformattings`: a text after reformatting that must not change a
  verifier's verdict.
- :func:`hostile_values`: what arrives where text is expected: None, bools, ints (huge
  ones past ``str()``'s digit limit), floats (nan, inf), bytes, lists and dicts nested up
  to thousands deep, chat messages with odd content, and :class:`Raising` objects whose
  dunders (``__str__``, ``__repr__``, ``__eq__``, ``__hash__``, ...) raise. Use it for
  completions and for dataset columns such as the gold answer.

Big strings come from a short unit repeated, so Hypothesis's own data stays small and
shrinking stays fast. Limits: the answers are integers, decimals and simple fractions;
math-specific strategies (LaTeX, equivalent forms) live in ``rewardkit.testing.math``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .contracts import HOSTILE_SAMPLES, Raising, deeply_nested, harmless_variants

__all__ = ["hostile_text", "hostile_values", "completions", "answered_completions", "harmless_reformattings", "Raising"]

_UNITS = (
    "a", "{", "}", "\\boxed{", "<answer>", "</answer>", "<reasoning>", "(", ")", "9", "1,",
    "\\frac{", "^", "\n", " ", "\x00", "\u200b", "\ud800", "e\u0301", "🙂", "$", "#### ",
    "The answer is ", "0.", "<", ">", "\\", "x^",
)
_ODD = st.characters(
    codec=None,
    categories=("Cc", "Cf", "Cs", "Co", "Mn", "Zs", "Zl", "Zp", "So", "Nd", "Sm", "Ps", "Pe"),
)


@st.composite
def _repeated(draw: st.DrawFn, max_size: int) -> str:
    unit = draw(st.sampled_from(_UNITS) | st.text(min_size=1, max_size=8))
    count = draw(st.integers(1, max(1, max_size // len(unit))))
    tail = draw(st.sampled_from(["", "1", "}", "<answer>42</answer>", "\\boxed{7}"]))
    return unit * count + tail


@st.composite
def _nested_boxes(draw: st.DrawFn) -> str:
    depth = draw(st.integers(0, 3000))
    close = draw(st.integers(0, depth))
    inner = draw(st.sampled_from(["1", "", "{", "x", "\\frac{1}{2}"]))
    return "\\boxed{" * depth + inner + "}" * close


def hostile_text(*, max_size: int = 1 << 20) -> st.SearchStrategy[str]:
    """Adversarial completions, up to ``max_size`` characters."""
    return st.one_of(
        st.sampled_from([s for s in HOSTILE_SAMPLES if len(s) <= max_size]),
        st.text(max_size=200),
        st.text(_ODD, max_size=200),
        _repeated(max_size),
        _nested_boxes().filter(lambda s: len(s) <= max_size),
        st.lists(st.sampled_from(_UNITS), max_size=60).map("".join),
    )


_NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.decimals(-1000, 1000, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.tuples(st.integers(1, 99), st.integers(2, 99)).map(lambda t: f"{t[0]}/{t[1]}"),
)
_WORDS = st.text(st.characters(codec="ascii", categories=("Ll", "Lu", "Nd", "Zs")), max_size=80)
_LAYOUTS = (
    "<reasoning>\n{r}\n</reasoning>\n<answer>\n{a}\n</answer>",
    "<reasoning>{r}</reasoning><answer>{a}</answer>",
    "{r}\nSo the final answer is \\boxed{{{a}}}.",
    "{r}\n#### {a}",
    "{r}. The answer is {a}.",
)


@st.composite
def answered_completions(draw: st.DrawFn, answers: st.SearchStrategy[str] = _NUMBERS) -> tuple[str, str]:
    """``(completion, answer)``: a well-formed completion whose final answer is ``answer``."""
    answer = draw(answers)
    reasoning = draw(_WORDS).strip() or "Think step by step"
    layout = draw(st.sampled_from(_LAYOUTS))
    return layout.format(r=reasoning, a=answer), answer


def completions(answers: st.SearchStrategy[str] = _NUMBERS) -> st.SearchStrategy[str]:
    """Well-formed reasoning/answer completions (text only)."""
    return answered_completions(answers).map(lambda pair: pair[0])


def harmless_reformattings(text: str) -> st.SearchStrategy[str]:
    """``text`` with surrounding whitespace, a trailing newline, CRLF or an extra blank
    line; one or two of these applied."""
    once = harmless_variants(text) or [text + "\n"]
    twice = [v2 for v in once for v2 in harmless_variants(v)]
    return st.sampled_from(once + twice)


def _power_of_ten(k: int) -> int:
    return 10**k


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([5000, 4301, 64, 0]).map(_power_of_ten),  # 10**5000: str() refuses it
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=32),
    st.sampled_from([b"42", b"\xff\xfe", b"<answer>7</answer>"]),
    st.text(max_size=30),
    st.builds(Raising, st.frozensets(st.sampled_from(Raising.DUNDERS), min_size=1)),
)


def _chat(content: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    role = st.sampled_from(["assistant", "user", None, 3])
    return st.lists(st.fixed_dictionaries({"role": role, "content": content}), min_size=1, max_size=3)


def hostile_values(*, max_depth: int = 5000) -> st.SearchStrategy[Any]:
    """Non-string values where text belongs, nested lists and dicts up to ``max_depth``."""
    nested = st.recursive(
        _SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3) | _chat(inner),
        max_leaves=8,
    )
    deep = st.builds(deeply_nested, st.integers(50, max(50, max_depth)), st.sampled_from(["list", "dict", "chat"]))
    return st.one_of(nested, deep)
