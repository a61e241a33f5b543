"""normalize_then_sum against TRL 1.16's own formula; sum_then_normalize is the rubric's total."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Rubric
from rewardkit_trainer.aggregation import aggregate_rewards
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.trainer import GRPOTrainer

from .tiny import count_a, tiny_model, tiny_tokenizer


def _trl_normalized_sum(values, weights, g):
    """TRL 1.16's normalize_then_sum reward before its batch normalization."""
    from trl.trainer.utils import nanstd

    per_func = torch.tensor(values, dtype=torch.float32)
    grouped = per_func.view(-1, g, per_func.shape[1])
    mean_k = torch.nanmean(grouped, dim=1, keepdim=True)
    std_k = nanstd(grouped, dim=1, keepdim=True)
    reward_k = ((grouped - mean_k) / (std_k + 1e-4)).view(-1, per_func.shape[1])
    return (reward_k * torch.tensor(weights).unsqueeze(0)).nansum(dim=1)


def _rubric(weights):
    return Rubric({f"p{i}": ((lambda k: (lambda text, **c: c[k]))(f"c{i}"), w) for i, w in enumerate(weights)})


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 3), st.data())
def test_matches_trls_per_part_normalization(g, groups, data):
    weights = data.draw(st.lists(st.floats(0.1, 3), min_size=1, max_size=3))
    n = g * groups
    cols = {f"c{i}": data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, None]), min_size=n, max_size=n))
            for i in range(len(weights))}
    # a group where one part has fewer than two values is NaN in TRL (std of one value); keep
    # to groups where each part has >= 2 values, which is what the formulas share
    for c in cols.values():
        for k in range(groups):
            if sum(v is not None for v in c[k * g:(k + 1) * g]) < 2:
                c[k * g], c[k * g + 1] = 1.0, 0.0
    rubric = _rubric(weights)
    results = rubric.score_batch(["x"] * n, **cols)
    ours = aggregate_rewards(rubric, results, g, "normalize_then_sum")
    values = [[math.nan if cols[f"c{i}"][j] is None else cols[f"c{i}"][j] for i in range(len(weights))] for j in range(n)]
    theirs = _trl_normalized_sum(values, weights, g)
    assert torch.allclose(ours, theirs, atol=1e-3), (ours, theirs)


def test_a_large_range_part_no_longer_drowns_a_small_one():
    rubric = _rubric([1.0, 1.0])
    cols = {"c0": [0.0, 100.0, 0.0, 100.0], "c1": [1.0, 0.0, 0.0, 1.0]}
    results = rubric.score_batch(["x"] * 4, **cols)
    summed = aggregate_rewards(rubric, results, 4, "sum_then_normalize")
    normed = aggregate_rewards(rubric, results, 4, "normalize_then_sum")
    assert summed.tolist() == [1.0, 100.0, 0.0, 101.0]
    assert normed[0] == pytest.approx(-normed[1], abs=1e-3) and normed[3] > normed[1]
    assert normed[0] == pytest.approx(0.0, abs=1e-3)  # the parts cancel, as their z-scores do


def test_weight_zero_parts_and_all_abstaining_rows():
    rubric = Rubric({"a": (lambda t, v: v, 1.0), "metric": (lambda t, m: m, 0.0)})
    results = rubric.score_batch(["x"] * 4, v=[None, None, 1.0, 0.0], m=[5.0, 1.0, 2.0, 3.0])
    out = aggregate_rewards(rubric, results, 2, "normalize_then_sum")
    assert out[:2].tolist() == [0.0, 0.0] and out[2] > 0 > out[3]


def test_trainer_step_with_normalize_then_sum_and_bad_names(tmp_path):
    from rewardkit import InvalidArgument

    with pytest.raises(InvalidArgument, match="multi_objective_aggregation='sum'"):
        GRPOConfig(multi_objective_aggregation="sum")
    tok = tiny_tokenizer()
    cfg = GRPOConfig(model="tiny", use_peft=False, num_generations=4, prompts_per_step=2, max_completion_length=8,
                     output_dir=str(tmp_path), eval_size=0, progress=False, report_to=["jsonl"], num_threads=1,
                     multi_objective_aggregation="normalize_then_sum", per_device_train_batch_size=8)
    rubric = Rubric({"a": (count_a, 1.0), "len": (lambda text: len(text) / 10, 0.5)})
    rows = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(4)]
    metrics = GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=rubric, train_rows=rows).train_step()
    assert math.isfinite(metrics["loss"]) and "rewards/a/mean" in metrics
