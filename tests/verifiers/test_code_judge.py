"""What crosses between CodeTests' judge (the tests) and the candidate (the model's code).

Plain data crosses both ways with its exact type; lists, dicts and sets given as
arguments are written back after the call; the candidate's module state lasts the run;
its exceptions arrive as the builtin exception of the same name; instances of its classes
are handles; anything else is refused with a clear status.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit import Status
from rewardkit.verifiers import CodeTests

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def verifier():
    return CodeTests(partial_credit=True, timeout=10, max_tests=200)


def _fenced(code: str) -> str:
    return f"```python\n{code}\n```"


SAME = '''
def same(a, b):
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    return a == b
'''

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), st.binary(max_size=8),
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e6),
)  # fmt: skip
_hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6), st.binary(max_size=4))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
        st.sets(_hashable, max_size=4), st.frozensets(_hashable, max_size=4),
        st.dictionaries(st.one_of(_hashable, st.tuples(_hashable, _hashable)), inner, max_size=4),
    ),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_values, min_size=1, max_size=15))
def test_plain_values_cross_both_ways_with_their_exact_types(verifier, values):
    tests = [f"v = {v!r}\nassert same(echo(v), v) and same(echo(x=v), v)" for v in values]
    score = verifier.score(
        _fenced("def echo(x):\n    return x"), test_list=tests, test_setup_code=SAME
    )
    assert score.status is Status.OK, score.reason


def test_special_numbers_and_bytes_cross(verifier):
    code = "def echo(x):\n    return x\ndef big():\n    return 7 ** 5000\ndef ba():\n    return bytearray(b'\\x00\\xff')"
    tests = [
        "import math\nassert math.isnan(echo(float('nan')))",
        "assert echo(float('inf')) == float('inf') and echo(float('-inf')) == float('-inf')",
        "assert big() == 7 ** 5000 and echo(-(3 ** 4000)) == -(3 ** 4000)",
        "assert ba() == bytearray(b'\\x00\\xff') and type(ba()) is bytearray",
        "assert echo('\\ud800\\x00\"\\\\') == '\\ud800\\x00\"\\\\'",
        "assert echo(complex(1.5, -2)) == complex(1.5, -2) and echo(-0.0) == 0.0",
    ]
    score = verifier.score(_fenced(code), test_list=tests)
    assert score.status is Status.OK, score.reason
    assert math.isclose(score.value, 1.0)


def test_mutated_arguments_are_written_back(verifier):
    code = (
        "def sort_in_place(xs):\n    xs.sort()\n"
        "def fill(d, s, *, extra):\n    d['k'] = 1\n    s.add(3)\n    extra.append('x')\n"
    )
    tests = [
        "xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]",
        "d, s, e = {}, set(), []\nfill(d, s, extra=e)\nassert d == {'k': 1} and s == {3} and e == ['x']",
    ]
    assert verifier.score(_fenced(code), test_list=tests).status is Status.OK


def test_module_state_lasts_across_tests_of_one_run(verifier):
    code = "_n = [0]\ndef bump():\n    _n[0] += 1\n    return _n[0]"
    score = verifier.score(_fenced(code), test_list=["assert bump() == 1", "assert bump() == 2"])
    assert score.status is Status.OK, score.reason


def test_candidate_exceptions_arrive_as_the_same_builtin(verifier):
    code = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n" \
           "class Odd(Exception):\n    pass\ndef odd():\n    raise Odd('mine')"  # fmt: skip
    tests = [
        "try:\n    root(-1)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n    raise AssertionError",
        "try:\n    odd()\nexcept RuntimeError as e:\n    assert 'Odd' in str(e)\nelse:\n    raise AssertionError",
        "assert root(9) == 3.0",
    ]
    score = verifier.score(_fenced(code), test_list=tests)
    assert score.status is Status.OK, score.reason


PAIR = """
class Pair(object):
    def __init__(self, a, b):
        self.a = a
        self.b = b
    def total(self):
        return self.a + self.b
def max_chain_length(arr, n):
    max = 0
    mcl = [1 for i in range(n)]
    for i in range(1, n):
        for j in range(0, i):
            if (arr[i].a > arr[j].b and mcl[i] < mcl[j] + 1):
                mcl[i] = mcl[j] + 1
    for i in range(n):
        if (max < mcl[i]):
            max = mcl[i]
    return max
def make():
    return Pair(1, 2)
"""


def test_instances_of_candidate_classes_are_handles(verifier):
    tests = [  # MBPP 601's own tests
        "assert max_chain_length([Pair(5, 24), Pair(15, 25),Pair(27, 40), Pair(50, 60)], 4) == 3",
        "assert max_chain_length([Pair(1, 2), Pair(3, 4),Pair(5, 6), Pair(7, 8)], 4) == 4",
        "p = Pair(1, 2)\nassert p.a == 1 and p.total() == 3 and p == p and p != Pair(1, 2)",
    ]
    score = verifier.score(_fenced(PAIR), test_list=tests)
    assert score.status is Status.OK, score.reason


def test_plain_results_refuses_objects_from_functions_and_handles_have_no_truth(verifier):
    assert verifier.score(_fenced(PAIR), test_list=["assert make().a == 1"]).status is Status.WRONG
    assert "not plain data" in verifier.score(_fenced(PAIR), test_list=["assert make().a == 1"]).reason
    loose = CodeTests(plain_results=False, timeout=10)
    assert loose.score(_fenced(PAIR), test_list=["assert make().a == 1"]).status is Status.OK
    truthy = loose.score(_fenced(PAIR), test_list=["assert make()"])
    assert truthy.status is Status.WRONG and "no truth value" in truthy.reason


def test_a_value_that_cannot_cross_is_an_error_naming_it(verifier):
    code = "def apply(f, x):\n    return f(x)"
    for test in (
        "assert apply(lambda v: v + 1, 1) == 2",
        "try:\n    apply(lambda v: v, 1)\nexcept Exception:\n    pass",  # swallowing it changes nothing
    ):
        score = verifier.score(_fenced(code), test_list=[test])
        assert score.status is Status.ERROR and score.value == 0.0
        assert "function argument cannot cross" in score.reason


def test_the_candidates_own_functions_cross_by_name(verifier):
    code = "def apply(f, x):\n    return f(x)\ndef inc(v):\n    return v + 1"
    assert verifier.score(_fenced(code), test_list=["assert apply(inc, 1) == 2"]).status is Status.OK


def test_missing_entry_point_and_failing_import_are_reported(verifier):
    row = {"test": "def check(candidate):\n    assert candidate(1) == 1\n", "entry_point": "f"}
    missing = verifier.score(_fenced("def g(x):\n    return x"), **row)
    assert missing.status is Status.WRONG and "does not define f()" in missing.reason
    broken = verifier.score(_fenced("import no_such_module\ndef f(x):\n    return x"), **row)
    assert broken.status is Status.WRONG and "ModuleNotFoundError" in broken.reason


def test_a_noisy_candidate_does_not_disturb_the_pipes(verifier):
    code = "import sys\nprint('x' * 5000)\ndef f(x):\n    print('{\"ok\":1}' * 100)\n    sys.stderr.write('1\\n')\n    return x"
    score = verifier.score(_fenced(code), test="def check(candidate):\n    assert candidate(3) == 3\n", entry_point="f")
    assert score.status is Status.OK, score.reason


def test_prompts_from_trl_reach_the_helpers():
    verifier = CodeTests(timeout=10)
    prompt = "def double(x):\n    return 2 * x\n\n\ndef quad(x):\n    \"\"\"Four times x.\"\"\"\n"
    chat = [{"role": "system", "content": "Write code."}, {"role": "user", "content": f"```python\n{prompt}```"}]
    test = "def check(candidate):\n    assert candidate(3) == double(6)\n"
    for p in (prompt, chat):
        rewards = verifier(
            prompts=[p], completions=["```python\ndef quad(x):\n    return 4 * x\n```"], test=[test], entry_point=["quad"]
        )
        assert rewards == [1.0]


def test_one_candidate_object_is_one_handle_and_unused_globals_never_cross(verifier):
    code = ("class Node:\n    def __init__(self):\n        self.me = self\n"
            "    def same(self):\n        return self\n"
            "TABLE = [True] * 6_000_000  # far over the judge's message cap as JSON\n"
            "def make():\n    return Node()")
    tests = "def check(candidate):\n    n = candidate()\n    assert n.me == n and n.same() is n\n"
    loose = CodeTests(plain_results=False, timeout=20)
    score = loose.score(_fenced(code), test=tests, entry_point="make")
    assert score.status is Status.OK, score.reason
