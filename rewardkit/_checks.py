"""Construction-time validation shared by the scorers: each raises InvalidArgument
naming the field and echoing its value."""

from __future__ import annotations

import math
from typing import Any, Callable

from .errors import invalid

__all__: list[str] = []


def _one_of(field: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise invalid(field, value, "must be one of " + ", ".join(repr(o) for o in options))
    return value


def _number(field: str, value: Any, *, minimum: float | None = None, positive: bool = False, integer: bool = False) -> float:
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not math.isfinite(value):
        raise invalid(field, value, "must be a finite " + ("int" if integer else "number"))
    if positive and value <= 0:
        raise invalid(field, value, "must be > 0")
    if minimum is not None and value < minimum:
        raise invalid(field, value, f"must be >= {minimum:g}")
    return value


def _column(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(field, value, "must be a non-empty column name")
    return value


def _extractor(value: Any) -> Callable[[str], str | None]:
    if not callable(value):
        raise invalid("extractor", value, "must be callable (text -> str | None)")
    return value


def _safe_extract(extractor: Callable[[str], str | None], text: str) -> str | None:
    found = extractor(text)  # a raising user extractor becomes Status.ERROR in the base
    if found is None:
        return None
    found = str(found).strip()
    return found or None
