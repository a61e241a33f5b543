"""A small seccomp filter for the bubblewrap backend: refuse the kernel's riskiest doors.

Namespaces do not shrink the kernel's attack surface; most container escapes go through
a handful of syscalls that untrusted Python never needs (io_uring, bpf, userfaultfd,
keyrings, perf events, ptrace, mount and module loading). This builds a classic BPF
program, as bubblewrap's ``--seccomp FD`` expects, that makes those fail with EPERM and
kills any process that switches to a foreign syscall ABI (i386, x32). It is a
blocklist, not an allow-list: it narrows the surface, it does not close it.

x86-64 only; on other architectures :func:`filter_program` returns None and the sandbox
runs without it (the namespaces and rlimits still apply).
"""

from __future__ import annotations

import platform
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_EPERM = 0x00050000 | 1
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06

# x86-64 syscall numbers
BLOCKED = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "personality": 135, "vhangup": 153,
    "pivot_root": 155, "adjtimex": 159, "acct": 163, "settimeofday": 164, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311,
    "finit_module": 313, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442,
}  # fmt: skip


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def filter_program() -> bytes | None:
    """The BPF program (struct sock_filter[]) for bwrap's --seccomp, or None off x86-64."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    numbers = sorted(BLOCKED.values())
    n = len(numbers)
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        _insn(_JGE_K, 0, 1, _X32_BIT),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
    ]
    # one test per blocked number; a match jumps to the EPERM return after the ALLOW
    for i, nr in enumerate(numbers):
        prog.append(_insn(_JEQ_K, n - i, 0, nr))
    prog.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    prog.append(_insn(_RET_K, 0, 0, _RET_EPERM))
    return b"".join(prog)
