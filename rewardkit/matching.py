"""Keyword and exact-match scorers (re-exported by :mod:`rewardkit.scorers`).

Limits: keyword search is substring search (``whole_word=True`` adds word boundaries);
``ExactMatch`` compares whole normalised strings, or floats with ``numeric=True``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Callable, Iterable

import regex

from ._checks import _column, _extractor, _one_of, _safe_extract
from ._component import Scorer, value_text
from ._numbers import parse_number
from ._score import Score
from .errors import invalid

__all__ = ["Contains", "ExactMatch"]


def _keywords(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        words = tuple(value)
    except TypeError:
        raise invalid(field, value, "must be a string or an iterable of strings") from None
    for w in words:
        if not isinstance(w, str) or not w:
            raise invalid(field, value, "must hold only non-empty strings")
    return words


class Contains(Scorer):
    """Keywords present in the completion.

    ``mode="any"``: 1.0 if any keyword appears; ``"all"``: 1.0 only if all do;
    ``"fraction"``: the share that appears. ``column`` names a per-row column holding
    more keywords (a string or a list: a recipient's name, say). ``case_sensitive=False``
    compares casefolded text; ``whole_word=True`` requires word boundaries.
    """

    default_name = "contains"
    range = (0.0, 1.0)

    def __init__(
        self,
        keywords: str | Iterable[str] = (),
        *,
        mode: str = "any",
        case_sensitive: bool = False,
        whole_word: bool = False,
        column: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.keywords = _keywords("keywords", keywords)
        self.column = None if column is None else _column("column", column)
        if not self.keywords and self.column is None:
            raise invalid("keywords", keywords, "must not be empty unless column= is given")
        self.mode = _one_of("mode", mode, ("any", "all", "fraction"))
        self.case_sensitive = bool(case_sensitive)
        self.whole_word = bool(whole_word)

    def _row_keywords(self, columns: dict[str, Any]) -> tuple[str, ...]:
        extra = columns.get(self.column) if self.column else None
        if extra is None:
            return self.keywords
        if isinstance(extra, (str, bytes, bytearray)) or not isinstance(extra, (list, tuple, set, frozenset)):
            extra = [extra]
        words = (value_text(w)[0] for w in extra)  # a hostile keyword is skipped, not raised
        return self.keywords + tuple(w for w in words if w and w.strip())

    def _present(self, text: str, word: str) -> bool:
        if not self.case_sensitive:
            word = word.casefold()
        if not self.whole_word:
            return word in text
        return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None

    def _score(self, text: str, **columns: Any) -> Score:
        words = self._row_keywords(columns)
        if not words:
            return Score.abstain(f"no keywords (column {self.column!r} is empty or missing)")
        haystack = text if self.case_sensitive else text.casefold()
        found = [w for w in words if self._present(haystack, w)]
        missing = [w for w in words if w not in found]
        if self.mode == "any":
            value = 1.0 if found else 0.0
        elif self.mode == "all":
            value = 1.0 if not missing else 0.0
        else:
            value = len(found) / len(words)
        details = {"found": found, "missing": missing}
        reason = f"found {len(found)} of {len(words)} keywords"
        if value >= 1.0:
            return Score.ok(1.0, reason=reason, **details)
        return Score.wrong(value, reason=reason, **details)


# ---------------------------------------------------------------------------------------
_PUNCT = regex.compile(r"\p{P}+")
_SPACES = re.compile(r"\s+")


class ExactMatch(Scorer):
    """1.0 when the (extracted) answer equals a constant or a per-row column, else 0.0.

    Give ``expected=`` (a constant) or ``column=`` (default ``"answer"`` when neither is
    given). ``extractor=None`` compares the whole completion. Normalisation, applied to
    both sides: ``unicode_normalize`` (NFKC), ``strip``, ``collapse_whitespace``,
    ``case_sensitive=False`` (casefold), ``ignore_punctuation``; ``numeric=True`` compares
    parsed numbers (``1,000`` equals ``1000.0``) when both sides parse.
    """

    default_name = "exact_match"
    range = (0.0, 1.0)

    def __init__(
        self,
        expected: str | int | float | None = None,
        *,
        column: str | None = None,
        extractor: Callable[[str], str | None] | None = None,
        case_sensitive: bool = False,
        strip: bool = True,
        collapse_whitespace: bool = True,
        unicode_normalize: bool = True,
        ignore_punctuation: bool = False,
        numeric: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if expected is not None and column is not None:
            raise invalid("expected", expected, f"and column={column!r} cannot both be given")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, (str, int, float))):
            raise invalid("expected", expected, "must be a string or a number")
        self.expected = expected
        self.column = None if expected is not None else _column("column", "answer" if column is None else column)
        self.extractor = None if extractor is None else _extractor(extractor)
        self.case_sensitive = bool(case_sensitive)
        self.strip = bool(strip)
        self.collapse_whitespace = bool(collapse_whitespace)
        self.unicode_normalize = bool(unicode_normalize)
        self.ignore_punctuation = bool(ignore_punctuation)
        self.numeric = bool(numeric)

    def normalize(self, s: str) -> str:
        """The normalised form both sides are compared in."""
        if self.unicode_normalize:
            s = unicodedata.normalize("NFKC", s)
        if self.ignore_punctuation:
            s = _PUNCT.sub("", s)
        if self.collapse_whitespace:
            s = _SPACES.sub(" ", s)
        if self.strip:
            s = s.strip()
        if not self.case_sensitive:
            s = s.casefold()
        return s

    def _score(self, text: str, **columns: Any) -> Score:
        if self.column is not None:
            gold = columns.get(self.column)
            if gold is None:
                return Score.abstain(f"no {self.column!r} column")
        else:
            gold = self.expected
        gold_text, why = value_text(gold)
        if gold_text is None:
            return Score.error(0.0, reason=f"gold answer: {why}")
        found = text if self.extractor is None else _safe_extract(self.extractor, text)
        if found is None:
            return Score.unparseable(0.0, reason="no answer extracted")
        if self.numeric:
            a, b = parse_number(found), parse_number(gold if isinstance(gold, (int, float)) else gold_text)
            if a is not None and b is not None:
                same = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                return (Score.ok if same else Score.wrong)(float(same), reason="numeric comparison", answer=found)
        same = self.normalize(found) == self.normalize(gold_text)
        return (Score.ok if same else Score.wrong)(float(same), reason="equal" if same else "differs", answer=found)
