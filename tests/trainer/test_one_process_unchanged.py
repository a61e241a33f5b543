"""The one-process path keeps today's numbers: a tiny run logs the very losses, rewards
and grad norms recorded on main before the distributed trainer landed (issue 18).

If this fails after a change, the change altered RNG consumption or the math of the
single-process loop; the demo's printed accuracies would move with it."""

from __future__ import annotations

import json

import pytest

from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.trainer import GRPOTrainer

from .tiny import tiny_model, tiny_tokenizer

ROWS = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(12)]


def variety(completions, **kwargs):
    """A reward that varies within every group: distinct characters per completion."""
    return [len(set(c)) / 8 for c in completions]


KEYS = ("loss", "grad_norm", "reward/mean", "completion_length/mean")

# recorded on main at a485e9c (before issue 18), CPU, torch 2.13
GOLDEN = {
    "full": [{"loss": -0.07374099642038345, "grad_norm": 0.8866567611694336, "reward/mean": 0.859375,
              "completion_length/mean": 7.625},
             {"loss": 7.450580596923828e-09, "grad_norm": 0.8353992700576782, "reward/mean": 0.953125,
              "completion_length/mean": 8.0},
             {"loss": -0.07095290329612691, "grad_norm": 0.7924773693084717, "reward/mean": 0.859375,
              "completion_length/mean": 7.625}],
    "lora": [{"loss": -0.0009205620735883713, "grad_norm": 0.038784757256507874, "reward/mean": 0.859375,
              "completion_length/mean": 7.625},
             {"loss": -0.0005547106266021729, "grad_norm": 0.03658227249979973, "reward/mean": 0.953125,
              "completion_length/mean": 8.0},
             {"loss": -0.0004098638892173767, "grad_norm": 0.05336623638868332, "reward/mean": 0.875,
              "completion_length/mean": 7.625}],
}


def run(tmp_path, kind: str) -> list[dict]:
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    kw = dict(use_peft=False)
    if kind == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        kw = dict(use_peft=True, beta=0.04, loss_type="grpo", num_iterations=2)
    cfg = GRPOConfig(model="tiny", learning_rate=3e-3, num_generations=4, prompts_per_step=2,
                     max_completion_length=8, output_dir=str(tmp_path / kind), eval_size=0, progress=False,
                     report_to=["jsonl"], max_grad_norm=1.0, per_device_train_batch_size=4, num_threads=1,
                     seed=5, max_steps=3, save_merged=False, **kw)
    GRPOTrainer(cfg, model=model, tokenizer=tok, rubric=variety, train_rows=ROWS).train(evaluate=False)
    rows = [json.loads(x) for x in (tmp_path / kind / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in KEYS} for r in rows]


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_one_process_numbers_unchanged(tmp_path, kind):
    got = run(tmp_path, kind)
    assert len(got) == 3
    assert got == GOLDEN[kind]
