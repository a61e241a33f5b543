"""The base every verifier and scorer shares: safe scoring, batching, TRL's call contract.

A subclass implements ``_score(text, **columns)`` and may return a :class:`Score`, a
number, a bool or ``None``. The base turns any exception into ``Status.ERROR`` so model
output can never make a component raise, stamps the elapsed time, and provides the
TRL reward-function signature ``component(prompts=..., completions=..., **kwargs)``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Iterable, Mapping, Sequence

from ._score import Score, Status
from .errors import invalid

__all__ = ["Component", "Verifier", "Scorer", "completion_text", "row_columns", "coerce_score"]

log = logging.getLogger("rewardkit")

# TRL passes these beside the dataset columns; they are not per-row data for our parts.
TRL_EXTRAS = ("trainer_state", "log_extra", "log_metric", "completion_ids", "environments")


def completion_text(completion: Any) -> str:
    """The text of a completion given as a plain string or as chat messages.

    Conversational completions (``[{"role": "assistant", "content": ...}]``) give the
    assistant contents joined by newlines; content given as a list of parts gives its
    text parts. Anything else, however malformed, becomes a string; this never raises.
    """
    try:
        if completion is None:
            return ""
        if isinstance(completion, str):
            return completion
        if isinstance(completion, bytes):
            return completion.decode("utf-8", "replace")
        if isinstance(completion, Mapping):
            completion = [completion]
        if isinstance(completion, (list, tuple)):
            messages = [m for m in completion if isinstance(m, Mapping)]
            chosen = [m for m in messages if m.get("role") == "assistant"] or messages
            if not chosen:
                return "\n".join(completion_text(m) for m in completion)
            return "\n".join(_content_text(m.get("content")) for m in chosen)
        return str(completion)
    except Exception:  # a hostile __str__ and the like
        return ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type", "text") == "text":
                    parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)


def row_columns(n: int, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split TRL-style ``**kwargs`` (each dataset column a per-row list) into per-row dicts.

    Only sequences of length ``n`` count as columns; scalars such as ``trainer_state``
    are dropped.
    """
    cols = {
        k: v
        for k, v in kwargs.items()
        if k not in TRL_EXTRAS and isinstance(v, (list, tuple)) and len(v) == n
    }
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def coerce_score(result: Any) -> Score:
    """Turn whatever ``_score`` returned into a :class:`Score`."""
    if isinstance(result, Score):
        return result
    if result is None:
        return Score.abstain()
    if isinstance(result, bool):
        return Score.ok(1.0) if result else Score.wrong(0.0)
    return Score.ok(float(result))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Component:
    """Base class of verifiers and scorers.

    ``name`` is stable and is also the instance's ``__name__``, so TRL logs
    ``rewards/<name>/mean``. ``range`` is the closed interval every non-None value falls in.
    """

    kind: str = "component"
    #: default name; instances may override with ``name=``
    default_name: str | None = None
    range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, *, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise invalid("name", name, "must be a non-empty string")
        self.name = name or self.default_name or _snake(type(self).__name__)

    # identity ------------------------------------------------------------------------
    @property
    def __name__(self) -> str:  # noqa: D401 - TRL reads reward_func.__name__
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # to implement --------------------------------------------------------------------
    def _score(self, text: str, **columns: Any) -> Score | float | bool | None:
        raise NotImplementedError

    # safe single scoring ---------------------------------------------------------------
    def score(self, completion: Any, **columns: Any) -> Score:
        """Score one completion (plain text or chat messages). Never raises."""
        start = time.perf_counter()
        try:
            text = completion_text(completion)
            result = coerce_score(self._score(text, **columns))
        except Exception as exc:  # model output must never crash a training run
            log.debug("%s raised on a completion", self.name, exc_info=True)
            result = Score.error(reason=f"{type(exc).__name__}: {exc}"[:200])
        return result.with_elapsed(time.perf_counter() - start)

    def score_batch(
        self,
        completions: Sequence[Any],
        *,
        prompts: Sequence[Any] | None = None,
        workers: int | None = None,
        timeout: float | None = None,
        **columns: Sequence[Any],
    ) -> list[Score]:
        """Score many completions; results come back in input order.

        ``columns`` are per-row lists (dataset columns). With ``workers`` > 0 the items run
        in rewardkit's process pool with a hard per-item ``timeout`` (seconds): an item
        that overruns is killed and gets ``Status.TIMEOUT``.
        """
        n = len(completions)
        rows = row_columns(n, columns)
        if prompts is not None:
            for row, p in zip(rows, prompts):
                row["prompt"] = p
        if workers:
            from ._scoring_pool import score_in_pool

            return score_in_pool(self, list(completions), rows, workers=workers, timeout=timeout)
        return [self.score(c, **row) for c, row in zip(completions, rows)]

    # TRL reward-function contract ------------------------------------------------------
    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        completions = list(completions or [])
        scores = self.score_batch(completions, prompts=prompts, **kwargs)
        return [s.value for s in scores]


class Verifier(Component):
    """Decides correctness. ``OK`` means right, ``WRONG`` means wrong."""

    kind = "verifier"


class Scorer(Component):
    """Grades form (format, length, closeness)."""

    kind = "scorer"
