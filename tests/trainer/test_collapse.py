"""The trainer says once, in plain words, when every group had the same reward for
several steps in a row (GRPO then trains on nothing): the run monitor's ``no_signal``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from rewardkit_trainer.monitors import RunMonitor
from rewardkit_trainer.config import GRPOConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny import tiny_model, tiny_tokenizer  # noqa: E402


def test_warns_once_after_the_streak_and_not_before():
    out = io.StringIO()
    watch = RunMonitor({"correct": 1.0, "format": 0.2}, no_signal_steps=3, output_dir="runs/x", stream=out)
    flat = {"frac_reward_zero_std": 1.0, "reward/mean": 0.2, "rewards/format/mean": 1.0, "rewards/correct/mean": 0.0}
    assert watch.update(1, flat) == [] and watch.update(2, flat) == []
    assert watch.update(3, flat) == ["no_signal"]
    message = out.getvalue()
    assert message and "3 steps in a row" in message and "format 1.00" in message and "runs/x/completions.jsonl" in message
    assert all(watch.update(s, flat) == [] for s in range(4, 9))  # once
    assert out.getvalue().count("warning") == 1


def test_a_step_with_signal_resets_the_streak():
    watch = RunMonitor({}, no_signal_steps=2, stream=io.StringIO())
    for zero in (1.0, 0.5, 1.0, 0.75, 1.0):
        assert watch.update(0, {"frac_reward_zero_std": zero}) == []
    assert watch.update(0, {"frac_reward_zero_std": 1.0}) == ["no_signal"]
    silent = RunMonitor({}, no_signal_steps=0, stream=io.StringIO())
    assert all(silent.update(s, {"frac_reward_zero_std": 1.0}) == [] for s in range(10))


def constant_reward(prompts=None, completions=None, **kwargs):
    return [0.2 for _ in completions]  # pays the same for everything: a template-echo rubric


def test_a_run_on_a_constant_reward_says_so(tmp_path, capsys):
    from rewardkit_trainer.trainer import GRPOTrainer

    tok = tiny_tokenizer()
    rows = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(8)]
    cfg = GRPOConfig(max_steps=4, num_generations=4, prompts_per_step=2, max_completion_length=6,
                     per_device_train_batch_size=8, output_dir=str(tmp_path), report_to=["jsonl"],
                     progress=False, save_merged=False, use_peft=False, eval_size=0)  # fmt: skip
    GRPOTrainer(cfg, model=tiny_model(tok), tokenizer=tok, rubric=constant_reward, train_rows=rows).train(evaluate=False)
    err = capsys.readouterr().err
    assert err.count("got the same reward") == 1 and "no signal" in err
    assert GRPOConfig(collapse_warning_steps=0).run.collapse_warning_steps == 0
