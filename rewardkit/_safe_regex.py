"""User-supplied regular expressions, compiled once and run with a time budget.

Patterns go through the third-party ``regex`` package, whose matching functions take a
``timeout=`` in seconds and raise ``TimeoutError`` when it runs out. That is what stops a
catastrophic-backtracking pattern such as ``(a+)+$`` from hanging a training step on
hostile model output. The budget covers a whole ``finditer`` walk, not each match.

Limits: the timeout is checked by the regex engine itself, so it is approximate (a few
milliseconds late at worst) and does not cover the time Python spends on the results.
"""

from __future__ import annotations

import math
from typing import Any

import regex

from .errors import invalid

__all__ = ["compile_pattern", "check_timeout", "find_match"]


def compile_pattern(pattern: Any, flags: Any = 0, *, field: str = "pattern") -> "regex.Pattern[str]":
    """Compile ``pattern`` with the ``regex`` package; a bad one raises InvalidArgument."""
    if isinstance(pattern, regex.Pattern):
        pattern = pattern.pattern
    elif hasattr(pattern, "pattern") and isinstance(getattr(pattern, "pattern"), str):
        pattern = pattern.pattern  # a stdlib re.Pattern: recompile its source with `regex`
    if not isinstance(pattern, str) or not pattern:
        raise invalid(field, pattern, "must be a non-empty string (a regular expression)")
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise invalid("flags", flags, "must be a non-negative int of regex flags")
    try:
        return regex.compile(pattern, int(flags))
    except (regex.error, ValueError, TypeError, OverflowError) as exc:
        raise invalid(field, pattern, f"must compile as a regular expression ({exc})") from None


def check_timeout(timeout: Any) -> float:
    """Validate a per-call timeout in seconds (positive, finite)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise invalid("timeout", timeout, "must be a number of seconds")
    if not math.isfinite(timeout) or timeout <= 0:
        raise invalid("timeout", timeout, "must be > 0 and finite")
    return float(timeout)


def find_match(compiled: "regex.Pattern[str]", text: str, *, which: str, timeout: float) -> "regex.Match[str] | None":
    """The first or last match of ``compiled`` in ``text``; None when absent or out of time."""
    try:
        if which == "first":
            return compiled.search(text, timeout=timeout)
        last = None
        for last in compiled.finditer(text, timeout=timeout):
            pass
        return last
    except TimeoutError:
        return None
