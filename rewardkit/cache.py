"""Verification cache: a verdict computed once is not computed again.

Many completions of one GRPO group end in the same text (or, for an answer verifier, the
same extracted answer); verifying each again spends the reward budget twice. A
:class:`VerificationCache` memoizes Scores by a key made of

- the component's identity: its class and its options (see :func:`identity`), or, for a
  plain function, the ``cache_key`` the user gave (a function is cached only then: its
  options are invisible to us);
- the completion text (a component may narrow it with ``cache_text``: ``MathEquivalence``
  uses the extracted answer, so "...so 12." and "...it is 12." share one verdict);
- the row's reference columns and prompt;
- rewardkit's version (a new release never reads an old verdict).

In memory (an LRU of ``max_items``) and, with ``path``, on disk in sqlite (WAL journal,
one connection per process, so forked or spawned workers and parallel runs share it).
``timeout`` and ``error`` Scores are never stored: they say nothing about the completion.
Hit and miss counts are in :attr:`VerificationCache.stats`; the trainer logs the hit rate.

Limits: an identity built from options relies on ``repr`` of option values; an option
whose repr holds a memory address (a lambda extractor) makes the key unique to this
process, which is correct but only hits in memory. Details (``Score.details``) are kept
only when they are JSON.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

from ._score import Score, Status
from .errors import invalid_argument

__all__ = ["VerificationCache", "identity", "as_cache"]

log = logging.getLogger("rewardkit")
_NEVER = (Status.TIMEOUT, Status.ERROR)
_SIMPLE = (str, int, float, bool, type(None))


@functools.lru_cache(maxsize=1)
def _version() -> str:
    from ._version import __version__

    return __version__


def identity(component: Any) -> str:
    """``module.Class(option=value, ...)`` from the instance's attributes, private ones
    included (options often live in ``self._opts``), but not the class's ``cache_ignores``;
    callables show as their qualified name."""
    cls = type(component)
    skip = set(getattr(cls, "cache_ignores", ()))
    items = []
    for key, value in sorted(vars(component).items()):
        if key not in skip:
            items.append(f"{key}={_describe(value, 1)}")
    return f"{cls.__module__}.{cls.__qualname__}({', '.join(items)})"


def _describe(value: Any, depth: int = 0) -> str:
    if isinstance(value, _SIMPLE):
        return repr(value)
    if depth > 4:
        return f"<{type(value).__qualname__} {id(value)}>"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_describe(v, depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        return "{" + ",".join(f"{_describe(k, depth + 1)}:{_describe(v, depth + 1)}" for k, v in items) + "}"
    qual = getattr(value, "__qualname__", None)
    if qual and "<lambda>" not in qual and "<locals>" not in qual:
        return f"{getattr(value, '__module__', '?')}.{qual}"
    cls = type(value)
    if cls.__repr__ is object.__repr__:  # an options object: describe it by its fields
        fields = dict(getattr(value, "__dict__", {}))
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(value, slot):
                fields[slot] = getattr(value, slot)
        inner = ",".join(f"{k}={_describe(v, depth + 1)}" for k, v in sorted(fields.items()))
        return f"{cls.__module__}.{cls.__qualname__}({inner})"
    return repr(value)


def _dump(score: Score) -> str:
    out = score.as_dict()
    out.pop("elapsed", None)
    try:
        json.dumps(out.get("details", {}))
    except (TypeError, ValueError):
        out.pop("details", None)
    return json.dumps(out)


def _load(text: str) -> Score:
    d = json.loads(text)
    return Score(d["value"], Status(d["status"]), d.get("answer"), d.get("reason", ""), 0.0, d.get("details") or {})


def _stored(score: Score) -> Score:
    """What a hit returns, the same whether it came from memory or from sqlite: no elapsed
    time, details only when they are JSON (without a JSON round trip when there are none)."""
    details = score.details or {}
    if details:
        try:
            details = json.loads(json.dumps(details))
        except (TypeError, ValueError):
            details = {}
    return Score(score.value, score.status, score.answer, score.reason, 0.0, details)


def _copy(score: Score) -> Score:
    """A hit's own Score: callers may change its details without changing the cache."""
    return Score(score.value, score.status, score.answer, score.reason, 0.0, dict(score.details)) \
        if score.details else score


class VerificationCache:
    """Scores by key, in memory and optionally in sqlite at ``path`` (see the module doc)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, max_items: int = 100_000) -> None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise invalid_argument("max_items", max_items, "must be a positive int")
        if path is not None:
            if not isinstance(path, (str, os.PathLike)) or not str(path):
                raise invalid_argument("path", path, "must be a file path or None (memory only)")
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise invalid_argument("path", str(path), f"needs an existing folder ({parent} is not one)")
        self.path = None if path is None else str(Path(path).expanduser().resolve())
        self.max_items = max_items
        self._memory: OrderedDict[str, Score] = OrderedDict()  # normalised (_stored)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.hits = self.misses = 0
        if self.path:
            self._connection()  # a bad path fails here, not mid-training

    # keys ------------------------------------------------------------------------------
    @staticmethod
    def row_digest(row: Mapping[str, Any]) -> str:
        """A SHA-256 over a row's values (reference columns, prompt): computed once per row
        and passed to :meth:`key` for every part that scores it."""
        cols = {str(k): _describe_value(v) for k, v in row.items()}
        blob = json.dumps(cols, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    @staticmethod
    def key(identity: str, text: str, row: Mapping[str, Any] | None = None, *, row_digest: str | None = None) -> str:
        """The cache key: a SHA-256 over the version, identity, text and row values (or the
        row's :meth:`row_digest`, when the caller has it already)."""
        digest = row_digest if row_digest is not None else VerificationCache.row_digest(row or {})
        h = hashlib.sha256()
        for field in (_version(), identity, digest, text):  # length-prefixed: no two splits collide
            data = field.encode("utf-8", "surrogatepass")
            h.update(b"%d:" % len(data))
            h.update(data)
        return h.hexdigest()

    # storage ---------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # one connection per process
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, score TEXT NOT NULL)")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get(self, key: str) -> Score | None:
        """The stored Score or None; counts a hit or a miss."""
        with self._lock:
            score = self._memory.get(key)
            if score is not None:
                self._memory.move_to_end(key)
            elif self.path:
                try:
                    row = self._connection().execute("SELECT score FROM verdicts WHERE key = ?", (key,)).fetchone()
                except sqlite3.Error as exc:  # a locked or broken file costs a miss, not the run
                    log.warning("verification cache read failed: %s", exc)
                    row = None
                if row is not None:
                    score = _load(row[0])
                    self._remember(key, score)
            if score is None:
                self.misses += 1
                return None
            self.hits += 1
        return _copy(score)

    def put(self, key: str, score: Score) -> bool:
        """Store ``score`` unless it is a timeout or an error; True when stored."""
        if score.status in _NEVER:
            return False
        kept = _stored(score)
        with self._lock:
            self._remember(key, kept)
            if self.path:
                try:
                    self._connection().execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, _dump(kept)))
                except sqlite3.Error as exc:
                    log.warning("verification cache write failed: %s", exc)
        return True

    def _remember(self, key: str, score: Score) -> None:
        self._memory[key] = score
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)

    # reporting -------------------------------------------------------------------------
    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    @property
    def stats(self) -> dict[str, float]:
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate, "size": len(self._memory)}

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
            self.hits = self.misses = 0
            if self.path:
                self._connection().execute("DELETE FROM verdicts")

    def __len__(self) -> int:
        return len(self._memory)

    def __repr__(self) -> str:
        return f"VerificationCache(path={self.path!r}, size={len(self._memory)}, hit_rate={self.hit_rate:.3f})"

    # processes: a worker gets the settings, not the connection or the lock
    def __getstate__(self) -> dict:
        return {"path": self.path, "max_items": self.max_items}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], max_items=state["max_items"])


def _describe_value(value: Any) -> str:
    try:
        return _describe(value)
    except Exception:  # a hostile column value: its type keeps keys apart enough
        return f"<{type(value).__name__} {id(value)}>"


def as_cache(cache: Any, field: str = "cache") -> VerificationCache | None:
    """None, True (memory), a path (sqlite) or a VerificationCache -> a cache or None."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return VerificationCache()
    if isinstance(cache, VerificationCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return VerificationCache(cache)
    raise invalid_argument(field, cache, "must be None, True (in memory), a sqlite path or a VerificationCache")
