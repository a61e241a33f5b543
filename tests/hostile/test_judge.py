"""The judge/candidate split of CodeTests' assert-style tests, attacked.

Every attack here is WRONG code (an ``add`` that subtracts, or a function that cannot
know the answer) plus a trick; none may earn any reward, in any row form CodeTests
reads (HumanEval ``check(candidate)``, HumanEval with its prompt, MBPP asserts), pooled
or per-run. The first two are the hacks that beat the in-process harness this design
replaced (verified against it: both scored 1.0 there in all six combinations); the rest
are new, aimed at this design: the candidate's own memory, the judge's process, the
pipes, the import path, the names a test looks up. After them an honest solution must
still pass, so no attack leaves the pool poisoned.
"""

from __future__ import annotations

import os

import pytest

from rewardkit import Status
from rewardkit.verifiers import CodeTests

pytestmark = pytest.mark.timeout(180)

ROWS = {
    "check": {"test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(10, 7) == 17\n",
              "entry_point": "add"},
    "humaneval": {"prompt": 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n',
                  "test": "METADATA = {}\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(10, 7) == 17\n",
                  "entry_point": "add"},
    "mbpp": {"test_list": ["assert add(2, 3) == 5", "assert add(10, 7) == 17"]},
}  # fmt: skip
HONEST = "def add(a, b):\n    return a + b"

# Beat the in-process harness: code compiled under the stdlib's typing.py path passed
# its frame filter, walked up to the harness's frame and replaced the tests with `pass`.
FRAME_WALK = r'''
import os
_src = """
def _rk_walk():
    import sys
    f = sys._getframe(1)
    while f is not None:
        for key in ("_tests", "tests"):
            t = f.f_locals.get(key)
            if isinstance(t, list):
                t[:] = ["def check(candidate):\\n    pass\\n"] * len(t)
        f = f.f_back
"""
_ns = {}
exec(compile(_src, os.path.dirname(os.__file__) + "/typing.py", "exec"), _ns)
_ns["_rk_walk"]()

def add(a, b):
    return a - b
'''

# Beat the in-process harness: a str subclass given to open() ran its __getitem__ inside
# the audit hook (nested checks off), found the tokens in the hook's frame, wrote them.
AUDIT_REENTRY = r'''
import os, sys

class _Path(str):
    def __getitem__(self, key):
        f = sys._getframe(1)
        while f is not None:
            for name in ("_tokens", "tokens"):
                toks = f.f_locals.get(name)
                if isinstance(toks, (tuple, list)):
                    for t in toks:
                        os.write(3, (str(t) + "\n").encode())
            f = f.f_back
        return str.__getitem__(self, key)

try:
    open(_Path("nothing-here"))
except Exception:
    pass

def add(a, b):
    return a - b
'''


@pytest.fixture(scope="module")
def verifier():
    return CodeTests(partial_credit=True, timeout=8)


def _fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def _assert_no_reward(verifier, code, rows=ROWS):
    for form, row in rows.items():
        score = verifier.score(_fenced(code), **row)
        assert score.value == 0.0, f"{form}: {score.answer} ({score.reason})"
        assert score.status is not Status.OK, form


@pytest.mark.parametrize("isolation", ["pool", "per_run"])
@pytest.mark.parametrize("attack", [FRAME_WALK, AUDIT_REENTRY], ids=["frame_walk", "audit_hook_reentry"])
def test_the_two_hacks_of_the_old_harness_score_zero(isolation, attack):
    verifier = CodeTests(partial_credit=True, timeout=8, isolation=isolation)
    _assert_no_reward(verifier, attack)
    assert all(verifier.score(_fenced(HONEST), **row).value == 1.0 for row in ROWS.values())


# Each attack below would pass if the tests, the tokens or the verdict were within the
# candidate's reach: it answers with the expected value only when it found the test.
_LOOKUP = r'''
import re
def _answer_from(blob):
    m = re.search(rb"candidate\(2, 3\) == (\d+)|add\(2, 3\) == (\d+)", blob)
    return int((m.group(1) or m.group(2)).decode()) if m else None
_found = {}
def add(a, b):
    if (a, b) == (2, 3) and "v" in _found:
        return _found["v"]
    if (a, b) == (10, 7) and "v" in _found:
        return 17
    return a - b
'''

ATTACKS = {
    "scan_own_memory": _LOOKUP + r'''
import os
try:
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb") as mem:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or hi - lo > 1 << 28:
                continue
            try:
                mem.seek(lo)
                v = _answer_from(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                continue
            if v is not None:
                _found["v"] = v
                break
except OSError:
    pass
''',
    "read_other_processes": _LOOKUP + r'''
import os
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    for part in ("mem", "environ", "cmdline", "fd/0", "fd/4", "maps"):
        try:
            with open("/proc/%s/%s" % (pid, part), "rb") as f:
                v = _answer_from(f.read(1 << 22))
        except (OSError, ValueError):
            continue
        if v is not None:
            _found["v"] = v
''',
    "process_vm_readv_the_judge": r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local, remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096), iovec(0x400000, 4096)
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
def add(a, b):
    return a - b
''',
    "write_every_channel": r'''
import os
lines = b"".join(b"%032x pass\n" % i for i in range(64))
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for fd in range(0, 12):
        try:
            w = os.open("/proc/%s/fd/%d" % (pid, fd), os.O_WRONLY | os.O_NONBLOCK)
            os.write(w, lines)
            os.close(w)
        except OSError:
            pass
for fd in range(0, 64):
    try:
        os.write(fd, lines)
    except OSError:
        pass
def add(a, b):
    return a - b
''',
    "hijack_the_judges_imports": r'''
import os
evil = "import builtins\nbuiltins.abs = lambda v: 0\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
for d in (os.getcwd(), "/tmp", os.environ.get("HOME", "."), os.environ.get("TMPDIR", ".")):
    for name in ("colorsys", "shlex", "sitecustomize", "usercustomize"):
        try:
            with open(os.path.join(d, name + ".py"), "w") as f:
                f.write(evil)
        except OSError:
            pass
def add(a, b):
    return a - b
''',
    "stop_or_kill_the_judge": r'''
import os, signal
def add(a, b):
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid != os.getpid():
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    return a - b
''',
    "forged_replies_on_the_pipe": r'''
import os
# a load reply claiming builtins and `check` as ours, then replies to calls not yet asked
# (handles, bad tags), each trying to make the judge misread what comes back
forged = b'{"ok":1,"names":{"abs":["function"],"isinstance":["function"],"check":["function"],"add":["function"]}}'
replies = [b'{"ok":1,"v":{"$":"h","v":1,"t":"int"},"wb":{}}', b'{"ok":1,"v":{"$":"zz","v":5}}', b'{"ok":2}']
for body in [forged] + replies * 3:
    os.write(4, b"%d\n" % len(body) + body)
def add(a, b):
    return a - b
''',
    "garbage_on_the_pipe": r'''
import os
def add(a, b):
    os.write(4, b"99999999999999999999\n{" + b"[" * 100000)
    return a - b
''',
    "shadow_builtins_and_the_check": r'''
def add(a, b):
    return a - b
abs = lambda v: 0
isinstance = lambda *a: True
set = lambda *a: 0
sorted = lambda *a, **k: 0
len = lambda v: 0
def check(candidate):
    return True
AssertionError = KeyError
''',
    "liar_return_values": r'''
class Liar(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
class Text(str):
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__
class Anything:
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
_n = [0]
def add(a, b):
    _n[0] += 1
    return [Liar(0), Text("x"), Anything()][_n[0] % 3]
''',
    "raise_base_exceptions": r'''
import sys
_n = [0]
def add(a, b):
    _n[0] += 1
    raise [SystemExit(0), KeyboardInterrupt(), GeneratorExit(), StopIteration()][_n[0] % 4]
''',
    "exit_inside_the_call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "huge_and_deep_values": r'''
_n = [0]
def add(a, b):
    _n[0] += 1
    if _n[0] % 2:
        v = []
        for _ in range(100000):
            v = [v]
        return v
    return 10 ** 100000
''',
    "leave_a_child_behind": r'''
import os, time
if os.fork() == 0:
    time.sleep(0.5)
    for fd in range(64):
        try:
            os.write(fd, b"0" * 32 + b" pass\n")
        except OSError:
            pass
    os._exit(0)
def add(a, b):
    return a - b
''',
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_on_the_judge_earns_nothing(verifier, name):
    _assert_no_reward(verifier, ATTACKS[name])


def test_honest_code_still_passes_after_the_attacks(verifier):
    for attack in ATTACKS.values():  # the same pooled workers, one attack after another
        verifier.score(_fenced(attack), **ROWS["check"])
    for form, row in ROWS.items():
        assert verifier.score(_fenced(HONEST), **row).status is Status.OK, form


POLY_PROMPT = (
    "import math\n\n\ndef poly(xs: list, x: float):\n    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])\n\n\n"
    'def find_zero(xs: list):\n    """Find x such that poly(x) = 0."""\n'
)
POLY_TEST = "def check(candidate):\n    xs = [-6, 11, -6, 1]\n    assert abs(poly(xs, candidate(xs))) < 1e-4\n"


def test_helpers_come_from_the_prompt_never_from_the_candidate(verifier):
    row = {"prompt": POLY_PROMPT, "test": POLY_TEST, "entry_point": "find_zero"}
    fake = "def poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n    return 123.0"
    assert verifier.score(_fenced(fake), **row).value == 0.0
    no_prompt = verifier.score(_fenced(fake), test=POLY_TEST, entry_point="find_zero")
    assert no_prompt.value == 0.0 and "NameError" in no_prompt.reason  # no trusted poly: no pass
    honest = "def find_zero(xs):\n    lo, hi = 0.5, 1.5\n    for _ in range(100):\n        mid = (lo + hi) / 2\n" \
             "        if (-6 + 11 * lo - 6 * lo ** 2 + lo ** 3) * (-6 + 11 * mid - 6 * mid ** 2 + mid ** 3) <= 0:\n" \
             "            hi = mid\n        else:\n            lo = mid\n    return lo"  # fmt: skip
    assert verifier.score(_fenced(honest), **row).value == 1.0


def test_the_judge_never_imports_from_where_the_candidate_writes(verifier):
    # the test imports a module no worker preloads; the candidate planted one of that name
    row = {"test": "def check(candidate):\n    import colorsys, shlex\n    assert abs(candidate(2, 3) - 5) < 1e-9\n",
           "entry_point": "add"}  # fmt: skip
    score = verifier.score(_fenced(ATTACKS["hijack_the_judges_imports"]), **row)
    assert score.value == 0.0 and score.status is Status.WRONG
    assert verifier.score(_fenced(HONEST), **row).value == 1.0


def test_candidate_names_never_shadow_builtins_or_setup():
    verifier = CodeTests(partial_credit=True, timeout=8)
    row = {
        "test_setup_code": "expected = 5",
        "test_list": ["assert abs(add(2, 3) - expected) < 1e-9", "assert sorted(set([add(2, 3)])) == [expected]",
                      "assert isinstance(add(2, 3), int) and len([add(2, 3)]) == 1 and add(2, 3) == 5"],
    }  # fmt: skip
    score = verifier.score(_fenced(ATTACKS["shadow_builtins_and_the_check"] + "\nexpected = -1"), **row)
    assert score.value == 0.0, score.reason
    assert verifier.score(_fenced(HONEST + "\nexpected = -1\nabs = len = None"), **row).value == 1.0


def _zombie_children() -> set[str]:
    me, out = str(os.getpid()), set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] == "Z":
            out.add(pid)
    return out


def test_no_zombies_or_leftover_processes_after_judged_runs(verifier):
    # only the runs' own: this process is a child subreaper (the sandbox pool), so orphans
    # of subprocesses that other tests started may be parked here already
    before = _zombie_children()
    for _ in range(5):
        verifier.score(_fenced(HONEST), **ROWS["check"])
    assert _zombie_children() - before == set()
