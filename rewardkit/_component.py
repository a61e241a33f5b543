"""The base every verifier and scorer shares: safe scoring, batching, TRL's call contract.

A subclass implements ``_score(text, **columns)`` and may return a :class:`Score`, a
number, a bool or ``None``. The base turns any exception into ``Status.ERROR`` so model
output can never make a component raise, stamps the elapsed time, and provides the
TRL reward-function signature ``component(prompts=..., completions=..., **kwargs)``.
"""

from __future__ import annotations

import logging
import numbers
import re
import time
from typing import Any, Iterable, Mapping, Sequence

from ._score import Score, Status, describe
from .errors import invalid

__all__ = ["Component", "Verifier", "Scorer", "completion_text", "prompt_text", "row_columns", "coerce_score",
           "value_text", "describe"]

log = logging.getLogger("rewardkit")

# TRL passes these beside the dataset columns; they are not per-row data for our parts.
TRL_EXTRAS = ("trainer_state", "log_extra", "log_metric", "completion_ids", "environments")


def value_text(value: Any) -> tuple[str | None, str]:
    """``(text, "")`` for a value that reads as text, else ``(None, why)``. Never raises.

    Hostile values arrive as completions and as dataset columns: ``str`` subclasses come
    back as plain ``str`` (their own dunders never run again), bytes are decoded, ints too
    long for ``str()`` (Python's 4,300-digit limit) and objects whose ``__str__`` raises or
    recurses without end give ``None`` and the reason.
    """
    if value is None:
        return None, "missing"
    try:
        if isinstance(value, str):
            return str.__str__(value), ""
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", "replace"), ""
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return int.__repr__(value), ""
            except ValueError:  # sys.get_int_max_str_digits()
                return None, "an integer too long to write out"
        if isinstance(value, float):
            return float.__repr__(value), ""
        text = str(value)
        return str.__str__(text), ""
    except RecursionError:
        return None, "nested too deeply to write out"
    except Exception as exc:
        return None, f"str() raised {type(exc).__name__}"


def completion_text(completion: Any) -> str:
    """The text of a completion given as a plain string or as chat messages.

    Conversational completions (``[{"role": "assistant", "content": ...}]``) give the
    assistant contents joined by newlines; content given as a list of parts gives its
    text parts. Anything else, however malformed, becomes a string; this never raises.
    """
    try:
        if completion is None or isinstance(completion, (str, bytes, bytearray, numbers.Number)):
            return value_text(completion)[0] or ""
        if isinstance(completion, Mapping):
            completion = [completion]
        if isinstance(completion, (list, tuple)):
            messages = [m for m in completion if isinstance(m, Mapping)]
            chosen = [m for m in messages if m.get("role") == "assistant"] or messages
            if not chosen:
                return "\n".join(completion_text(m) for m in completion)
            return "\n".join(_content_text(m.get("content")) for m in chosen)
        return value_text(completion)[0] or ""
    except Exception:  # a hostile __getitem__, __eq__ and the like
        return ""


def prompt_text(prompt: Any, roles: tuple[str, ...] | None = None) -> str:
    """The text of a prompt: a plain string as it is, or the contents of its chat messages
    whose role is in ``roles`` (all of them when None), joined by newlines; "" when none
    match. Never raises."""
    try:
        if isinstance(prompt, (list, tuple)):
            return "\n".join(_content_text(m.get("content")) for m in prompt
                             if isinstance(m, Mapping) and (roles is None or m.get("role") in roles))
        return value_text(prompt)[0] or "" if isinstance(prompt, (str, bytes, bytearray)) else ""
    except Exception:  # a hostile __getitem__ and the like
        return ""


def _content_text(content: Any) -> str:
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type", "text") == "text":
                    parts.append(value_text(part.get("text", ""))[0] or "")
            else:
                parts.append(value_text(part)[0] or "")
        return "".join(parts)
    return value_text(content)[0] or ""


def batch_rows(n: int, prompts: Sequence[Any] | None, columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`row_columns`, then each row's ``prompt`` from ``prompts`` (one per completion,
    else ``InvalidArgument``): the rows every ``score_batch`` works on."""
    rows = row_columns(n, columns)
    if prompts is not None:
        prompts = list(prompts)
        if len(prompts) != n:
            raise invalid("prompts", f"<{len(prompts)} prompts>", f"must match the {n} completions")
        for row, p in zip(rows, prompts):
            row["prompt"] = p
    return rows


def row_columns(n: int, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split TRL-style ``**kwargs`` (each dataset column a per-row list) into per-row dicts.

    A column is a list, a tuple or another sized sequence (a numpy array, a ``datasets``
    column) with one entry per completion. A column of another length, or a single value
    where a column belongs (a string, bytes, a number, a mapping, a set, an iterator), is
    a configuration error: ``InvalidArgument`` naming the column and the lengths, rather
    than every row silently missing it. ``None`` and other objects (TRL's
    ``trainer_state``, its ``log_metric`` callable) are not per-row data and are skipped.
    """
    cols: dict[str, Sequence[Any]] = {}
    for k, v in kwargs.items():
        if k in TRL_EXTRAS or v is None:
            continue
        if isinstance(v, (list, tuple)):
            values: Sequence[Any] = v
        elif isinstance(v, (str, bytes, bytearray, numbers.Number, Mapping)) or _is_iterable(v):
            values = _as_sequence(v)
            if values is None:
                raise invalid(
                    k, _brief(v), f"must be a per-row list with one entry per completion ({n}), "
                    f"not a single {type(v).__name__}"
                )
        else:
            continue  # not per-row data
        if len(values) != n:
            raise invalid(
                k, f"<{type(v).__name__} of {len(values)}>", f"must hold one entry per completion: {len(values)} for {n} completions"
            )
        cols[k] = values
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def _is_iterable(v: Any) -> bool:
    try:
        iter(v)
    except Exception:
        return False
    return True


def _as_sequence(v: Any) -> list[Any] | None:
    """The values of a sized, ordered, non-text column (numpy array, pandas Series, ...)."""
    if isinstance(v, (str, bytes, bytearray, Mapping, set, frozenset)) or not hasattr(v, "__getitem__"):
        return None
    try:
        len(v)
        return list(v)
    except Exception:  # a 0-d array, a broken container
        return None


def _brief(v: Any) -> str:
    text = value_text(v)[0] or f"<{type(v).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


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

    # caching (rewardkit.cache) -----------------------------------------------------------
    #: attributes that do not change a verdict (how calls are made, counters, loaded
    #: state): left out of :meth:`cache_identity`
    cache_ignores: tuple[str, ...] = ()
    #: False where the component brings its own concurrency (``CodeTests``: the sandbox
    #: pool), so ``score_batch(workers=...)`` scores in this process all the same
    process_pool: bool = True

    def cache_identity(self) -> str:
        """What makes two instances give the same verdicts: class and options (every
        attribute but ``cache_ignores``). Override when an attribute that matters has no
        stable repr."""
        from .cache import identity

        return identity(self)

    def cache_text(self, text: str, **columns: Any) -> str:
        """The part of the completion the verdict depends on (the whole text by default;
        a verifier that only reads the extracted answer may return that)."""
        return text

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
            result = Score.error(reason=describe(exc))
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
        rows = batch_rows(len(completions), prompts, columns)
        if workers and self.process_pool:
            from ._scoring_pool import score_in_pool

            return score_in_pool(self, list(completions), rows, workers=workers, timeout=timeout)
        return self._score_rows(list(completions), rows)

    def _score_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        """Score a checked batch in this process, one row dict per completion (``prompt``
        included). Override for batched or concurrent scoring; never raises on model output."""
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
