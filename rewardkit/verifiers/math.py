"""Math answer equivalence: :class:`MathEquivalence` and :func:`math_equal`.

How a pair is decided, cheapest first:

1. A cache keyed by ``(gold, prediction, options)`` answers repeats at once.
2. The fast path, in-process and sympy-free: both answers are cleaned (``\\boxed``,
   ``$``, ``\\text{}``, ``\\left``, thousands separators, currency, ``%``, degrees, a
   leading ``x =``), split into tuples/sets/intervals/lists, and when every item is a
   plain number (integers, decimals, ``a/b``, ``\\frac``, mixed numbers, ``1e5``,
   ``2\\times10^{3}``) they are compared as exact rationals. Most GSM8K answers end here.
3. Everything else goes to a worker process (sympy's ANTLR LaTeX parser or ``parse_expr``
   behind an allow-list; see :mod:`rewardkit._math.symbolic`) with a hard deadline: past
   ``timeout`` seconds the worker is killed and the verdict is ``timeout``. The deadline
   starts when the call starts and covers waiting for a worker (a cold or replacement
   worker's 1-2 s start-up included), so a call returns within ``timeout`` plus
   ``OVERRUN_SECONDS`` (50 ms on a quiet machine; see :mod:`rewardkit._math.pool`).

Limits: inputs longer than ``max_length`` characters (after extraction) are refused as
unparseable; exact numbers above 20,000 digits are refused; symbolic identities are
checked by expansion then at random positive points (probabilistic); units are stripped
only with ``units=True`` and only from a fixed list; the cache holds the last 65,536
verdicts (timeouts included: ``math_equal.cache_clear()`` empties it, but not a timeout
that only means no worker was ready, e.g. on a cold pool with a timeout shorter than a
worker's start-up: ``MathEquivalence.warm()`` avoids those). POSIX only.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from typing import Any, Callable

from .._component import Verifier, value_text
from .._score import Score, Status
from .._math.compare import Options
from .._math.engine import fast_verdict
from ..errors import invalid

__all__ = ["MathEquivalence", "math_equal", "math_verdict"]

_CACHE_SIZE = 65_536
_GOLD_MAX = 10_000


def _options(
    rel_tol: float = 1e-9,
    abs_tol: float = 0.0,
    units: bool = False,
    percent: bool = True,
    timeout: float = 5.0,
    max_length: int = 1000,
) -> tuple[Options, float, int]:
    """Validate comparison options (raises InvalidArgument naming the field)."""
    for field, value in (("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise invalid(field, value, "must be a finite number >= 0")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not (0 < timeout <= 600):
        raise invalid("timeout", timeout, "must be a number of seconds in (0, 600]")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or not (1 <= max_length <= 100_000):
        raise invalid("max_length", max_length, "must be an int in [1, 100000]")
    for field, value in (("units", units), ("percent", percent)):
        if not isinstance(value, bool):
            raise invalid(field, value, "must be True or False")
    return Options(float(rel_tol), float(abs_tol), units, percent), float(timeout), max_length


class _Cache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> tuple[str, str] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: tuple[str, str]) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = _Cache(_CACHE_SIZE)


def _verdict(gold: str, prediction: str, opts: Options, timeout: float, max_length: int) -> tuple[str, str]:
    if len(prediction) > max_length:
        return ("unparseable", f"answer longer than {max_length} characters")
    if len(gold) > _GOLD_MAX:
        return ("error", f"gold answer longer than {_GOLD_MAX} characters")
    key = (gold, prediction, opts.rel_tol, opts.abs_tol, opts.units, opts.percent, timeout)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        result = fast_verdict(gold, prediction, opts)
    except RecursionError:
        result = ("unparseable", "nested too deeply")
    if result is None:
        from .._math.pool import default_pool

        reply = default_pool().run({"g": gold, "p": prediction, "o": opts.as_dict()}, timeout)
        result = (str(reply.get("s", "error")), str(reply.get("r", "")))
        if reply.get("transient"):  # about the pool (no worker ready in time), not the pair
            return result
    _cache.put(key, result)
    return result


def math_verdict(gold: Any, prediction: Any, **options: Any) -> tuple[str, str]:
    """``(status, reason)`` for one pair; status is ok, wrong, unparseable, timeout or error.

    Options: ``rel_tol`` (1e-9), ``abs_tol`` (0), ``units`` (False: strip a trailing unit
    word such as "cm" or "dollars" when True), ``percent`` (True: ``12%`` also equals
    ``0.12``), ``timeout`` (5 s per hard comparison), ``max_length`` (1000 characters).

    The call returns within ``timeout`` plus 50 ms (``OVERRUN_SECONDS``, on a quiet
    machine): the deadline starts with the call and includes waiting for a math worker,
    so on a cold pool a timeout shorter than a worker's start-up (1-2 s) gives
    ``timeout`` (not cached; :meth:`MathEquivalence.warm` starts the workers ahead).
    """
    try:
        opts, timeout, max_length = _options(**options)
    except TypeError as exc:
        raise invalid("options", sorted(options), f"has an unknown option ({exc})") from None
    if gold is None or prediction is None:
        return ("unparseable", "missing answer")
    pred_text, why = value_text(prediction)
    if pred_text is None:
        return ("unparseable", f"prediction: {why}")
    gold_text, why = value_text(gold)
    if gold_text is None:
        return ("error", f"gold: {why}")
    return _verdict(gold_text, pred_text, opts, timeout, max_length)


def math_equal(gold: Any, prediction: Any, **options: Any) -> bool:
    """True when ``prediction`` is mathematically equal to ``gold``; never raises on
    hostile input (bad options raise ``InvalidArgument``). See :func:`math_verdict`."""
    return math_verdict(gold, prediction, **options)[0] == "ok"


math_equal.cache_clear = _cache.clear  # type: ignore[attr-defined]


class MathEquivalence(Verifier):
    """Extract the model's answer and compare it with the gold column mathematically.

    ``extractor``: a callable ``text -> str | None`` (default ``rewardkit.extract.DEFAULT``).
    ``answer_column``: the dataset column holding the gold; a GSM8K gold ``"... #### 42"``
    is reduced to ``42``. Values: ``correct_reward`` for ``ok``, ``wrong_reward`` for every
    other status. Options as in :func:`math_verdict`; each hard comparison returns within
    ``timeout`` plus 50 ms (``OVERRUN_SECONDS``), waiting for a worker included.
    """

    default_name = "math_equivalence"

    def __init__(
        self,
        answer_column: str = "answer",
        extractor: Callable[[str], str | None] | None = None,
        *,
        correct_reward: float = 1.0,
        wrong_reward: float = 0.0,
        name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name=name)
        if not isinstance(answer_column, str) or not answer_column:
            raise invalid("answer_column", answer_column, "must be a non-empty string")
        if extractor is None:
            from ..extract import DEFAULT

            extractor = DEFAULT
        if not callable(extractor):
            raise invalid("extractor", extractor, "must be callable text -> str | None")
        for field, value in (("correct_reward", correct_reward), ("wrong_reward", wrong_reward)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise invalid(field, value, "must be a finite number")
        try:
            self._opts, self.timeout, self.max_length = _options(**options)
        except TypeError as exc:
            raise invalid("options", sorted(options), f"has an unknown option ({exc})") from None
        self.answer_column = answer_column
        self.extractor = extractor
        self.correct_reward, self.wrong_reward = float(correct_reward), float(wrong_reward)
        self.range = (min(self.correct_reward, self.wrong_reward), max(self.correct_reward, self.wrong_reward))

    def _score(self, text: str, **columns: Any) -> Score:
        gold = columns.get(self.answer_column)
        if gold is None:
            return Score(self.wrong_reward, Status.ERROR, None, f"no gold answer in column {self.answer_column!r}")
        gold, why = value_text(gold)  # the gold arrives per row from a dataset: hostile too
        if gold is None:
            return Score(self.wrong_reward, Status.ERROR, None, f"gold answer in column {self.answer_column!r}: {why}")
        try:
            answer = self.extractor(text)
        except Exception as exc:  # a user extractor; the base would catch it too
            return Score(self.wrong_reward, Status.ERROR, None, f"extractor raised {type(exc).__name__}")
        answer = value_text(answer)[0]
        if answer is None or not answer.strip():
            return Score(self.wrong_reward, Status.UNPARSEABLE, None, "no answer found")
        status, reason = _verdict(gold, answer, self._opts, self.timeout, self.max_length)
        value = self.correct_reward if status == "ok" else self.wrong_reward
        return Score(value, Status(status), answer, reason)

    def cache_text(self, text: str, **columns: Any) -> str:
        """The extracted answer: completions that end in the same answer share a verdict
        (the verdict reads nothing else of the text). The whole text when none is found."""
        try:
            answer = value_text(self.extractor(text))[0]
        except Exception:  # noqa: BLE001 - the verdict will say why; key by the text
            return text
        return text if answer is None else "\x00answer\x00" + answer

    @staticmethod
    def warm() -> None:
        """Start the sympy workers now (1-2 s each, in parallel) instead of on first need,
        when the first calls' ``timeout`` would also have to cover that start-up."""
        from .._math.pool import default_pool

        default_pool().warm()

    async def ascore(self, completion: Any, **columns: Any) -> Score:
        """``score`` from asyncio, run in a thread so the event loop keeps going."""
        return await asyncio.to_thread(self.score, completion, **columns)

    def _score_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        """In-process batches (``workers`` unset): hard pairs run concurrently in threads,
        one a math worker, so a batch with several sympy cases keeps every worker busy."""
        if len(completions) < 2:
            return super()._score_rows(completions, rows)
        from concurrent.futures import ThreadPoolExecutor

        from .._math.pool import default_pool

        with ThreadPoolExecutor(max_workers=default_pool().size) as ex:
            return list(ex.map(lambda cr: self.score(cr[0], **cr[1]), zip(completions, rows)))
