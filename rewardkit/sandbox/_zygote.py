"""The worker that lives inside the sandbox: a warm interpreter that forks one child per task.

This file is not imported by rewardkit; its source is passed to ``python -I -S -c`` inside
the sandbox, so it uses the standard library only and must run on any Python >= 3.8.

Protocol (both directions): a 4-byte big-endian length, then a JSON object. The worker
first sends ``{"hello": ...}``, then answers each request with ``{"started": true}`` once
the task's child is forked (a worker that dies before that never ran the task: the host
re-sends it elsewhere) and then with one result. It never
unpickles anything and the host never unpickles what it sends: a compromised worker can
lie about a result but cannot run code in the host.

Per task the worker makes a fresh work dir, forks, and the child starts a new session,
takes its rlimits, closes every inherited descriptor, clears the environment and runs the
code in a fresh ``__main__``. The worker reads the child's output with caps, enforces the
deadline with SIGKILL, then sweeps: every other process in the sandbox is killed and
reaped (``kill(-1)`` when the worker is PID 1 of its own PID namespace, else a walk over
the processes reparented to it as a subreaper) and every file the task left is removed.
Anything it cannot clean is an "anomaly": the worker reports it and exits, and the host
starts a fresh one.

The template: before it reads any request, the worker forks a second warm interpreter
that only ever receives file descriptors and limits, never a task's code, stdin or
secret, so its memory holds nothing of any task. A task that asks for a ``candidate``
(CodeTests' judge) gets a process forked from it (then orphaned to the worker, which
reaps and sweeps it like any other) running the given public program on two pipes whose
other ends the task receives as descriptors 5 and 6. The sweep spares the template; a
template that does not answer before a task starts makes the worker exit, so the host
re-sends the task to a fresh worker.
"""

import base64
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback  # imported here so children do not pay for it
import types

MAXFD = 4096
PRELOAD = ("re", "typing", "collections", "functools", "itertools", "math", "heapq", "bisect", "string",
           "enum", "random", "copy", "datetime", "decimal", "fractions", "statistics", "dataclasses", "operator")
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option, value):
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def _send(fd, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _recv(fd):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def _safe_name(name):
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


# --------------------------------------------------------------------------- the child
def _child(req, workdir, fds, pid1):
    """Runs in the forked child. Never returns."""
    try:
        os.setsid()
        if not pid1:  # as PID 1 the worker's death already kills the namespace
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) if fd is not None else None for fd in fds]
        for target, fd in enumerate(high):
            if fd is not None:
                os.dup2(fd, target, inheritable=True)
            else:
                try:
                    os.close(target)
                except OSError:
                    pass
        os.closerange(len(high), MAXFD)
        for sig in (signal.SIGPIPE, signal.SIGINT):  # the worker ignores these; the task must not
            signal.signal(sig, signal.SIG_DFL)
        mem = int(req["memory_mb"]) << 20
        cpu = int(req["timeout"]) + 1
        limits = [
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_CPU, cpu),  # soft == hard: SIGKILL, no SIGXCPU to catch
            (resource.RLIMIT_FSIZE, int(req["max_file_mb"]) << 20),
            (resource.RLIMIT_NOFILE, int(req["max_open_files"])),
            (resource.RLIMIT_CORE, 0),
        ]
        if req.get("max_procs"):
            limits.append((resource.RLIMIT_NPROC, int(req["max_procs"])))
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        try:  # the OOM killer picks the task, not the worker (raw os calls: they are cheap)
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            os.write(fd, b"1000")
            os.close(fd)
        except OSError:
            pass
        os.chdir(workdir)
        os.environ.update(req.get("env") or {})  # the worker's own environment was emptied
        os.environ["HOME"] = workdir
        os.environ["TMPDIR"] = os.path.dirname(workdir)  # the sandbox's /tmp, or the unsafe base
    except BaseException:
        os._exit(126)
    status = 0
    try:
        sys.argv = ["main.py"]
        sys.dont_write_bytecode = True
        sys.path.insert(0, workdir)
        main = types.ModuleType("__main__")
        main.__file__ = os.path.join(workdir, "main.py")
        sys.modules["__main__"] = main
        code = req.get("compiled") or compile(req["code"], "main.py", "exec")
        exec(code, main.__dict__)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:
            try:
                sys.stderr.write(str(exc.code) + "\n")
            except BaseException:
                pass
            status = 1
    except MemoryError:
        try:
            os.write(2, b"\nMemoryError\n")
        except BaseException:
            pass
        status = 1
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status & 0xFF if isinstance(status, int) else 1)


# --------------------------------------------------------------------------- the template
def _send_fds(sock, data, fds):
    import array

    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def _recv_fds(sock, maxfds=8):
    import array

    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(1 << 20, socket.CMSG_LEN(maxfds * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _template(sock):
    """The template's loop (never returns): fork one candidate per request."""
    compiled = {}
    while True:
        try:
            msg, fds = _recv_fds(sock)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        if msg == b"ping":  # the worker's check, after each task, that we are alive
            for fd in fds:
                os.close(fd)
            sock.send(b"pong")
            continue
        try:
            req = json.loads(msg)
            req["compiled"] = _compiled(compiled, req["code"])
            pid = os.fork()
            if pid == 0:
                try:  # whatever happens here, this middle process never returns to the loop
                    if os.fork() == 0:  # orphaned at once: the worker reaps and sweeps it
                        _child(req, req["workdir"], fds, True)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            answer = b"ok"
        except Exception:
            answer = b"fail"
        for fd in fds:
            os.close(fd)
        sock.send(answer)


def _compiled(cache, code):
    """``code`` compiled once per process: only for constant, trusted programs (harnesses)."""
    obj = cache.get(code)
    if obj is None:
        obj = compile(code, "main.py", "exec")
        if len(cache) < 8:
            cache[code] = obj
    return obj


def _start_template(close):
    """Fork the template now, while this process holds no task. Returns (pid, socket)."""
    try:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
    except OSError:
        return None, None
    if pid == 0:
        try:
            mine.close()
            for fd in close:
                os.close(fd)
            _template(theirs)
        finally:
            os._exit(0)
    theirs.close()
    return pid, mine


# --------------------------------------------------------------------------- the worker
class Worker:
    def __init__(self, base, out=None, template=(None, None)):
        self.base = base
        self.out = out  # where the "started" acknowledgement goes
        self.pid1 = os.getpid() == 1
        self.count = 0
        self.template, self.template_sock = template
        self.compiled = {}

    def _candidate(self, req, workdir, out_w, err_w):
        """Fork a candidate from the template; (task's write end, task's read end).

        The worker exits (before "started": the host re-sends the task) when the template
        does not answer, so one task cannot spoil the next one's candidate.
        """
        sock = self.template_sock
        try:
            if sock is None:
                raise OSError("no template")
            sock.settimeout(2.0)
            req_r, req_w = os.pipe()
            rsp_r, rsp_w = os.pipe()
            devnull = os.open("/dev/null", os.O_RDONLY)
            spec = {k: req[k] for k in ("memory_mb", "timeout", "max_file_mb", "max_open_files", "max_procs", "env")}
            spec.update(code=req["candidate"], workdir=workdir)
            _send_fds(sock, json.dumps(spec).encode(), [devnull, out_w, err_w, req_r, rsp_w])
            for fd in (devnull, req_r, rsp_w):
                os.close(fd)
            if sock.recv(16) != b"ok":
                raise OSError("template fork")
        except OSError:
            os._exit(3)
        return req_w, rsp_r

    def run(self, req):
        self.count += 1
        if req.get("cache_code"):  # a constant harness program: compile it once per worker
            req["compiled"] = _compiled(self.compiled, req["code"])
        workdir = os.path.join(self.base, "run%d" % self.count)
        os.mkdir(workdir, 0o700)
        for name, data in (req.get("files") or {}).items():
            if not _safe_name(name):
                return {"status": "error", "stderr": _b64(b"bad file name: %r" % name.encode())}
            path = os.path.join(workdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
        # A program that carries a result channel may embed secrets (the harness's
        # tokens): its source is then never written where it could read it back.
        if not req.get("channel") and "main.py" not in (req.get("files") or {}):
            with open(os.path.join(workdir, "main.py"), "w") as f:  # for readable tracebacks
                f.write(req["code"])
        stdin_fd = self._stdin(req.get("stdin"))
        secret_fd = None
        if req.get("secret") is not None:  # fd 4; kept out of the source and out of memory we keep
            secret_fd, secret_w = os.pipe()
            os.write(secret_w, req.pop("secret").encode())
            os.close(secret_w)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        chan_r, chan_w = os.pipe() if req.get("channel") else (None, None)
        cand_w, cand_r = self._candidate(req, workdir, out_w, err_w) if req.get("candidate") else (None, None)
        start = time.monotonic()
        gc.freeze()  # the child's collections then leave the worker's objects (and pages) alone
        pid = os.fork()
        if pid == 0:
            _child(req, workdir, [stdin_fd, out_w, err_w, chan_w, secret_fd, cand_w, cand_r], self.pid1)
        for fd in (stdin_fd, out_w, err_w, chan_w, secret_fd, cand_w, cand_r):
            if fd is not None:
                os.close(fd)
        if self.out is not None:
            _send(self.out, {"started": True})
        reply = self._watch(pid, req, start, out_r, err_r, chan_r)
        anomaly = self._sweep(pid)
        for fd in (out_r, err_r, chan_r):
            if fd is not None:
                os.close(fd)
        anomaly = anomaly or self._clean_files()
        if anomaly:
            reply["anomaly"] = anomaly
        return reply

    def _stdin(self, data):
        if data is None:
            return os.open("/dev/null", os.O_RDONLY)
        path = os.path.join(self.base, ".stdin%d" % self.count)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.unlink(path)
        payload = base64.b64decode(data)
        while payload:
            payload = payload[os.write(fd, payload):]
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def _watch(self, pid, req, start, out_r, err_r, chan_r):
        caps = {out_r: int(req["max_output"]), err_r: int(req["max_output"])}
        if chan_r is not None:
            caps[chan_r] = int(req.get("max_channel") or 1 << 16)
        bufs = {fd: [] for fd in caps}
        sizes = dict.fromkeys(caps, 0)
        deadline = start + float(req["timeout"])
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        poller = select.poll()
        for fd in caps:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        status, waitstatus, killed = None, None, False
        open_fds = set(caps)
        while True:
            if waitstatus is None:
                done, ws = os.waitpid(pid, os.WNOHANG)
                if done:
                    waitstatus = ws
            if waitstatus is not None and not open_fds:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 and waitstatus is None:
                status, killed = "timeout", True
                break
            if waitstatus is not None:  # exited; grandchildren may hold the pipes: drain briefly
                remaining = min(max(remaining, 0), 0.05)
                if remaining <= 0:
                    break
            wait_ms = max(1, int(remaining * 1000)) if pidfd is not None else min(10, int(remaining * 1000) + 1)
            events = poller.poll(wait_ms)
            if waitstatus is not None and not events:
                break
            for fd, _ in events:
                if fd == pidfd:
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    pidfd = None
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    continue
                room = caps[fd] - sizes[fd]
                bufs[fd].append(chunk[:room])
                sizes[fd] += len(chunk)
                if sizes[fd] > caps[fd] and fd != chan_r:
                    status, killed = "output_limit", True
            if killed:
                break
        if pidfd is not None:
            os.close(pidfd)
        if killed:
            _kill_tree(pid)
        elapsed = time.monotonic() - start
        if waitstatus is None:
            _, waitstatus = os.waitpid(pid, 0)
        reply = {
            "status": status,
            "exit_code": os.WEXITSTATUS(waitstatus) if os.WIFEXITED(waitstatus) else None,
            "signal": os.WTERMSIG(waitstatus) if os.WIFSIGNALED(waitstatus) else None,
            "elapsed": elapsed,
            "stdout": _b64(b"".join(bufs[out_r])),
            "stderr": _b64(b"".join(bufs[err_r])),
            "stdout_bytes": sizes[out_r],
            "stderr_bytes": sizes[err_r],
        }
        if chan_r is not None:
            reply["channel"] = _b64(b"".join(bufs[chan_r]))
        return reply

    def _sweep(self, pid):
        """Kill and reap every process left in the sandbox but the template. Returns an anomaly or None."""
        deadline = time.monotonic() + 3.0
        spare = {os.getpid(), self.template}
        while time.monotonic() < deadline:
            if self.pid1 and self.template is None:
                try:
                    os.kill(-1, signal.SIGKILL)  # every process in this PID namespace but us
                except ProcessLookupError:
                    pass
            elif self.pid1:
                for other in _pids():
                    if other not in spare:
                        try:
                            os.kill(other, signal.SIGKILL)
                        except OSError:
                            pass
            else:
                _kill_tree(pid)
                for child in _children():
                    if child not in spare:
                        _kill_tree(child)
            try:
                while True:
                    done, _ = os.waitpid(-1, os.WNOHANG)
                    if done == 0:
                        break
                    if done == self.template:
                        return "the template died"
            except ChildProcessError:
                if self.template is None and (self.pid1 or not _children()):
                    return None
            if self.template is not None:
                left = set(_pids()) - spare if self.pid1 else set(_children()) - spare
                if not left:
                    return None if self._template_answers() else "the template died"
            time.sleep(0.001)
        return "processes survived the sweep"

    def _template_answers(self):
        """Whether the template still answers. A task may have killed it (``kill(-1)`` reaches
        it): its SIGKILL is pending the moment kill() returns, but it is reaped only some time
        later, so a waitpid() here could miss it and the next task would get the blame. A
        killed process never answers again, so a ping decides at once."""
        sock = self.template_sock
        try:
            sock.settimeout(2.0)
            sock.send(b"ping")
            return sock.recv(16) == b"pong"
        except OSError:
            return False

    def _clean_files(self):
        problems = []
        for root in (self.base, "/dev/shm", "/dev/mqueue") if self.pid1 else (self.base,):
            try:
                names = os.listdir(root)
            except OSError:
                continue
            for name in names:
                if not _remove(os.path.join(root, name)):
                    problems.append(name)
        if self.pid1:
            for kind in ("shm", "sem", "msg"):  # System V objects outlive the task
                try:
                    with open("/proc/sysvipc/" + kind) as f:
                        if len(f.read().splitlines()) > 1:
                            problems.append("sysv " + kind)
                except OSError:
                    pass
        return ("leftovers: " + ", ".join(problems[:5])) if problems else None


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _kill_tree(pid):
    if pid <= 1:
        return
    for target in (-pid, pid):  # the child's session/process group, then the child
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _children():
    me = str(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.append(int(name))
    return found


def _remove(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    try:
        if stat.S_ISDIR(st.st_mode):
            os.chmod(path, 0o700)
            for name in os.listdir(path):
                _remove(os.path.join(path, name))
            os.rmdir(path)
        else:
            os.unlink(path)
        return True
    except OSError:
        return False


def main():
    debug = os.environ.get("RK_SANDBOX_DEBUG") == "1"
    os.environ.clear()  # once here, so each child only adds its allow-list
    rd, wr = os.dup(0), os.dup(1)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    if not debug:
        os.dup2(devnull, 2)
    os.close(devnull)
    _prctl(PR_SET_DUMPABLE, 0)  # no ptrace or /proc/<pid>/mem from the tasks
    if os.getpid() != 1:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # As PID 1 only signals we handle can reach us from inside; Python handles SIGINT.
    for sig in (signal.SIGPIPE, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    base = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    if "--preload" in sys.argv[2:]:  # forked children then start with these already imported
        for name in PRELOAD:
            try:
                __import__(name)
            except Exception:
                pass
    worker = Worker(base, wr, _start_template((rd, wr)))
    _send(wr, {"hello": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
    while True:
        req = _recv(rd)
        if req is None:
            return
        try:
            reply = worker.run(req)
        except Exception as exc:  # a bug or a hostile leftover: report and let the host recycle us
            reply = {"status": "error", "anomaly": "worker: %s: %s" % (type(exc).__name__, exc)}
            worker._sweep(0)
        _send(wr, reply)
        if reply.get("anomaly"):
            return


if __name__ == "__main__":
    main()
