"""backend="trl": the same config and rubric run two steps through TRL's GRPOTrainer."""

from __future__ import annotations

import pytest

from rewardkit import Rubric
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.launch import train
from rewardkit_trainer.trl_backend import trl_args

from .tiny import count_a, tiny_model, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

ROWS = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(8)]


def test_config_maps_onto_trl():
    args = trl_args(GRPOConfig(loss_type="gspo", prompts_per_step=3, num_generations=4,
                               per_device_train_batch_size=8, epsilon_high=0.28, output_dir="/tmp/x"))
    assert args.loss_type == "grpo" and args.importance_sampling_level == "sequence"
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 12
    assert args.epsilon_high == 0.28 and args.num_generations == 4


@pytest.mark.slow
def test_trl_backend_runs_two_steps(tmp_path):
    tok = tiny_tokenizer()
    rubric = Rubric({"a_share": (count_a, 1.0), "has_b": (lambda text: "b" in text, 0.5)}, name="toy")
    cfg = GRPOConfig(model="tiny", backend="trl", use_peft=True, lora_r=4, lora_alpha=8,
                     lora_target_modules=["q_proj", "v_proj"], max_steps=2, num_generations=4, prompts_per_step=2,
                     per_device_train_batch_size=8, max_completion_length=8, learning_rate=1e-3,
                     output_dir=str(tmp_path), progress=False, num_threads=1, eval_size=2)
    result = train(cfg, model=tiny_model(tok), tokenizer=tok, rubric=rubric, train_rows=ROWS[:6],
                   eval_rows=ROWS[6:])
    assert result["steps"] == 2 and result["engine"] == "trl"
    logs = result["log_history"]
    assert logs and "rewards/a_share/mean" in logs[-1] and "rewards/has_b/mean" in logs[-1]
    assert result["before"] is not None and result["after"] is not None
