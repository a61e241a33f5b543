"""Rubric: named, weighted parts composed into one reward, with a per-part breakdown.

A part is a :class:`~rewardkit.Component`, a TRL-style reward function
``f(prompts, completions, **kwargs) -> list`` (recognised by a ``completions`` parameter,
or by taking only ``**kwargs``), or a plain callable ``text -> float | bool | None``
(which also gets the dataset columns it names, or all of them if it takes ``**kwargs``).

The total follows TRL exactly: ``sum(weight * value)`` over parts with weight > 0 whose
value is not None (TRL's ``nansum``); if every weighted part abstains the total is None.
Weight-0 parts are metrics: scored and reported, never added. ``gates={"format": "correct"}``
makes a part pay only when its gate part read an answer (status ``ok`` or ``wrong``; not
``unparseable``, ``error``, ``timeout`` or ``abstain``), so form is paid only around an
answer the verifier can read. Limits: timeouts are only
hard with a process pool (``workers``/``timeout``); in-process a slow part runs to the end.
A TRL-style part is called once per batch in-process but once per item in the pool.

Async parts: a part may be ``async def`` (plain or TRL-style) or a component with an
``async def ascore_batch``; in-process the rubric awaits all its async parts of a batch
concurrently (plain async parts also item by item), from sync code, from inside a running
event loop (on a helper thread's loop: ``_async.run_sync``) and in the process pool.

Cache: ``cache=`` (True, a sqlite path or a :class:`~rewardkit.cache.VerificationCache`)
memoizes component parts, and plain or TRL-style parts given a ``cache_key``; identical
items of one batch are scored once (see ``rewardkit/cache.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._async import is_async_callable, run_sync
from ._component import TRL_EXTRAS as _TRL_EXTRAS
from ._component import Component, coerce_score, completion_text, describe, row_columns, value_text
from ._score import Score, Status
from .errors import invalid

__all__ = ["Rubric", "Part", "RubricResult"]



def _check_name(field_name: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid(field_name, name, "must be a non-empty string")
    return name


def _check_weight(field_name: str, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise invalid(field_name, weight, "must be a real number")
    value = float(weight)
    if not math.isfinite(value) or value < 0:
        raise invalid(field_name, weight, "must be finite and >= 0")
    return value


def _kind_of(func: Any) -> tuple[str, Any]:
    """('component'|'trl'|'plain', accepted column names or None for all)."""
    if isinstance(func, Component):
        return "component", None
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins such as len
        return "plain", ()
    names = {p.name for p in params}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if "completions" in names or (var_kw and not positional):
        return "trl", None
    accepted = None if var_kw else tuple(p.name for p in positional[1:]) + tuple(
        p.name for p in params if p.kind is p.KEYWORD_ONLY
    )
    return "plain", accepted


def _as_score(value: Any) -> Score:
    if isinstance(value, float) and math.isnan(value):
        return Score.abstain("returned NaN")  # TRL reads NaN as "not applicable"
    try:
        return coerce_score(value)
    except Exception as exc:  # a string, an inf, a list ...
        shown = (value_text(value)[0] or f"<{type(value).__name__}>")[:60]
        return Score.error(reason=f"bad return value {shown!r}: {type(exc).__name__}")


@dataclass(frozen=True)
class Part:
    """One named, weighted piece of a rubric. ``weight=0`` makes it a logged metric only."""

    name: str
    func: Callable[..., Any]
    weight: float = 1.0
    #: opt-in cache key for a plain or TRL-style function (bump it when the function changes)
    cache_key: str | None = None
    #: "component", "trl" (batch function) or "plain" (text -> value)
    kind: str = field(init=False, compare=False, repr=False)
    _accepted: Any = field(init=False, compare=False, repr=False)
    #: awaited: an ``async def`` function, or a component with ``async def ascore_batch``
    is_async: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        if not callable(self.func):
            raise invalid(f"{self.name}.func", self.func, "must be callable (a Component or a function)")
        object.__setattr__(self, "weight", _check_weight(f"{self.name}.weight", self.weight))
        if self.cache_key is not None and (not isinstance(self.cache_key, str) or not self.cache_key):
            raise invalid(f"{self.name}.cache_key", self.cache_key, "must be a non-empty string or None")
        kind, accepted = _kind_of(self.func)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "_accepted", accepted)
        target = getattr(self.func, "ascore_batch", None) if kind == "component" else self.func
        object.__setattr__(self, "is_async", target is not None and is_async_callable(target))

    def cache_identity(self) -> str | None:
        """What the cache keys this part's verdicts by, or None when it is not cacheable:
        a component's class and options; a function only with its ``cache_key``."""
        if self.kind == "component":
            return self.func.cache_identity()
        if self.cache_key is None:
            return None
        func = self.func
        qual = getattr(func, "__qualname__", type(func).__qualname__)
        return f"{getattr(func, '__module__', '?')}.{qual}[{self.cache_key}]"

    def cache_text(self, text: str, row: Mapping[str, Any]) -> str:
        if self.kind == "component":
            try:
                return self.func.cache_text(text, **row)
            except Exception:  # noqa: BLE001 - a hostile row: the full text is always a safe key
                return text
        return text

    def score(self, completion: Any, prompt: Any = None, **row: Any) -> Score:
        """Score one completion; ``row`` holds this row's dataset values. Never raises."""
        return self.score_many([completion], [prompt], [row], {})[0]

    def score_many(
        self, completions: list, prompts: list, rows: list[dict], extras: Mapping[str, Any]
    ) -> list[Score]:
        if self.is_async:
            return run_sync(lambda: self.ascore_many(completions, prompts, rows, extras))
        n = len(completions)
        start = time.perf_counter()
        if self.kind == "component":
            # the whole batch at once, so a component's own batching runs (MathEquivalence
            # fans hard pairs out to its math workers); one row each in the process pool
            rows = [_with_prompt(r, p) for r, p in zip(rows, prompts)]
            if type(self.func).score_batch is Component.score_batch:  # the rows go straight to its batch seam
                return list(self.func._score_rows(list(completions), rows))
            keys = dict.fromkeys(k for r in rows for k in r)  # a score_batch of its own: by columns
            if keys.keys() & {"prompts", "workers", "timeout"}:  # columns that score_batch would mistake
                return [self.func.score(c, **r) for c, r in zip(completions, rows)]
            return list(self.func.score_batch(completions, **{k: [r.get(k) for r in rows] for k in keys}))
        if self.kind == "trl":
            try:
                cols = {k: [r.get(k) for r in rows] for k in (rows[0] if rows else {})}
                out = list(self.func(prompts=prompts, completions=completions, **cols, **extras))
                if len(out) != n:
                    raise ValueError(f"returned {len(out)} rewards for {n} completions")
                scores = [_as_score(v) for v in out]
            except Exception as exc:  # noqa: BLE001 - a user function must not crash training
                scores = [Score.error(reason=describe(exc))] * n
            each = (time.perf_counter() - start) / max(n, 1)
            return [s.with_elapsed(each) for s in scores]
        accepted = self._accepted
        out = []
        for c, p, r in zip(completions, prompts, rows):
            t0 = time.perf_counter()
            row = _with_prompt(r, p)
            kwargs = row if accepted is None else {k: v for k, v in row.items() if k in accepted}
            try:
                score = _as_score(self.func(completion_text(c), **kwargs))
            except Exception as exc:  # noqa: BLE001
                score = Score.error(reason=describe(exc))
            out.append(score.with_elapsed(time.perf_counter() - t0))
        return out


    async def ascore_many(
        self, completions: list, prompts: list, rows: list[dict], extras: Mapping[str, Any]
    ) -> list[Score]:
        """``score_many`` for an async part, awaited; a sync part runs in a thread. Never raises."""
        if not self.is_async:
            return await asyncio.to_thread(self.score_many, completions, prompts, rows, extras)
        n = len(completions)
        start = time.perf_counter()
        try:
            if self.kind == "component":
                rows = [_with_prompt(r, p) for r, p in zip(rows, prompts)]
                keys = dict.fromkeys(k for r in rows for k in r)
                out = list(await self.func.ascore_batch(completions, **{k: [r.get(k) for r in rows] for k in keys}))
                scores = [s if isinstance(s, Score) else _as_score(s) for s in out]
            elif self.kind == "trl":
                cols = {k: [r.get(k) for r in rows] for k in (rows[0] if rows else {})}
                scores = [_as_score(v) for v in await self.func(prompts=prompts, completions=completions, **cols, **extras)]
            else:
                return list(await asyncio.gather(*(self._aplain(c, p, r) for c, p, r in zip(completions, prompts, rows))))
            if len(scores) != n:
                raise ValueError(f"returned {len(scores)} rewards for {n} completions")
        except Exception as exc:  # noqa: BLE001 - a user function must not crash training
            scores = [Score.error(reason=describe(exc))] * n
        each = (time.perf_counter() - start) / max(n, 1)
        return [s if s.elapsed else s.with_elapsed(each) for s in scores]

    async def _aplain(self, completion: Any, prompt: Any, row: dict) -> Score:
        t0 = time.perf_counter()
        row = _with_prompt(row, prompt)
        kwargs = row if self._accepted is None else {k: v for k, v in row.items() if k in self._accepted}
        try:
            score = _as_score(await self.func(completion_text(completion), **kwargs))
        except Exception as exc:  # noqa: BLE001
            score = Score.error(reason=describe(exc))
        return score.with_elapsed(time.perf_counter() - t0)


def _with_prompt(row: dict, prompt: Any) -> dict:
    return row if prompt is None else {**row, "prompt": prompt}


@dataclass(frozen=True)
class RubricResult:
    """The total (None only if every weighted part abstained) and each part's Score."""

    total: float | None
    parts: dict[str, Score]
    weights: dict[str, float]

    @property
    def values(self) -> dict[str, float | None]:
        return {name: s.value for name, s in self.parts.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "parts": {k: s.as_dict() for k, s in self.parts.items()}, "weights": dict(self.weights)}


def _total(parts: Mapping[str, Score], weights: Mapping[str, float]) -> float | None:
    terms = [weights[k] * s.value for k, s in parts.items() if weights[k] > 0 and s.value is not None]
    return math.fsum(terms) if terms else None


class _PartJob:
    """Picklable pool job: item ``(part index, completion, prompt, row)`` -> Score."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)

    def __call__(self, item: tuple) -> Score:
        j, completion, prompt, row, extras = item  # an async part runs on this worker's own loop
        return self.parts[j].score_many([completion], [prompt], [row], extras)[0]


class _PartReward:
    """One part as a TRL reward function; ``__name__`` is the part name."""

    def __init__(self, rubric: "Rubric", name: str) -> None:
        self.rubric = rubric
        self.__name__ = name

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        given, completions = completions, list(completions or [])
        n = len(completions)
        rubric = self.rubric
        part = rubric._by_name[self.__name__]
        prompts_list = list(prompts) if prompts is not None else [None] * n
        extras = {k: kwargs[k] for k in _TRL_EXTRAS if k in kwargs}
        rows = row_columns(n, {k: v for k, v in kwargs.items() if k not in _TRL_EXTRAS})
        gate = rubric.gates.get(part.name)
        # TRL calls each part on its own with the same completions list: a gate's verdicts,
        # scored by its own function, are kept for the part it gates (never scored twice)
        memo = rubric.__dict__.setdefault("_gate_memo", {})
        kept = memo.get(gate) if gate is not None else None
        todo = [part] if gate is None or (kept and kept[0] is given) else [part, rubric._by_name[gate]]
        scored = rubric._per_part(todo, completions, prompts_list, rows, extras, None, None)
        if part.name in rubric.gates.values():
            memo[part.name] = (given, scored[0])
        if gate is None:
            return [s.value for s in scored[0]]
        verdicts = scored[1] if len(scored) > 1 else kept[1]
        return [_gated(s, gate, g).value for s, g in zip(scored[0], verdicts)]

    def __repr__(self) -> str:
        return f"<reward function {self.__name__!r} of {self.rubric!r}>"


class Rubric:
    """Weighted parts -> one reward. See the module docstring for the rules."""

    def __init__(
        self,
        parts: Mapping[str, Any] | Iterable[Any],
        *,
        name: str = "rubric",
        workers: int | None = None,
        timeout: float | None = None,
        cache: Any = None,
        gates: Mapping[str, str] | None = None,
    ) -> None:
        """``workers``/``timeout`` are defaults for every scoring call, including TRL's
        (``rubric(...)`` and ``reward_funcs()``), so training gets hard timeouts too.
        ``cache``: None, True (in memory), a sqlite path or a ``VerificationCache``.
        ``gates`` maps a part to the part whose reading of an answer it depends on."""
        from .cache import as_cache

        self.name = _check_name("name", name)
        self.cache = as_cache(cache)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise invalid("workers", workers, "must be a positive int or None")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout < math.inf
        ):
            raise invalid("timeout", timeout, "must be a positive finite number of seconds or None")
        self.workers, self.timeout = workers, timeout
        built = self._build(parts)
        if not built:
            raise invalid("parts", parts, "must hold at least one part")
        seen: set[str] = set()
        for part in built:
            if part.name in seen:
                raise invalid("parts", part.name, "is a duplicate part name")
            seen.add(part.name)
        if not any(p.weight > 0 for p in built):
            raise invalid("weights", [p.weight for p in built], "must include at least one weight > 0")
        self.parts: tuple[Part, ...] = tuple(built)
        self._by_name = {p.name: p for p in built}
        self.gates = _check_gates(gates, self._by_name)

    @staticmethod
    def _build(parts: Any) -> list[Part]:
        if isinstance(parts, Mapping):
            out = []
            for key, spec in parts.items():
                func, weight = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, 1.0)
                out.append(Part(key, func, weight))
            return out
        if isinstance(parts, (str, bytes)) or not isinstance(parts, Iterable):
            raise invalid("parts", parts, "must be a mapping or a list of parts")
        out = []
        for spec in parts:
            if isinstance(spec, Part):
                out.append(spec)
            elif isinstance(spec, tuple) and len(spec) in (2, 3):
                out.append(Part(*spec))
            elif callable(spec):
                out.append(Part(getattr(spec, "__name__", type(spec).__name__), spec))
            else:
                raise invalid("parts", spec, "must hold Part objects, (name, func[, weight]) tuples or callables")
        return out

    # introspection -----------------------------------------------------------------
    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts)

    @property
    def weights(self) -> dict[str, float]:
        return {p.name: p.weight for p in self.parts}

    @property
    def __name__(self) -> str:  # TRL logs rewards/<rubric name>/mean for the total
        return self.name

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}={p.weight:g}" for p in self.parts)
        return f"Rubric({inner}, name={self.name!r})"

    def __getstate__(self) -> dict:
        return {"name": self.name, "parts": self.parts, "workers": self.workers, "timeout": self.timeout,
                "cache": self.cache, "gates": self.gates}

    def __setstate__(self, state: dict) -> None:
        self.name, self.parts = state["name"], state["parts"]
        self.workers, self.timeout = state.get("workers"), state.get("timeout")
        self.cache = state.get("cache")
        self._by_name = {p.name: p for p in self.parts}
        self.gates = dict(state.get("gates") or {})

    # scoring ------------------------------------------------------------------------
    def score(self, completion: Any, prompt: Any = None, **columns: Any) -> RubricResult:
        """Score one completion; ``columns`` are this row's dataset values. Never raises."""
        row = {k: v for k, v in columns.items() if k not in _TRL_EXTRAS}
        extras = {k: columns[k] for k in _TRL_EXTRAS if k in columns}
        per_part = self._per_part(self.parts, [completion], [prompt], [row], extras, 0, None, in_process=True)
        scores = self._gate({p.name: per_part[j][0] for j, p in enumerate(self.parts)})
        return RubricResult(_total(scores, self.weights), scores, self.weights)

    def _gate(self, scores: dict[str, Score]) -> dict[str, Score]:
        for name, gate in self.gates.items():
            scores[name] = _gated(scores[name], gate, scores[gate])
        return scores

    def score_batch(
        self,
        completions: Sequence[Any],
        *,
        prompts: Sequence[Any] | None = None,
        workers: int | None = None,
        timeout: float | None = None,
        progress: bool | Callable[[int, int], Any] = False,
        **columns: Any,
    ) -> list[RubricResult]:
        """Score many completions; results in input order.

        ``columns`` are per-row lists. ``workers`` > 0 runs every (completion, part) in the
        process pool with a hard per-item ``timeout``; a ``timeout`` without ``workers``
        uses one worker (a hard timeout needs a process). None means the rubric's own
        default (from its constructor). ``progress``: True prints a
        counter to stderr; a callable gets ``(done, total)``.
        """
        completions = list(completions)
        n = len(completions)
        prompts_list = list(prompts) if prompts is not None else [None] * n
        if len(prompts_list) != n:
            raise invalid("prompts", f"<{len(prompts_list)} prompts>", f"must match the {n} completions")
        extras = {k: columns[k] for k in _TRL_EXTRAS if k in columns}
        rows = row_columns(n, {k: v for k, v in columns.items() if k not in _TRL_EXTRAS})
        per_part = self._per_part(
            self.parts, completions, prompts_list, rows, extras, workers, timeout, _progress(progress, n)
        )
        weights = self.weights
        results = []
        for i in range(n):
            scores = self._gate({p.name: per_part[j][i] for j, p in enumerate(self.parts)})
            results.append(RubricResult(_total(scores, weights), scores, weights))
        return results

    def _per_part(
        self,
        parts: Sequence[Part],
        completions: list,
        prompts: list,
        rows: list[dict],
        extras: Mapping[str, Any],
        workers: int | None,
        timeout: float | None,
        report: Callable[[int], None] = lambda done: None,
        in_process: bool = False,
    ) -> list[list[Score]]:
        """For each of ``parts``, its Scores in input order; cached verdicts are looked up
        first and only the rest is scored (in the pool when asked, unless ``in_process``)."""
        n = len(completions)
        results: list[list[Score | None]] = [[None] * n for _ in parts]
        need: list[list[int]] = []
        keys: list[list[str | None]] = []
        copies: list[dict[int, int]] = []  # per part: duplicate index -> index scored
        full_rows: list[dict] = []  # once for all cached parts: rows with their prompt,
        digests: list[str] = []  # their cache digests
        texts: list[str] = []  # and the completions' texts
        for j, part in enumerate(parts):
            ident = part.cache_identity() if self.cache is not None else None
            if ident is None:
                need.append(list(range(n)))
                keys.append([None] * n)
                copies.append({})
                continue
            if not full_rows and n:
                full_rows = [_with_prompt(rows[i], prompts[i]) for i in range(n)]
                digests = _row_digests(self.cache, full_rows)
                texts = [completion_text(c) for c in completions]
            part_keys, todo, first, dup = [], [], {}, {}
            for i, row in enumerate(full_rows):
                key = self.cache.key(ident, part.cache_text(texts[i], row), row_digest=digests[i])
                part_keys.append(key)
                if key in first:
                    dup[i] = first[key]
                    self.cache.hits += 1  # scored once for the whole batch
                    continue
                hit = self.cache.get(key)
                if hit is None:
                    first[key] = i
                    todo.append(i)
                else:
                    results[j][i] = hit
            need.append(todo)
            keys.append(part_keys)
            copies.append(dup)
        scored = self._score_needed(parts, need, completions, prompts, rows, extras, workers, timeout, report,
                                    in_process)
        for j, part in enumerate(parts):
            for i, score in zip(need[j], scored[j]):
                results[j][i] = score
                if keys[j][i] is not None:
                    self.cache.put(keys[j][i], score)
            for i, src in copies[j].items():
                results[j][i] = results[j][src]
        return results  # type: ignore[return-value]

    def _score_needed(self, parts, need, completions, prompts, rows, extras, workers, timeout, report, in_process):
        workers = self.workers if workers is None else workers
        timeout = self.timeout if timeout is None else timeout
        n, k = len(completions), len(parts)
        if timeout is not None and not workers:
            workers = 1  # a hard timeout needs a process
        if in_process:
            workers = 0
        if not workers:
            out: list[list[Score]] = [[] for _ in parts]
            waiting = []
            for j, part in enumerate(parts):
                args = _subset(need[j], completions, prompts, rows, extras)
                if not need[j]:
                    continue
                if part.is_async:
                    waiting.append((j, args))
                else:
                    out[j] = part.score_many(*args)
                    report(n * (j + 1) // k)
            if waiting:  # every async part of the batch at once
                done = run_sync(lambda: asyncio.gather(*(parts[j].ascore_many(*a) for j, a in waiting)))
                for (j, _), scores in zip(waiting, done):
                    out[j] = scores
            report(n)
            return out
        from ._scoring_pool import run_in_pool

        ids = extras.get("completion_ids")
        wanted = [set(x) for x in need]
        pairs = [(j, i) for i in range(n) for j in range(k) if i in wanted[j]]
        items = [(j, completions[i], prompts[i], rows[i], {"completion_ids": [ids[i]]} if ids else {}) for j, i in pairs]
        flat = run_in_pool(_PartJob(parts), items, workers=workers, timeout=timeout) if items else []
        report(n)
        out = [[] for _ in parts]
        for (j, _), score in zip(pairs, flat):
            out[j].append(score)
        return out

    # TRL contract -------------------------------------------------------------------
    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        """TRL's reward-function signature; returns each completion's total.

        When TRL passes ``log_metric``, each part's mean is logged as
        ``rewards/<rubric name>/<part>/mean``, so one callable still shows the breakdown.
        """
        results = self.score_batch(list(completions or []), prompts=prompts, **kwargs)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and results:
            for name in self.part_names:
                values = [r.parts[name].value for r in results if r.parts[name].value is not None]
                if values:
                    log_metric(f"rewards/{self.name}/{name}/mean", statistics.fmean(values))
            if self.cache is not None:
                log_metric(f"rewards/{self.name}/cache_hit_rate", self.cache.hit_rate)
        return [r.total for r in results]

    def reward_funcs(self) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
        """One TRL reward function per part (``__name__`` = part name) and their weights.

        Use as ``GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights))``;
        TRL then logs ``rewards/<part>/mean`` for each part, weight-0 parts included.
        """
        return [_PartReward(self, p.name) for p in self.parts], [p.weight for p in self.parts]

    # reporting -----------------------------------------------------------------------
    def summarize(self, results: Sequence[RubricResult]) -> dict[str, Any]:
        """Per part and for the total: count, mean, std, min, max, zero share, None share;
        per part also the share of each status."""
        results = list(results)
        parts = {}
        for name in self.part_names:
            scores = [r.parts[name] for r in results if name in r.parts]
            stats = _stats([s.value for s in scores])
            stats["status"] = {st.value: _share(sum(s.status is st for s in scores), len(scores)) for st in Status}
            stats["weight"] = self.weights[name]
            parts[name] = stats
        return {"count": len(results), "total": _stats([r.total for r in results]), "parts": parts}


def _check_gates(gates: Mapping[str, str] | None, parts: Mapping[str, Part]) -> dict[str, str]:
    if gates is None:
        return {}
    if not isinstance(gates, Mapping):
        raise invalid("gates", gates, "must map a part name to the part name that gates it")
    out = {}
    for name, gate in gates.items():
        if name not in parts or gate not in parts:
            raise invalid("gates", {name: gate}, f"must name parts of this rubric: {sorted(parts)}")
        if name == gate or gate in gates:
            raise invalid("gates", {name: gate}, "must not gate a part by itself or by a gated part")
        out[name] = gate
    return out


def _gated(score: Score, gate: str, verdict: Score) -> Score:
    """``score``, or no credit when the gate part did not read an answer."""
    if verdict.status in (Status.OK, Status.WRONG) or not score.value:
        return score
    return Score.wrong(0.0, reason=f"gated: {gate} is {verdict.status}: {verdict.reason}"[:240])


def _row_digests(cache: Any, rows: list[dict]) -> list[str]:
    """Each row's cache digest; rows made of the very same objects (a group's G rows share
    its prompt and columns) are described once. Object ids are stable here: ``rows`` holds
    every object for the whole call."""
    seen: dict[tuple, str] = {}
    out = []
    for row in rows:
        ident = tuple((k, id(v)) for k, v in row.items())
        if ident not in seen:
            seen[ident] = cache.row_digest(row)
        out.append(seen[ident])
    return out


def _subset(idx: list[int], completions: list, prompts: list, rows: list[dict], extras: Mapping[str, Any]):
    """The arguments of ``score_many`` for the items ``idx`` (per-row extras sliced too)."""
    if len(idx) == len(completions):
        return completions, prompts, rows, extras
    ids = extras.get("completion_ids")
    sub_extras = {**extras, "completion_ids": [ids[i] for i in idx]} if ids is not None else extras
    return [completions[i] for i in idx], [prompts[i] for i in idx], [rows[i] for i in idx], sub_extras


def _share(k: int, n: int) -> float:
    return k / n if n else 0.0


def _stats(values: Sequence[float | None]) -> dict[str, Any]:
    real = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(real) if real else None,
        "std": statistics.pstdev(real) if real else None,
        "min": min(real) if real else None,
        "max": max(real) if real else None,
        "zero_share": _share(sum(v == 0 for v in real), len(real)),
        "none_share": _share(len(values) - len(real), len(values)),
    }


def _progress(progress: Any, total: int) -> Callable[[int], None]:
    if callable(progress):
        return lambda done: progress(done, total)
    if progress:
        return lambda done: print(f"\rscored {done}/{total}", end="\n" if done >= total else "", file=sys.stderr)
    return lambda done: None
