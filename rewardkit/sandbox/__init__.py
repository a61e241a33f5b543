"""Run untrusted Python (model-written code) in a sandbox and get a typed result back.

    >>> from rewardkit import sandbox
    >>> sandbox.run("print(6 * 7)").stdout
    '42\\n'

What it protects against (each property has a test in ``tests/hostile/``):

- Runaway code: infinite loops, sleeping while ignoring SIGTERM, fork and thread bombs,
  huge allocations, huge files (work dir, /tmp, /dev/shm), open-file exhaustion,
  unbounded output. The deadline is enforced from outside the process with SIGKILL of
  the whole process tree; output is read non-blocking with a cap; rlimits bound address
  space, CPU (soft = hard), file size, open files and processes; a per-sandbox cgroup
  (memory, pids) is added when /sys/fs/cgroup is writable; tmpfs mounts have a size.
- Escapes into the host, with the default bubblewrap backend: no network (own network
  namespace: loopback listeners, outside addresses, DNS and host Unix sockets are all
  unreachable), no host processes (own PID namespace: ``kill(-1)``, ``kill(getppid())``
  and /proc/1 only reach the sandbox), no host files beyond read-only /usr and the
  interpreter (no /root, /home, /etc, the repository), no host environment variables
  (an allow-list), a genuinely unprivileged uid (65534 on the host when rewardkit runs
  as root; never root inside), no new user namespaces, no writable path outside tmpfs.
- Leftovers between tasks: a worker sweeps every process (it is PID 1 of its namespace)
  and every file after each task, and is recycled after ``max_tasks`` or any anomaly.
- The verifier itself: code never runs in the calling process; the caller is a child
  subreaper and kills and reaps what its sandboxes leave.

What it does NOT protect against:

- Kernel exploits. Namespaces and rlimits share the host kernel. A seccomp blocklist
  (x86-64) refuses the riskiest syscalls (io_uring, bpf, userfaultfd, keyrings, perf
  events, ptrace, mount, modules) and foreign syscall ABIs, but it is not an allow-list
  and there is no VM. For adversarial code at scale, run the whole trainer in a VM too.
- CPU starvation: the sandbox competes for the host's cores for up to its timeout.
- Side channels (timing, cache) and reading the read-only files it is given (/usr).
- With ``allow_unsafe=True`` (no isolating backend), only the "always" layers apply:
  a separate process and session, rlimits, an environment allow-list, a private work
  dir and the deadline. The code can read your files, reach the network and signal
  your processes. Never use it for untrusted code on a machine you care about.
- Lies inside the program's own process: a test harness that runs in the same
  interpreter as untrusted code can be subverted by code that is clever enough. So
  :class:`rewardkit.verifiers.CodeTests` keeps its tests and verdict in another process
  (``make_task(candidate=...)``: see ``rewardkit/verifiers/_harness.py``).

Backends are chosen by running a canary once per process (``detect()``): bubblewrap,
then nsjail; if neither isolates, :class:`SandboxUnavailable` is raised unless the caller
passes ``allow_unsafe=True``.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Mapping

from ..errors import invalid
from . import _backend
from ._backend import Backend, SandboxUnavailable
from ._pool import Pool, canary_check, make_task
from ._result import ExecStatus, ExecutionResult

__all__ = [
    "run",
    "run_many",
    "ExecutionResult",
    "ExecStatus",
    "Pool",
    "SandboxUnavailable",
    "detect",
    "make_task",
    "default_pool",
    "shutdown",
]

# Public: run/run_many (with make_task's tasks), Pool and default_pool for explicit pools,
# detect() to check the backend early. Backend is what detect() returns (read .name,
# .isolating); it stays importable but is no name to build on, so it is not in __all__.


def detect(name: str = "auto", *, allow_unsafe: bool = False, python: str | None = None) -> Backend:
    """The backend to use, decided once per process by running a canary through it.

    Raises :class:`SandboxUnavailable` when nothing isolates, unless ``allow_unsafe``.
    """
    return _backend.detect(name, allow_unsafe=allow_unsafe, python=python, check=canary_check)


_pools: dict[tuple, Pool] = {}
_pools_lock = threading.Lock()


def default_pool(
    *, isolation: str = "pool", backend: str = "auto", allow_unsafe: bool = False, workers: int | None = None
) -> Pool:
    """The process-wide pool for these settings (created on first use, closed at exit)."""
    if isolation not in ("pool", "per_run"):
        raise invalid("isolation", isolation, 'must be "pool" or "per_run"')
    key = (isolation, backend, allow_unsafe, workers)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool._closed:
            pool = Pool(workers, isolation=isolation, backend=backend, allow_unsafe=allow_unsafe)
            _pools[key] = pool
        return pool


@atexit.register
def shutdown() -> None:
    """Close every default pool (their sandboxes are killed)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def run(
    code: str,
    *,
    stdin: str | bytes | None = None,
    files: Mapping[str, str | bytes] | None = None,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    max_output: int = 1 << 20,
    isolation: str = "pool",
    backend: str = "auto",
    allow_unsafe: bool = False,
    **limits: Any,
) -> ExecutionResult:
    """Run Python source in a sandbox and return an :class:`ExecutionResult`.

    ``stdin``: the program's standard input (default: empty, /dev/null). ``files``:
    relative path -> contents, written into the fresh work dir (the program's cwd).
    ``timeout``: wall-clock seconds. ``memory_mb``: address-space limit.
    ``max_output``: cap in bytes for stdout and for stderr; passing it kills the run
    (status ``output_limit``). ``isolation``: "pool" (warm workers, fast) or "per_run"
    (a fresh sandbox per call). More limits: ``max_file_mb`` (64), ``max_open_files``
    (256), ``max_procs`` (64), ``env`` (extra variables), ``channel`` (collect fd 3).
    Bad arguments raise ``InvalidArgument``; nothing the code does makes this raise.
    """
    task = make_task(code, stdin=stdin, files=files, timeout=timeout, memory_mb=memory_mb, max_output=max_output, **limits)
    pool = default_pool(isolation=isolation, backend=backend, allow_unsafe=allow_unsafe)
    return pool.run_many([task])[0]


def run_many(tasks: list[Mapping[str, Any]], *, isolation: str = "pool", backend: str = "auto", allow_unsafe: bool = False) -> list[ExecutionResult]:
    """Run many tasks (from :func:`make_task`) concurrently in the default pool."""
    pool = default_pool(isolation=isolation, backend=backend, allow_unsafe=allow_unsafe)
    return pool.run_many(tasks)
