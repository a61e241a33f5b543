"""rewards.py: the run's rubric from the config, scoring a rollout, which parts count."""

from __future__ import annotations

import pytest

from rewardkit import InvalidArgument, Rubric
from rewardkit_trainer.rewards import build_rubric, correct_part, format_part, score_rollout

from .tiny import count_a


def test_reward_list_becomes_weighted_parts_and_duplicates_raise():
    r = build_rubric([count_a, "rewardkit.scorers:Format"], [1.0, 0.5])
    assert r.part_names[0] == "count_a" and list(r.weights.values()) == [1.0, 0.5]
    with pytest.raises(InvalidArgument, match="duplicate part name"):
        build_rubric([count_a, count_a])
    with pytest.raises(InvalidArgument, match="reward='no_module_q:x'"):
        build_rubric("no_module_q:x")


def test_abstained_total_scores_zero():
    rubric = Rubric({"maybe": lambda text: None if text == "?" else 1.0})
    totals, results = score_rollout(rubric, ["?", "ok"], ["p", "p"], [{"answer": "1"}, {"answer": "1"}])
    assert totals == [0.0, 1.0] and results[0].total is None


def test_correct_and_format_parts_are_found_by_kind_and_name():
    assert correct_part(build_rubric("math")) is not None and format_part(build_rubric("math")) is not None
    r = Rubric({"is_correct": count_a, "other": count_a})
    assert correct_part(r) == "is_correct" and format_part(r) is None
