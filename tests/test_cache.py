"""The verification cache: keys, what is never stored, memory and sqlite across processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument, Rubric, Score, Status
from rewardkit.cache import VerificationCache, identity
from rewardkit.scorers import Format
from rewardkit.verifiers import MathEquivalence

CALLS: list[str] = []


def counted(text, answer):
    CALLS.append(text)
    return answer in text


def flaky(text):
    CALLS.append(text)
    raise RuntimeError("endpoint down")


def test_identical_items_are_scored_once_and_hits_are_counted():
    CALLS.clear()
    from rewardkit import Part

    rubric = Rubric([Part("c", counted, 1.0, cache_key="v1")], cache=True)
    texts = ["a 12", "a 12", "b 12", "a 12"]
    assert [r.total for r in rubric.score_batch(texts, answer=["12"] * 4)] == [1.0] * 4
    assert CALLS == ["a 12", "b 12"]
    assert rubric.score_batch(["a 12"], answer=["12"])[0].total == 1.0 and len(CALLS) == 2
    assert rubric.cache.hits == 3 and rubric.cache.misses == 2


def test_plain_functions_are_not_cached_without_a_key():
    CALLS.clear()
    rubric = Rubric({"c": counted}, cache=True)
    rubric.score_batch(["a 12", "a 12"], answer=["12", "12"])
    assert len(CALLS) == 2 and rubric.cache.hits == rubric.cache.misses == 0


def test_reference_and_options_are_part_of_the_key():
    cache = VerificationCache()
    a = MathEquivalence()
    b = MathEquivalence(correct_reward=2.0)
    assert identity(a) != identity(b) and identity(a) == identity(MathEquivalence())
    r = Rubric({"m": a}, cache=cache)
    assert r.score("\\boxed{12}", answer="12").total == 1.0
    assert r.score("\\boxed{12}", answer="13").total == 0.0  # another reference: a miss, not a hit
    assert Rubric({"m": b}, cache=cache).score("\\boxed{12}", answer="12").total == 2.0
    assert cache.hits == 0


def test_math_verdicts_are_shared_by_completions_with_the_same_answer():
    rubric = Rubric({"m": MathEquivalence()}, cache=True)
    texts = ["so it is \\boxed{12}", "thus \\boxed{12}", "\\boxed{13}"]
    assert [r.total for r in rubric.score_batch(texts, answer=["12"] * 3)] == [1.0, 1.0, 0.0]
    assert rubric.cache.stats["hits"] == 1 and rubric.cache.stats["misses"] == 2


def test_timeouts_and_errors_are_never_cached():
    CALLS.clear()
    from rewardkit import Part

    rubric = Rubric([Part("f", flaky, 1.0, cache_key="v1")], cache=True)
    rubric.score("x")
    rubric.score("x")
    assert len(CALLS) == 2 and len(rubric.cache) == 0
    cache = VerificationCache()
    assert not cache.put("k", Score.timeout()) and not cache.put("k", Score.error())
    assert cache.put("k", Score.unparseable()) and cache.get("k").status is Status.UNPARSEABLE


def _write(path, key):
    cache = VerificationCache(path)
    cache.put(key, Score.ok(0.5, "from a child", answer="7"))


def test_sqlite_cache_is_shared_across_processes(tmp_path):
    path = tmp_path / "verdicts.sqlite"
    parent = VerificationCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(str(path), f"k{i}")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = [parent.get(f"k{i}") for i in range(3)]
    assert all(s is not None and s.value == 0.5 and s.answer == "7" for s in got)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_cache_survives_a_new_instance_and_pickling(tmp_path):
    import pickle

    path = tmp_path / "v.sqlite"
    rubric = Rubric({"f": Format()}, cache=str(path))
    first = rubric.score("<reasoning>\nx\n</reasoning>\n<answer>\n1\n</answer>").total
    again = pickle.loads(pickle.dumps(rubric))
    assert again.score("<reasoning>\nx\n</reasoning>\n<answer>\n1\n</answer>").total == first
    assert again.cache.hits == 1


def test_cached_rubric_in_the_pool_matches_uncached():
    texts = ["\\boxed{1}", "\\boxed{1}", "\\boxed{2}"]
    plain = [r.total for r in Rubric({"m": MathEquivalence()}).score_batch(texts, answer=["1"] * 3)]
    rubric = Rubric({"m": MathEquivalence(), "f": (Format(), 0.5)}, cache=True, workers=2, timeout=30)
    cached = [r.parts["m"].value for r in rubric.score_batch(texts, answer=["1"] * 3)]
    assert cached == plain


@pytest.mark.parametrize("kwargs", [{"max_items": 0}, {"max_items": True}, {"path": 3},
                                    {"path": "/no/such/folder/x.sqlite"}])
def test_bad_cache_settings_raise(kwargs):
    with pytest.raises(InvalidArgument):
        VerificationCache(**kwargs)


def test_bad_rubric_cache_raises():
    with pytest.raises(InvalidArgument, match="cache=3"):
        Rubric({"f": Format()}, cache=3)


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=50), gold=st.one_of(st.text(max_size=10), st.integers(), st.none()),
       value=st.floats(-10, 10), extra=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
def test_stored_scores_round_trip_and_keys_separate(text, gold, value, extra):
    cache = VerificationCache(max_items=4)
    key = cache.key("id", text, {"answer": gold, **extra})
    assert key == cache.key("id", text, {**extra, "answer": gold})
    assert key != cache.key("id2", text, {"answer": gold, **extra})
    score = Score.wrong(value, "r", answer=text)
    cache.put(key, score)
    assert cache.get(key) == score


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_hit_is_the_same_from_memory_or_sqlite_and_is_the_callers_own(tmp_path, on_disk):
    """Memory keeps Scores (no JSON round trip) but a hit must look like one read back from
    sqlite: no elapsed time, JSON details kept, other details dropped, and a copy the caller
    may change without changing the cache."""
    from rewardkit import Score

    path = str(tmp_path / "c.sqlite") if on_disk else None
    cache = VerificationCache(path)
    key = cache.key("id", "text", {"answer": "1"})
    cache.put(key, Score.ok(1.0, "fine", answer="1", steps=[1, 2], note="x"))
    cache.put(cache.key("id", "other", {}), Score.ok(0.5, "odd", blob=object()))
    if on_disk:
        cache = VerificationCache(path)  # a fresh process's view: sqlite only
    hit = cache.get(key)
    assert (hit.value, hit.answer, hit.reason, hit.elapsed) == (1.0, "1", "fine", 0.0)
    assert hit.details == {"steps": [1, 2], "note": "x"}
    hit.details["note"] = "changed"
    assert cache.get(key).details["note"] == "x"
    assert cache.get(cache.key("id", "other", {})).details == {}
    assert cache.key("id", "ab", {}) != cache.key("ida", "b", {})  # fields never run together


def test_cache_identity_leaves_out_what_does_not_change_a_verdict(tmp_path):
    """One identity rule (class and attributes, minus the class's cache_ignores): a judge's
    concurrency, retries and timeout, a reward model's device and batch size do not split
    the cache; the judge's model or rubric and the reward model's label do."""
    from rewardkit.judge import Judge
    from rewardkit.reward_model import RewardModel

    url = "http://127.0.0.1:9/v1"
    j = Judge("Is it right?", base_url=url, model="m")
    assert j.cache_identity() == Judge("Is it right?", base_url=url, model="m", max_concurrency=2, timeout=3.0,
                                       max_retries=0, backoff=0.5).cache_identity()
    assert j.cache_identity() != Judge("Is it right?", base_url=url, model="m2").cache_identity()
    assert j.cache_identity() != Judge("Is it correct?", base_url=url, model="m").cache_identity()
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "config.json").write_text('{"num_labels": 2}')
    rm = RewardModel(str(tmp_path / "rm"), device="cpu")
    assert rm.cache_identity() == RewardModel(str(tmp_path / "rm"), device="cpu", batch_size=32).cache_identity()
    assert rm.cache_identity() != RewardModel(str(tmp_path / "rm"), device="cpu", label_index=1).cache_identity()


def test_row_digests_of_a_group_are_described_once_and_equal_each_rows_own():
    from rewardkit.rubric import _row_digests

    prompt = [{"role": "user", "content": "What is 2 + 3?"}]
    rows = [{"prompt": prompt, "answer": "5"} for _ in range(4)] + [{"prompt": list(prompt), "answer": "6"}]
    calls = []

    class Counting(VerificationCache):
        @staticmethod
        def row_digest(row):
            calls.append(row)
            return VerificationCache.row_digest(row)

    digests = _row_digests(Counting(), rows)
    assert digests == [VerificationCache.row_digest(r) for r in rows]
    assert len(set(digests)) == 2 and len(calls) == 2  # the group once, the other row once
