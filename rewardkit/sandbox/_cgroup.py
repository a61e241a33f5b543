"""Per-sandbox cgroups (memory and process-count limits) when /sys/fs/cgroup is writable.

Both layouts are handled: the unified v2 hierarchy (``memory.max``, ``pids.max``,
``cgroup.kill``) and v1 controllers mounted separately (``memory.limit_in_bytes``,
``pids.max``). Any failure means "no cgroup": the rlimits and the namespace still apply.
Only root (or a delegated user) can write here; unprivileged callers simply get None.
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import time

ROOT = "/sys/fs/cgroup"
_counter = itertools.count()
_layout: tuple[str, dict[str, str]] | None | bool = False  # False: not probed yet


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _probe() -> tuple[str, dict[str, str]] | None:
    """('v2', {"": base}) or ('v1', {"memory": base, "pids": base}) or None."""
    if os.geteuid() != 0:
        return None
    try:
        if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
            with open(os.path.join(ROOT, "cgroup.controllers")) as f:
                if not {"memory", "pids"} <= set(f.read().split()):
                    return None
            base = os.path.join(ROOT, "rewardkit")
            os.makedirs(base, exist_ok=True)
            for d in (ROOT, base):
                _write(os.path.join(d, "cgroup.subtree_control"), "+memory +pids")
            return "v2", {"": base}
        bases = {}
        for ctl in ("memory", "pids"):
            if not os.path.isdir(os.path.join(ROOT, ctl)):
                return None
            bases[ctl] = os.path.join(ROOT, ctl, "rewardkit")
            os.makedirs(bases[ctl], exist_ok=True)
        return "v1", bases
    except OSError:
        return None


def _sweep_stale(bases: dict[str, str]) -> None:
    """Remove empty cgroups left by rewardkit processes that died without cleaning up."""
    for base in bases.values():
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            owner = name.split("-", 1)[0]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                try:
                    os.rmdir(os.path.join(base, name))
                except OSError:
                    pass


_created: "set[Cgroup]" = set()


@atexit.register
def _remove_all() -> None:
    for cg in list(_created):
        if cg.owner == os.getpid():  # a forked child must not tear down its parent's sandboxes
            cg.kill()
            cg.remove()


class Cgroup:
    """One cgroup per sandbox; the host writes the sandbox's first PID into it."""

    def __init__(self, version: str, dirs: list[str]) -> None:
        self.version = version
        self.dirs = dirs
        self.owner = os.getpid()

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> "Cgroup | None":
        global _layout
        if _layout is False:
            _layout = _probe()
            if _layout:
                _sweep_stale(_layout[1])
        if not _layout:
            return None
        version, bases = _layout
        name = f"{os.getpid()}-{next(_counter)}"
        dirs = []
        try:
            for ctl, base in bases.items():
                d = os.path.join(base, name)
                os.mkdir(d)
                dirs.append(d)
                if version == "v2":
                    _write(os.path.join(d, "memory.max"), str(memory_bytes))
                    _write(os.path.join(d, "pids.max"), str(max_pids))
                    try:
                        _write(os.path.join(d, "memory.swap.max"), "0")
                    except OSError:
                        pass
                elif ctl == "memory":
                    _write(os.path.join(d, "memory.limit_in_bytes"), str(memory_bytes))
                else:
                    _write(os.path.join(d, "pids.max"), str(max_pids))
        except OSError:
            cls(version, dirs).remove()
            return None
        cg = cls(version, dirs)
        _created.add(cg)
        return cg

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_files:
            try:
                with open(path) as f:
                    found.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return found

    def oom_kills(self) -> int:
        """How many times the memory limit made the kernel kill something here."""
        for d in self.dirs:
            for fname in ("memory.events", "memory.oom_control"):
                try:
                    with open(os.path.join(d, fname)) as f:
                        for line in f:
                            key, _, value = line.partition(" ")
                            if key == "oom_kill":
                                return int(value)
                except OSError:
                    continue
        return 0

    def kill(self) -> None:
        """SIGKILL everything inside, however deep or detached."""
        if self.version == "v2":
            try:
                _write(os.path.join(self.dirs[0], "cgroup.kill"), "1")
                return
            except OSError:
                pass
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)

    def remove(self) -> None:
        _created.discard(self)
        for d in self.dirs:
            for _ in range(100):  # rmdir fails until the killed tasks are gone
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
