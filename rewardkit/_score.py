"""The result every verifier and scorer returns."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

__all__ = ["Status", "Score"]

_REASON_MAX = 300
_ANSWER_MAX = 200


class Status(str, enum.Enum):
    """How a verdict was reached.

    ``OK`` means the check ran and passed (a verifier found the answer right, a scorer
    graded the text); ``WRONG`` means it ran and failed. The other four say why there is
    no proper verdict. ``ABSTAIN`` goes with ``value=None``: the component does not apply
    to this sample, and a rubric leaves it out of the weighted total (as TRL does).
    """

    OK = "ok"
    WRONG = "wrong"
    UNPARSEABLE = "unparseable"
    TIMEOUT = "timeout"
    ERROR = "error"
    ABSTAIN = "abstain"

    def __str__(self) -> str:
        return self.value


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class Score:
    """An immutable verdict.

    - ``value``: the reward, a finite float, or ``None`` for "not applicable".
    - ``status``: a :class:`Status`.
    - ``answer``: what was extracted from the completion (clipped to 200 characters).
    - ``reason``: a short human explanation (clipped to 300 characters).
    - ``elapsed``: seconds spent, filled in by the component wrapper.
    - ``details``: optional extra facts (per-test results, matched tags, ...).
    """

    value: float | None
    status: Status = Status.OK
    answer: str | None = None
    reason: str = ""
    elapsed: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        status = Status(self.status)
        object.__setattr__(self, "status", status)
        value = self.value
        if value is not None:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"Score.value={value!r} must be finite or None")
            object.__setattr__(self, "value", value)
        object.__setattr__(self, "answer", _clip(self.answer, _ANSWER_MAX))
        object.__setattr__(self, "reason", _clip(self.reason or "", _REASON_MAX))

    # constructors that read well at call sites -------------------------------------
    @classmethod
    def ok(cls, value: float = 1.0, reason: str = "", answer: str | None = None, **details: Any) -> "Score":
        return cls(value, Status.OK, answer, reason, details=details)

    @classmethod
    def wrong(cls, value: float = 0.0, reason: str = "", answer: str | None = None, **details: Any) -> "Score":
        return cls(value, Status.WRONG, answer, reason, details=details)

    @classmethod
    def unparseable(cls, value: float = 0.0, reason: str = "no answer found", answer: str | None = None) -> "Score":
        return cls(value, Status.UNPARSEABLE, answer, reason)

    @classmethod
    def abstain(cls, reason: str = "not applicable") -> "Score":
        return cls(None, Status.ABSTAIN, None, reason)

    @classmethod
    def timeout(cls, value: float | None = 0.0, reason: str = "timed out", elapsed: float = 0.0) -> "Score":
        return cls(value, Status.TIMEOUT, None, reason, elapsed)

    @classmethod
    def error(cls, value: float | None = 0.0, reason: str = "internal error", elapsed: float = 0.0) -> "Score":
        return cls(value, Status.ERROR, None, reason, elapsed)

    # ---------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return self.status is Status.OK

    def with_elapsed(self, elapsed: float) -> "Score":
        return replace(self, elapsed=float(elapsed))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "status": self.status.value,
            "answer": self.answer,
            "reason": self.reason,
            "elapsed": round(self.elapsed, 6),
        }
        if self.details:
            out["details"] = dict(self.details)
        return out


def describe(exc: BaseException) -> str:
    """``"Type: message"`` for a Score's reason, even when the exception's ``__str__`` raises."""
    try:
        return f"{type(exc).__name__}: {exc}"[:200]
    except Exception:
        return type(exc).__name__
