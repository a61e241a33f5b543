"""Pull the final answer out of a model completion.

Every function here takes hostile text and never raises on it: it returns the extracted
answer, stripped, or ``None`` when there is none (an empty extraction is ``None`` too).
Each runs in time linear in the input: the scans are ``str.find``/``str.rfind`` walks or
regular expressions that cannot backtrack across the text (the hostile-input tests feed
1 MB adversarial shapes to every extractor). User patterns (:class:`Pattern`) run through the ``regex`` package with a
timeout. Non-string input (chat messages, bytes) is turned into text first.

The extractor classes wrap the functions as picklable, comparable objects (so they travel
to worker processes and into configs); :data:`DEFAULT` tries the usual places in order.

Limits, on purpose:
- Tags are matched literally and case-sensitively (``<answer>``, not ``<Answer >``).
- ``\\boxed{`` whose brace never closes is skipped (the previous closed box is used).
- Numbers are ASCII digits; thousands separators are commas in groups of three; a number
  longer than 1,000 characters is cut to its last 1,000.
- ``extract_choice`` is a heuristic: explicit statements ("the answer is (B)", a boxed or
  tagged letter) win; otherwise the last standalone letter that is not an English
  article or pronoun ("A cat", "I think").
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ._numbers import _clean, _text, extract_last_number, parse_number
from ._safe_regex import check_timeout, compile_pattern, find_match
from .errors import invalid

__all__ = [
    "extract_boxed",
    "extract_tag",
    "extract_after",
    "extract_answer_is",
    "extract_last_number",
    "extract_choice",
    "parse_number",
    "Extractor",
    "Boxed",
    "Tag",
    "After",
    "AnswerIs",
    "LastNumber",
    "Choice",
    "Pattern",
    "FirstOf",
    "DEFAULT",
]

_WHICH = ("first", "last")


def _check_which(which: Any) -> str:
    if which not in _WHICH:
        raise invalid("which", which, "must be 'first' or 'last'")
    return which


# ---------------------------------------------------------------------------------------
# \boxed{...}
_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped char (\{ or \}) is not a brace
_BARE_TOKEN_RE = re.compile(r"[ \t]*([^\s${}]{1,200})(?![^\s${}])")


def _matching_braces(text: str, start: int) -> dict[int, int]:
    """Map each '{' at or after ``start`` to its matching '}' (one stack pass, linear)."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for m in _BRACE_RE.finditer(text, start):
        ch = m.group()
        if ch == "{":
            stack.append(m.start())
        elif ch == "}" and stack:
            match[stack.pop()] = m.start()
    return match


def _box_content(text: str, after: int, braces: dict[int, int]) -> str | None:
    i = after
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "{":
        end = braces.get(i)
        return None if end is None else _clean(text[i + 1 : end])
    m = _BARE_TOKEN_RE.match(text, after)  # "\boxed 5": TeX takes one token; we take the word
    if m is None or m.start(1) == after:
        return None  # "\boxed5" is not TeX for a box; "\boxed 5" is
    return _clean(m.group(1))


def extract_boxed(text: Any, *, which: str = "last") -> str | None:
    """The content of the last (or first) ``\\boxed{...}`` / ``\\fbox{...}``.

    Nested braces are balanced (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``); a box
    whose brace never closes is skipped; ``\\boxed 5`` gives ``5``.
    """
    _check_which(which)
    try:
        text = _text(text)
        if "\\" not in text:
            return None
        starts = [m.end() for m in _BOX_RE.finditer(text)]
        if not starts:
            return None
        braces = _matching_braces(text, starts[0])
        order = starts if which == "first" else reversed(starts)
        for after in order:
            found = _box_content(text, after, braces)
            if found is not None:
                return found
        return None
    except Exception:  # defensive: extraction never raises on model output
        return None


# ---------------------------------------------------------------------------------------
# <tag>...</tag>
def _check_tag_name(name: Any, field: str = "name") -> str | tuple[str, str]:
    if isinstance(name, (tuple, list)):
        if len(name) != 2 or not all(isinstance(t, str) and t for t in name) or name[0] == name[1]:
            raise invalid(field, name, "must be a tag name or an (opening, closing) pair of distinct non-empty strings")
        return (name[0], name[1])
    if not isinstance(name, str) or not name or any(c in name for c in "<>/ \t\r\n"):
        raise invalid(field, name, "must be a non-empty tag name without '<', '>', '/' or spaces")
    return name


def _tag_pair(name: str | tuple[str, str]) -> tuple[str, str]:
    """The literal opening and closing strings of a tag given by name or as a pair."""
    if isinstance(name, tuple):
        return name
    return f"<{name}>", f"</{name}>"


def extract_tag(text: Any, name: str | tuple[str, str] = "answer", *, which: str = "last") -> str | None:
    """The content of the last (or first) ``<name>...</name>``.

    ``name`` may also be a literal ``(opening, closing)`` pair, for layouts such as
    ``("<start_working_out>", "<end_working_out>")``.
    An opening tag that is never closed (generation stopped mid-answer) yields the text
    after it.
    """
    name = _check_tag_name(name)
    _check_which(which)
    try:
        text = _text(text)
        opening, closing = _tag_pair(name)
        start = text.rfind(opening) if which == "last" else text.find(opening)
        if start < 0:
            return None
        start += len(opening)
        end = text.find(closing, start)
        return _clean(text[start:] if end < 0 else text[start:end])
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# "#### 42", "The answer is 42", "Answer: 42"
def _line_from(text: str, pos: int) -> str:
    """The rest of the line at ``pos``; if blank, the next non-blank line."""
    end = text.find("\n", pos)
    line = text[pos:] if end < 0 else text[pos:end]
    while not line.strip() and end >= 0:
        pos = end + 1
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
    return line


def extract_after(text: Any, marker: str = "####") -> str | None:
    """The text after the last ``marker``, to the end of that line (GSM8K's ``#### 72``)."""
    if not isinstance(marker, str) or not marker:
        raise invalid("marker", marker, "must be a non-empty string")
    try:
        text = _text(text)
        pos = text.rfind(marker)
        if pos < 0:
            return None
        end = text.find("\n", pos)
        return _clean(text[pos + len(marker) :] if end < 0 else text[pos + len(marker) : end])
    except Exception:
        return None


_ANSWER_IS_RE = re.compile(
    r"\banswer\b(?:[ \t]+is\b[ \t]*:?|[ \t]*\**[ \t]*[:\uff1a])", re.IGNORECASE
)
_SENTENCE_END_RE = re.compile(r"\.\s")


def _tidy_answer(s: str) -> str | None:
    s = s.strip().strip("*").strip()
    boxed = extract_boxed(s) if "\\" in s else None
    if boxed is not None:
        return boxed
    end = _SENTENCE_END_RE.search(s)
    if end is not None:
        s = s[: end.start()]
    s = s.strip().strip("*").strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$" and s.count("$") == 2:
        s = s[1:-1]  # $...$ inline math around the answer
    return _clean(s.rstrip(".").strip())


def extract_answer_is(text: Any) -> str | None:
    """The answer after the last "the (final) answer is" or "Answer:" (case-insensitive).

    The rest of that line (or the next line if it is blank) is taken, cut at the end of its
    first sentence; markdown bold, ``$...$`` and a ``\\boxed{}`` around it are removed.
    """
    try:
        text = _text(text)
        last = None
        for last in _ANSWER_IS_RE.finditer(text):
            pass
        if last is None:
            return None
        return _tidy_answer(_line_from(text, last.end()))
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# multiple choice
_ARTICLES = frozenset("AI")  # "A cat", "I think": English words, not choices


def _check_choices(choices: Any) -> str:
    if (
        not isinstance(choices, str)
        or not choices
        or len(set(choices)) != len(choices)
        or not all(c.isalnum() for c in choices)
    ):
        raise invalid("choices", choices, "must be a non-empty string of distinct letters or digits")
    return choices


def _as_choice(s: str | None, choices: str) -> str | None:
    if s is None:
        return None
    t = s.strip().strip("*()[]{}.:$ ").strip()
    if len(t) == 1:
        for c in (t, t.upper()):
            if c in choices:
                return c
    m = re.match(r"(?:option|choice)?\s*\(?([A-Za-z0-9])\)?(?![A-Za-z0-9])", t, re.IGNORECASE)
    if m is not None:
        for c in (m.group(1), m.group(1).upper()):
            if c in choices:
                return c
    return None


def _standalone_re(choices: str) -> "re.Pattern[str]":
    plain = "".join(c for c in choices if c not in _ARTICLES)
    words = "".join(c for c in choices if c in _ARTICLES)
    alts = []
    if plain:
        alts.append(f"[{re.escape(plain)}]")
    if words:
        alts.append(f"[{re.escape(words)}](?![ \\t]+[a-z])")
    return re.compile(rf"(?<![A-Za-z0-9'])(?:{'|'.join(alts)})(?![A-Za-z0-9'])")


def _last_standalone(text: str, choices: str, window: int = 4096) -> str | None:
    """The last standalone choice letter, scanning windows from the end (fast when present)."""
    pattern = _standalone_re(choices)
    end = len(text)
    while end > 0:
        start = max(0, end - window)
        found = None
        # endpos reaches past the window so the lookarounds see real context
        for m in pattern.finditer(text, start, min(len(text), end + 64)):
            if m.start() >= end:
                break
            found = m.group()
        if found is not None:
            return found
        end = start
    return None


def extract_choice(text: Any, choices: str = "ABCD") -> str | None:
    """A multiple-choice answer: one character of ``choices``.

    Looks, in order, at "the answer is (B)" / "Answer: B", ``\\boxed{B}``, ``<answer>B</answer>``,
    then the last standalone choice letter (not counting "A"/"I" used as English words).
    """
    _check_choices(choices)
    try:
        text = _text(text)
        for found in (extract_answer_is(text), extract_boxed(text), extract_tag(text, "answer")):
            choice = _as_choice(found, choices)
            if choice is not None:
                return choice
        return _last_standalone(text, choices)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# extractor objects
class Extractor:
    """A picklable callable ``text -> str | None`` with a stable ``name``.

    Subclasses implement ``_extract``; ``__call__`` never raises.
    """

    name = "extractor"

    def _extract(self, text: str) -> str | None:
        raise NotImplementedError

    def _params(self) -> tuple[Any, ...]:
        return ()

    def __call__(self, text: Any) -> str | None:
        try:
            return self._extract(_text(text))
        except Exception:
            return None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._params() == self._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(p) for p in self._params())})"


class Boxed(Extractor):
    """``\\boxed{...}`` content (see :func:`extract_boxed`)."""

    name = "boxed"

    def __init__(self, which: str = "last") -> None:
        self.which = _check_which(which)

    def _params(self) -> tuple[Any, ...]:
        return (self.which,)

    def _extract(self, text: str) -> str | None:
        return extract_boxed(text, which=self.which)


class Tag(Extractor):
    """``<name>...</name>`` content, or between a literal (opening, closing) pair (see :func:`extract_tag`)."""

    name = "tag"

    def __init__(self, name: str | tuple[str, str] = "answer", which: str = "last") -> None:
        self.tag = _check_tag_name(name)
        self.which = _check_which(which)

    def _params(self) -> tuple[Any, ...]:
        return (self.tag, self.which)

    def _extract(self, text: str) -> str | None:
        return extract_tag(text, self.tag, which=self.which)


class After(Extractor):
    """Text after the last marker, to the end of its line (see :func:`extract_after`)."""

    name = "after"

    def __init__(self, marker: str = "####") -> None:
        if not isinstance(marker, str) or not marker:
            raise invalid("marker", marker, "must be a non-empty string")
        self.marker = marker

    def _params(self) -> tuple[Any, ...]:
        return (self.marker,)

    def _extract(self, text: str) -> str | None:
        return extract_after(text, self.marker)


class AnswerIs(Extractor):
    """"The answer is X" / "Answer: X" (see :func:`extract_answer_is`)."""

    name = "answer_is"

    def _extract(self, text: str) -> str | None:
        return extract_answer_is(text)


class LastNumber(Extractor):
    """The last number as written (see :func:`extract_last_number`)."""

    name = "last_number"

    def _extract(self, text: str) -> str | None:
        return extract_last_number(text)


class Choice(Extractor):
    """A multiple-choice letter (see :func:`extract_choice`)."""

    name = "choice"

    def __init__(self, choices: str = "ABCD") -> None:
        self.choices = _check_choices(choices)

    def _params(self) -> tuple[Any, ...]:
        return (self.choices,)

    def _extract(self, text: str) -> str | None:
        return extract_choice(text, self.choices)


class Pattern(Extractor):
    """A user regular expression; ``group`` of its last (or first) match.

    Compiled with the ``regex`` package at construction (a bad pattern or a group it does
    not have raises InvalidArgument); each call runs under ``timeout`` seconds and gives
    None when the time runs out, so a catastrophic pattern cannot hang scoring.
    """

    name = "pattern"

    def __init__(
        self,
        pattern: Any,
        *,
        group: int | str = 1,
        flags: int = 0,
        which: str = "last",
        timeout: float = 0.25,
    ) -> None:
        self.compiled = compile_pattern(pattern, flags)
        self.pattern = self.compiled.pattern
        self.flags = int(flags)
        self.which = _check_which(which)
        self.timeout = check_timeout(timeout)
        groups, names = self.compiled.groups, self.compiled.groupindex
        if isinstance(group, bool) or not (
            (isinstance(group, int) and 0 <= group <= groups) or (isinstance(group, str) and group in names)
        ):
            raise invalid(
                "group", group, f"must name a group of the pattern (it has {groups}); use group=0 for the whole match"
            )
        self.group = group

    def _params(self) -> tuple[Any, ...]:
        return (self.pattern, self.group, self.flags, self.which, self.timeout)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("compiled", None)  # recompiled on unpickle: portable across regex versions
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.compiled = compile_pattern(self.pattern, self.flags)

    def _extract(self, text: str) -> str | None:
        m = find_match(self.compiled, text, which=self.which, timeout=self.timeout)
        if m is None:
            return None
        found = m.group(self.group)
        return None if found is None else _clean(found)


class FirstOf(Extractor):
    """The first non-None result of several extractors, tried in order."""

    name = "first_of"

    def __init__(self, *extractors: Callable[[str], str | None]) -> None:
        if not extractors:
            raise invalid("extractors", extractors, "must hold at least one extractor")
        for i, ex in enumerate(extractors):
            if not callable(ex):
                raise invalid(f"extractors[{i}]", ex, "must be callable (text -> str | None)")
        self.extractors = tuple(extractors)

    def _params(self) -> tuple[Any, ...]:
        return self.extractors

    def _extract(self, text: str) -> str | None:
        for ex in self.extractors:
            try:
                found = ex(text)
            except Exception:  # a user callable; the chain goes on
                found = None
            if isinstance(found, str) and found.strip():
                return found.strip()
        return None


DEFAULT = FirstOf(Tag("answer"), Boxed(), After("####"), AnswerIs(), LastNumber())
"""Answer tag, then a box, then ``####``, then "the answer is", then the last number."""
