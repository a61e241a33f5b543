"""The LLM judge against a fault-injecting local server: every failure path becomes a
typed Score with a reason, in bounded time. The real vLLM server is in tests/test_judge_vllm.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from rewardkit import InvalidArgument, Rubric, Status
from rewardkit.judge import GroupJudge, Judge, parse_grade, parse_ranking
from rewardkit.testing.judge_server import FakeJudgeServer


@pytest.fixture(scope="module")
def server():
    with FakeJudgeServer() as s:
        yield s


def judge(server, model, **kw):
    kw.setdefault("backoff", 0.01)
    return Judge("Is it right?", base_url=server.url, model=model, **kw)


@pytest.mark.parametrize("reply, grade, value, status", [
    ("Score: 7", "number", 0.7, Status.OK),
    ("**Score:** 2", "number", 0.2, Status.WRONG),
    ("Yes, it is.", "yesno", 1.0, Status.OK),
    ("no", "yesno", 0.0, Status.WRONG),
    ("Grade: B", "letter", 0.75, Status.OK),
    ("I cannot decide.", "number", 0.0, Status.UNPARSEABLE),
    ("Score: 42", "number", 0.0, Status.UNPARSEABLE),
    ("yes and no", "yesno", 0.0, Status.UNPARSEABLE),
])
def test_replies_become_typed_scores(server, reply, grade, value, status):
    s = judge(server, f"reply:{reply}", grade=grade).score("x = 4", prompt="2+2?", answer="4")
    assert (s.value, s.status) == (value, status) and s.reason
    assert s.details["reply"] == reply


@pytest.mark.parametrize("model, status, reason", [
    ("status:500", Status.ERROR, "HTTP 500 after 3 attempts"),
    ("status:429", Status.ERROR, "HTTP 429 after 3 attempts"),
    ("status:401", Status.ERROR, "HTTP 401"),
    ("garbage", Status.ERROR, "no chat completion"),
    ("nochoices", Status.ERROR, "no chat completion"),
    ("drop", Status.ERROR, "after 3 attempts"),
    ("slow:3", Status.TIMEOUT, "within 0.5 s"),
])
def test_endpoint_failures_become_typed_scores_in_bounded_time(server, model, status, reason):
    start = time.perf_counter()
    s = judge(server, model, timeout=0.5, max_retries=2).score("x")
    assert time.perf_counter() - start < 3
    assert s.status is status and reason in s.reason and s.value == 0.0


def test_retries_recover_from_429_and_500(server):
    for model in ("flaky:429:2", "flaky:503:1"):
        s = judge(server, model).score("x")
        assert s.status is Status.OK and s.value == 0.9
        assert server.requests[model] == int(model.rsplit(":", 1)[1]) + 1


def test_four_xx_is_not_retried(server):
    judge(server, "status:404").score("x")
    assert server.requests["status:404"] == 1


def test_concurrency_is_bounded():
    with FakeJudgeServer() as server:  # its own: no slow request of another test in flight
        _check_concurrency(server)


def _check_concurrency(server):
    j = judge(server, "slow:0.3", max_concurrency=3)
    start = time.perf_counter()
    scores = j.score_batch(["a"] * 9)
    elapsed = time.perf_counter() - start
    assert all(s.value == 0.5 for s in scores)
    assert server.peak <= 3 and 0.85 < elapsed < 2.5  # three waves of 0.3 s


def test_the_cache_saves_the_second_call(server, tmp_path):
    path = tmp_path / "judge.sqlite"
    j = judge(server, "reply:Score: 8", cache=str(path))
    assert j.score("same", answer="1").value == 0.8 and j.calls == 1
    assert j.score("same", answer="1").value == 0.8 and j.calls == 1
    assert j.score("same", answer="2").value == 0.8 and j.calls == 2  # another prompt: a call
    again = judge(server, "reply:Score: 8", cache=str(path))  # a new process would see the file too
    again.score("same", answer="1")
    assert again.calls == 0


def test_the_cache_is_shared_by_judges_that_only_call_differently(server):
    first = judge(server, "reply:Score: 8", cache=True, max_concurrency=1)
    first.score("same", answer="1")
    other = judge(server, "reply:Score: 8", cache=first.cache, max_concurrency=16, timeout=60, max_retries=5)
    assert other.score("same", answer="1").value == 0.8 and other.calls == 0  # same model + prompt: no call
    hotter = judge(server, "reply:Score: 8", cache=first.cache, temperature=1.0)
    hotter.score("same", answer="1")
    assert hotter.calls == 1  # another sampling temperature is another question


def test_failures_are_not_cached(server):
    j = judge(server, "status:500", cache=True, max_retries=0)
    j.score("x")
    j.score("x")
    assert j.calls == 2


def test_prompt_reference_and_rubric_reach_the_judge(server):
    j = judge(server, "echo", template={"system": "s", "user": "{rubric}|{prompt}|{reference}|{completion}"})
    s = j.score("my answer", prompt=[{"role": "user", "content": "2+2?"}], answer="4")
    assert s.details["reply"] == "Is it right?|2+2?|4|my answer" and s.status is Status.UNPARSEABLE


def test_judge_in_a_rubric_and_under_trls_contract_and_inside_a_loop(server):
    rubric = Rubric({"judge": (judge(server, "reply:Score: 10"), 1.0)})
    assert rubric(prompts=["q", "q"], completions=["a", "b"], answer=["1", "1"]) == [1.0, 1.0]

    async def main():
        return judge(server, "reply:Score: 3")(prompts=["q"], completions=["a"])

    assert asyncio.run(main()) == [0.3]


def test_judge_runs_in_the_process_pool(server):
    rubric = Rubric({"judge": judge(server, "reply:yes", grade="yesno")}, workers=2, timeout=10)
    assert [r.total for r in rubric.score_batch(["a", "b"])] == [1.0, 1.0]


def test_group_judge_maps_ranks_to_rewards(server):
    g = GroupJudge(base_url=server.url, model="reply:Ranking: 3 > 1 > 2", backoff=0.01)
    scores = g.score_batch(["a", "b", "c", "d", "e", "f", "solo"], prompts=["p"] * 3 + ["q"] * 3 + ["r"])
    assert [s.value for s in scores] == [0.5, 0.0, 1.0, 0.5, 0.0, 1.0, 1.0]
    assert server.requests["reply:Ranking: 3 > 1 > 2"] == 2  # one call per group of several


def test_group_judge_unparseable_and_failing_groups(server):
    bad = GroupJudge(base_url=server.url, model="reply:Ranking: 1 > 1", backoff=0.01)
    assert {s.status for s in bad.score_batch(["a", "b"], prompts=["p", "p"])} == {Status.UNPARSEABLE}
    down = GroupJudge(base_url=server.url, model="status:503", backoff=0.01, max_retries=1)
    assert {s.status for s in down.score_batch(["a", "b"], prompts=["p", "p"])} == {Status.ERROR}


def test_group_judge_is_never_cached_per_item():
    g = GroupJudge(base_url="http://127.0.0.1:9/v1", model="m")
    assert g.cache_identity() is None


def test_api_key_comes_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test")
    j = judge(server, "reply:Score: 1", api_key_env="MY_JUDGE_KEY")
    assert "sk-test" not in repr(vars(j)) and j.score("x").value == 0.1


@pytest.mark.parametrize("kwargs, field", [
    ({"base_url": "ftp://x"}, "base_url"),
    ({"model": ""}, "model"),
    ({"grade": "stars"}, "grade"),
    ({"scale": (10, 0)}, "scale"),
    ({"timeout": 0}, "timeout"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_retries": -1}, "max_retries"),
    ({"template": {"user": "{nope}", "system": ""}}, "template"),
    ({"template": {"user": "x"}}, "template"),
    ({"pass_threshold": 2}, "pass_threshold"),
    ({"cache": 5}, "cache"),
])
def test_bad_configuration_raises_naming_the_field(kwargs, field):
    base = {"base_url": "http://127.0.0.1:1/v1", "model": "m"}
    with pytest.raises(InvalidArgument, match=field):
        Judge(**{**base, **kwargs})


def test_parsers_never_raise_on_hostile_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=300), st.sampled_from(["number", "yesno", "letter"]), st.integers(1, 8))
    def check(text, grade, k):
        value, why = parse_grade(text, grade)
        assert (value is None and why) or 0.0 <= value <= 1.0
        order, _ = parse_ranking(text, k)
        assert order is None or sorted(order) == list(range(k))

    check()
