"""distributed.Parallel without a process group: the one-process identities, the
configuration it refuses under torchrun, per-group seeds, and checkpoint discovery that
never picks a folder cut off mid-write, and one two-process gloo check of metric reduction.
(Real torchrun runs: test_distributed.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rewardkit.errors import InvalidArgument
from rewardkit_trainer.checkpoint import latest_checkpoint
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.distributed import DEFAULT_REWARD_TIMEOUT, Parallel, group_seed
from rewardkit_trainer.rollout.base import SamplingParams, generate_groups
from rewardkit_trainer.rollout.hf import HFEngine

from .tiny import tiny_model, tiny_tokenizer


def test_one_process_is_the_identity(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    p = Parallel.setup(GRPOConfig().run)
    assert not p.enabled and p.world_size == 1 and p.is_main
    model = torch.nn.Linear(2, 2)
    assert p.wrap(model) is model and p.rollout_model(model) is model and p.refresh_rollout_model(model) is model
    assert p.gather([1, 2]) == [1, 2] and p.sum(3) == 3 and p.mean(2.5) == 2.5 and p.max(1.0) == 1.0
    assert p.shard([5, 6, 7]) == ([5, 6, 7], 0) and p.strided([1, 2]) == [1, 2]
    assert p.weighted_mean({"a": 0.5}, 4) == {"a": 0.5}
    assert p.reward_timeout(None) is None and p.reward_timeout(3.0) == 3.0


def test_shares_of_a_step_cover_it_in_order():
    items = list(range(8))
    shares = [Parallel(rank=r, world_size=4, enabled=True).shard(items) for r in range(4)]
    assert [x for s, _ in shares for x in s] == items
    assert [off for _, off in shares] == [0, 2, 4, 6]
    assert sorted(x for r in range(3) for x in Parallel(rank=r, world_size=3, enabled=True).strided(items)) == items


def test_more_than_one_rank_gets_a_reward_timeout():
    p = Parallel(rank=0, world_size=2, enabled=True)
    assert p.reward_timeout(None) == DEFAULT_REWARD_TIMEOUT and p.reward_timeout(5.0) == 5.0


@pytest.mark.parametrize("kwargs, field", [
    ({"prompts_per_step": 3}, "prompts_per_step"),
    ({"use_peft": False, "sft_steps": 2}, "sft_steps"),
    ({"load_in_4bit": True}, "load_in_4bit"),
])
def test_torchrun_refuses_settings_that_change_the_update(kwargs, field):
    p = Parallel(rank=0, world_size=2, enabled=True)
    with pytest.raises(InvalidArgument, match=field) as err:
        p.check(GRPOConfig(**kwargs))
    assert str(kwargs[field]) in str(err.value)
    Parallel().check(GRPOConfig(**kwargs))  # one process: not refused here


@pytest.mark.parametrize("kwargs", [{"ddp_timeout": 0}, {"ddp_timeout": -1.0}, {"mixed_precision": "fp8"}])
def test_bad_distributed_settings_raise(kwargs):
    with pytest.raises(InvalidArgument, match=next(iter(kwargs))):
        GRPOConfig(**kwargs)


@given(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 4096))
def test_group_seeds_differ_across_positions_and_steps(seed, step, index):
    s = group_seed(seed, step, index)
    assert 0 <= s < 2**63
    assert s != group_seed(seed, step, index + 1) and s != group_seed(seed, step + 1, index)


def test_a_groups_completions_do_not_depend_on_its_batch():
    tok = tiny_tokenizer()
    engine = HFEngine(tiny_model(tok), tok)
    prompts = [tok("say a 1")["input_ids"], tok("a much longer prompt 22")["input_ids"]]
    params = SamplingParams(num_generations=3, max_completion_length=6, temperature=1.0)
    both = generate_groups(engine, prompts, params, [11, 12])
    alone = generate_groups(engine, prompts[1:], params, [12])  # as another rank would draw it
    assert both.completion_ids[3:] == alone.completion_ids and len(both.completion_ids) == 6
    # the batched forward pads the shorter prompt, so log-probs agree to float rounding
    for a, b in zip(both.logprobs[3:], alone.logprobs):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5, rtol=0)
    assert both.stats["tokens"] == sum(map(len, both.completion_ids))
    again = generate_groups(engine, prompts, params, [11, 13])  # another seed moves only its own group
    assert again.completion_ids[:3] == both.completion_ids[:3] and again.completion_ids[3:] != both.completion_ids[3:]


def test_a_checkpoint_cut_off_mid_write_is_never_loaded(tmp_path):
    good = tmp_path / "checkpoint-2"
    good.mkdir()
    (good / "meta.pt").write_bytes(b"x")
    (tmp_path / ".checkpoint-3.tmp").mkdir()  # killed while writing: never renamed
    (tmp_path / ".checkpoint-3.tmp" / "meta.pt").write_bytes(b"x")
    (tmp_path / "checkpoint-4").mkdir()  # a folder with neither state.pt nor meta.pt
    (tmp_path / "checkpoint-4" / "__0_0.distcp").write_bytes(b"x")
    assert latest_checkpoint(tmp_path) == good


def _reduce_worker(rank: int, store_path: str, out_path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2)
    p = Parallel(rank=rank, world_size=2, enabled=True)
    mine = {"loss": 1.0 + rank, "grad_norm": 7.0, "clip_fraction": 0.1 * (rank + 1),
            "sampling/ratio/min": 0.5 + rank, "sampling/ratio/max": 2.0 - rank}
    if rank == 1:
        mine["only/on/one"] = 3.0
    out = p.reduce_metrics(mine, sums=("loss",), same=("grad_norm",))
    if rank == 0:
        Path(out_path).write_text(json.dumps(out))
    dist.destroy_process_group()


def test_reduce_metrics_over_two_real_ranks(tmp_path):
    """Loss shares add up, min and max are over ranks (not averaged), the rest are means,
    and a key only one rank has is not dropped (gloo, two processes, one collective)."""
    import torch.multiprocessing as mp

    mp.spawn(_reduce_worker, args=(str(tmp_path / "store"), str(tmp_path / "out.json")), nprocs=2)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["loss"] == 3.0 and out["grad_norm"] == 7.0
    assert out["clip_fraction"] == pytest.approx(0.15)
    assert out["sampling/ratio/min"] == 0.5 and out["sampling/ratio/max"] == 2.0
    assert out["only/on/one"] == 3.0
