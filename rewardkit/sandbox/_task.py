"""Execution requests (validated at the call site) and turning worker replies into results."""

from __future__ import annotations

import base64
import signal
from typing import Any, Mapping

from ..errors import invalid
from ._backend import PATH
from ._result import ExecStatus, ExecutionResult

_DEFAULT_ENV = {"PATH": PATH, "LANG": "C.UTF-8", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0"}


def make_task(
    code: str,
    *,
    stdin: str | bytes | None = None,
    files: Mapping[str, str | bytes] | None = None,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    max_output: int = 1 << 20,
    max_file_mb: int = 64,
    max_open_files: int = 256,
    max_procs: int = 64,
    env: Mapping[str, str] | None = None,
    channel: bool = False,
    secret: str | None = None,
    candidate: str | None = None,
    cache_code: bool = False,
) -> dict[str, Any]:
    """Validate one execution request and encode it for the worker.

    ``channel``: give the program a write-only file descriptor 3 whose contents come
    back as ``ExecutionResult.channel``. ``secret``: a string the program can read once
    from file descriptor 4; it never appears in the source, a file or the environment.
    With either, the source is not written into the work dir. ``candidate``: a second
    program (public: it is given to a process that never saw this task's code, stdin or
    secret) started before this one from the worker's pristine template process; the
    task talks to it through file descriptors 5 (its stdin side) and 6 (its replies),
    which the candidate sees as 3 and 4. It shares the task's limits, work dir and
    output streams, and dies with the task. ``cache_code``: ``code`` is a constant,
    trusted program (a harness whose input comes on stdin): each worker compiles it once.
    """
    if not isinstance(code, str):
        raise invalid("code", type(code).__name__, "must be a str")
    if candidate is not None and not isinstance(candidate, str):
        raise invalid("candidate", type(candidate).__name__, "must be a str or None")
    if not (isinstance(timeout, (int, float)) and 0 < timeout <= 3600):
        raise invalid("timeout", timeout, "must be a number of seconds in (0, 3600]")
    for field_name, value, low in (
        ("memory_mb", memory_mb, 32), ("max_output", max_output, 1), ("max_file_mb", max_file_mb, 1),
        ("max_open_files", max_open_files, 16), ("max_procs", max_procs, 1),
    ):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise invalid(field_name, value, f"must be an int >= {low}")
    enc: dict[str, str] = {}
    for name, data in (files or {}).items():
        parts = str(name).replace("\\", "/").split("/")
        if not isinstance(name, str) or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise invalid("files", name, "must map relative paths without '..' to contents")
        enc[name] = _b64(data)
    extra = dict(env or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise invalid("env", env, "must map str to str")
    return {
        "code": code,
        "stdin": None if stdin is None else _b64(stdin),
        "files": enc,
        "timeout": float(timeout),
        "memory_mb": memory_mb,
        "max_output": max_output,
        "max_file_mb": max_file_mb,
        "max_open_files": max_open_files,
        "max_procs": max_procs,
        "env": {**_DEFAULT_ENV, **extra},
        "channel": bool(channel or secret is not None),
        "secret": None if secret is None else str(secret),
        "candidate": candidate,
        "cache_code": bool(cache_code),
    }


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return base64.b64encode(raw).decode("ascii")


def _unb64(data: Any) -> bytes:
    try:
        return base64.b64decode(data or b"", validate=True)
    except (ValueError, TypeError):
        return b""


def to_result(reply: Mapping[str, Any], task: Mapping[str, Any], backend: str, oom: bool) -> ExecutionResult:
    """Turn a worker's (untrusted, JSON) reply into an :class:`ExecutionResult`."""
    cap = task["max_output"]
    out, err = _unb64(reply.get("stdout"))[:cap], _unb64(reply.get("stderr"))[:cap]
    truncated = any(int(reply.get(k) or 0) > cap for k in ("stdout_bytes", "stderr_bytes"))
    code = reply.get("exit_code") if isinstance(reply.get("exit_code"), int) else None
    sig = reply.get("signal") if isinstance(reply.get("signal"), int) else None
    status, reason = reply.get("status"), ""
    if status == "timeout":
        reason = f"killed after {task['timeout']:g}s"
    elif status == "output_limit":
        reason, truncated = f"output passed {cap} bytes", True
    elif status == "error":
        reason = str(reply.get("anomaly") or "sandbox error")[:200]
    elif sig is not None:
        if oom:
            status, reason = "memory", "killed by the cgroup's OOM killer"
        else:
            status = "killed"
            reason = {signal.SIGXFSZ: "file size limit", signal.SIGKILL: "SIGKILL (CPU limit or kill)"}.get(
                sig, f"signal {sig}"
            )
    elif code == 0:
        status = "ok"
    elif b"MemoryError" in err[-4096:]:
        status, reason = "memory", "MemoryError"
    else:
        status, reason = "error", f"exit code {code}"
    try:
        status = ExecStatus(status)
    except ValueError:
        status, reason = ExecStatus.ERROR, "malformed reply"
    channel = _unb64(reply.get("channel")) if task.get("channel") else None
    elapsed = reply.get("elapsed")
    return ExecutionResult(
        status=status,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        exit_code=code,
        signal=sig,
        elapsed=float(elapsed) if isinstance(elapsed, (int, float)) else 0.0,
        backend=backend,
        truncated=truncated,
        reason=reason,
        channel=channel,
    )


def failed(status: str, reason: str, backend: str, elapsed: float = 0.0) -> ExecutionResult:
    return ExecutionResult(status=ExecStatus(status), reason=reason, backend=backend, elapsed=elapsed)
