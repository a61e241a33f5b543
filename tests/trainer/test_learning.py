"""End to end on CPU with a tiny random Llama: it learns a toy verifiable task, and a
LoRA run writes every artifact (metrics, completions, PNG, report, adapter, merged)."""

from __future__ import annotations

import json

import pytest

from rewardkit import Rubric
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.trainer import GRPOTrainer

from .tiny import count_a, tiny_model, tiny_tokenizer

ROWS = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(16)]


def _config(tmp_path, **kw):
    base = dict(model="tiny", use_peft=False, learning_rate=3e-3, num_generations=8, prompts_per_step=2,
                max_completion_length=12, output_dir=str(tmp_path / "run"), eval_size=0, progress=False,
                report_to=["jsonl"], max_grad_norm=1.0, per_device_train_batch_size=16, num_threads=1, seed=0)
    return GRPOConfig(**{**base, **kw})


@pytest.mark.slow
def test_tiny_model_learns_toy_task(tmp_path):
    tok = tiny_tokenizer()
    cfg = _config(tmp_path, max_steps=40)
    trainer = GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=count_a, train_rows=ROWS[:12],
                          eval_rows=ROWS[12:])
    before = trainer.evaluate(k=4)["reward"]
    result = trainer.train(evaluate=False)
    after = trainer.evaluate(k=4)["reward"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rewards = [json.loads(line)["reward/mean"] for line in lines]
    assert len(rewards) == 40 and result["steps"] == 40
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.2, (first, last)
    assert after > before + 0.2, (before, after)


def test_lora_run_writes_artifacts(tmp_path):
    tok = tiny_tokenizer()
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(tok), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    rubric = Rubric({"a_share": (count_a, 1.0), "format": (lambda text: "a" in text, 0.0)}, name="toy")
    cfg = _config(tmp_path, use_peft=True, max_steps=3, beta=0.04, loss_type="grpo", num_iterations=2,
                  mask_truncated_completions=True, save_steps=2, eval_size=2, sft_steps=2, log_completions=2)
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, rubric=rubric, train_rows=ROWS[:12], eval_rows=ROWS[12:14])
    result = trainer.train()
    out = tmp_path / "run"
    for name in ("metrics.jsonl", "completions.jsonl", "reward_curve.png", "report.md", "eval.json",
                 "adapter/adapter_config.json", "merged/config.json", "checkpoint-3/state.pt"):
        assert (out / name).exists(), name
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = metrics[-1]
    for key in ("reward/mean", "rewards/a_share/mean", "rewards/format/std", "kl", "clip_fraction",
                "frac_reward_zero_std", "completion_length/mean", "tokens_per_s"):
        assert key in last, key
    assert result["before"] and result["after_sft"] and result["after"]
    assert "held-out metric" in (out / "report.md").read_text()


def test_merged_model_equals_adapter_model(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit_trainer.models import save_merged
    from rewardkit_trainer.logprobs import sequence_logprobs

    tok = tiny_tokenizer()
    model = get_peft_model(tiny_model(tok), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    save_merged(model, tok, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    prompts, comps = [tok("say a")["input_ids"]], [tok("abc")["input_ids"]]
    with torch.no_grad():
        a, _ = sequence_logprobs(model, prompts, comps)
        b, _ = sequence_logprobs(merged, prompts, comps)
    assert torch.allclose(a, b, atol=1e-5)
    assert not (tmp_path / "merged.tmp").exists()


def test_hostile_reward_functions_do_not_stop_training(tmp_path):
    """A part that raises, one that abstains and one returning NaN: the step still runs,
    rewards stay finite, and the broken parts are logged as such instead of crashing."""
    import math

    def boom(prompts=None, completions=None, **kw):
        raise RuntimeError("reward server down")

    def nan(text):
        return float("nan")

    tok = tiny_tokenizer()
    rubric = Rubric({"a": (count_a, 1.0), "boom": (boom, 1.0), "abstain": (lambda text: None, 1.0),
                     "nan": (nan, 1.0)}, name="hostile")
    cfg = _config(tmp_path, max_steps=1)
    trainer = GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=rubric, train_rows=ROWS, eval_rows=[])
    metrics = trainer.train_step()
    assert math.isfinite(metrics["reward/mean"]) and math.isfinite(metrics["loss"])


def test_self_sft_targets_teach_format_from_own_answers(tmp_path):
    from rewardkit.scorers import Format

    from rewardkit_trainer.sft import self_targets, sft_warm_start

    tok = tiny_tokenizer()
    cfg = _config(tmp_path, sft_steps=3, sft_targets="self", sft_examples=4, per_device_train_batch_size=4)
    trainer = GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=count_a, train_rows=ROWS, eval_rows=[])
    targets = self_targets(trainer.engine, trainer.encode_prompt, ROWS[:3], cfg.max_completion_length)
    assert len(targets) == 3 and all(Format(style="strict").score(t).value == 1.0 for t in targets)
    losses = sft_warm_start(trainer.model, tok, trainer.engine, trainer.encode_prompt, trainer.train_rows, cfg.sft,
                            batch_size=cfg.per_device_train_batch_size, max_completion_length=cfg.max_completion_length)
    assert len(losses) == 3 and losses[-1] < losses[0]
