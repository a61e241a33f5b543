"""What one sandboxed execution returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ExecStatus(str, enum.Enum):
    """How an execution ended.

    ``OK``: exit code 0. ``ERROR``: a non-zero exit code (an exception, ``sys.exit(1)``)
    or a sandbox failure. ``TIMEOUT``: the wall-clock deadline passed and the process tree
    was killed. ``MEMORY``: the memory limit was hit (MemoryError, or the OOM killer of
    the sandbox's cgroup). ``OUTPUT_LIMIT``: stdout or stderr passed its cap and the tree
    was killed. ``KILLED``: ended by a signal it did not ask the harness for (SIGSEGV,
    the CPU or file-size rlimit, its own ``kill``).
    """

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    OUTPUT_LIMIT = "output_limit"
    KILLED = "killed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of :func:`rewardkit.sandbox.run`.

    ``stdout``/``stderr`` are decoded UTF-8 (invalid bytes replaced), each capped at the
    run's ``max_output`` bytes; ``truncated`` says a cap was hit. ``exit_code`` is None
    when a signal ended the process (``signal`` then names it). ``backend`` is the
    isolation that ran it ("bwrap", "nsjail" or "unsafe"). ``channel`` holds what the
    code wrote to file descriptor 3 when the run asked for a result channel.
    """

    status: ExecStatus
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    signal: int | None = None
    elapsed: float = 0.0
    backend: str = ""
    truncated: bool = False
    reason: str = ""
    channel: bytes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is ExecStatus.OK
