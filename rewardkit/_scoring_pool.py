"""A pool of long-lived worker processes with a hard per-item timeout.

Why not ``multiprocessing.Pool`` or ``signal.alarm``: SIGALRM only works in the main
thread (it breaks inside threads, async servers and notebooks' executors), and a plain
``Pool`` cannot stop one stuck item without tearing down the pool. Here the parent waits
on pipes with a deadline; an item that overruns gets its worker SIGKILLed and respawned
and comes back as ``Score.timeout``; a worker that dies (segfault, ``os._exit``, OOM kill)
gives ``Score.error`` for the item it was running, and the rest of its chunk is resent.
Items are pickled one by one: an item that does not pickle (a lambda in a completion) or
does not unpickle in the worker gets ``Score.error`` alone; its neighbours are scored.

How it stays cheap: items go out in chunks, one chunk per idle worker; the worker reports
each item as it finishes, so the parent knows when the next one started and enforces the
deadline per item, not per chunk. The job (the component) is pickled once per call and
cached in each worker. Workers live on between calls in a module-level cache keyed by
worker count and start method, and are killed at interpreter exit.

Start method: ``forkserver`` (or ``spawn`` where there is none) when the job pickles and
can be unpickled by a fresh process. Jobs that do not pickle (lambdas, local functions,
classes defined in a notebook or an ``exec``'d namespace) fall back to ``fork`` where the
platform has it, in a pool made for that one call (the job is inherited, not sent);
elsewhere they raise ``InvalidArgument``. Like any multiprocessing code, a *script* that
scores with workers under forkserver/spawn needs an ``if __name__ == "__main__":`` guard.

Thread safety: each pool serves one call at a time; a second thread asking for the same
key gets another pool (up to ``_MAX_POOLS_PER_KEY``, then waits), so concurrent callers,
including ``loop.run_in_executor``, never share a worker. Limits: the deadline is measured
in the parent from when it learns the previous item finished, so it errs on the lenient
side by the parent's reaction time (milliseconds); a job that needs a long import in a
fresh worker gets a separate load deadline (``_LOAD_SECONDS``), not the item timeout.
"""

from __future__ import annotations

import atexit
import itertools
import math
import multiprocessing as mp
import os
import pickle
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

from ._score import Score, describe
from .errors import invalid

__all__ = ["score_in_pool", "run_in_pool", "shutdown"]

_LOAD_SECONDS = 120.0  # unpickling a job may import sympy and friends in a fresh worker
_MAX_POOLS_PER_KEY = 4
_POLL_PARENT_SECONDS = 1.0
_FLUSH_SECONDS = 0.002  # a worker batches results for at most this long
_STATE_POLL_SECONDS = 0.005  # how often the parent looks at a worker that is not mid-item
_tokens = itertools.count(1)
# jobs that could not be pickled, inherited by forked workers through memory
_INHERITED: dict[int, Callable[[Any], Score]] = {}


# --------------------------------------------------------------------------------------
# worker side
def _worker_main(conn: Any, state: Any) -> None:
    """Loop: receive ``(token, payload, items)``; send results in small batches.

    ``state`` is shared memory ``[index of the item in flight or -1, its start time]``:
    the parent reads it to enforce per-item deadlines, so results can be batched.
    """
    token, job = None, None
    # our parent is the caller (fork) or the forkserver, which exits with the caller;
    # either way a changed parent pid means we were orphaned
    parent_pid = os.getppid()
    while True:
        try:
            # poll so an orphaned worker notices its parent died even if a sibling
            # inherited our pipe's other end (fork) and EOF never comes
            while not conn.poll(_POLL_PARENT_SECONDS):
                if os.getppid() != parent_pid:
                    return
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        new_token, payload, items = message
        if new_token != token:
            try:
                job = _INHERITED[new_token] if payload is None else pickle.loads(payload)
                token = new_token
            except BaseException as exc:  # noqa: BLE001 - report, never die silently
                token, job = None, None
                conn.send(("load_error", f"{type(exc).__name__}: {exc}"[:200], True))
                continue
        buffer: list = []
        flushed = time.monotonic()
        for index, data in items:
            now = time.monotonic()
            if buffer and now - flushed >= _FLUSH_SECONDS:
                _send(conn, buffer, False)
                buffer, flushed = [], now
            state[1] = now  # start before index: a torn read only ever looks later
            state[0] = index
            buffer.append((index, _run_one(job, data)))
        state[0] = -1
        _send(conn, buffer, True)


def _send(conn: Any, buffer: list, done: bool) -> None:
    try:
        conn.send(("results", buffer, done))
    except Exception:  # an unpicklable detail in some Score: replace just those
        safe = []
        for index, score in buffer:
            try:
                pickle.dumps(score)
            except Exception as exc:
                score = Score.error(reason=f"result not picklable: {type(exc).__name__}")
            safe.append((index, score))
        conn.send(("results", safe, done))


def _run_one(job: Callable[[Any], Score], data: bytes) -> Score:
    start = time.perf_counter()
    try:
        item = pickle.loads(data)
    except BaseException as exc:  # noqa: BLE001 - this item only; its neighbours go on
        return Score.error(reason=f"input could not be unpickled in the worker: {describe(exc)}"[:200])
    try:
        result = job(item)
        if not isinstance(result, Score):
            result = Score.error(reason=f"job returned {type(result).__name__}, not Score")
        return result
    except BaseException as exc:  # noqa: BLE001 - a job must not kill its worker
        return Score.error(reason=describe(exc), elapsed=time.perf_counter() - start)


# --------------------------------------------------------------------------------------
# parent side
class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.state = ctx.RawArray("d", [-1.0, 0.0])
        self.process = ctx.Process(target=_worker_main, args=(child, self.state), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.token: int | None = None
        self.chunk: dict[int, Any] = {}  # index -> item, not yet answered
        self.sent_at = 0.0

    def in_flight(self) -> tuple[int, float]:
        index = int(self.state[0])  # index first, then start: see _worker_main
        return index, self.state[1]

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(5)
        except Exception:
            pass
        try:
            self.conn.close()
        except Exception:
            pass

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except Exception:
            pass
        self.process.join(0.5)
        if self.process.is_alive():
            self.kill()
        else:
            self.conn.close()


class _Pool:
    """``size`` workers of one start method; one call at a time (``lock``)."""

    def __init__(self, size: int, method: str) -> None:
        self.size = size
        self.method = method
        self.ctx = mp.get_context(method)
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.load_failed = False  # the last run met a worker that could not unpickle the job

    def _ensure(self) -> None:
        for w in self.workers:
            if not w.process.is_alive():
                w.kill()
        self.workers = [w for w in self.workers if w.process.is_alive()]
        while len(self.workers) < self.size:
            self.workers.append(_Worker(self.ctx))

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []

    def run(self, token: int, payload: bytes | None, items: list, timeout: float | None) -> list[Score]:
        self._ensure()
        run = _Run(self, token, payload, items, timeout)
        results = run.loop()
        self.load_failed = run.load_failed
        return results

    def respawn(self, w: _Worker) -> _Worker:
        w.kill()
        fresh = _Worker(self.ctx)
        self.workers[self.workers.index(w)] = fresh
        return fresh


class _Run:
    """The bookkeeping of one ``_Pool.run`` call."""

    def __init__(self, pool: _Pool, token: int, payload: bytes | None, items: list, timeout: float | None) -> None:
        self.pool, self.token, self.payload, self.timeout = pool, token, payload, timeout
        n = len(items)
        self.results: list[Score | None] = [None] * n
        self.left = n
        step = max(1, min(64, math.ceil(n / (pool.size * 4))))
        self.pending = deque([(i, items[i]) for i in range(s, min(n, s + step))] for s in range(0, n, step))
        self.busy: dict[Any, _Worker] = {}
        self.idle = list(pool.workers)
        self.load_failed = False

    def loop(self) -> list[Score]:
        while self.left:
            while self.idle and self.pending:
                self.dispatch(self.idle.pop(), self.pending.popleft())
            if not self.busy:
                break  # nothing in flight and nothing to send: every item is settled
            soonest = min(self.deadline(w) for w in self.busy.values())
            wait_for = None if soonest == math.inf else max(0.0, soonest - time.monotonic())
            for conn in wait(list(self.busy), timeout=wait_for):
                self.receive(self.busy[conn])
            self.expire(time.monotonic())
        lost = Score.error(reason="lost by the pool")  # defensive: never return None for a Score
        return [lost if r is None else r for r in self.results]

    def settle(self, w: _Worker, i: int, score: Score) -> None:
        w.chunk.pop(i, None)
        if self.results[i] is None:  # the first answer stands
            self.results[i] = score
            self.left -= 1

    def dispatch(self, w: _Worker, chunk: list) -> None:
        # each item is pickled on its own, so one that does not pickle (a lambda inside a
        # completion, a __reduce__ that raises) fails alone and its chunk-mates are sent
        packed = []
        for i, item in chunk:
            try:
                packed.append((i, pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)))
            except Exception as exc:  # noqa: BLE001 - hostile input: this item only
                self.settle(w, i, Score.error(reason=f"input not picklable: {type(exc).__name__}"))
        sendable = {i for i, _ in packed}
        w.chunk = {i: item for i, item in chunk if i in sendable}
        if not packed:
            self.idle.append(w)
            return
        # the job travels only to workers that do not hold it yet
        message = (self.token, self.payload if w.token != self.token else b"", packed)
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            w.conn.send_bytes(data)
        except OSError:  # the worker died while idle: a fresh one takes the chunk
            self.pending.appendleft(list(w.chunk.items()))
            self.idle.append(self.pool.respawn(w))
            return
        w.sent_at = time.monotonic()
        self.busy[w.conn] = w

    def replace(self, w: _Worker, failed: int | None, score: Score) -> None:
        """Kill ``w``; ``failed`` gets ``score``; the rest of its chunk is resent."""
        self.busy.pop(w.conn, None)
        if failed is not None:
            self.settle(w, failed, score)
        if w.chunk:
            self.pending.appendleft(list(w.chunk.items()))
        self.idle.append(self.pool.respawn(w))

    def deadline(self, w: _Worker) -> float:
        index, start = w.in_flight()
        if index in w.chunk:
            return start + self.timeout if self.timeout else math.inf
        # loading the job (-1) or stepping between items: the worker may start an
        # item and hang without a word, so look at its state again soon
        soon = time.monotonic() + _STATE_POLL_SECONDS if self.timeout else math.inf
        return min(soon, w.sent_at + _LOAD_SECONDS) if index < 0 else soon

    def receive(self, w: _Worker) -> None:
        try:
            tag, value, done = w.conn.recv()
        except (EOFError, OSError):  # the worker died mid-item
            index, _ = w.in_flight()
            w.process.join(1)
            culprit = index if index in w.chunk else next(iter(w.chunk), None)
            self.replace(w, culprit, Score.error(reason=f"worker crashed (exit code {w.process.exitcode})"))
            return
        if tag == "load_error":
            self.load_failed = True
            for i in list(w.chunk):
                self.settle(w, i, Score.error(reason=f"worker could not load the job: {value}"))
        else:
            w.token = self.token
            for i, score in value:
                self.settle(w, i, score)
        if done:
            self.busy.pop(w.conn)
            for i in list(w.chunk):  # defensive: a finished chunk leaves nothing unanswered
                self.settle(w, i, Score.error(reason="the worker skipped this item"))
            self.idle.append(w)

    def expire(self, now: float) -> None:
        for w in list(self.busy.values()):
            index, start = w.in_flight()
            if index in w.chunk and self.timeout and start + self.timeout <= now:
                late = Score.timeout(reason=f"exceeded the {self.timeout:g} s timeout", elapsed=now - start)
                self.replace(w, index, late)
            elif index < 0 and w.sent_at + _LOAD_SECONDS <= now:
                failed = Score.error(reason=f"worker did not load the job within {_LOAD_SECONDS:g} s")
                for i in list(w.chunk):
                    self.settle(w, i, failed)
                self.replace(w, None, failed)


_POOLS: dict[tuple[int, str], list[_Pool]] = {}
_POOLS_LOCK = threading.Lock()


def _acquire(size: int, method: str) -> _Pool:
    with _POOLS_LOCK:
        pools = _POOLS.setdefault((size, method), [])
        for pool in pools:
            if pool.lock.acquire(blocking=False):
                return pool
        if len(pools) < _MAX_POOLS_PER_KEY:
            pool = _Pool(size, method)
            pool.lock.acquire()
            pools.append(pool)
            return pool
        pool = pools[0]
    pool.lock.acquire()
    return pool


def shutdown() -> None:
    """Stop every cached worker (runs at interpreter exit; safe to call any time)."""
    with _POOLS_LOCK:
        pools = [p for ps in _POOLS.values() for p in ps]
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(shutdown)


def _default_method() -> str:
    methods = mp.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _payload_for(job: Any) -> bytes | None:
    """The pickled job, or None when only a forked worker could run it."""
    try:
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    main = sys.modules.get("__main__")
    if b"__main__" in payload and getattr(main, "__file__", None) is None:
        return None  # an interactive __main__ cannot be re-imported by a fresh process
    return payload


def run_in_pool(
    job: Callable[[Any], Score],
    items: Sequence[Any],
    *,
    workers: int,
    timeout: float | None = None,
) -> list[Score]:
    """Run ``job(item)`` for every item in worker processes; Scores in input order.

    ``job`` must return a :class:`Score`; an exception becomes ``Status.ERROR``, an item
    running longer than ``timeout`` seconds ``Status.TIMEOUT``, a worker that dies
    ``Status.ERROR``. Never raises on what the job does; raises ``InvalidArgument`` for
    bad ``workers``/``timeout`` or an unpicklable job on a platform without fork.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise invalid("workers", workers, "must be a positive int")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or timeout == math.inf
    ):
        raise invalid("timeout", timeout, "must be a positive finite number of seconds or None")
    items = list(items)
    if not items:
        return []
    workers = min(workers, len(items))
    token = next(_tokens)
    payload = _payload_for(job)
    can_fork = "fork" in mp.get_all_start_methods()
    if payload is not None:
        pool = _acquire(workers, _default_method())
        try:
            results = pool.run(token, payload, items, timeout)
            if not (pool.load_failed and can_fork):
                return results
        finally:
            pool.lock.release()
        # pickled but a fresh process could not unpickle it (a class defined under
        # `if __name__ == "__main__":`, say): run it in forked workers instead
    if not can_fork:
        raise invalid("job", job, "must be picklable to run in worker processes on this platform")
    # an unpicklable job: fork fresh workers that inherit it, for this call only
    _INHERITED[token] = job
    pool = _Pool(workers, "fork")
    try:
        return pool.run(token, None, items, timeout)
    finally:
        pool.close()
        _INHERITED.pop(token, None)


class _ComponentJob:
    """Picklable ``(completion, row) -> Score`` for one component."""

    def __init__(self, component: Any) -> None:
        self.component = component

    def __call__(self, item: tuple[Any, dict]) -> Score:
        completion, row = item
        return self.component.score(completion, **row)


def score_in_pool(
    component: Any,
    completions: Sequence[Any],
    rows: Sequence[dict],
    *,
    workers: int,
    timeout: float | None = None,
) -> list[Score]:
    """``component.score(completion, **row)`` for each pair, in the pool."""
    return run_in_pool(_ComponentJob(component), list(zip(completions, rows)), workers=workers, timeout=timeout)
