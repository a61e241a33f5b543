"""BASELINE ONLY: the in-process assert harness CodeTests used until 2026-12-05.

Kept so bench/sandbox/run.py can time the old design against the judge/candidate split
in the same run. It is NOT safe: the tests and the verdict share an interpreter with
model code (issue #15 found two ways to fake a pass). Never use it to score anything.

The original docstring follows.

The assert-style test driver that runs inside the sandbox, and how it is built.

The driver runs the candidate's code in its own module, then each test with a pristine
copy of the builtins taken before the candidate ran, and, only after a test passes,
writes that test's token to file descriptor 3 (the run's result channel). Tokens are
random per test and per run and never appear in a file, the environment, stdout or a
module the candidate can import. So ``os._exit(0)`` before the tests, printing "PASS",
writing guesses to fd 3, patching builtins or ``assert``'s helpers, and redefining
``check`` all leave the test unpassed.

Limits: the candidate runs in the same interpreter as the driver. The driver arms an
audit hook (which cannot be removed) that refuses frame and garbage-collector
introspection, ctypes, /proc access and trace/profile hooks once the candidate starts;
that closes the known paths to the tokens, but it is defence in depth, not a proof.
Objects with a rigged ``__eq__`` are refused by ``plain_results`` (the default): every
value a candidate function returns to a test must be built from plain builtin types.
"""

from __future__ import annotations

import secrets

_DRIVER = r'''
import sys as _sys


def _rk_guard_factory(_write, _getframe, _ident, _stdlib):
    # Everything the hook needs is bound here, before the candidate can patch anything.
    _tokens = tuple(open(4, "rb", closefd=True).read().decode().split())
    _armed, _busy, _done, _owner = [], set(), set(), []
    _frame_ok = (_stdlib + "/typing.py", _stdlib + "/collections/__init__.py", _stdlib + "/enum.py")
    _blocked = frozenset(("sys._current_frames", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                          "sys.setprofile", "sys.settrace"))
    _str, _isinstance, _bytes, _len, _RuntimeError = str, isinstance, bytes, len, RuntimeError

    def _hook(event, args):
        if event == "rewardkit.arm":
            _owner.append(_getframe(1))
            _armed.append(True)
            return
        if not _armed:
            return
        tid = _ident()
        if tid in _busy:
            return
        _busy.add(tid)
        try:
            if event == "rewardkit.pass":
                caller = _getframe(1)
                if caller is _owner[0] and args[0] not in _done:  # only the harness's own frame
                    _done.add(args[0])
                    _write(3, (_tokens[args[0]] + "\n").encode())
                return
            if event in _blocked or event.startswith("ctypes."):
                raise _RuntimeError("blocked by the test harness: " + event)
            if event == "sys._getframe":
                if _getframe(1).f_code.co_filename not in _frame_ok:
                    raise _RuntimeError("blocked by the test harness: frame access")
            elif event == "object.__getattr__" and _len(args) > 1 and _str(args[1]).endswith("_frame"):
                raise _RuntimeError("blocked by the test harness: frame access")
            elif event == "import" and args and args[0] in ("signal", "_signal", "ctypes", "_ctypes"):
                raise _RuntimeError("blocked by the test harness: import " + _str(args[0]))
            elif event in ("open", "os.chdir", "os.listdir", "os.scandir") and args:
                path = args[0]
                if _isinstance(path, _bytes):
                    path = path.decode("utf-8", "replace")
                if _isinstance(path, _str) and _realpath(path).startswith("/proc"):
                    raise _RuntimeError("blocked by the test harness: /proc")
        finally:
            _busy.discard(tid)

    import os.path
    _realpath = os.path.realpath
    return _hook


def _rk_run(_tests, _source, _entry, _plain):
    import builtins, os, sys, types, threading, signal, _thread
    import collections, typing, enum, functools, itertools, math, re, heapq, bisect, string  # noqa: F401
    _audit, _ftype, _type, _list, _dict, _repr = sys.audit, types.FunctionType, type, list, dict, repr
    _pristine = types.MappingProxyType(dict(builtins.__dict__))
    _PLAIN = (type(None), bool, int, float, complex, str, bytes)
    _BOXES = (list, tuple, set, frozenset)

    def _is_plain(value):
        stack, seen = [value], 0
        while stack:
            v = stack.pop()
            seen += 1
            if seen > 1000000:
                return False
            t = _type(v)
            if t in _PLAIN:
                continue
            if t in _BOXES:
                stack.extend(v)
            elif t is _dict:
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                return False
        return True

    def _guard(fn):
        def candidate(*args, **kwargs):
            result = fn(*args, **kwargs)
            if not _is_plain(result):
                raise TypeError("a candidate returned a non-plain object")
            return result
        return candidate

    sys.addaudithook(_rk_guard_factory(os.write, sys._getframe, _thread.get_ident, os.path.dirname(os.__file__)))

    def _refuse(*args, **kwargs):
        raise RuntimeError("blocked by the test harness")

    for mod, names in ((sys, ("settrace", "setprofile")), (threading, ("settrace", "setprofile")), (signal, ("signal",))):
        for name in names:
            setattr(mod, name, _refuse)
    main = sys.modules["__main__"].__dict__
    del main["_rk_run"], main["_rk_guard_factory"]
    module = types.ModuleType("solution")
    sys.modules["solution"] = module
    _audit("rewardkit.arm")
    try:
        exec(compile(_source, "solution.py", "exec"), module.__dict__)
    except BaseException as exc:
        os.write(2, ("solution failed: %s: %s\n" % (_type(exc).__name__, exc))[:2000].encode())
        return
    _tests = tuple(_tests)
    for _i in range(len(_tests)):
        scope = _dict(module.__dict__)
        scope["__builtins__"] = _dict(_pristine)
        scope["__name__"] = "tests"
        if _plain:
            for name, value in _list(scope.items()):
                if _type(value) is _ftype:
                    scope[name] = _guard(value)
        try:
            exec(compile(_tests[_i], "test_%d.py" % _i, "exec"), scope)
            if _entry is not None:
                scope["check"](scope[_entry])
        except BaseException as exc:
            os.write(2, ("test %d failed: %s: %s\n" % (_i, _type(exc).__name__, exc))[:2000].encode())
            continue
        _audit("rewardkit.pass", _i)


_rk_run(__RK_ARGS__)
'''


def build_driver(source: str, tests: list[str], entry_point: str | None, plain: bool) -> tuple[str, list[str]]:
    """(driver program, one fresh token per test). Pass the tokens as the run's ``secret``."""
    tokens = [secrets.token_hex(16) for _ in tests]
    args = ", ".join(repr(x) for x in (list(tests), source, entry_point, bool(plain)))
    program = _DRIVER.replace("__RK_ARGS__", args)
    return program, tokens


def passed_tests(channel: bytes | None, tokens: list[str]) -> list[bool]:
    """Which tests wrote their token to the result channel."""
    seen = set((channel or b"").decode("ascii", "replace").split())
    return [tok in seen for tok in tokens]
