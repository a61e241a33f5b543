"""A pool of long-lived sandboxed workers ("zygotes") that fork a fresh child per task.

Each worker is one sandbox (bwrap: its own user, PID, network, IPC, UTS, mount and
cgroup namespaces, a per-worker cgroup when possible) with a warm interpreter inside.
Tasks are dispatched over pipes with one event loop; the host enforces its own deadline
on top of the worker's and kills the whole sandbox when a worker overruns, dies, sends
something malformed or reports an anomaly. Workers are recycled after ``max_tasks``.
A worker acknowledges each task once it has forked the task's child; a worker found
dead before that (the task never started) is replaced and the task re-sent, at most
``MAX_RETRIES`` times, so a task is only reported ``killed`` when its own run died.
``isolation="per_run"`` is the same machinery with ``max_tasks=1``: a fresh sandbox per
execution.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import shlex
import shutil
import signal
import struct
import subprocess
import threading
import time
from typing import Any, Mapping, Sequence

from ..errors import invalid
from ._backend import PATH, Backend, detect
from ._cgroup import Cgroup
from ._procs import _live_pids, _pids_lock, become_subreaper, reap_orphans, start_in_long_lived_thread
from ._result import ExecutionResult
from ._seccomp import filter_program
from ._task import failed, make_task, to_result

START_TIMEOUT = 30.0  # a cold start on a loaded 2-core machine can take seconds
GRACE = 2.0  # host deadline = task timeout + this (the worker kills first, then sweeps)
MAX_RETRIES = 2  # re-sends of a task whose worker died before the task started
RACE_WINDOW = 0.2  # seconds: a worker dead this soon after "started" was dying before the send


# ------------------------------------------------------------------------ one worker
class _Worker:
    def __init__(self, backend: Backend, tmp_mb: int, memory_mb: int, max_pids: int, preload: bool = False) -> None:
        self.backend = backend
        self.hello: dict | None = None
        self.buf = bytearray()
        self.tasks = 0
        self.current: int | None = None  # index of the task it runs
        self.started = False  # whether it said it forked the current task's child
        self.deadline: float | None = time.monotonic() + START_TIMEOUT
        self.sent_at = 0.0
        self.oom_before = 0
        program = filter_program() if backend.name == "bwrap" else None
        seccomp_fd = None
        if program is not None:  # bwrap reads the filter from a pipe at start-up
            seccomp_fd, w = os.pipe()
            os.write(w, program)
            os.close(w)
        argv, self.tmpdir = backend.command(tmp_mb, seccomp_fd, preload)
        self.cgroup = None
        if backend.isolating and (backend.drop_to is None or shutil.which("setpriv")):
            self.cgroup = Cgroup.create((memory_mb + tmp_mb + 256) << 20, max_pids)
        kwargs: dict[str, Any] = {}
        if self.cgroup is not None:
            # A tiny shell joins the cgroup, then becomes the sandbox: nothing forks first.
            drop = []
            if backend.drop_to is not None:
                drop = ["setpriv", f"--reuid={backend.drop_to}", f"--regid={backend.drop_to}", "--clear-groups", "--"]
            script = " && ".join(f"echo $$ > {shlex.quote(p)}" for p in self.cgroup.procs_files)
            argv = ["/bin/sh", "-c", script + ' && exec "$@"', "sh", *drop, *argv]
        elif backend.drop_to is not None:
            kwargs.update(user=backend.drop_to, group=backend.drop_to, extra_groups=[])
        debug = os.environ.get("RK_SANDBOX_DEBUG") == "1"
        _pids_lock.acquire()  # released once the pid is registered (see _procs)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None if debug else subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
                env={"PATH": PATH, "LANG": "C.UTF-8", **({"RK_SANDBOX_DEBUG": "1"} if debug else {})},
                **kwargs,
            )
            _live_pids.add(self.proc.pid)
        except BaseException:
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        finally:
            _pids_lock.release()
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        os.set_blocking(self.proc.stdout.fileno(), False)

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def alive(self) -> bool:
        """Whether its launcher still runs (a cheap check before handing it a task)."""
        return self.proc.poll() is None

    def send(self, task: Mapping[str, Any]) -> bool:
        data = json.dumps(task, separators=(",", ":")).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def feed(self, max_frame: int) -> list[dict] | None:
        """Read what is available; the complete messages, or None when the worker is gone."""
        try:
            chunk = os.read(self.fileno(), 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not chunk:
            return None
        self.buf += chunk
        out = []
        while len(self.buf) >= 4:
            size = struct.unpack(">I", self.buf[:4])[0]
            if size > max_frame:
                return None  # a worker that floods the host is treated as dead
            if len(self.buf) < 4 + size:
                break
            body, self.buf = bytes(self.buf[4 : 4 + size]), self.buf[4 + size :]
            try:
                msg = json.loads(body)
            except ValueError:
                return None
            if not isinstance(msg, dict):
                return None
            out.append(msg)
        return out

    def kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        with _pids_lock:  # before the wait: once reaped, the pid may be reused by a new worker
            _live_pids.discard(self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - an unkillable process
            pass
        # The launcher (bwrap) is not the sandbox's PID 1: that one, the worker, was
        # reparented to us (a subreaper) when the launcher died, killed or not. Waiting
        # for the launcher alone left one zombie per worker ever retired.
        reap_orphans()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.tmpdir:
            subprocess.run(["rm", "-rf", "--one-file-system", self.tmpdir], check=False)


# ------------------------------------------------------------------------ the pool
class Pool:
    """Sandboxed workers, each forking a fresh child per task.

    ``workers``: how many sandboxes run at once (default: twice the CPU count, at most 32).
    ``isolation``: "pool" reuses a worker for up to ``max_tasks`` tasks, sweeping every
    process and file between tasks; "per_run" starts a fresh sandbox per execution.
    ``memory_mb`` sizes each worker's cgroup (tasks get their own ``memory_mb`` rlimit).
    Thread-safe: concurrent :meth:`run_many` calls share the workers.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        isolation: str = "pool",
        backend: str | Backend = "auto",
        allow_unsafe: bool = False,
        max_tasks: int = 1000,
        tmp_mb: int = 256,
        memory_mb: int = 1024,
        max_pids: int = 256,
        python: str | None = None,
        _skip_detect: bool = False,
    ) -> None:
        if workers is None:  # two per core: one runs while the other hands a result back
            workers = min(32, 2 * (os.cpu_count() or 1))
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 256:
            raise invalid("workers", workers, "must be an int in [1, 256]")
        if isolation not in ("pool", "per_run"):
            raise invalid("isolation", isolation, 'must be "pool" or "per_run"')
        if not isinstance(max_tasks, int) or max_tasks < 1:
            raise invalid("max_tasks", max_tasks, "must be an int >= 1")
        for name, value in (("tmp_mb", tmp_mb), ("memory_mb", memory_mb), ("max_pids", max_pids)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 8:
                raise invalid(name, value, "must be an int >= 8")
        if isinstance(backend, Backend):
            self.backend = backend
        elif backend in ("auto", "bwrap", "nsjail", "unsafe"):
            self.backend = backend if _skip_detect else detect(backend, allow_unsafe=allow_unsafe, python=python, check=canary_check)
        else:
            raise invalid("backend", backend, 'must be "auto", "bwrap", "nsjail" or "unsafe"')
        self.size = workers
        self.isolation = isolation
        self.max_tasks = 1 if isolation == "per_run" else max_tasks
        self._spec = (tmp_mb, memory_mb, max_pids)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0
        self._pid = os.getpid()
        self._closed = False
        self._last_hello: dict | None = None
        become_subreaper()

    def __repr__(self) -> str:
        name = self.backend.name if isinstance(self.backend, Backend) else self.backend
        return f"Pool(workers={self.size}, isolation={self.isolation!r}, backend={name!r})"

    # -------------------------------------------------------------------- public
    def run(self, code: str, **options: Any) -> ExecutionResult:
        """Run one program; see :func:`rewardkit.sandbox.run` for the options."""
        return self.run_many([make_task(code, **options)])[0]

    def run_many(self, tasks: Sequence[Mapping[str, Any]]) -> list[ExecutionResult]:
        """Run tasks built by :func:`make_task` concurrently; results in input order."""
        tasks = list(tasks)
        if not tasks:
            return []
        return _Batch(self, tasks, self._checkout(len(tasks))).run()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
            if self._pid != os.getpid():  # forked: those are the parent's sandboxes
                return
        for w in idle:
            w.kill()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------------- internals
    def _checkout(self, want: int) -> list[_Worker | None]:
        """Idle workers, plus None for each slot the caller may fill with a new worker.

        Idle workers that died while idle (killed from outside, a cgroup kill) are
        dropped here, and their slots handed out for new workers.
        """
        got: list[_Worker | None] = []
        dead: list[_Worker] = []
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's workers are not ours
                self._idle, self._live, self._pid = [], 0, os.getpid()
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            while not self._idle and self._live >= self.size:
                self._cond.wait()
            while self._idle and len(got) < want:
                w = self._idle.pop()
                if w.alive():
                    got.append(w)
                else:
                    dead.append(w)
                    self._live -= 1
            while len(got) < want and self._live < self.size:
                self._live += 1
                got.append(None)
        for w in dead:
            w.kill()
        return got

    def _spawn(self) -> _Worker:
        return start_in_long_lived_thread(lambda: _Worker(self.backend, *self._spec, preload=self.max_tasks > 1))

    def _checkin(self, worker: _Worker | None) -> None:
        """Give back a slot: a ready worker goes idle; None releases the slot."""
        doomed = None
        with self._cond:
            if worker is not None and not self._closed and self._pid == os.getpid():
                # Checkout pops from the end: ready workers there, starting ones below them.
                self._idle.insert(len(self._idle) if worker.hello is not None else 0, worker)
            else:
                self._live -= 1
                doomed = worker
            self._cond.notify()
        if doomed is not None:
            doomed.kill()


class _Batch:
    """One run_many call: an event loop over the slots it checked out."""

    def __init__(self, pool: Pool, tasks: list[Mapping[str, Any]], slots: list[_Worker | None]) -> None:
        self.pool, self.tasks = pool, tasks
        self.results: list[ExecutionResult | None] = [None] * len(tasks)
        self.pending = collections.deque(range(len(tasks)))
        self.sel = selectors.DefaultSelector()
        self.workers: list[_Worker] = []
        self.start_failures = 0
        self.retries: collections.Counter[int] = collections.Counter()
        self.name = pool.backend.name
        self.max_frame = 4 * max(t["max_output"] for t in tasks) + (1 << 20)
        for w in slots:
            self._add(w)

    def _add(self, worker: _Worker | None) -> None:
        if worker is None:
            try:
                worker = self.pool._spawn()
            except OSError as exc:
                self.start_failures += 1
                self._fail_pending(f"could not start a sandbox: {exc}")
                self.pool._checkin(None)
                return
        self.workers.append(worker)
        self.sel.register(worker.fileno(), selectors.EVENT_READ, worker)

    def _retire(self, worker: _Worker, replace: bool) -> None:
        self.sel.unregister(worker.fileno())
        self.workers.remove(worker)
        worker.kill()  # it also kills and reaps whatever the sandbox left reparented to us
        if replace and self.pending and self.start_failures < 3:
            self._add(None)
        else:
            self.pool._checkin(None)

    def _requeue(self, w: _Worker) -> None:
        """Its worker died before (or just as) it forked the task's child: run it again."""
        idx, w.current = w.current, None
        self.retries[idx] += 1
        if self.retries[idx] > MAX_RETRIES:
            reason = f"sandbox worker died before the task started ({self.retries[idx]} tries)"
            self.results[idx] = failed("killed", reason, self.name)
        else:
            self.pending.appendleft(idx)

    def _fail_pending(self, reason: str) -> None:
        while self.pending:
            self.results[self.pending.popleft()] = failed("error", reason, self.name)

    def run(self) -> list[ExecutionResult]:
        try:
            while self.pending or any(w.current is not None for w in self.workers):
                if not self.workers:
                    self._fail_pending("no sandbox worker could start")
                    break
                self._dispatch()
                self._wait()
                self._expire()
        finally:
            for w in list(self.workers):
                self.sel.unregister(w.fileno())
                if w.current is None:  # ready, or still starting (a cold start is costly: keep it)
                    self.pool._checkin(w)
                else:  # busy after an exception: do not keep it
                    w.current = None
                    self.pool._checkin(None)
                    w.kill()
            self.workers = []
            self.sel.close()
        return [r if r is not None else failed("error", "not run", self.name) for r in self.results]

    def _dispatch(self) -> None:
        for w in list(self.workers):
            if w.hello is None or w.current is not None or not self.pending:
                continue
            idx = self.pending.popleft()
            task = self.tasks[idx]
            w.current, w.sent_at, w.started = idx, time.monotonic(), False
            w.deadline = w.sent_at + task["timeout"] + GRACE
            w.oom_before = w.cgroup.oom_kills() if w.cgroup is not None else 0
            if not w.send(task):  # dead before the task reached it
                self._requeue(w)
                self._retire(w, replace=True)

    def _wait(self) -> None:
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        if not deadlines:  # nobody starting or busy: nothing could ever wake us
            if self.pending and not any(w.hello is not None for w in self.workers):
                self._fail_pending("no sandbox worker is ready")
            return
        timeout = max(0.0, min(deadlines) - time.monotonic())
        for key, _ in self.sel.select(timeout):
            w = key.data
            if w not in self.workers:
                continue
            msgs = w.feed(self.max_frame)
            if msgs is None:
                self._on_dead(w)
                continue
            for msg in msgs:
                if w.hello is None:
                    w.hello, w.deadline = msg, None
                    self.pool._last_hello = msg
                    self.start_failures = 0
                elif w.current is not None and "status" not in msg and msg.get("started") is True:
                    w.started = True  # the task's child exists: from here on its fate is its own
                elif w.current is not None:
                    self._on_reply(w, msg)
                    if w not in self.workers:
                        break

    def _on_reply(self, w: _Worker, msg: dict) -> None:
        idx, task = w.current, self.tasks[w.current]
        oom = w.cgroup is not None and w.cgroup.oom_kills() > w.oom_before
        self.results[idx] = to_result(msg, task, self.name, oom)
        w.current, w.deadline, w.started = None, None, False
        w.tasks += 1
        if msg.get("anomaly") or w.tasks >= self.pool.max_tasks:
            self._retire(w, replace=True)

    def _on_dead(self, w: _Worker) -> None:
        # A worker that died right after forking the task was almost surely dying already
        # (killed from outside just before the send: its death signal lags): run the task
        # again. A later death is reported; MAX_RETRIES bounds both.
        if w.current is not None and (not w.started or time.monotonic() - w.sent_at < RACE_WINDOW):
            self._requeue(w)
        elif w.current is not None:
            elapsed = time.monotonic() - w.sent_at
            self.results[w.current] = failed("killed", "sandbox worker died", self.name, elapsed)
            w.current = None
        elif w.hello is None:
            self.start_failures += 1
        self._retire(w, replace=True)

    def _expire(self) -> None:
        now = time.monotonic()
        for w in list(self.workers):
            if w.deadline is None or now < w.deadline:
                continue
            if w.current is not None:
                task = self.tasks[w.current]
                reason = f"killed after {task['timeout']:g}s (the sandbox did not answer)"
                self.results[w.current] = failed("timeout", reason, self.name, now - w.sent_at)
                w.current = None
            else:
                self.start_failures += 1
            self._retire(w, replace=True)


# ------------------------------------------------------------------------ detection canary
CANARY = """
import json, os, socket
facts = {"pid": os.getpid(), "uid": os.getuid()}
s = socket.socket(); s.settimeout(1.0)
try:
    s.connect(("192.0.2.1", 9)); facts["net"] = "connected"
except OSError as e:
    facts["net"] = type(e).__name__
print(json.dumps(facts))
"""


def canary_check(backend: Backend) -> str | None:
    """Run the canary through ``backend``; None if it isolates, else why not."""
    try:
        pool = Pool(1, backend=backend, _skip_detect=True)
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"{type(exc).__name__}: {exc}"
    try:
        res = pool.run(CANARY, timeout=15.0)
        hello = pool._last_hello or {}
    finally:
        pool.close()
    if not res.ok:
        return f"canary ended {res.status}: {(res.reason or res.stderr)[-300:]}"
    try:
        facts = json.loads(res.stdout)
    except ValueError:
        return f"canary printed {res.stdout[:100]!r}"
    if backend.isolating:
        if facts.get("net") == "connected":
            return "canary reached the network"
        if hello.get("pid") != 1:
            return "no private PID namespace"
    return None
