"""Hostile completions against CodeTests: none of these may fake a pass.

Each completion's function is wrong (``f(2)`` should be 4); the attack tries to make
the tests count as passed anyway. After each, an honest completion must still pass.
"""

from __future__ import annotations

import pytest

from rewardkit import Status
from rewardkit.verifiers import CodeTests

pytestmark = pytest.mark.timeout(120)

TEST = "def check(candidate):\n    assert abs(candidate(2) - 4) < 1e-9\n    assert candidate(3) == 9\n"
ROW = {"test": TEST, "entry_point": "f"}
MBPP = {"test_list": ["assert f(2) == 4", "assert f(3) == 9", "assert f(1) == 1"]}
HONEST = "```python\ndef f(x):\n    return x * x\n```"


@pytest.fixture(scope="module")
def verifier():
    return CodeTests(partial_credit=True, timeout=5)


def _fenced(code: str) -> str:
    return f"```python\n{code}\n```"


ATTACKS = {
    "os_exit_before_tests": "import os\ndef f(x):\n    return 0\nos._exit(0)",
    "sys_exit_zero": "import sys\ndef f(x):\n    return 0\nsys.exit(0)",
    "fake_pass_print": "def f(x):\n    return 0\nprint('PASS')\nprint('2/2 tests passed')\nprint('OK')",
    "guess_tokens_on_fd3": (
        "import os, secrets\ndef f(x):\n    return 0\n"
        "for _ in range(1000):\n    os.write(3, (secrets.token_hex(16) + '\\n').encode())"
    ),
    "read_secret_fd": (
        "import os\ndef f(x):\n    return 0\n"
        "try:\n    os.write(3, os.read(4, 4096))\nexcept OSError:\n    pass"
    ),
    "patch_builtins": (
        "import builtins\ndef f(x):\n    return 0\n"
        "builtins.abs = lambda v: 0\nbuiltins.AssertionError = type('A', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\nbuiltins.all = lambda *a: True"
    ),
    "redefine_check": "def f(x):\n    return 0\ndef check(candidate):\n    return True",
    "call_the_pass_event": "import sys\ndef f(x):\n    return 0\nfor i in range(5):\n    sys.audit('rewardkit.pass', i)",
    "eq_always_true": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    def __sub__(self, other):\n        return 0\n"
        "    __hash__ = int.__hash__\ndef f(x):\n    return Liar(0)"
    ),
    "frame_walk_getframe": (
        "import sys\ndef f(x):\n    fr = sys._getframe(1)\n"
        "    fr.f_globals['__builtins__']['abs'] = lambda v: 0\n    return 0"
    ),
    "frame_walk_traceback": (
        "def f(x):\n    try:\n        raise ValueError\n    except ValueError as e:\n"
        "        fr = e.__traceback__.tb_frame.f_back\n        fr.f_globals['__builtins__']['abs'] = lambda v: 0\n    return 0"
    ),
    "frame_walk_generator": (
        "def g():\n    yield 1\ndef f(x):\n    fr = g().gi_frame.f_back\n    return 0"
    ),
    "gc_scan": (
        "import gc\ndef f(x):\n    return 0\n"
        "for o in gc.get_objects():\n    if isinstance(o, dict) and 'check' in o:\n        o['check'] = lambda c: None"
    ),
    "settrace_tamper": (
        "import sys\ndef tracer(frame, event, arg):\n    frame.f_globals.get('__builtins__', {})\n    return tracer\n"
        "sys.settrace(tracer)\ndef f(x):\n    return 0"
    ),
    "signal_handler_frames": (
        "import signal\nsignal.signal(signal.SIGALRM, lambda s, fr: None)\nsignal.setitimer(signal.ITIMER_REAL, 0.001)\n"
        "def f(x):\n    return 0"
    ),
    "ctypes_memory_scan": "import ctypes\nctypes.string_at(id(0), 64)\ndef f(x):\n    return 0",
    "proc_self_mem": "data = open('/proc/self/mem', 'rb')\ndef f(x):\n    return 0",
    "main_module_lookup": (
        "import sys\nm = sys.modules['__main__'].__dict__\ndef f(x):\n    return 0\n"
        "for k, v in list(m.items()):\n    if callable(v):\n        v([], 'def f(x): return x*x', None, False)"
    ),
    "thread_exits_midway": (
        "import os, threading, time\ndef f(x):\n    return 0\n"
        "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()"
    ),
    "atexit_writes": "import atexit, os\ndef f(x):\n    return 0\natexit.register(lambda: os.write(3, b'pass\\n'))",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_cannot_fake_a_pass(verifier, name):
    for row in (ROW, MBPP):
        score = verifier.score(_fenced(ATTACKS[name]), **row)
        assert score.value == 0.0, f"{name} faked {score.answer} ({score.reason})"
        assert score.status is not Status.OK
    assert verifier.score(HONEST, **ROW).value == 1.0


def test_honest_solution_passes_every_test_kind(verifier):
    assert verifier.score(HONEST, **ROW).status is Status.OK
    assert verifier.score(HONEST, **MBPP).details["passed"] == 3


def test_solution_using_typing_and_namedtuple_still_passes(verifier):
    # the harness blocks frame access, but not the stdlib helpers that need it
    code = (
        "from typing import List, TypeVar\nfrom collections import namedtuple\nimport enum\n"
        "T = TypeVar('T')\nP = namedtuple('P', 'a b')\nclass C(enum.Enum):\n    A = 1\n"
        "def f(x: int) -> int:\n    return P(x, x).a * x"
    )
    assert verifier.score(_fenced(code), **ROW).value == 1.0


def test_partial_pass_counts_only_real_passes(verifier):
    code = "def f(x):\n    return 4 if x == 2 else 1"
    score = verifier.score(_fenced(code), **MBPP)
    assert score.details["passed"] == 2 and score.value == pytest.approx(2 / 3)
