"""Long-lived sympy worker processes with a hard deadline per comparison.

Each worker is ``python -m rewardkit._math.worker`` talking JSON lines over pipes. A
caller takes an idle worker, sends one job and waits on the pipe with ``select`` until
the deadline; past it the worker is SIGKILLed (its memory goes with it) and a fresh one
is started on the next demand. No ``signal.alarm``: this works from any thread, from
``asyncio.to_thread`` and inside servers. A subprocess rather than ``multiprocessing``
means no ``if __name__ == "__main__"`` guard is needed in user scripts.

The deadline counts from when the job is sent to a *ready* worker; starting a worker
(importing sympy and the LaTeX parser, ~1-2 s) has its own generous limit. Workers are
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

__all__ = ["Pool", "default_pool", "shutdown"]

_START_SECONDS = 60.0
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

    def _line(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                raise _Timeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("worker exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def wait_ready(self) -> None:
        if not self.ready:
            json.loads(self._line(time.monotonic() + _START_SECONDS))
            self.ready = True

    def ask(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self._line(time.monotonic() + timeout))

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _replacement() -> _Worker | None:
    """A fresh worker, started now so it loads while the caller moves on."""
    try:
        return _Worker()
    except OSError:
        return None


class Pool:
    """Up to ``size`` workers shared by all threads; each job gets one worker to itself."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False
        self.pid = os.getpid()  # a forked child must not share our pipes

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("pool is shut down")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Worker()
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None or self._closed:
                self._count -= 1
                if worker is not None:
                    worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify()

    def warm(self) -> None:
        """Start every worker now and wait until each is ready."""
        taken = []
        for _ in range(self.size):
            with self._cond:
                if self._count >= self.size and not self._idle:
                    break
            w = self._acquire()
            taken.append(w)
        for w in taken:
            try:
                w.wait_ready()
            except Exception:
                w.kill()
                self._release(None)
                continue
            self._release(w)

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run one job; ``{"s": "timeout"}`` past the deadline, ``{"s": "error"}`` if the worker dies."""
        worker: _Worker | None = self._acquire()
        try:
            worker.wait_ready()
            return worker.ask(job, timeout)
        except _Timeout:
            worker.kill()
            worker = _replacement()
            return {"s": "timeout", "r": f"no verdict within {timeout:g} s"}
        except (EOFError, OSError, ValueError) as exc:
            worker.kill()
            worker = _replacement()
            return {"s": "error", "r": f"worker failed: {type(exc).__name__}"}
        except BaseException:
            worker.kill()
            worker = None
            raise
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
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
