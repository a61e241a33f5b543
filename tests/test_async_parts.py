"""Async rubric parts: awaited concurrently, from sync code, inside a running loop, in the pool."""

from __future__ import annotations

import asyncio
import time

import pytest

from rewardkit import Rubric, Score, Status, Verifier
from rewardkit._async import is_async_callable, run_sync


async def slow_contains(text, answer):
    await asyncio.sleep(0.2)
    return answer in text


async def trl_style(prompts=None, completions=None, **kwargs):
    await asyncio.sleep(0.2)
    return [float(len(c) > 3) for c in completions]


async def raises(text):
    raise RuntimeError("judge down")


async def wrong_length(prompts=None, completions=None, **kwargs):
    return [1.0]


class AsyncBatch(Verifier):
    """A component with an async batch method (the Judge's shape)."""

    def _score(self, text, **columns):
        return run_sync(lambda: self.ascore_batch([text], **{k: [v] for k, v in columns.items()}))[0]

    async def ascore_batch(self, completions, **columns):
        await asyncio.sleep(0.2)
        return [Score.ok(1.0) if "yes" in c else Score.wrong(0.0) for c in completions]


def _rubric(**kw):
    return Rubric({"contains": (slow_contains, 1.0), "long": (trl_style, 0.5), "batch": (AsyncBatch(), 0.25)}, **kw)


def test_async_part_used_to_score_error_now_scores():
    rubric = Rubric({"contains": slow_contains})
    result = rubric.score("the answer is 12", answer="12")
    assert result.parts["contains"].status is Status.OK and result.total == 1.0


def test_async_parts_are_awaited_concurrently_from_sync_code():
    rubric = _rubric()
    start = time.perf_counter()
    results = rubric.score_batch(["yes 12", "no 13", "yes 12", "x"], answer=["12", "12", "12", "12"])
    elapsed = time.perf_counter() - start
    assert [r.total for r in results] == [1.75, 0.5, 1.75, 0.0]
    # 3 parts x (4 items or 1 batch) of 0.2 s sleeps: serial would take >= 1.2 s
    assert elapsed < 0.9, elapsed


def test_async_parts_work_inside_a_running_event_loop():
    async def main():
        return _rubric()(prompts=["q"] * 2, completions=["yes 12", "no"], answer=["12", "12"])

    assert asyncio.run(main()) == [1.75, 0.0]


def test_async_parts_work_in_the_process_pool():
    results = _rubric(workers=2, timeout=10).score_batch(["yes 12", "no 13"], answer=["12", "12"])
    assert [r.total for r in results] == [1.75, 0.5]


def test_async_part_timeout_in_the_pool_is_hard():
    async def forever(text):
        await asyncio.sleep(60)

    rubric = Rubric({"a": (slow_contains, 1.0), "hang": (forever, 1.0)}, workers=1, timeout=1.0)
    start = time.perf_counter()
    (result,) = rubric.score_batch(["12"], answer=["12"])
    assert time.perf_counter() - start < 8
    assert result.parts["hang"].status is Status.TIMEOUT and result.parts["a"].value == 1.0


@pytest.mark.parametrize("func, reason", [(raises, "RuntimeError: judge down"), (wrong_length, "returned 1 rewards")])
def test_failing_async_parts_give_error_scores(func, reason):
    rubric = Rubric({"ok": (slow_contains, 1.0), "bad": (func, 1.0)})
    results = rubric.score_batch(["12", "13"], answer=["12", "12"])
    assert all(r.parts["bad"].status is Status.ERROR and reason in r.parts["bad"].reason for r in results)
    assert [r.parts["ok"].value for r in results] == [1.0, 0.0]


def test_reward_funcs_of_async_parts_follow_trl_contract():
    funcs, weights = _rubric().reward_funcs()
    assert [f(prompts=["q"], completions=["yes 12"], answer=["12"]) for f in funcs] == [[1.0], [1.0], [1.0]]
    assert weights == [1.0, 0.5, 0.25]


def test_is_async_callable_sees_partials_and_objects():
    import functools

    class Obj:
        async def __call__(self, text):
            return 1.0

    assert is_async_callable(slow_contains) and is_async_callable(functools.partial(slow_contains, answer="1"))
    assert is_async_callable(Obj()) and not is_async_callable(len) and not is_async_callable(lambda t: 1)


def test_run_sync_reraises_the_coroutines_error_inside_a_loop():
    async def boom():
        raise KeyError("x")

    async def main():
        with pytest.raises(KeyError):
            run_sync(boom)

    asyncio.run(main())
