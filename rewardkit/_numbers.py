"""Numbers as people write them: find the last one in a text, and parse one to a float.

Both run in linear time on hostile input and never raise. Limits: ASCII digits only;
thousands separators are commas in groups of three; a number longer than 1,000
characters is cut (extraction) or refused (parsing); results are finite floats.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ._component import completion_text

__all__ = ["extract_last_number", "parse_number"]

_NUMBER_SPAN_MAX = 1000


def _text(text: Any) -> str:
    return text if isinstance(text, str) else completion_text(text)


def _clean(s: str | None) -> str | None:
    if s is None:
        return None
    s = s.strip()
    return s or None


_CORE = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"
_NUMBER_RE = re.compile(
    rf"(?:(?<![\w.,])[-+\u2212])?\$?(?:{_CORE})(?:[eE][-+\u2212]?\d+)?(?:/(?:{_CORE}))?%?"
)
_NUMBER_CHARS = frozenset("0123456789,.eE+-\u2212/$% \t")


def _last_digit(text: str) -> int:
    return max(text.rfind(d) for d in "0123456789")


def extract_last_number(text: Any) -> str | None:
    """The last number in the text, as written: ``-1,234.5``, ``3/4``, ``1e-3``, ``$5``, ``12%``.

    A sign counts only where it cannot be a hyphen or a minus between operands
    (``5-3`` gives ``3``; ``x = -3`` gives ``-3``). Trailing sentence punctuation is dropped.
    """
    try:
        text = _text(text)
        p = _last_digit(text)
        if p < 0:
            return None
        start = p
        floor = max(0, p - _NUMBER_SPAN_MAX)
        while start > floor and text[start - 1] in _NUMBER_CHARS:
            start -= 1
        last = None
        for last in _NUMBER_RE.finditer(text, start, min(len(text), p + 2)):
            pass
        return None if last is None else _clean(last.group())
    except Exception:
        return None


_PARSE_RE = re.compile(
    rf"[-+]?(?:{_CORE})(?:[eE][-+]?\d+)?(?:/[-+]?(?:{_CORE})(?:[eE][-+]?\d+)?)?"
)
_FRAC_RE = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_DECORATION = (("\\$", ""), ("\\%", ""), ("$", ""), ("%", ""), ("{,}", ","), ("\\!", ""),
               ("\u2212", "-"), ("\u00a0", ""), ("\u2009", ""), (" ", ""), ("\t", ""))


def parse_number(s: Any) -> float | None:
    """A finite float from a number as people write it, or None.

    Accepts commas as thousands separators (``1,234``), signs (including the unicode minus),
    decimals, scientific notation, ``a/b`` fractions, a plain ``\\frac{a}{b}``, and strips
    ``$``, ``%`` (``12%`` is ``12.0``, not ``0.12``), ``\\$``, ``{,}`` and surrounding space.
    Anything else (words, units, lists like ``1,2``) gives None.
    """
    try:
        if isinstance(s, bool):
            return None
        if isinstance(s, (int, float)):
            value = float(s)
            return value if math.isfinite(value) else None
        if not isinstance(s, str) or len(s) > _NUMBER_SPAN_MAX:
            return None
        t = s.strip()
        for old, new in _DECORATION:
            t = t.replace(old, new)
        t = t.rstrip(".")
        frac = _FRAC_RE.fullmatch(t.lstrip("+-"))
        if frac is not None:
            t = ("-" if t.startswith("-") else "") + f"{frac.group(1)}/{frac.group(2)}"
        if not t or _PARSE_RE.fullmatch(t) is None:
            return None
        t = t.replace(",", "")
        if "/" in t:
            num, den = t.split("/", 1)
            d = float(den)
            if d == 0:
                return None
            value = float(num) / d
        else:
            value = float(t)
        return value if math.isfinite(value) else None
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
