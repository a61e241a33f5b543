"""Process bookkeeping for the sandbox pools: the child subreaper, orphan reaping, and
the long-lived thread that starts every worker.

Limits: Linux only (``PR_SET_CHILD_SUBREAPER``, /proc); elsewhere reaping does nothing.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import queue
import signal
import threading
from typing import Any

from ._backend import NOBODY

_PR_SET_CHILD_SUBREAPER = 36
_subreaper = False
_live_pids: set[int] = set()  # launcher pids of every live worker of every pool
# Held while a worker starts (until its pid is in _live_pids) and while orphans are
# reaped: a launcher that already dropped to the sandbox uid is never taken for an orphan.
_pids_lock = threading.Lock()
_spawner_lock = threading.Lock()
_spawner: tuple[int, "queue.SimpleQueue"] | None = None  # (pid, requests) of the spawner thread


def start_in_long_lived_thread(fn: Any) -> Any:
    """Call ``fn`` (which starts a process) from a thread that lives as long as this process.

    bwrap's ``--die-with-parent`` is ``PR_SET_PDEATHSIG``, and the kernel sends that signal
    when the *thread* that forked the sandbox exits, not the process. A worker started from
    a short-lived thread (a ThreadPoolExecutor, a caller's reward thread) was SIGKILLed the
    moment that thread ended and then sat in the pool, dead, until a task was sent to it.
    The main thread lives as long as the process, so it starts its own workers; every other
    thread hands the start to one daemon thread per process.
    """
    global _spawner
    if threading.current_thread() is threading.main_thread():
        return fn()
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # none yet, or we were forked
            fresh: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_spawn_loop, args=(fresh,), name="rewardkit-sandbox-spawner", daemon=True).start()
            _spawner = (os.getpid(), fresh)
        requests = _spawner[1]
    future: concurrent.futures.Future = concurrent.futures.Future()
    requests.put((fn, future))
    return future.result()


def _spawn_loop(requests: "queue.SimpleQueue") -> None:
    while True:  # never returns: its exit would kill every sandbox it started
        fn, future = requests.get()
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            future.set_exception(exc)


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux only, once)."""
    global _subreaper
    if not _subreaper:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        _subreaper = True


def reap_orphans(exclude: set[int] = frozenset()) -> int:
    """Kill and reap sandboxed processes that were reparented to us. Returns how many.

    Only processes running as the sandbox uid or in another PID namespace are touched,
    so children that other code in this process started are never reaped behind its back.
    """
    with _pids_lock:
        return _reap_orphans(exclude)


def _reap_orphans(exclude: set[int]) -> int:
    me, count = str(os.getpid()), 0
    try:
        my_ns = os.readlink("/proc/self/ns/pid")
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit() or int(name) in exclude or int(name) in _live_pids:
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if fields.get("PPid", "").strip() != me:
                continue
            uid = int(fields["Uid"].split()[0])
            if uid != NOBODY and os.readlink(f"/proc/{name}/ns/pid") == my_ns:
                continue
            os.kill(int(name), signal.SIGKILL)
            os.waitpid(int(name), 0)
            count += 1
        except (OSError, KeyError, ValueError):
            continue
    return count
