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

import re
from typing import Any, Callable, Sequence

import torch

from rewardkit.extract import DEFAULT

from .config import SFTConfig
from .logprobs import sequence_logprobs
from .rollout.base import RolloutEngine, SamplingParams

__all__ = ["sft_target", "self_targets", "sft_warm_start"]


def sft_target(row: dict[str, Any], answer_column: str = "answer") -> str:
    if isinstance(row.get("completion"), str):
        return row["completion"]
    answer = str(row[answer_column]).strip()
    return f"<reasoning>\nThe answer is {answer}.\n</reasoning>\n<answer>\n{answer}\n</answer>"


def self_targets(engine: RolloutEngine, encode: Callable[[Any], list[int]], rows: Sequence[dict[str, Any]],
                 max_completion_length: int) -> list[str]:
    """Formatted targets built from the model's own greedy completions."""
    params = SamplingParams(num_generations=1, max_completion_length=max_completion_length, top_k=1)
    texts = engine.generate([encode(r["prompt"]) for r in rows], params).texts
    out = []
    for text in texts:
        first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0].strip() or "Let me compute."
        if len(first) > 60:  # short reasoning keeps rollouts (and the demo) fast
            first = first[:60].rsplit(" ", 1)[0] + " ..."
        answer = DEFAULT(text) or "0"
        out.append(f"<reasoning>\n{first}\n</reasoning>\n<answer>\n{answer}\n</answer>")
    return out


def sft_warm_start(model: Any, tokenizer: Any, engine: RolloutEngine, encode: Callable[[Any], list[int]],
                   train_rows: Sequence[dict[str, Any]], sft: SFTConfig, *, batch_size: int,
                   answer_column: str = "answer", max_completion_length: int = 128) -> list[float]:
    """Run ``sft.sft_steps`` steps on the last training rows; returns the losses.

    ``batch_size`` is the micro-batch (``per_device_train_batch_size``); the engine samples
    the ``"self"`` targets and is NOT told about the new weights (the caller does that).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=sft.sft_learning_rate)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id or 0
    bs = min(batch_size, len(train_rows))
    # the SFT rows come from the end of the training rows; GRPO's sampler may see them too
    rows = list(train_rows[-min(len(train_rows), max(bs, sft.sft_examples)):])
    if sft.sft_targets == "self":
        targets = self_targets(engine, encode, rows, max_completion_length)
        rows = [{**r, "completion": t} for r, t in zip(rows, targets)]
    losses = []
    model.train()
    for step in range(sft.sft_steps):
        batch = [rows[(step * bs + j) % len(rows)] for j in range(bs)]
        prompts = [encode(r["prompt"]) for r in batch]
        targets = [tokenizer(sft_target(r, answer_column), add_special_tokens=False)["input_ids"] + [eos] for r in batch]
        logp, mask = sequence_logprobs(model, prompts, targets, pad_id=pad)
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    return losses
