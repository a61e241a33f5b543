"""The process pool: hard per-item timeouts without SIGALRM, crashes, order, threads."""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import time

import pytest

from rewardkit import Score, Scorer, Status
from rewardkit._scoring_pool import run_in_pool, score_in_pool
from rewardkit.errors import InvalidArgument


class Behave(Scorer):
    """Misbehaves on request: 'hang', 'exit', 'segv', 'raise'; else scores len/100."""

    range = (0.0, 100.0)

    def _score(self, text, **columns):
        if text == "hang":
            time.sleep(3600)
        if text == "exit":
            os._exit(3)
        if text == "segv":
            ctypes.string_at(0)  # SIGSEGV in the worker
        if text == "raise":
            raise RuntimeError("boom")
        return Score.ok(len(text) / 100, pid=os.getpid(), offset=columns.get("offset", 0))


def _values(scores):
    return [s.value for s in scores]


def test_results_keep_input_order():
    texts = ["x" * (i % 37) for i in range(300)]
    scores = Behave().score_batch(texts, workers=2, timeout=30)
    assert _values(scores) == [len(t) / 100 for t in texts]
    assert all(s.status is Status.OK for s in scores)


def test_columns_reach_the_worker_per_row():
    rows = [{"offset": i} for i in range(20)]
    scores = score_in_pool(Behave(), ["a"] * 20, rows, workers=2, timeout=30)
    assert [s.details["offset"] for s in scores] == list(range(20))


def test_workers_are_reused_across_calls():
    first = Behave().score_batch(["a", "b", "c", "d"], workers=2, timeout=30)
    second = Behave().score_batch(["a", "b", "c", "d"], workers=2, timeout=30)
    assert {s.details["pid"] for s in second} <= {s.details["pid"] for s in first}
    assert os.getpid() not in {s.details["pid"] for s in first}


def test_hang_times_out_within_slack_and_pool_recovers():
    Behave().score_batch(["warm", "up"], workers=2, timeout=30)  # exclude worker start-up
    start = time.monotonic()
    scores = Behave().score_batch(["ab", "hang", "abc"], workers=2, timeout=1.0)
    elapsed = time.monotonic() - start
    assert [s.status for s in scores] == [Status.OK, Status.TIMEOUT, Status.OK]
    assert scores[1].value == 0.0 and "timeout" in scores[1].reason
    assert elapsed < 1.0 + 5.0  # generous slack: the CI box is shared
    again = Behave().score_batch(["a", "bb", "ccc"], workers=2, timeout=1.0)
    assert _values(again) == [0.01, 0.02, 0.03]


def test_items_after_a_hang_in_the_same_chunk_still_run():
    texts = ["hang"] + ["ok"] * 9
    start = time.monotonic()
    scores = Behave().score_batch(texts, workers=1, timeout=0.5)
    assert time.monotonic() - start < 0.5 + 5.0  # a hang before any result is still seen
    assert scores[0].status is Status.TIMEOUT
    assert _values(scores[1:]) == [0.02] * 9


@pytest.mark.parametrize("text", ["exit", "segv"])
def test_worker_death_is_an_error_score(text):
    scores = Behave().score_batch(["a", text, "bb", text, "ccc"], workers=2, timeout=30)
    assert [s.status for s in scores] == [Status.OK, Status.ERROR, Status.OK, Status.ERROR, Status.OK]
    assert "crashed" in scores[1].reason
    assert _values(Behave().score_batch(["a"] * 4, workers=2, timeout=30)) == [0.01] * 4


def test_exception_in_component_is_an_error_not_a_crash():
    scores = Behave().score_batch(["raise", "a"], workers=2, timeout=30)
    assert scores[0].status is Status.ERROR and "boom" in scores[0].reason
    assert scores[1].value == 0.01


def test_two_threads_score_at_once():
    results = {}

    def work(key, n):
        results[key] = Behave().score_batch(["y" * (n + i % 5) for i in range(60)], workers=2, timeout=30)

    threads = [threading.Thread(target=work, args=(k, k)) for k in (1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for k in (1, 7):
        assert _values(results[k]) == [(k + i % 5) / 100 for i in range(60)]


def test_usable_from_asyncio_executor():
    async def main():
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(None, lambda: Behave().score_batch(["hang", "a"], workers=1, timeout=0.5)),
            loop.run_in_executor(None, lambda: Behave().score_batch(["abcd"], workers=1, timeout=5)),
        ]
        return await asyncio.gather(*calls)

    first, second = asyncio.run(main())
    assert [s.status for s in first] == [Status.TIMEOUT, Status.OK]
    assert second[0].value == 0.04


def test_unpicklable_job_falls_back_to_fork():
    secret = {"value": 0.25}
    scores = run_in_pool(lambda item: Score.ok(secret["value"] + item), [0, 0.5], workers=2, timeout=10)
    assert _values(scores) == [0.25, 0.75]


def test_job_returning_a_non_score_is_an_error():
    scores = run_in_pool(lambda item: 1.0, [1], workers=1, timeout=10)
    assert scores[0].status is Status.ERROR


def test_empty_input_starts_nothing():
    assert run_in_pool(lambda item: Score.ok(), [], workers=2) == []


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"workers": 0}, "workers=0"),
        ({"workers": -1}, "workers=-1"),
        ({"workers": 1.5}, "workers=1.5"),
        ({"workers": True}, "workers=True"),
        ({"workers": 1, "timeout": 0}, "timeout=0"),
        ({"workers": 1, "timeout": -2}, "timeout=-2"),
        ({"workers": 1, "timeout": float("nan")}, "timeout=nan"),
        ({"workers": 1, "timeout": float("inf")}, "timeout=inf"),
    ],
)
def test_invalid_pool_arguments(kwargs, field):
    with pytest.raises(InvalidArgument, match=field):
        run_in_pool(lambda item: Score.ok(), [1], **kwargs)


_ORPHAN_SCRIPT = """
import os
from rewardkit import Scorer, Score
class Pid(Scorer):
    def _score(self, text, **columns):
        return Score.ok(1.0, pid=os.getpid())
if __name__ == "__main__":
    scores = Pid().score_batch(["a", "b", "c", "d"], workers=2, timeout=30)
    print(" ".join(str(s.details["pid"]) for s in scores), flush=True)
    os._exit(0)  # no atexit: the workers must notice on their own
"""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purposes
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not os.path.exists("/proc"), reason="reads /proc")
def test_workers_exit_when_their_parent_dies(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    pids = {int(p) for p in out.stdout.split()}
    assert pids, out.stderr
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


_GUARDED_SCRIPT = """
from rewardkit import Scorer
if __name__ == "__main__":
    class Inside(Scorer):  # pickles by name, but a fresh process cannot import it
        def _score(self, text, **columns):
            return 0.5
    print([s.value for s in Inside().score_batch(["a", "b", "c"], workers=2, timeout=10)])
"""


def test_job_a_fresh_process_cannot_load_falls_back_to_fork(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "guarded.py"
    script.write_text(_GUARDED_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[0.5, 0.5, 0.5]", out.stderr[-2000:]


def test_a_worker_killed_between_calls_is_replaced():
    import signal

    pids = {s.details["pid"] for s in Behave().score_batch(["a", "b", "c", "d"], workers=2, timeout=30)}
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    scores = Behave().score_batch(["a", "bb", "ccc", "dddd"], workers=2, timeout=30)
    assert [s.status for s in scores] == [Status.OK] * 4
    assert not pids & {s.details["pid"] for s in scores}


class _RefusesPickle:
    def __reduce__(self):
        raise RuntimeError("no pickling")


def _explode():
    raise RuntimeError("no unpickling")


class _RefusesUnpickle:
    def __reduce__(self):
        return (_explode, ())


@pytest.mark.parametrize(
    "bad, why",
    [
        (lambda: 1, "input not picklable"),
        ((x for x in "ab"), "input not picklable"),
        (_RefusesPickle(), "input not picklable"),
        (_RefusesUnpickle(), "could not be unpickled in the worker"),
    ],
    ids=["lambda", "generator", "reduce_raises", "unpickle_raises"],
)
def test_one_unpicklable_item_fails_alone_not_its_chunk(bad, why):
    texts = ["x" * (i % 50) for i in range(60)]  # 60 items, 2 workers: chunks of 8
    completions = list(texts)
    completions[9] = [{"role": "assistant", "content": texts[9], "meta": bad}]
    scores = Behave().score_batch(completions, workers=2, timeout=30)
    assert scores[9].status is Status.ERROR and why in scores[9].reason
    others = [s for i, s in enumerate(scores) if i != 9]
    assert all(s.status is Status.OK for s in others), [s.reason for s in others if s.status is not Status.OK]
    assert [s.value for s in others] == [len(t) / 100 for i, t in enumerate(texts) if i != 9]
