"""The verl and OpenRLHF adapters, called the way those frameworks call them.

Neither framework is installed here (verl's reward loading pulls in ray, OpenRLHF's
pylatexenc and aiohttp), so these tests follow the documented contracts: each trainer
loads the adapter FILE by its path (``importlib.util.spec_from_file_location``; verl then
binds ``reward_kwargs`` with ``functools.partial``), calls it, and reads the dict back.
"""

from __future__ import annotations

import importlib.util
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Rubric
from rewardkit.scorers import Format
from rewardkit.verifiers import MathEquivalence

ROOT = Path(__file__).resolve().parents[2]
GOOD = "<reasoning>\n3 boxes of 4 is 12.\n</reasoning>\n<answer>\n12\n</answer>"


def _load_file(name: str, attr: str):
    """What verl's get_custom_reward_fn and OpenRLHF's remote_rm_url loader do: the file by path."""
    path = ROOT / "rewardkit" / "adapters" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"custom_{name}_reward", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


# verl ----------------------------------------------------------------------------------


def test_verl_loads_by_path_and_returns_the_dict_form_with_every_part():
    compute_score = partial(_load_file("verl", "compute_score"), rubric="math")  # reward_kwargs
    out = compute_score(data_source="gsm8k", solution_str=GOOD, ground_truth="12", extra_info={"index": 3})
    assert out["score"] == pytest.approx(1.2) and out["correct"] == 1.0 and out["format"] == 1.0
    assert all(isinstance(v, float) for v in out.values())
    wrong = compute_score("gsm8k", GOOD.replace("12\n</answer>", "13\n</answer>"), "12", None)
    assert wrong["score"] == pytest.approx(0.2) and wrong["correct"] == 0.0


def test_verl_rubric_from_the_environment(monkeypatch):
    from rewardkit.adapters.verl import compute_score

    monkeypatch.setenv("REWARDKIT_RUBRIC", "gsm8k_classic")
    out = compute_score("gsm8k", GOOD + "\n", "12", {})
    # soft_format's regex has no DOTALL, so a multi-line completion misses it (the classic defect)
    assert out["score"] == pytest.approx(2.0 + 0.5 + 0.5 + 0.0 + 0.5) and out["soft_format"] == 0.0
    assert {"correctness", "int", "strict_format", "soft_format", "xmlcount"} <= set(out)


def test_verl_extra_info_keys_become_columns_but_never_override_the_gold():
    from rewardkit.adapters.verl import make_compute_score

    seen = {}

    def spy(completions, answer, data_source, level, **kw):
        seen.update(answer=answer, data_source=data_source, level=level)
        return [1.0] * len(completions)

    compute_score = make_compute_score(Rubric({"spy": (spy, 1.0)}))
    assert compute_score("src", "text", "7", {"level": 2, "answer": "WRONG"}) == {"score": 1.0, "spy": 1.0}
    assert seen == {"answer": ["7"], "data_source": ["src"], "level": [2]}


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=200), st.none(), st.integers(), st.lists(st.text(max_size=5))),
       st.one_of(st.text(max_size=20), st.none(), st.floats()))
def test_verl_never_raises_on_hostile_input(solution, truth):
    from rewardkit.adapters.verl import compute_score

    out = compute_score("x", solution, truth, {"k": object()}, rubric="math")
    assert isinstance(out["score"], float) and not math.isnan(out["score"])


# OpenRLHF ------------------------------------------------------------------------------


def test_openrlhf_loads_by_path_and_returns_rewards_scores_and_logs(monkeypatch):
    monkeypatch.setenv("REWARDKIT_RUBRIC", "math")
    reward_func = _load_file("openrlhf", "reward_func")
    prompts = ["<|user|>How many?<|assistant|>", "<|user|>How many?<|assistant|>"]
    queries = [prompts[0] + GOOD, prompts[1] + GOOD.replace("12\n</answer>", "5\n</answer>")]
    out = reward_func(queries, prompts, ["12", "12"])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].tolist() == pytest.approx([1.2, 0.2])
    assert out["scores"].tolist() == [1.0, 0.0]  # the verifier part: 0-1, for dynamic filtering
    assert set(out["extra_logs"]) == {"correct", "format"} and out["extra_logs"]["format"].tolist() == [1.0, 1.0]


def test_openrlhf_completion_is_the_query_without_its_prompt():
    from rewardkit.adapters.openrlhf import completion_of

    assert completion_of("PROMPT answer", "PROMPT ") == "answer"
    assert completion_of("other text", "PROMPT") == "other text"
    assert completion_of(None, None) == ""


def test_openrlhf_scores_clip_the_total_without_a_verifier():
    from rewardkit.adapters.openrlhf import make_reward_func

    reward_func = make_reward_func(Rubric({"fmt": (Format(style="lenient"), 3.0)}))
    out = reward_func(["p" + GOOD, "pjunk"], ["p", "p"], ["1", "1"])
    assert out["rewards"].tolist() == [3.0, 0.0] and out["scores"].tolist() == [1.0, 0.0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=100), st.none(), st.integers()), min_size=1, max_size=4))
def test_openrlhf_never_raises_on_hostile_queries(queries):
    from rewardkit.adapters.openrlhf import make_reward_func

    reward_func = make_reward_func(Rubric({"correct": (MathEquivalence(), 1.0)}))
    out = reward_func(queries, [None] * len(queries), [None] * len(queries))
    assert len(out["rewards"]) == len(queries)
