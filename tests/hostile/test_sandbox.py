"""Hostile programs against rewardkit.sandbox: one property per test, each checks "contained".

Contained means: this process survives (the test runs on), no sandboxed process
survives beyond the pool's idle workers, the host is unchanged (nothing written outside
the sandbox, no secret read), and the next run in the same pool still works.

Every hostile program runs inside the sandbox, never in this process. The fork and
thread bombs are bounded by RLIMIT_NPROC (and the worker's pids cgroup when the
machine has one), so a containment failure could not take the machine down either.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

import pytest

from rewardkit import sandbox
from rewardkit.sandbox import ExecStatus

pytestmark = pytest.mark.timeout(120)
NOBODY = 65534


@pytest.fixture(scope="module")
def pool():
    p = sandbox.Pool(1, max_tasks=1000)
    assert p.backend.isolating, "these tests need an isolating backend (bubblewrap)"
    p.run("pass")
    yield p
    p.close()


def _ppid_map() -> dict[int, int]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    out[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def _sandbox_processes(pool) -> list[int]:
    """Processes below this pool's idle workers, the workers' own launchers excluded."""
    roots = {w.proc.pid for w in pool._idle}
    parents = _ppid_map()
    found = []
    for pid in parents:
        p, depth = pid, 0
        while p in parents and p not in roots and depth < 64:
            p, depth = parents[p], depth + 1
        if p in roots and pid not in roots:
            found.append(pid)
    return found


def _stray_nobody_processes() -> list[int]:
    """Our descendants of the sandbox uid that are not below a live worker.

    (We are a child subreaper, so anything that escaped a worker's tree lands below us.
    Processes of other programs on the machine are not looked at.)
    """
    from rewardkit.sandbox import _pool

    parents = _ppid_map()
    me = os.getpid()
    stray = []
    for pid in parents:
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        chain, p = [], pid
        while p in parents and p != me and len(chain) < 64:
            chain.append(p)
            p = parents[p]
        if uid == NOBODY and p == me and not set(chain) & _pool._live_pids:
            stray.append(pid)
    return stray


@pytest.fixture
def contained(pool, tmp_path):
    """Run hostile code; afterwards assert the four containment properties."""
    baseline = len(_sandbox_processes(pool))
    marker = Path("/tmp") / f"rk-hostile-{secrets.token_hex(4)}"

    def run(code: str, **options):
        res = pool.run(code.replace("MARKER", str(marker)), **options)
        assert isinstance(res, sandbox.ExecutionResult)
        return res

    yield run
    deadline = time.monotonic() + 5
    while len(_sandbox_processes(pool)) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_sandbox_processes(pool)) <= baseline, "a sandboxed process survived the task"
    assert not _stray_nobody_processes(), "a process of the sandbox uid escaped its worker"
    assert not marker.exists(), "the sandbox wrote to the host's /tmp"
    after = pool.run("print('still works')")
    assert after.ok and after.stdout == "still works\n"


def test_infinite_loop_times_out(contained):
    res = contained("while True:\n    pass", timeout=1)
    assert res.status is ExecStatus.TIMEOUT and res.elapsed < 5


def test_sleep_ignoring_sigterm_is_killed(contained):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    res = contained(code, timeout=1)
    assert res.status is ExecStatus.TIMEOUT


def test_fork_bomb_is_bounded(contained):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    res = contained(code, timeout=2, max_procs=32)
    assert res.status in (ExecStatus.TIMEOUT, ExecStatus.KILLED, ExecStatus.ERROR)


def test_setsid_double_fork_orphan_is_swept(contained, pool):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(30)\n"
        "        open('/tmp/orphan-was-here', 'w').write('x')\n"
        "    os._exit(0)\n"
        "print('parent done')"
    )
    res = contained(code)
    assert res.ok
    # the same worker runs the next task: nothing but the worker and the task itself
    probe = pool.run("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert probe.stdout.strip() == f"[1, {probe.stdout.strip()[4:-1]}]" and "," in probe.stdout
    assert pool.run("import os; print(os.path.exists('/tmp/orphan-was-here'))").stdout == "False\n"


def test_ten_gigabyte_allocation_hits_memory_limit(contained):
    res = contained("x = bytearray(10 * 1024**3)\nprint(len(x))", memory_mb=256)
    assert res.status is ExecStatus.MEMORY


def test_growing_allocation_hits_memory_limit(contained):
    res = contained("x = []\nwhile True:\n    x.append(bytearray(16 * 1024**2))", memory_mb=256, timeout=5)
    assert res.status in (ExecStatus.MEMORY, ExecStatus.KILLED)


@pytest.mark.parametrize("where", ["big.bin", "/tmp/big.bin", "/dev/shm/big.bin"])
def test_two_gigabyte_file_is_stopped(contained, pool, where):
    code = f"f = open({where!r}, 'wb')\nfor _ in range(2048):\n    f.write(b'x' * 1024**2)\nf.close()"
    res = contained(code, timeout=5)
    assert res.status is not ExecStatus.OK
    assert pool.run(f"import os; print(os.path.exists({where!r}))").stdout == "False\n"


def test_tcp_to_host_loopback_listener_fails(contained):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        res = contained(code)
        assert res.status is ExecStatus.ERROR and "connected" not in res.stdout
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_tcp_to_outside_address_fails_fast(contained):
    code = "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=20)\nprint('connected')"
    res = contained(code, timeout=30)
    assert res.status is ExecStatus.ERROR and "connected" not in res.stdout
    # no route at all: it fails at once with ENETUNREACH, not after the connect timeout
    assert "Network is unreachable" in res.stderr and res.elapsed < 10


def test_dns_lookup_fails(contained):
    res = contained("import socket\nprint(socket.getaddrinfo('example.com', 80))", timeout=10)
    assert res.status is ExecStatus.ERROR and "gaierror" in res.stderr


def test_host_unix_socket_is_unreachable(contained, tmp_path):
    path = f"/tmp/rk-hostile-{secrets.token_hex(4)}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    server.settimeout(0.5)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(b"\0rk-hostile-" + secrets.token_hex(4).encode())
    abstract.listen(1)
    name = abstract.getsockname()
    try:
        code = (
            "import socket\nok = 0\n"
            f"for addr in ({path!r}, {name!r}):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n        s.connect(addr); ok += 1\n    except OSError as e:\n        print(type(e).__name__)\n"
            "print('reached', ok)"
        )
        res = contained(code)
        assert "reached 0" in res.stdout
        for srv in (server, abstract):
            srv.settimeout(0.2)
            with pytest.raises(socket.timeout):
                srv.accept()
    finally:
        server.close()
        abstract.close()
        os.unlink(path)


def test_planted_secret_env_var_is_not_visible(monkeypatch):
    token = secrets.token_hex(8)
    monkeypatch.setenv("RK_PLANTED_SECRET", token)
    with sandbox.Pool(1, isolation="per_run") as fresh:  # a worker started after planting
        res = fresh.run(
            "import os\nprint(dict(os.environ))\n"
            "try:\n    print(open('/proc/1/environ').read())\nexcept OSError as e:\n    print(type(e).__name__)"
        )
    assert res.ok and token not in res.stdout and "RK_PLANTED_SECRET" not in res.stdout


def test_root_files_are_not_visible(contained):
    secret = Path("/root") / f"rk-hostile-{secrets.token_hex(4)}"
    if not os.access("/root", os.W_OK):
        pytest.skip("needs a writable /root to plant the file")
    secret.write_text("top secret")
    try:
        res = contained(f"print(open({str(secret)!r}).read())")
        assert res.status is ExecStatus.ERROR and "top secret" not in res.stdout
    finally:
        secret.unlink()


def test_proc_1_environ_is_the_sandbox_not_the_host(contained):
    res = contained(
        "for f in ('/proc/1/environ', '/proc/1/cmdline'):\n"
        "    try:\n        print(open(f, 'rb').read()[:2000])\n    except OSError as e:\n        print(type(e).__name__)"
    )
    assert res.ok
    environ, cmdline = res.stdout.splitlines()
    # PID 1 is the sandbox's own worker; its environment is empty or the allow-list
    assert environ == "PermissionError" or set(environ) <= set("b'PATHLANG=/usrlocalbin:C.UTF-8\\x00")
    assert "python" in cmdline or cmdline == "PermissionError"


def test_signals_to_the_worker_are_ignored(contained, pool):
    code = "import os, signal\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGSTOP, signal.SIGUSR1):\n    os.kill(1, s)"
    before = {w.proc.pid for w in pool._idle}
    res = contained(code)
    assert res.ok and {w.proc.pid for w in pool._idle} == before  # the same worker, not a recycled one


@pytest.mark.parametrize("target", ["os.getppid()", "0", "-1"])
def test_kill_targets_stay_inside(contained, target):
    parent_before = os.getppid()
    res = contained(f"import os, signal\nos.kill({target}, signal.SIGKILL)\nprint('alive')")
    # inside its PID namespace, -1 reaches nobody (ESRCH), 0 its own group, getppid() the
    # worker, which as PID 1 cannot be killed from inside
    assert res.status in (ExecStatus.OK, ExecStatus.KILLED, ExecStatus.ERROR)
    assert os.getppid() == parent_before  # our own parent was not hit either


def test_gigabyte_to_stdout_without_newline_is_capped(contained):
    code = "import sys\nchunk = 'x' * 65536\nfor _ in range(16384):  # 1 GiB, no newline\n    sys.stdout.write(chunk)"
    res = contained(code, max_output=1 << 16, timeout=10)
    assert res.status is ExecStatus.OUTPUT_LIMIT and res.truncated
    assert len(res.stdout) <= 1 << 16 and res.elapsed < 5


@pytest.mark.parametrize("path", ["/usr/rk-x", "/etc/rk-x", "/rk-x", "/root/rk-x", "/work/rk-x", "/proc/sys/kernel/hostname"])
def test_writes_outside_the_work_dir_fail(contained, path):
    res = contained(f"open({path!r}, 'w').write('x')\nprint('wrote')")
    assert res.status is ExecStatus.ERROR and "wrote" not in res.stdout
    if not path.startswith("/proc"):
        assert not os.path.exists(path)


def test_shell_and_subprocess_stay_inside(contained):
    code = (
        "import subprocess\n"
        "print(subprocess.run(['sh', '-c', 'id -u; ls /root 2>&1; echo x > MARKER'], capture_output=True, text=True).stdout)"
    )
    res = contained(code)
    assert res.ok and res.stdout.splitlines()[0] == str(NOBODY)


def test_thread_bomb_is_bounded(contained):
    code = (
        "import threading, time\nn = 0\n"
        "while True:\n"
        "    try:\n        threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); n += 1\n"
        "    except Exception:\n        print('stopped at', n); break"
    )
    res = contained(code, timeout=10, max_procs=64)
    assert res.status is not ExecStatus.TIMEOUT or "stopped" in res.stdout


def test_open_file_exhaustion_is_bounded(contained):
    code = "fs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\nexcept OSError as e:\n    print(len(fs), e.errno)"
    res = contained(code)
    assert res.ok and int(res.stdout.split()[0]) < 300


def test_segfault_via_ctypes_is_reported(contained):
    res = contained("import ctypes\nctypes.string_at(0)")
    assert res.status is ExecStatus.KILLED and res.signal == 11


def test_namespaces_cannot_be_created_inside(contained):
    res = contained("import subprocess\nprint(subprocess.run(['unshare', '-U', 'true']).returncode)")
    assert res.stdout.strip() not in ("0", "")  or res.status is ExecStatus.ERROR


@pytest.mark.parametrize("name, nr", [("ptrace", 101), ("keyctl", 250), ("bpf", 321), ("userfaultfd", 323),
                                      ("io_uring_setup", 425), ("unshare", 272), ("mount", 165)])  # fmt: skip
def test_risky_syscalls_are_refused(contained, name, nr):
    if os.uname().machine != "x86_64":
        pytest.skip("the seccomp filter is x86-64 only")
    code = (
        "import ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"r = libc.syscall({nr}, 0, 0, 0, 0, 0)\nprint(r, errno.errorcode.get(ctypes.get_errno()))"
    )
    res = contained(code)
    assert res.ok and res.stdout.split() == ["-1", "EPERM"], (name, res.stdout)


def test_foreign_syscall_abi_is_killed(contained):
    if os.uname().machine != "x86_64":
        pytest.skip("the seccomp filter is x86-64 only")
    res = contained("import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 39)\nprint('survived')")
    assert res.status is ExecStatus.KILLED and "survived" not in res.stdout


def test_a_task_that_kills_the_template_is_the_one_blamed(pool):
    # kill(-1) inside the sandbox reaches the worker's template. The template is reaped
    # only some time after the task ends, so the sweep once missed it now and then, and
    # the *next*, innocent task got the anomaly (and the worker was recycled after it).
    for _ in range(20):
        res = pool.run("import os, signal\nos.kill(-1, signal.SIGKILL)")
        assert res.ok
        assert not pool._idle, "the worker whose template the task killed was kept"
        pool.run("pass")
        kept = [w.proc.pid for w in pool._idle]
        assert pool.run("print('innocent')").stdout == "innocent\n"
        assert [w.proc.pid for w in pool._idle] == kept, "an innocent task's worker was recycled"
