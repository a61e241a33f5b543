"""sft.py: target text, self targets and the warm start, with explicit arguments."""

from __future__ import annotations

from functools import partial

from rewardkit_trainer.config import SFTConfig
from rewardkit_trainer.data import encode_prompt
from rewardkit_trainer.rollout.hf import HFEngine
from rewardkit_trainer.sft import sft_target, sft_warm_start

from .tiny import tiny_model, tiny_tokenizer


def test_target_is_the_completion_column_or_built_from_the_answer():
    assert sft_target({"completion": "done"}) == "done"
    assert sft_target({"gold": 7}, "gold") == "<reasoning>\nThe answer is 7.\n</reasoning>\n<answer>\n7\n</answer>"


def test_warm_start_lowers_the_loss_on_gold_targets():
    import torch

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    rows = [{"prompt": [{"role": "user", "content": f"q {i}"}], "answer": str(i)} for i in range(4)]
    losses = sft_warm_start(model, tok, HFEngine(model, tok), partial(encode_prompt, tok, max_length=64), rows,
                            SFTConfig(sft_steps=4, sft_learning_rate=1e-2, sft_examples=4), batch_size=4)
    assert len(losses) == 4 and losses[-1] < losses[0]
