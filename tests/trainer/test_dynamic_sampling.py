"""DAPO dynamic sampling: zero-variance groups dropped and refilled, bounded, lockstep."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.dynamic_sampling import Draw, fill_groups, zero_std_groups
from rewardkit_trainer.rollout.base import Rollout
from rewardkit_trainer.trainer import GRPOTrainer

from .tiny import tiny_model, tiny_tokenizer

G = 2


def _draws(flat_patterns):
    """draw(k, index) returning groups whose zero-variance flags follow ``flat_patterns[index]``."""
    calls = []

    def draw(k, index):
        pattern = flat_patterns[min(index, len(flat_patterns) - 1)]
        assert len(pattern) == k
        calls.append(index)
        rewards = []
        for p, flat in enumerate(pattern):
            rewards += [1.0, 1.0] if flat else [0.0, 1.0]
        n = k * G
        tag = [f"d{index}p{p}" for p in range(k)]
        rollout = Rollout(prompt_ids=[[p] for p in range(k)], completion_ids=[[i] for i in range(n)],
                          texts=[f"{tag[i // G]}c{i % G}" for i in range(n)], truncated=[False] * n,
                          stats={"seconds": 1.0 + index, "tokens": n})
        return Draw([{"tag": t} for t in tag], [[p] for p in range(k)], rollout, rewards[:], [None] * n,
                    torch.tensor(rewards))

    return draw, calls


def test_zero_variance_groups_are_replaced_from_new_prompts():
    draw, calls = _draws([[True, False, True], [False, True, True], [False, False, False]])
    batch, m = fill_groups(draw, 3, G, enabled=True, max_num_gen_batches=4)
    assert calls == [0, 1, 2] and [r["tag"] for r in batch.rows] == ["d0p1", "d1p0", "d2p0"]
    assert m == {"frac_reward_zero_std": 2 / 3, "dynamic_sampling/refills": 2.0,
                 "dynamic_sampling/padded_groups": 0.0, "dynamic_sampling/groups_with_signal": 3.0}
    assert not any(zero_std_groups(batch.rewards, G))
    assert batch.rollout.texts[:2] == ["d0p1c0", "d0p1c1"] and len(batch.rollout.completion_ids) == 6


def test_the_bound_pads_with_zero_variance_groups_so_the_step_size_never_changes():
    draw, calls = _draws([[True, True, False], [True, True, True]])
    batch, m = fill_groups(draw, 3, G, enabled=True, max_num_gen_batches=2)
    assert calls == [0, 1] and len(batch.rows) == 3
    assert m["dynamic_sampling/padded_groups"] == 2.0 and m["dynamic_sampling/refills"] == 1.0
    # draw 0 gave one kept and two padded groups: its time and tokens count once, with draw 1's
    assert batch.rollout.stats["seconds"] == 1.0 + 2.0 and batch.rollout.stats["tokens"] == 12
    assert batch.rollout.stats["tokens_per_s"] == 4.0


def test_disabled_returns_the_first_draw_and_logs_before_filtering():
    draw, calls = _draws([[True, False]])
    batch, m = fill_groups(draw, 2, G, enabled=False, max_num_gen_batches=4)
    assert calls == [0] and m == {"frac_reward_zero_std": 0.5} and len(batch.rows) == 2


def test_agree_keeps_ranks_drawing_together():
    """Rank A is satisfied after one draw, rank B is not: with agree (an all-reduce MAX in
    the distributed code) both draw twice and both end with the same number of groups."""
    a, a_calls = _draws([[False, False], [True, True]])
    b, b_calls = _draws([[True, True], [False, True]])
    wants = []

    def agree_a(need):
        wants.append(need)
        return True  # B still needs a draw

    batch_a, _ = fill_groups(a, 2, G, enabled=True, max_num_gen_batches=2, agree=agree_a)
    batch_b, _ = fill_groups(b, 2, G, enabled=True, max_num_gen_batches=2)
    assert a_calls == b_calls == [0, 1] and wants == [False]
    assert len(batch_a.rows) == len(batch_b.rows) == 2


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.data())
def test_every_step_has_exactly_the_asked_number_of_groups(k, bound, data):
    patterns = data.draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=1, max_size=5))
    draw, calls = _draws(patterns)
    batch, m = fill_groups(draw, k, G, enabled=True, max_num_gen_batches=bound)
    assert len(batch.rows) == k and batch.rewards.numel() == k * G and len(calls) <= bound
    assert m["dynamic_sampling/groups_with_signal"] + m["dynamic_sampling/padded_groups"] == k
    signal = sum(not z for z in zero_std_groups(batch.rewards, G))
    assert signal == m["dynamic_sampling/groups_with_signal"]


def test_config_checks():
    with pytest.raises(InvalidArgument, match="max_num_gen_batches=0"):
        GRPOConfig(max_num_gen_batches=0)
    with pytest.raises(InvalidArgument, match="dynamic_sampling"):
        GRPOConfig(dynamic_sampling=True, backend="trl")


def test_real_trainer_step_refills(tmp_path):
    """A reward that is flat for the first prompts: the step draws again and trains on the rest."""
    tok = tiny_tokenizer()
    rows = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a", "flat": i < 2} for i in range(8)]

    def reward(prompts=None, completions=None, flat=None, **kw):
        return [0.0 if f else float(len(c)) for c, f in zip(completions, flat)]

    cfg = GRPOConfig(model="tiny", use_peft=False, num_generations=4, prompts_per_step=2, max_completion_length=8,
                     output_dir=str(tmp_path), eval_size=0, progress=False, report_to=["jsonl"], num_threads=1,
                     dynamic_sampling=True, max_num_gen_batches=3, per_device_train_batch_size=4,
                     temperature=1.5)
    trainer = GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=reward, train_rows=rows)
    trainer.sampler.take = lambda k, _it=iter(range(100)): [next(_it) % 8 for _ in range(k)]  # prompts 0,1 first
    m = trainer.train_step()
    assert m["frac_reward_zero_std"] == 1.0  # both first prompts were flat, measured before filtering
    assert m["dynamic_sampling/refills"] >= 1 and math.isfinite(m["loss"])
    assert m["dynamic_sampling/groups_with_signal"] + m["dynamic_sampling/padded_groups"] == 2
