"""Optional SFT warm start: a few supervised steps on formatted examples before GRPO.

Small models often never emit the reasoning/answer tags on their own, so a format
reward never fires and GRPO has nothing to reinforce. A handful of steps on
``<reasoning>...</reasoning><answer>...</answer>`` targets fixes that. The target of a
row is its ``completion`` column when present, else built from the answer column
("The answer is X." as the reasoning). Uses its own AdamW (``sft_learning_rate``), so
GRPO's optimizer state starts clean.

``sft_targets="self"`` teaches the layout only: the targets wrap the model's OWN greedy
answers (its first sentence as reasoning, its last number as the answer), so the warm
start adds no correctness and any accuracy gain afterwards is GRPO's.
Limits: completion-only NLL, no packing.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["sft_target", "sft_warm_start"]


def sft_target(row: dict[str, Any], answer_column: str = "answer") -> str:
    if isinstance(row.get("completion"), str):
        return row["completion"]
    answer = str(row[answer_column]).strip()
    return f"<reasoning>\nThe answer is {answer}.\n</reasoning>\n<answer>\n{answer}\n</answer>"


def self_targets(trainer: Any, rows: list[dict[str, Any]]) -> list[str]:
    """Formatted targets built from the model's own greedy completions."""
    import re

    from rewardkit.extract import DEFAULT

    from .rollout.base import SamplingParams

    params = SamplingParams(num_generations=1, max_completion_length=trainer.config.max_completion_length, top_k=1)
    texts = trainer.engine.generate([trainer.encode_prompt(r["prompt"]) for r in rows], params).texts
    out = []
    for text in texts:
        first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0].strip() or "Let me compute."
        if len(first) > 60:  # short reasoning keeps rollouts (and the demo) fast
            first = first[:60].rsplit(" ", 1)[0] + " ..."
        answer = DEFAULT(text) or "0"
        out.append(f"<reasoning>\n{first}\n</reasoning>\n<answer>\n{answer}\n</answer>")
    return out


def sft_warm_start(trainer: Any) -> list[float]:
    """Run ``config.sft_steps`` steps on the first training rows; returns the losses."""
    from .trainer import sequence_logprobs

    c = trainer.config
    tok = trainer.tokenizer
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c.sft_learning_rate)
    eos = tok.eos_token_id
    pad = tok.pad_token_id or 0
    bs = min(c.per_device_train_batch_size, len(trainer.train_rows))
    # the SFT rows come from the end of the training rows; GRPO's sampler may see them too
    rows = trainer.train_rows[-min(len(trainer.train_rows), max(bs, c.sft_examples)):]
    if c.sft_targets == "self":
        rows = [{**r, "completion": t} for r, t in zip(rows, self_targets(trainer, rows))]
    losses = []
    trainer.model.train()
    for step in range(c.sft_steps):
        batch = [rows[(step * bs + j) % len(rows)] for j in range(bs)]
        prompts = [trainer.encode_prompt(r["prompt"]) for r in batch]
        targets = [tok(sft_target(r, c.answer_column), add_special_tokens=False)["input_ids"] + [eos] for r in batch]
        logp, mask = sequence_logprobs(trainer.model, prompts, targets, pad_id=pad)
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    trainer.engine.update_weights(trainer.model)
    trainer.logger.log(0, {"sft/loss_first": losses[0], "sft/loss_last": losses[-1]} if losses else {})
    return losses
