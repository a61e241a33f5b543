"""A pool of long-lived worker processes with a hard per-item timeout.

Why not ``multiprocessing.Pool`` or ``signal.alarm``: SIGALRM only works in the main
thread (it breaks inside threads, async servers and notebooks' executors), and a plain
``Pool`` cannot stop one stuck item without tearing down the pool. Here the parent waits
on pipes with a deadline; an item that overruns gets its worker SIGKILLed and respawned
and comes back as ``Score.timeout``; a worker that dies (segfault, ``os._exit``, OOM kill)
gives ``Score.error`` for the item it was running, and the rest of its chunk is resent.

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

from ._score import Score
from .errors import invalid

__all__ = ["score_in_pool", "run_in_pool", "shutdown"]

_LOAD_SECONDS = 120.0  # unpickling a job may import sympy and friends in a fresh worker
_MAX_POOLS_PER_KEY = 4
_POLL_PARENT_SECONDS = 1.0
_tokens = itertools.count(1)
# jobs that could not be pickled, inherited by forked workers through memory
_INHERITED: dict[int, Callable[[Any], Score]] = {}


# --------------------------------------------------------------------------------------
# worker side
def _worker_main(conn: Any) -> None:
    """Loop: receive ``(token, payload, items)``, answer one message per item."""
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
                conn.send(("load_error", f"{type(exc).__name__}: {exc}"[:200]))
                continue
        conn.send(("ready", None))
        for index, item in items:
            result = _run_one(job, item)
            try:
                conn.send((index, result))
            except Exception as exc:  # an unpicklable detail in a Score, say
                conn.send((index, Score.error(reason=f"result not picklable: {type(exc).__name__}")))


def _run_one(job: Callable[[Any], Score], item: Any) -> Score:
    start = time.perf_counter()
    try:
        result = job(item)
        if not isinstance(result, Score):
            result = Score.error(reason=f"job returned {type(result).__name__}, not Score")
        return result
    except BaseException as exc:  # noqa: BLE001 - a job must not kill its worker
        return Score.error(reason=f"{type(exc).__name__}: {exc}"[:200], elapsed=time.perf_counter() - start)


# --------------------------------------------------------------------------------------
# parent side
class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.token: int | None = None
        self.chunk: deque = deque()
        self.deadline = math.inf
        self.loading = False

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
        n = len(items)
        results: list[Score | None] = [None] * n
        step = max(1, min(64, math.ceil(n / (self.size * 4))))
        pending = deque([(i, items[i]) for i in range(s, min(n, s + step))] for s in range(0, n, step))
        busy: dict[Any, _Worker] = {}
        idle = list(self.workers)
        item_seconds = timeout if timeout else math.inf
        left = n

        def settle(w: _Worker, score: Score) -> None:
            nonlocal left
            i, _ = w.chunk.popleft()
            results[i] = score
            left -= 1

        def dispatch(w: _Worker, chunk: list) -> None:
            w.chunk = deque(chunk)
            try:  # the job travels only to workers that do not hold it yet
                w.conn.send((token, payload if w.token != token else b"", chunk))
            except Exception as exc:  # inputs that do not pickle
                while w.chunk:
                    settle(w, Score.error(reason=f"input not picklable: {type(exc).__name__}"))
                idle.append(w)
                return
            w.loading = True
            w.deadline = time.monotonic() + _LOAD_SECONDS
            busy[w.conn] = w

        def replace(w: _Worker, score: Score, *, resend: bool) -> None:
            settle(w, score)
            while w.chunk and not resend:
                settle(w, score)
            if w.chunk:
                pending.appendleft(list(w.chunk))
            busy.pop(w.conn, None)
            w.kill()
            fresh = _Worker(self.ctx)
            self.workers[self.workers.index(w)] = fresh
            idle.append(fresh)

        while left:
            while idle and pending:
                dispatch(idle.pop(), pending.popleft())
            if not busy:
                break  # nothing in flight and nothing to send: every item is settled
            wait_for = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout=None if wait_for == math.inf else wait_for):
                w = busy[conn]
                try:
                    tag, value = conn.recv()
                except (EOFError, OSError):  # the worker died mid-item
                    w.process.join(1)
                    crash = Score.error(reason=f"worker crashed (exit code {w.process.exitcode})")
                    replace(w, crash, resend=True)
                    continue
                if tag == "ready":
                    w.token, w.loading = token, False
                elif tag == "load_error":
                    while w.chunk:
                        settle(w, Score.error(reason=f"worker could not load the job: {value}"))
                else:
                    results[tag] = value
                    w.chunk.popleft()
                    left -= 1
                if w.chunk:
                    w.deadline = time.monotonic() + item_seconds
                else:
                    busy.pop(conn)
                    w.deadline = math.inf
                    idle.append(w)
            now = time.monotonic()
            for w in [w for w in busy.values() if w.deadline <= now]:
                if w.loading:
                    failed = Score.error(reason=f"worker did not load the job within {_LOAD_SECONDS:g} s")
                    replace(w, failed, resend=False)
                else:
                    late = Score.timeout(reason=f"exceeded the {timeout:g} s timeout", elapsed=float(timeout or 0))
                    replace(w, late, resend=True)
        for i, r in enumerate(results):
            if r is None:  # defensive: a bookkeeping slip must not return None for a Score
                results[i] = Score.error(reason="lost by the pool")
        return results  # type: ignore[return-value]


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
    if payload is not None:
        pool = _acquire(workers, _default_method())
        try:
            return pool.run(token, payload, items, timeout)
        finally:
            pool.lock.release()
    if "fork" not in mp.get_all_start_methods():
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
