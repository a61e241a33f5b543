"""build.py: seeding, optimizer, learning-rate schedule, engine choice."""

from __future__ import annotations

import random

import pytest
import torch

from rewardkit import InvalidArgument
from rewardkit_trainer.build import build_engine, build_optimizer, lr_factor, seed_everything
from rewardkit_trainer.config import OptimConfig, RolloutConfig, RunConfig
from rewardkit_trainer.rollout.hf import HFEngine

from .tiny import tiny_model, tiny_tokenizer


def test_seeding_repeats_python_and_torch_draws():
    seed_everything(RunConfig(seed=3))
    a = (random.random(), torch.rand(2).tolist())
    seed_everything(RunConfig(seed=3))
    assert (random.random(), torch.rand(2).tolist()) == a


@pytest.mark.parametrize("kind,at_end", [("constant", 1.0), ("linear", 0.0), ("cosine", 0.0)])
def test_schedule_warms_up_then_follows_its_kind(kind, at_end):
    f = lr_factor(OptimConfig(warmup_steps=2, max_steps=10, lr_scheduler_type=kind))
    assert [f(0), f(1)] == [0.5, 1.0] and f(2) == 1.0
    assert f(10) == pytest.approx(at_end, abs=1e-12)


def test_optimizer_takes_the_optim_section():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer(OptimConfig(learning_rate=1e-3, weight_decay=0.1), [p])
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 0.1


def test_8bit_optimizer_without_bitsandbytes_is_a_clear_error():
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(InvalidArgument, match="optimizer='adamw_8bit'"):
        build_optimizer(OptimConfig(optimizer="adamw_8bit"), [torch.nn.Parameter(torch.zeros(1))])


def test_cpu_model_gets_the_transformers_engine():
    tok = tiny_tokenizer()
    assert isinstance(build_engine(RolloutConfig(rollout_engine="hf"), tiny_model(tok), tok), HFEngine)
