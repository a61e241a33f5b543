"""Long-lived sympy worker processes with a hard deadline per comparison.

Each worker is ``python -m rewardkit._math.worker`` talking JSON lines over pipes. A
caller takes an idle, ready worker, sends one job and waits on the pipe with ``select``
until the deadline; past it the worker is SIGKILLed (its memory goes with it) and a
replacement is started at once, in the background. No ``signal.alarm``: this works from
any thread, from ``asyncio.to_thread`` and inside servers. A subprocess rather than
``multiprocessing`` means no ``if __name__ == "__main__"`` guard is needed in user scripts.

The deadline counts from when :meth:`Pool.run` is called and covers everything: waiting
for a free worker, waiting for a starting worker to be ready (importing sympy and the
LaTeX parser, ~1-2 s) and the comparison itself. A call returns within ``timeout`` plus
a few milliseconds (``OVERRUN_SECONDS`` is the documented bound, for a loaded machine);
a worker that is still starting when a caller gives up is kept and keeps loading for the
next caller, so replacing a killed worker is never on anyone's clock but its own start
limit (``_START_SECONDS``). The price: on a cold pool (the first call of a process, or
right after a timeout killed every worker) a call with a timeout shorter than a worker's
start-up returns ``timeout`` without trying; such replies carry ``"transient": True`` and
are not cached. ``MathEquivalence.warm()`` starts the workers ahead of time. Workers are
killed at interpreter exit. POSIX only (``select`` on pipes, ``RLIMIT_AS``).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["Pool", "default_pool", "shutdown", "OVERRUN_SECONDS"]

OVERRUN_SECONDS = 0.05  # a call returns within timeout + this on a quiet machine
_START_SECONDS = 60.0
_POLL_SECONDS = 0.01  # how often a waiting caller looks at workers that are starting
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Timeout(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewardkit._math.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self.buf = b""
        self.ready = False
        self.started = time.monotonic()

    def fileno(self) -> int:
        return self.proc.stdout.fileno()  # type: ignore[union-attr]

    def _line(self, deadline: float) -> bytes:
        """The next line; ``_Timeout`` once nothing more is readable by ``deadline``."""
        while b"\n" not in self.buf:
            readable, _, _ = select.select([self.fileno()], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                raise _Timeout
            chunk = os.read(self.fileno(), 65536)
            if not chunk:
                raise EOFError("worker exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def poll_ready(self) -> bool:
        """Whether its ready line has come, without blocking; EOFError if it died starting."""
        if not self.ready:
            try:
                json.loads(self._line(time.monotonic()))
            except _Timeout:
                if time.monotonic() - self.started > _START_SECONDS:
                    raise EOFError(f"not ready within {_START_SECONDS:g} s") from None
                return False
            self.ready = True
        return True

    def ask(self, job: dict[str, Any], deadline: float) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self._line(deadline))

    def kill(self, reap_in_background: bool = False) -> None:
        """SIGKILL it and close its pipes; reap it now or, off the caller's clock, in a thread."""
        try:
            self.proc.kill()
        except OSError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        if reap_in_background:
            threading.Thread(target=self._reap, name="rewardkit-math-reaper", daemon=True).start()
        else:
            self._reap()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - an unkillable process
            pass


def _transient(status: str, reason: str) -> dict[str, Any]:
    """A reply about the pool, not the pair: callers must not cache it."""
    return {"s": status, "r": reason, "transient": True}


class Pool:
    """Up to ``size`` workers shared by all threads; each job gets one worker to itself.

    Workers are in one of three places: ``_starting`` (launched, loading sympy), ``_idle``
    (ready) or out with a caller. ``_count`` is all three together.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._starting: list[_Worker] = []
        self._count = 0
        self._closed = False
        self.pid = os.getpid()  # a forked child must not share our pipes

    # ---------------------------------------------------------------- under self._cond
    def _launch(self) -> str | None:
        """Start one worker into ``_starting``; the reason when it could not start."""
        try:
            worker = _Worker()
        except OSError as exc:
            return f"could not start a math worker: {type(exc).__name__}: {exc}"[:200]
        self._count += 1
        self._starting.append(worker)
        return None

    def _collect(self) -> str | None:
        """Move starting workers that became ready to ``_idle``; the reason if one died."""
        failed = None
        for worker in list(self._starting):
            try:
                ready = worker.poll_ready()
            except (EOFError, OSError, ValueError) as exc:
                self._starting.remove(worker)
                self._count -= 1
                worker.kill(reap_in_background=True)
                failed = f"math worker failed to start: {exc}"[:200]
                continue
            if ready:
                self._starting.remove(worker)
                self._idle.append(worker)
        return failed

    # ---------------------------------------------------------------- checkout
    def _acquire(self, deadline: float, timeout: float) -> _Worker | dict[str, Any]:
        """A ready worker, or the reply to give when none could be had by ``deadline``."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("pool is shut down")
                failed = self._collect()
                if self._idle:
                    return self._idle.pop()
                if failed is not None:
                    return _transient("error", failed)
                if self._count < self.size:
                    failed = self._launch()
                    if failed is not None:
                        return _transient("error", failed)
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    why = "starting" if self._starting else "busy"
                    return _transient("timeout", f"no verdict within {timeout:g} s (every math worker was {why})")
                # released workers notify; starting ones are looked at every _POLL_SECONDS
                self._cond.wait(min(left, _POLL_SECONDS) if self._starting else left)

    def _release(self, worker: _Worker | None, replace: bool = False) -> None:
        """Give back a ready worker, or (None) its slot, starting a replacement if asked."""
        with self._cond:
            if worker is None:
                self._count -= 1
                if replace and not self._closed:
                    self._launch()  # its start-up runs in the background, on nobody's clock
            elif self._closed:
                self._count -= 1
                worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify()

    # ---------------------------------------------------------------- public
    def warm(self) -> None:
        """Start every worker now and wait until each is ready (or failed to start)."""
        with self._cond:
            while self._count < self.size and not self._closed:
                if self._launch() is not None:
                    break
            give_up = time.monotonic() + _START_SECONDS
            while self._starting and time.monotonic() < give_up:
                self._collect()
                self._cond.wait(_POLL_SECONDS)
            self._cond.notify_all()

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run one job within ``timeout`` seconds of this call (plus ``OVERRUN_SECONDS``).

        ``{"s": "timeout"}`` past the deadline, ``{"s": "error"}`` if the worker dies;
        replies about the pool rather than the job carry ``"transient": True``.
        """
        deadline = time.monotonic() + timeout
        got = self._acquire(deadline, timeout)
        if isinstance(got, dict):
            return got
        worker: _Worker | None = got
        replace = False
        try:
            if time.monotonic() >= deadline:  # ready just too late: keep it for the next caller
                return _transient("timeout", f"no verdict within {timeout:g} s (no math worker was free)")
            return worker.ask(job, deadline)
        except _Timeout:
            worker.kill(reap_in_background=True)
            worker, replace = None, True
            return {"s": "timeout", "r": f"no verdict within {timeout:g} s"}
        except (EOFError, OSError, ValueError) as exc:
            worker.kill(reap_in_background=True)
            worker, replace = None, True
            return {"s": "error", "r": f"worker failed: {type(exc).__name__}"}
        except BaseException:
            worker.kill()
            worker = None
            raise
        finally:
            self._release(worker, replace)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            doomed, self._idle, self._starting = self._idle + self._starting, [], []
            self._count -= len(doomed)
            self._cond.notify_all()
        for w in doomed:
            w.kill()


_lock = threading.Lock()
_default: Pool | None = None


def default_pool() -> Pool:
    """The shared pool (``REWARDKIT_MATH_WORKERS`` workers, default min(2, CPUs))."""
    global _default
    with _lock:
        if _default is None or _default._closed or _default.pid != os.getpid():
            size = os.environ.get("REWARDKIT_MATH_WORKERS") or min(2, os.cpu_count() or 1)
            try:
                n = int(size)
            except ValueError:
                n = 2
            _default = Pool(n)
        return _default


def shutdown() -> None:
    """Kill the shared pool's workers (a later comparison starts new ones)."""
    with _lock:
        pool = _default
    if pool is not None and pool.pid == os.getpid():
        pool.close()


atexit.register(shutdown)
