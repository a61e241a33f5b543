"""Assert-style tests with the tests and the verdict outside the candidate's interpreter.

One sandboxed run holds two processes:

- the **judge** (the run's own program, trusted): it holds the tests, the dataset's
  helpers and the per-test tokens; it runs every test and, only when a test passed,
  writes that test's token to file descriptor 3, the run's result channel;
- the **candidate**: a process the sandbox worker forks from its pristine template (a
  warm interpreter forked before the worker read any request, so nothing of any task's
  code, stdin or secret is in its memory) that loads the model's code and answers calls.
  It holds neither the tests, the tokens nor the result channel.

The judge's tests see the candidate's functions as proxies. A call crosses as data: the
arguments go over a pipe as Python literals the judge writes; the candidate runs the
function and answers in tagged JSON, which the judge decodes: a value (None, bool, int,
float, complex, str, bytes, tuple, list, set, frozenset, dict, nested), an exception (type
name and message) or a failure. The judge never unpickles or evaluates what the candidate
sends; it decodes data. So the candidate can only return values, raise, or fail: it
cannot see or change the tests, the assertions, the builtins they use or the verdict. Instances of classes the
candidate defines (constructed by calling the class) come back as opaque handles that
compare by identity, have no truth value, and whose public attributes and methods cross
the same way. Lists, dicts and sets passed as arguments are written back after the call,
so in-place mutation behaves as in one interpreter; the candidate's module state lives
as long as the run, across tests.

What cannot cross: an argument that is not plain data, a handle or a candidate proxy
(a lambda, a generator, an object of the test's own class) fails its test with the
status "cross" (the dataset's limit, not the model's fault). With ``plain`` (the
default), a function that returns anything but plain data fails the test.

The judge is not dumpable (no /proc/<pid>/mem, fd, environ or ``process_vm_readv`` for
a process of the same uid without CAP_SYS_PTRACE, which sandboxed code lacks), never
imports from the work dir the candidate can write (it drops that from ``sys.path`` and
moves to /), and reads nothing the candidate wrote except the pipe. Helpers a test needs
(HumanEval's ``poly``, ``encode_cyclic``, ``encode_shift``; MBPP's ``test_setup_code``)
come from the dataset's text and run in the judge; the candidate's own definitions of
those names are never seen by the tests, nor are candidate names that shadow a builtin.
"""

from __future__ import annotations

import ast
import json
import secrets
from typing import Any

from .._component import prompt_text

# Both programs use the standard library only and run on Python >= 3.8. Messages are
# framed as b"<length>\n<payload>". Judge -> candidate payloads are Python literals that
# the judge writes (the candidate evaluates them: it is the untrusted side, and the
# judge's text is data it trusts). Candidate -> judge payloads are JSON that the judge
# decodes into exact builtin types; a JSON object there is always a tagged value
# {"$": kind, "v": ...}. The candidate imports nothing beyond what the interpreter has
# at start (no json, no struct): its start-up is most of the cost of a run.

# The candidate's side: load the solution, then answer calls until the pipe closes.
_CANDIDATE = r'''
import os as _os, sys as _sys

_buf = bytearray()
_objects, _ids = {}, {}
_module = type(_sys)("solution")
_ESC = {i: "\\u%04x" % i for i in range(32)}
_ESC.update({34: '\\"', 92: "\\\\"})
_ESC.update({i: "\\u%04x" % i for i in range(0xD800, 0xE000)})


class _NotPlain(Exception):
    pass


def _recv():
    while b"\n" not in _buf:
        chunk = _os.read(3, 1 << 20)
        if not chunk:
            raise EOFError
        _buf.extend(chunk)
    head, _, _ = bytes(_buf[:24]).partition(b"\n")
    size = int(head)
    start = len(head) + 1
    while len(_buf) < start + size:
        chunk = _os.read(3, 1 << 20)
        if not chunk:
            raise EOFError
        _buf.extend(chunk)
    body = bytes(_buf[start:start + size])
    del _buf[:start + size]
    return eval(body.decode("utf-8"), {"__builtins__": {}, "H": _objects.__getitem__, "N": _named,
                                       "float": float, "set": set, "frozenset": frozenset, "complex": complex})


def _send(text):
    data = text.encode("utf-8")
    data = b"%d\n" % len(data) + data
    while data:
        data = data[_os.write(4, data):]


def _named(name):
    return _module.__dict__[name]


def _keep(v):
    key = id(v)
    if key not in _ids:
        _ids[key] = len(_objects) + 1
        _objects[_ids[key]] = v
    return '{"$":"h","v":%d,"t":%s}' % (_ids[key], _str(type(v).__name__[:60]))


def _refuse(v):
    raise _NotPlain("a %s object" % type(v).__name__[:60])


def _str(v):
    return '"' + str.translate(str.__str__(v), _ESC) + '"'


def _enc(v, handle, depth=0):
    if depth > 400:
        raise _NotPlain("a value nested deeper than 400")
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        v = int.__index__(v)
        return str(v) if -(1 << 62) < v < (1 << 62) else '{"$":"i","v":"%s"}' % format(v, "x")
    if isinstance(v, float):
        r = float.__repr__(v)
        return {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(r, r)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, complex):
        return '{"$":"c","v":[%s,%s]}' % (_enc(v.real, handle), _enc(v.imag, handle))
    if isinstance(v, (bytes, bytearray)):
        return '{"$":"%s","v":"%s"}' % ("b" if isinstance(v, bytes) else "ba", bytes(v).hex())
    d = depth + 1
    if isinstance(v, list):
        return "[" + ",".join([_enc(x, handle, d) for x in v]) + "]"
    if isinstance(v, (tuple, set, frozenset)):
        tag = "t" if isinstance(v, tuple) else "f" if isinstance(v, frozenset) else "s"
        return '{"$":"%s","v":[%s]}' % (tag, ",".join([_enc(x, handle, d) for x in v]))
    if isinstance(v, dict):
        items = ",".join(["[%s,%s]" % (_enc(k, handle, d), _enc(x, handle, d)) for k, x in v.items()])
        return '{"$":"d","v":[%s]}' % items
    return handle(v)


def _kind(value):
    if isinstance(value, type):
        return '["class"]'
    if isinstance(value, type(_sys)):
        return '["module",%s]' % _str(str(getattr(value, "__name__", ""))[:200])
    if callable(value):
        return '["function"]'
    try:
        return '["value",%s]' % _enc(value, _refuse)
    except Exception:
        return '["other"]'


def _serve():
    source, entry = _recv()
    _sys.modules["solution"] = _module
    try:
        exec(compile(source, "solution.py", "exec"), _module.__dict__)
    except BaseException as exc:
        _send('{"ok":0,"error":%s}' % _str(("%s: %s" % (type(exc).__name__, exc))[:300]))
        return
    names = ["%s:%s" % (_str(k), _kind(v)) for k, v in list(_module.__dict__.items())
             if isinstance(k, str) and not (k.startswith("__") and k.endswith("__")) and entry in (None, k)]
    _send('{"ok":1,"names":{%s}}' % ",".join(names))
    while True:
        try:
            req = _recv()
        except EOFError:
            return
        try:
            target = req["target"]
            if req["op"] == "getattr":
                reply = '{"ok":1,"v":%s}' % _enc(getattr(target, req["name"]), _keep)
            else:
                args, kwargs = req["args"], req["kwargs"]
                result = target(*args, **kwargs)
                wb = []
                for key in req["writeback"]:
                    try:
                        wb.append("%s:%s" % (_str(str(key)), _enc(args[key] if isinstance(key, int) else kwargs[key], _refuse)))
                    except Exception:
                        pass
                reply = '{"ok":1,"v":%s,"wb":{%s}}' % (_enc(result, _keep), ",".join(wb))
        except _NotPlain as exc:
            reply = '{"ok":0,"cross":%s}' % _str(str(exc)[:200])
        except BaseException as exc:
            try:
                reply = '{"ok":0,"exc":%s,"msg":%s}' % (_str(type(exc).__name__[:60]), _str(str(exc)[:500]))
            except BaseException:
                reply = '{"ok":0,"exc":"Exception","msg":""}'
        _send(reply)


_serve()
'''

# The judge: the run's program, the same for every run (each worker compiles it once).
# Its input, the JSON payload (source, tests, helpers, entry point), comes on stdin: an
# unlinked file only this process holds. The tokens come on file descriptor 4.
_JUDGE = r'''
import json as _json
import os as _os


def _judge(payload):
    import builtins, ctypes, os, sys
    tokens = os.read(4, 1 << 20).decode().split()
    os.close(4)
    tests = payload["tests"]

    def _report(i, verdict, why=""):
        os.write(3, ("%s %s %s\n" % (tokens[i], verdict, " ".join(str(why).split())[:240])).encode())

    def _fail_all(why):
        for i in range(len(tests)):
            _report(i, "fail", why)

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no /proc/<pid>/mem, fd, environ or ptrace by same-uid code
    if libc.prctl(3, 0, 0, 0, 0) != 0:  # PR_GET_DUMPABLE
        return _fail_all("the judge could not make itself non-dumpable")
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if p and os.path.isabs(p) and not p.startswith(here)]
    sys.path_importer_cache.clear()
    try:  # the worker started the candidate from its pristine template: we hold 5 and 6
        os.fstat(5), os.fstat(6)
        req_w, rsp_r = 5, 6
    except OSError:  # run without make_task(candidate=...): never start one ourselves
        return _fail_all("no candidate process (the task must be made with candidate=CANDIDATE)")
    os.chdir("/")  # nothing the candidate writes is on this process's import path or cwd
    inbox = bytearray()
    state = {"gone": None, "cross": None}

    def _send(text):
        data = text.encode("utf-8")
        data = b"%d\n" % len(data) + data
        while data:
            data = data[os.write(req_w, data):]

    def _recv():
        while b"\n" not in inbox[:24]:
            if len(inbox) >= 24:
                raise ValueError("malformed frame")
            chunk = os.read(rsp_r, 1 << 20)
            if not chunk:
                raise EOFError("the candidate closed its pipe")
            inbox.extend(chunk)
        head = bytes(inbox[:24]).partition(b"\n")[0]
        size, start = int(head), len(head) + 1
        if not 0 <= size <= 1 << 25:
            raise ValueError("message of %d bytes" % size)
        while len(inbox) < start + size:
            chunk = os.read(rsp_r, 1 << 20)
            if not chunk:
                raise EOFError("the candidate closed its pipe")
            inbox.extend(chunk)
        body = bytes(inbox[start:start + size])
        del inbox[:start + size]
        return _json.loads(body)

    class Uncrossable(BaseException):
        """An argument that cannot cross (a test's ``except Exception`` does not swallow it)."""

    class Remote:
        """An object that lives in the candidate: identity equality, no truth value."""

        __slots__ = ("_rk_ref", "_rk_type")

        def __init__(self, ref, type_name):
            object.__setattr__(self, "_rk_ref", ref)
            object.__setattr__(self, "_rk_type", type_name)

        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            return _ask("{'op': 'getattr', 'target': H(%d), 'name': %r}" % (self._rk_ref, str(name)), True)[0]

        def __call__(self, *args, **kwargs):
            return _call("H(%d)" % self._rk_ref, args, kwargs, False)

        def __bool__(self):
            raise TypeError("the candidate's %s object has no truth value here" % self._rk_type)

        def __repr__(self):
            return "<the candidate's %s object>" % self._rk_type

    proxies, remotes = {}, {}

    def _lit(v, depth=0):
        """A Python literal of plain data, handles and proxies, for the candidate to read."""
        if depth > 150:
            raise Uncrossable("an argument nested deeper than 150")
        t, d = type(v), depth + 1
        if v is None or t is bool:
            return repr(v)
        if isinstance(v, int):
            return hex(int(v))
        if isinstance(v, float):
            v = float(v)
            return "float(%r)" % repr(v) if v != v or v in (float("inf"), float("-inf")) else repr(v)
        if isinstance(v, complex):
            return "complex(%s, %s)" % (_lit(v.real), _lit(v.imag))
        if isinstance(v, str):
            return str.__repr__(str.__str__(v))
        if isinstance(v, bytes):
            return bytes.__repr__(bytes(v))
        if isinstance(v, bytearray):
            return "bytearray(%s)" % bytes.__repr__(bytes(v))
        if t is Remote:
            return "H(%d)" % v._rk_ref
        if isinstance(v, list):
            return "[" + ", ".join([_lit(x, d) for x in v]) + "]"
        if isinstance(v, tuple):
            return "(" + "".join([_lit(x, d) + ", " for x in v]) + ")"
        if isinstance(v, (set, frozenset)):
            return ("frozenset" if isinstance(v, frozenset) else "set") + "([" + ", ".join([_lit(x, d) for x in v]) + "])"
        if isinstance(v, dict):
            return "{" + ", ".join(["%s: %s" % (_lit(k, d), _lit(x, d)) for k, x in v.items()]) + "}"
        if id(v) in proxies:
            return "N(%r)" % proxies[id(v)]
        why = "a %s argument cannot cross to the candidate's sandbox" % t.__name__
        state["cross"] = why
        raise Uncrossable(why)

    def _dec(v, depth=0):
        if depth > 400:
            raise ValueError("nested deeper than 400")
        t = type(v)
        if v is None or t is bool or t is int or t is float or t is str:
            return v
        if t is list:
            return [_dec(x, depth + 1) for x in v]
        if t is not dict:
            raise ValueError("malformed value")
        tag, body = v.get("$"), v.get("v")
        if tag == "i" and type(body) is str and len(body) < (1 << 24):
            return int(body, 16)
        if tag == "c" and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
            return complex(body[0], body[1])
        if tag in ("b", "ba") and type(body) is str:
            return bytes.fromhex(body) if tag == "b" else bytearray.fromhex(body)
        if tag in ("t", "s", "f") and type(body) is list:
            items = [_dec(x, depth + 1) for x in body]
            return tuple(items) if tag == "t" else set(items) if tag == "s" else frozenset(items)
        if tag == "d" and type(body) is list:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed dict item")
                out[_dec(pair[0], depth + 1)] = _dec(pair[1], depth + 1)
            return out
        if tag == "h" and type(body) is int:  # one Remote per object, so identity holds here too
            return remotes.setdefault(body, Remote(body, str(v.get("t"))[:60]))
        raise ValueError("malformed value")

    def _first_remote(value):
        if type(value) is Remote:
            return value
        items = value if type(value) in (list, tuple, set, frozenset) else (
            [x for kv in value.items() for x in kv] if type(value) is dict else ())
        for item in items:
            found = _first_remote(item)
            if found is not None:
                return found
        return None

    def _ask(request, handles_ok):
        if state["gone"]:
            raise RuntimeError(state["gone"])
        try:
            _send(request)
            reply = _recv()
        except BaseException as exc:
            state["gone"] = "the candidate stopped answering (%s)" % type(exc).__name__
            raise RuntimeError(state["gone"])
        if type(reply) is not dict:
            raise RuntimeError("the candidate sent a malformed reply")
        if reply.get("ok") == 1:
            try:
                value = _dec(reply.get("v"))
            except (ValueError, TypeError, RecursionError, MemoryError) as exc:
                raise RuntimeError("the candidate sent a malformed value (%s)" % type(exc).__name__)
            remote = None if handles_ok or not payload["plain"] else _first_remote(value)
            if remote is not None:
                raise TypeError("the candidate returned a %s object, not plain data" % remote._rk_type)
            return value, reply.get("wb") if type(reply.get("wb")) is dict else {}
        if "cross" in reply:
            raise TypeError("the candidate returned %s, which cannot cross" % str(reply["cross"])[:200])
        cls = getattr(builtins, str(reply.get("exc")), None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            cls = RuntimeError
        raise cls("the candidate raised %s: %s" % (str(reply.get("exc"))[:60], str(reply.get("msg"))[:300]))

    def _call(target, args, kwargs, is_class):
        keys = [i for i, a in enumerate(args) if type(a) in (list, dict, set)]
        keys += [k for k, a in kwargs.items() if type(a) in (list, dict, set)]
        request = "{'op': 'call', 'target': %s, 'args': %s, 'kwargs': %s, 'writeback': %r}" % (
            target, _lit(list(args)), _lit({str(k): x for k, x in kwargs.items()}), keys)
        value, wb = _ask(request, is_class)
        for key in keys:
            try:
                new = _dec(wb[str(key)])
            except (KeyError, ValueError, TypeError, RecursionError):
                continue
            old = args[key] if isinstance(key, int) else kwargs[key]
            if type(old) is list and type(new) is list:
                old[:] = new
            elif type(old) in (dict, set) and type(new) is type(old):
                old.clear()
                old.update(new)
        return value

    def _proxy(name, is_class):
        def proxy(*args, **kwargs):
            return _call("N(%r)" % name, args, kwargs, is_class)
        proxy.__name__ = proxy.__qualname__ = name
        proxies[id(proxy)] = name
        return proxy

    try:
        _send(repr((payload["source"], payload["entry"])))  # with an entry point, only its name comes back
        loaded = _recv()
    except BaseException as exc:
        return _fail_all("the candidate did not load (%s)" % type(exc).__name__)
    if type(loaded) is not dict or loaded.get("ok") != 1 or type(loaded.get("names")) is not dict:
        why = loaded.get("error") if type(loaded) is dict else None
        return _fail_all("solution failed: %s" % str(why or "malformed reply")[:300])
    base = {"__builtins__": builtins, "__name__": "tests"}
    for source in payload["helpers"]:
        try:
            exec(compile(source, "helpers.py", "exec"), base)
        except BaseException as exc:
            sys.stderr.write("helpers failed: %s: %s\n" % (type(exc).__name__, exc))
    trusted = set(base) | set(dir(builtins))
    names, entry = loaded["names"], payload["entry"]
    exposed = [entry] if entry is not None else [n for n in names if type(n) is str and n not in trusted]
    for name in exposed:
        kind = names.get(name)
        if type(kind) is not list or not kind:
            continue
        if kind[0] in ("function", "class"):
            base[name] = _proxy(name, kind[0] == "class")
        elif entry is None and kind[0] == "module" and len(kind) > 1 and kind[1] in sys.modules:
            base[name] = sys.modules[kind[1]]  # the judge's own copy of a module it already has
        elif entry is None and kind[0] == "value" and len(kind) > 1:
            try:
                base[name] = _dec(kind[1])
            except (ValueError, TypeError, RecursionError):
                pass
    if entry is not None and entry not in base:
        return _fail_all("the solution does not define %s()" % entry)
    for i, test in enumerate(tests):
        state["cross"] = None
        scope = dict(base)
        try:
            exec(compile(test, "test_%d.py" % i, "exec"), scope)
            if entry is not None:
                scope["check"](base[entry])
        except BaseException as exc:
            if state["cross"] or isinstance(exc, Uncrossable):
                _report(i, "cross", state["cross"] or exc)
            else:
                _report(i, "fail", "%s: %s" % (type(exc).__name__, exc))
            continue
        _report(i, "cross", state["cross"]) if state["cross"] else _report(i, "pass")
    os.close(req_w)


def _stdin():
    parts = []
    while True:
        chunk = _os.read(0, 1 << 20)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


_judge(_json.loads(_stdin()))
'''


CANDIDATE = _CANDIDATE  # the candidate's program, for ``make_task(candidate=...)``


def build_driver(
    source: str, tests: list[str], entry_point: str | None, plain: bool, helpers: list[str] | None = None
) -> tuple[str, str, list[str]]:
    """(the judge's program, its stdin, one fresh token per test).

    Run the program with that stdin, the tokens as the run's ``secret`` and
    ``candidate=CANDIDATE`` (see :func:`rewardkit.verifiers.code.CodeTests`).
    """
    tokens = [secrets.token_hex(16) for _ in tests]
    payload = {
        "source": source,
        "tests": list(tests),
        "entry": entry_point,
        "plain": bool(plain),
        "helpers": list(helpers or []),
    }
    return _JUDGE, json.dumps(payload), tokens


def read_verdicts(channel: bytes | None, tokens: list[str]) -> list[tuple[str, str]]:
    """Per test ``(verdict, reason)``: "pass", "fail", "cross" or "missing" (no report)."""
    found: dict[str, tuple[str, str]] = {}
    for line in (channel or b"").decode("utf-8", "replace").splitlines():
        token, _, rest = line.partition(" ")
        verdict, _, why = rest.partition(" ")
        if token not in found and verdict in ("pass", "fail", "cross"):
            found[token] = (verdict, why)
    return [found.get(tok, ("missing", "")) for tok in tokens]


_HELPER_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)


def prompt_helpers(prompt: Any, entry_point: str | None) -> str | None:
    """The definitions a code prompt gives (HumanEval's ``poly``), minus the entry point.

    ``prompt`` is the row's prompt: text, or chat messages (their user turns). The text
    itself, or else its fenced code blocks, must parse as Python; only top-level
    definitions, imports and assignments are kept. None when there is nothing to keep.
    """
    text = prompt_text(prompt, ("user",))
    if not text or len(text) > 200_000:
        return None
    pieces = [text]
    if "```" in text:
        pieces += [block.split("\n", 1)[1] if "\n" in block else "" for block in text.split("```")[1::2]]
    for piece in pieces:
        try:
            tree = ast.parse(piece)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        keep = [
            node for node in tree.body
            if isinstance(node, _HELPER_NODES)
            and not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == entry_point)
        ]  # fmt: skip
        if keep:
            try:
                return ast.unparse(ast.Module(body=keep, type_ignores=[]))
            except (ValueError, RecursionError):
                return None
    return None
