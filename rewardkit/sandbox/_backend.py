"""Isolation backends and their detection.

A backend is a recipe for the command line that starts one sandboxed worker (see
``_zygote.py``). Which one works is decided by running a canary through it (once per
process, cached), never by reading sysctls: user namespaces, seccomp profiles of
container runtimes and LSMs all get a say, and only trying tells.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import RewardkitError

log = logging.getLogger("rewardkit.sandbox")

NOBODY = 65534
ZYGOTE_SOURCE = (Path(__file__).parent / "_zygote.py").read_text()
PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxUnavailable(RewardkitError, RuntimeError):
    """No isolating backend works here, and the caller did not pass ``allow_unsafe=True``."""


@dataclass(frozen=True)
class Backend:
    """How to start a worker. ``drop_to``: the uid the host switches to before exec."""

    name: str
    python: str
    drop_to: int | None = None
    binds: tuple[str, ...] = ()
    note: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def isolating(self) -> bool:
        return self.name != "unsafe"

    def command(self, tmp_mb: int, seccomp_fd: int | None = None, preload: bool = False) -> tuple[list[str], str | None]:
        """(argv, host temp dir to delete afterwards or None).

        ``preload``: the worker imports common stdlib modules once, so that each forked
        task starts with them (worth it for long-lived workers, not for one-shot ones).
        """
        zygote = [self.python, "-I", "-S", "-c", ZYGOTE_SOURCE]
        flags = ["--preload"] if preload else []
        if self.name == "bwrap":
            seccomp = ["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []
            return _bwrap_argv(self, tmp_mb) + seccomp + zygote + ["/tmp", *flags], None
        if self.name == "nsjail":
            return _nsjail_argv(self, tmp_mb) + zygote + ["/tmp", *flags], None
        base = tempfile.mkdtemp(prefix="rk-sandbox-")
        if self.drop_to is not None:
            os.chown(base, self.drop_to, self.drop_to)
        return zygote + [base, *flags], base


def _usr_links() -> list[str]:
    """Bind /usr and recreate the top-level lib/bin links (merged-/usr) or bind the dirs."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _bwrap_argv(backend: Backend, tmp_mb: int) -> list[str]:
    args = [
        "bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
        "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv",
        "--uid", str(NOBODY), "--gid", str(NOBODY),
    ] + _usr_links()
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for path in backend.binds:
        args += ["--ro-bind", path, path]
    args += [
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(16 << 20), "--tmpfs", "/dev/shm",
        "--size", str(tmp_mb << 20), "--tmpfs", "/tmp",
        "--remount-ro", "/dev", "--remount-ro", "/",
        "--chdir", "/tmp", "--setenv", "PATH", PATH, "--setenv", "LANG", "C.UTF-8",
    ]  # fmt: skip
    return args


def _nsjail_argv(backend: Backend, tmp_mb: int) -> list[str]:
    # Untested on the machines this was written on (nsjail was not installed); the
    # canary decides whether it is used at all.
    args = ["nsjail", "--mode", "o", "--quiet", "--user", str(NOBODY), "--group", str(NOBODY),
            "--time_limit", "0", "--rlimit_as", "max", "--rlimit_cpu", "max", "--rlimit_fsize", "max",
            "--rlimit_nofile", "max", "--rlimit_nproc", "max", "--cwd", "/tmp",
            "--env", "PATH=" + PATH, "--env", "LANG=C.UTF-8"]  # fmt: skip
    for top in ["/usr", "/bin", "/sbin", "/lib", "/lib64", *backend.binds]:
        if os.path.exists(top):
            args += ["--bindmount_ro", top]
    args += ["--mount", f"none:/tmp:tmpfs:size={tmp_mb << 20}", "--"]
    return args


# ------------------------------------------------------------------------ choosing python
def _world_usable(path: str) -> bool:
    """Can an unrelated uid execute ``path``? (every directory searchable, file o+x)"""
    p = Path(path)
    try:
        if not p.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in p.parents)
    except OSError:
        return False


def _python_and_binds(python: str | None, root: bool) -> tuple[str, tuple[str, ...], bool]:
    """(interpreter, extra read-only binds, whether it is reachable by the nobody uid)."""
    exe = os.path.realpath(python or sys.executable)
    prefix = os.path.realpath(sys.base_prefix) if python is None else str(Path(exe).parents[1])

    def binds(path: str, pre: str) -> tuple[str, ...]:
        return () if path.startswith("/usr/") else (pre,)

    if not root or _world_usable(exe) or python is not None:
        return exe, binds(exe, prefix), (not root) or _world_usable(exe)
    # Root with a private interpreter (pyenv under /root): use the system one so the
    # sandbox can run as a genuinely unprivileged uid. Tasks run stdlib-only anyway.
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand) and _world_usable(os.path.realpath(cand)):
            return os.path.realpath(cand), (), True
    return exe, binds(exe, prefix), False


def candidates(name: str = "auto", python: str | None = None) -> list[Backend]:
    root = os.geteuid() == 0
    exe, binds, usable = _python_and_binds(python, root)
    drop = NOBODY if root and usable else None
    found = []
    if name in ("auto", "bwrap") and shutil.which("bwrap"):
        note = "uid 65534 on the host" if drop is not None or not root else "uid 65534 mapped to root"
        found.append(Backend("bwrap", exe, drop, binds, note))
    if name in ("auto", "nsjail") and shutil.which("nsjail"):
        found.append(Backend("nsjail", exe, None, binds, "nsjail as the caller"))
    if name == "unsafe":
        found.append(Backend("unsafe", exe, drop, (), "no isolation beyond rlimits and a session"))
    return found


# ------------------------------------------------------------------------ detection
_detected: dict[tuple, Backend] = {}
_lock = threading.Lock()


def detect(name: str = "auto", *, allow_unsafe: bool = False, python: str | None = None,
           check: Callable[[Backend], str | None]) -> Backend:
    """The backend to use, decided once per process by running ``check`` (the canary in
    ``_pool``: it needs a Pool, which needs this module, so it is passed in).

    Raises :class:`SandboxUnavailable` when nothing isolates, unless ``allow_unsafe``.
    """
    key = (name, allow_unsafe, python)
    with _lock:
        if key in _detected:
            return _detected[key]
        reasons = []
        names = [name] if name != "auto" else ["bwrap", "nsjail"]
        tried = candidates(name, python) if name != "unsafe" else []
        for backend in tried:
            why = check(backend)
            if why is None:
                _detected[key] = backend
                return backend
            reasons.append(f"{backend.name}: {why}")
        missing = [n for n in names if n != "unsafe" and n not in {b.name for b in tried}]
        reasons += [f"{n}: not installed" for n in missing]
        if name == "unsafe" or allow_unsafe:
            backend = candidates("unsafe", python)[0]
            log.warning("rewardkit.sandbox: running untrusted code WITHOUT isolation (%s)", "; ".join(reasons) or "asked for")
            _detected[key] = backend
            return backend
        raise SandboxUnavailable(
            "no sandbox backend works here (" + "; ".join(reasons) + "). Install bubblewrap "
            "(apt-get install bubblewrap) and allow unprivileged user namespaces, or pass "
            "allow_unsafe=True to run untrusted code with rlimits only."
        )
