"""Rubric: weighted totals as TRL computes them, breakdowns, the TRL contract, pools."""

from __future__ import annotations

import math
import os
import pickle
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import completion_text, InvalidArgument, Part, Rubric, RubricResult, Score, Scorer, Status

pytestmark = pytest.mark.usefixtures("warm_math")


class Const:
    """Picklable plain part: always returns ``value``."""

    def __init__(self, value):
        self.value = value

    def __call__(self, text):
        return self.value


class Length(Scorer):
    range = (0.0, 1.0)

    def _score(self, text, **columns):
        return min(1.0, len(text) / 10)


class Sleepy(Scorer):
    def _score(self, text, **columns):
        if "sleep" in text:
            time.sleep(3600)
        if "die" in text:
            os._exit(1)
        return 1.0


def has_answer(prompts, completions, answer, **kwargs):
    # TRL-style parts get completions as TRL gives them (chat messages stay messages)
    return [1.0 if a in completion_text(c) else 0.0 for c, a in zip(completions, answer)]


def plain_digit(text):
    return any(ch.isdigit() for ch in text)


def uses_columns(text, answer, **kwargs):
    return text.strip() == answer


def _rubric():
    return Rubric(
        {"length": (Length(), 1.0), "answer": (has_answer, 2.0), "digit": (plain_digit, 0.5), "len_metric": (len, 0)},
        name="demo",
    )


# --- totals ---------------------------------------------------------------------------
_VALUES = st.one_of(st.none(), st.floats(-10, 10, allow_nan=False))
_WEIGHTS = st.one_of(st.just(0.0), st.floats(0, 5, allow_nan=False))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_VALUES, _WEIGHTS), min_size=1, max_size=6).filter(lambda ps: any(w > 0 for _, w in ps)))
def test_total_is_weighted_sum_of_non_none_weighted_parts(parts):
    rubric = Rubric([Part(f"p{i}", Const(v), weight=w) for i, (v, w) in enumerate(parts)])
    result = rubric.score("anything")
    terms = [w * v for v, w in parts if w > 0 and v is not None]
    if terms:
        assert result.total == pytest.approx(math.fsum(terms), abs=1e-9)
    else:
        assert result.total is None
    assert [result.parts[f"p{i}"].value for i in range(len(parts))] == [v for v, _ in parts]


def test_weight_zero_part_is_reported_but_not_added():
    rubric = Rubric({"a": (Const(1.0), 1.0), "metric": (Const(100.0), 0)})
    result = rubric.score("x")
    assert result.total == 1.0
    assert result.parts["metric"].value == 100.0
    assert result.weights == {"a": 1.0, "metric": 0.0}


def test_all_weighted_parts_abstain_gives_none():
    rubric = Rubric({"a": (Const(None), 1.0), "b": (Const(None), 2.0), "metric": (Const(3.0), 0)})
    result = rubric.score("x")
    assert result.total is None
    assert result.parts["a"].status is Status.ABSTAIN
    assert rubric(completions=["x", "y"]) == [None, None]


def test_nan_from_a_function_abstains_like_trl():
    rubric = Rubric({"a": (Const(float("nan")), 1.0), "b": (Const(0.5), 1.0)})
    result = rubric.score("x")
    assert result.parts["a"].status is Status.ABSTAIN and result.total == 0.5


def test_part_kinds_and_columns():
    result = _rubric().score("the answer is 42", answer="42")
    assert isinstance(result, RubricResult)
    assert result.values == {"length": 1.0, "answer": 1.0, "digit": 1.0, "len_metric": 16.0}
    assert result.total == pytest.approx(1.0 + 2.0 + 0.5)
    assert Rubric([Part("eq", uses_columns)]).score(" 7 ", answer="7").total == 1.0


def test_part_errors_do_not_raise_and_count_as_given():
    def broken(text):
        raise RuntimeError("nope")

    def wrong_length(prompts, completions, **kwargs):
        return [1.0]

    rubric = Rubric({"broken": broken, "batch": wrong_length, "ok": Const(1.0), "text": Const("x")})
    results = rubric.score_batch(["a", "b"])
    for r in results:
        assert r.parts["broken"].status is Status.ERROR and "nope" in r.parts["broken"].reason
        assert r.parts["batch"].status is Status.ERROR
        assert r.parts["text"].status is Status.ERROR
        assert r.total == 1.0  # error scores are 0.0, added like any value


def test_list_forms_and_introspection():
    rubric = Rubric([Length(), ("digit", plain_digit), ("answer", has_answer, 2)], name="r")
    assert rubric.part_names == ("length", "digit", "answer")
    assert rubric.weights == {"length": 1.0, "digit": 1.0, "answer": 2.0}
    assert rubric.name == rubric.__name__ == "r"
    assert "answer=2" in repr(rubric)


# --- batch and TRL contract -----------------------------------------------------------
def test_batch_matches_single_and_trl_call():
    rubric = _rubric()
    texts = ["42", "no", "x 7 y", ""]
    answers = ["42", "1", "7", "0"]
    batch = rubric.score_batch(texts, answer=answers)
    single = [rubric.score(t, answer=a) for t, a in zip(texts, answers)]
    assert [r.total for r in batch] == [r.total for r in single]
    assert rubric(prompts=["p"] * 4, completions=texts, answer=answers) == [r.total for r in batch]


def test_trl_call_accepts_conversational_completions_and_scalars():
    rubric = _rubric()
    logged = {}
    convo = [[{"role": "assistant", "content": "it is 42"}], [{"role": "assistant", "content": "no idea"}]]
    totals = rubric(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=convo,
        answer=["42", "42"],
        completion_ids=[[1, 2], [3]],
        trainer_state=object(),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert totals == [pytest.approx(0.8 + 2 + 0.5), pytest.approx(0.7)]
    assert logged["rewards/demo/answer/mean"] == 0.5
    assert set(logged) == {f"rewards/demo/{p}/mean" for p in rubric.part_names}


def test_reward_funcs_have_stable_names_and_weights():
    rubric = _rubric()
    funcs, weights = rubric.reward_funcs()
    assert [f.__name__ for f in funcs] == ["length", "answer", "digit", "len_metric"]
    assert weights == [1.0, 2.0, 0.5, 0.0]
    outs = [f(prompts=["p", "p"], completions=["42", "abc"], answer=["42", "9"], trainer_state=None) for f in funcs]
    assert outs == [[0.2, 0.3], [1.0, 0.0], [1.0, 0.0], [2.0, 3.0]]
    # TRL's weighted sum over the parts equals the rubric's total
    totals = [sum(w * o[i] for w, o in zip(weights, outs)) for i in range(2)]
    assert totals == pytest.approx(rubric(completions=["42", "abc"], answer=["42", "9"]))
    assert [f.__name__ for f in pickle.loads(pickle.dumps(funcs))] == [f.__name__ for f in funcs]


def test_rubric_pickles_when_parts_do():
    rubric = _rubric()
    clone = pickle.loads(pickle.dumps(rubric))
    assert clone.part_names == rubric.part_names and clone.weights == rubric.weights
    assert clone.score("42", answer="42").total == rubric.score("42", answer="42").total


def test_summarize():
    rubric = _rubric()
    results = rubric.score_batch(["42", "no", "7"], answer=["42", "1", "0"])
    summary = rubric.summarize(results)
    assert summary["count"] == 3
    assert summary["parts"]["answer"]["mean"] == pytest.approx(1 / 3)
    assert summary["parts"]["answer"]["zero_share"] == pytest.approx(2 / 3)
    assert summary["parts"]["answer"]["status"]["ok"] == 1.0
    assert summary["total"]["mean"] == pytest.approx(sum(r.total for r in results) / 3)
    assert summary["parts"]["len_metric"]["weight"] == 0.0


def test_progress_callback_reaches_total():
    seen = []
    _rubric().score_batch(["a", "b"], answer=["a", "b"], progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2, 2)


# --- pool -------------------------------------------------------------------------------
def test_pool_scores_equal_in_process_scores_in_order():
    rubric = _rubric()
    texts = [f"{i} " * (i % 6) for i in range(40)]
    answers = [str(i) for i in range(40)]
    local = rubric.score_batch(texts, answer=answers)
    pooled = rubric.score_batch(texts, answer=answers, workers=2, timeout=30)
    assert [r.total for r in pooled] == [r.total for r in local]
    assert [r.values for r in pooled] == [r.values for r in local]


def test_pool_timeout_hits_only_the_slow_part():
    rubric = Rubric({"sleepy": (Sleepy(), 1.0), "length": (Length(), 1.0)})
    results = rubric.score_batch(["fine", "sleep", "die"], workers=2, timeout=1.0)
    assert results[0].total == pytest.approx(1.4)
    assert results[1].parts["sleepy"].status is Status.TIMEOUT
    assert results[1].parts["length"].value == 0.5 and results[1].total == 0.5
    assert results[2].parts["sleepy"].status is Status.ERROR


def test_timeout_without_workers_uses_a_process():
    rubric = Rubric({"sleepy": (Sleepy(), 1.0)})
    assert rubric.score_batch(["sleep"], timeout=0.5)[0].parts["sleepy"].status is Status.TIMEOUT


def test_constructor_defaults_give_trl_calls_a_hard_timeout():
    rubric = Rubric({"sleepy": (Sleepy(), 1.0), "length": (Length(), 0.5)}, workers=2, timeout=0.5)
    assert rubric(prompts=["p", "p"], completions=["sleep", "fine"]) == [pytest.approx(0.25), pytest.approx(1.2)]
    funcs, _ = rubric.reward_funcs()
    assert funcs[0](completions=["sleep", "fine"]) == [0.0, 1.0]
    clone = pickle.loads(pickle.dumps(rubric))
    assert (clone.workers, clone.timeout) == (2, 0.5)


def test_pool_with_unpicklable_parts_falls_back_to_fork():
    rubric = Rubric({"lam": (lambda text: len(text), 1.0)})
    assert [r.total for r in rubric.score_batch(["ab", "abc"], workers=2, timeout=10)] == [2.0, 3.0]


# --- invalid arguments -------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Rubric({}), "parts={} must hold at least one part"),
        (lambda: Rubric("abc"), "parts='abc'"),
        (lambda: Rubric([42]), "parts=42"),
        (lambda: Rubric({"a": (Const(1), -1.0)}), "a.weight=-1.0 must be finite and >= 0"),
        (lambda: Rubric({"a": (Const(1), float("nan"))}), "a.weight=nan"),
        (lambda: Rubric({"a": (Const(1), float("inf"))}), "a.weight=inf"),
        (lambda: Rubric({"a": (Const(1), "1")}), "a.weight='1' must be a real number"),
        (lambda: Rubric({"a": (Const(1), True)}), "a.weight=True"),
        (lambda: Rubric({"a": ("not callable", 1.0)}), "a.func='not callable' must be callable"),
        (lambda: Rubric({"a": (Const(1), 0.0)}), "weights=[0.0] must include at least one weight > 0"),
        (lambda: Rubric([Part("a", Const(1)), Part("a", Const(2))]), "parts='a' is a duplicate part name"),
        (lambda: Rubric({"": Const(1)}), "name='' must be a non-empty string"),
        (lambda: Rubric({"a": Const(1)}, name=""), "name=''"),
        (lambda: Part(3, Const(1)), "name=3"),
        (lambda: Rubric({"a": Const(1)}, workers=0), "workers=0 must be a positive int or None"),
        (lambda: Rubric({"a": Const(1)}, workers=2.0), "workers=2.0"),
        (lambda: Rubric({"a": Const(1)}, timeout=-1), "timeout=-1 must be a positive finite number"),
        (lambda: Rubric({"a": Const(1)}, timeout=float("inf")), "timeout=inf"),
        (lambda: _rubric().score_batch(["a"], prompts=["p", "q"]), "prompts="),
        (lambda: _rubric().score_batch(["a"], workers=-1), "workers=-1"),
        (lambda: _rubric().score_batch(["a"], workers=1, timeout=0), "timeout=0"),
    ],
)
def test_invalid_arguments(build, message):
    with pytest.raises(InvalidArgument) as info:
        build()
    assert message in str(info.value)


def test_scores_are_scores():
    result = _rubric().score("42", answer="42")
    assert all(isinstance(s, Score) for s in result.parts.values())
    assert result.as_dict()["total"] == result.total


# --- factories -----------------------------------------------------------------------------
_TIDY_RIGHT = "<reasoning>\n2+2=4\n</reasoning>\n<answer>\n4\n</answer>\n"


def test_math_rubric_correctness_outweighs_format():
    from rewardkit.rubrics import math_rubric

    rubric = math_rubric()
    assert rubric.part_names == ("correct", "format") and rubric.weights == {"correct": 1.0, "format": 0.2}
    right = rubric.score(_TIDY_RIGHT, answer="4")
    tidy_wrong = rubric.score(_TIDY_RIGHT.replace("4\n</answer>", "5\n</answer>"), answer="4")
    untidy_right = rubric.score("so it is \\boxed{4}", answer="4")
    assert right.total == pytest.approx(1.2)
    assert untidy_right.total >= 1.0 > tidy_wrong.total
    assert math_rubric(format_weight=0).score(_TIDY_RIGHT, answer="4").total == 1.0


def test_gsm8k_classic_reproduces_the_notebook_scores():
    from rewardkit.rubrics import gsm8k_classic

    rubric = gsm8k_classic()
    assert rubric.part_names == ("xmlcount", "soft_format", "strict_format", "int", "correctness")
    assert set(rubric.weights.values()) == {1.0}
    result = rubric.score(_TIDY_RIGHT, answer="4")
    # soft_format is 0 on a multi-line completion: the classic regex has no DOTALL
    assert result.values == {"xmlcount": 0.5, "soft_format": 0.0, "strict_format": 0.5, "int": 0.5, "correctness": 2.0}


# --- hostile input ------------------------------------------------------------------------
def _picky(prompts, completions, **kwargs):
    # a sloppy user function: breaks on chat messages and on some strings
    return [1.0 / (len(c) % 3) for c in completions]


@settings(max_examples=30, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.none(),
        st.binary(max_size=50),
        st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]), st.text(max_size=20)), max_size=3),
        st.integers(),
    )
)
def test_hostile_completions_never_raise(completion):
    rubric = Rubric({"picky": (_picky, 1.0), "length": (Length(), 1.0), "digit": (plain_digit, 0.5)})
    result = rubric.score(completion)
    assert result.total is None or math.isfinite(result.total)
    assert set(result.parts) == {"picky", "length", "digit"}
    assert rubric(completions=[completion, completion]) == [result.total] * 2


def test_megabyte_completion_and_missing_columns():
    rubric = _rubric()
    result = rubric.score("9" * (1 << 20))  # no answer column: the TRL part errors, others score
    assert result.parts["answer"].status is Status.ERROR
    assert result.parts["length"].value == 1.0 and result.total == pytest.approx(1.5)


def test_pool_unpicklable_completion_fails_only_its_row():
    from rewardkit.rubrics import math_rubric

    completions = [f"<answer>{i}</answer>" for i in range(40)]
    completions[3] = [{"role": "assistant", "content": "<answer>3</answer>", "meta": lambda: 3}]
    results = math_rubric().score_batch(completions, answer=[str(i) for i in range(40)], workers=2, timeout=60)
    bad = results[3].parts["correct"]
    assert bad.status is Status.ERROR and "input not picklable" in bad.reason
    assert all(r.parts["correct"].status is Status.OK for i, r in enumerate(results) if i != 3)


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"answer": ["42"]}, "answer=.* 1 for 2 completions"),
        ({"answer": ["42", "7", "9"]}, "answer=.* 3 for 2 completions"),
        ({"answer": "42"}, "answer='42' must be a per-row list .* not a single str"),
        ({"answer": b"42"}, "answer='42' must be a per-row list .* not a single bytes"),
        ({"answer": 42}, "answer='42' must be a per-row list .* not a single int"),
        ({"answer": {"a": "42"}}, "not a single dict"),
        ({"answer": iter(["42", "7"])}, "not a single list_iterator"),
    ],
    ids=["short", "long", "str", "bytes", "int", "dict", "iterator"],
)
def test_a_column_that_is_not_one_entry_per_completion_raises(columns, message):
    from rewardkit.rubrics import math_rubric

    rubric = math_rubric()
    funcs, _ = rubric.reward_funcs()
    calls = [
        lambda: rubric(prompts=["p", "q"], completions=["42", "7"], **columns),
        lambda: rubric.score_batch(["42", "7"], **columns),
        lambda: funcs[0](prompts=["p", "q"], completions=["42", "7"], **columns),
        lambda: rubric.parts[0].func.score_batch(["42", "7"], **columns),
        lambda: rubric.parts[0].func(completions=["42", "7"], **columns),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match=message):
            call()


def test_trl_columns_still_arrive_per_row():
    import numpy as np

    from rewardkit.rubrics import math_rubric

    rubric = math_rubric(format_weight=0.0)
    trl = dict(trainer_state=object(), log_extra=lambda **k: None, log_metric=lambda *a: None,
               completion_ids=[[1], [2]], environments=[None, None])
    assert rubric(prompts=["p", "q"], completions=["42", "7"], answer=["42", "8"], **trl) == [1.0, 0.0]
    assert rubric(completions=["42", "7"], answer=("42", "7"), other=None) == [1.0, 1.0]
    assert rubric(completions=["42", "7"], answer=np.array(["42", "8"])) == [1.0, 0.0]  # was dropped


# --- gates (issue #17) ------------------------------------------------------------------
def _gated_rubric():
    from rewardkit.presets import math_rubric

    return math_rubric(format_gate=True)


def test_a_gated_part_pays_only_when_its_gate_read_an_answer():
    r = _gated_rubric()
    right = "<reasoning>\n2 + 4\n</reasoning>\n<answer>\n6\n</answer>"
    wrong = "<reasoning>\n2 + 4\n</reasoning>\n<answer>\n7\n</answer>"
    unread = "<reasoning>\n2 + 4\n</reasoning>\n<answer>\nI do not know\n</answer>"
    assert r.score(right, answer="6").total == pytest.approx(1.2)
    assert r.score(wrong, answer="6").total == pytest.approx(0.2)  # read, wrong: form still paid
    res = r.score(unread, answer="6")
    assert res.parts["correct"].status is Status.UNPARSEABLE
    assert res.total == 0.0 and res.parts["format"].reason.startswith("gated: correct is unparseable")
    from rewardkit.presets import math_rubric

    ungated = math_rubric().score(unread, answer="6")
    assert ungated.parts["format"].value == 1.0
    batch = r.score_batch([right, wrong, unread], answer=["6"] * 3)
    assert [b.total for b in batch] == pytest.approx([1.2, 0.2, 0.0])
    funcs, weights = r.reward_funcs()  # TRL calls each part alone: the gate still applies
    assert funcs[1](completions=[right, unread], answer=["6", "6"]) == [1.0, 0.0]
    assert r(completions=[right, unread], answer=["6", "6"]) == pytest.approx([1.2, 0.0])


def test_gates_survive_pickling_and_bad_gates_raise():
    import pickle

    r = _gated_rubric()
    assert pickle.loads(pickle.dumps(r)).gates == {"format": "correct"}
    parts = {"a": (lambda t: 1.0, 1.0), "b": (lambda t: 1.0, 1.0)}
    for gates in ({"a": "zzz"}, {"a": "a"}, {"a": "b", "b": "a"}, ["a"]):
        with pytest.raises(InvalidArgument, match="gates"):
            Rubric(parts, gates=gates)
    with pytest.raises(InvalidArgument, match="format_gate"):
        from rewardkit.presets import math_rubric

        math_rubric(format_gate="yes")


def test_trl_part_functions_score_a_gate_once():
    from rewardkit import Verifier

    calls = []

    class Reads(Verifier):
        default_name = "reads"

        def _score(self, text, **columns):
            calls.append(text)
            return Score.ok(1.0) if text.strip().isdigit() else Score.unparseable(reason="no number")

    r = Rubric({"correct": (Reads(), 1.0), "form": (lambda t: 1.0, 0.2)}, gates={"form": "correct"})
    funcs, _ = r.reward_funcs()
    completions = ["12", "twelve"]
    assert funcs[0](completions=completions) == [1.0, 0.0]
    assert funcs[1](completions=completions) == [1.0, 0.0]  # the gate's verdicts are reused
    assert len(calls) == 2
    assert funcs[1](completions=["7", "x"]) == [1.0, 0.0]  # another batch: the gate is scored for it
    assert len(calls) == 4
