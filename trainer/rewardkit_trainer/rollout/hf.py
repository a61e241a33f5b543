"""The built-in rollout engine: sampling on the trainer's own transformers model.

Each prompt is prefilled once; its KV cache is then repeated for the G samples of the
group (``DynamicCache.batch_repeat_interleave``), so prompt compute does not grow with
G. Decoding is a plain loop with temperature, top-k and top-p; the log-probability of
each chosen token under the tempered distribution (before top-k/top-p filtering, as the
trainer computes it) comes back with the rollout.

Limits: one process, one device, no paged attention or continuous batching; rows that
finish early keep decoding padding until every row of the batch ends. For throughput on
GPU use the vLLM engine.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from .base import Rollout, RolloutEngine, SamplingParams, eos_token_ids

__all__ = ["HFEngine", "filter_logits"]


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Mask (to -inf) what top-k / top-p sampling excludes; rows are independent."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass strictly before it already reaches top_p
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


class HFEngine(RolloutEngine):
    """Samples from ``model`` (a transformers causal LM, possibly wrapped by peft)."""

    name = "hf"
    supports_group_seeds = True

    def __init__(self, model: Any, tokenizer: Any, *, max_batch_prompts: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_prompts = max_batch_prompts
        self.eos_ids = set(eos_token_ids(tokenizer, model))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)

    def update_weights(self, model: Any) -> None:
        self.model = model  # same object: nothing is cached across calls

    @torch.no_grad()
    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> Rollout:
        start = time.perf_counter()
        gen = None
        device = _device_of(self.model)
        if params.seed is not None:
            gen = torch.Generator(device=device).manual_seed(params.seed)
        step = self.max_batch_prompts or len(prompt_ids)
        out_ids: list[list[int]] = []
        out_lp: list[list[float]] = []
        out_trunc: list[bool] = []
        was_training = self.model.training
        self.model.eval()
        try:
            seeds = params.group_seeds
            for i in range(0, len(prompt_ids), step):
                gens = [torch.Generator(device=device).manual_seed(s) for s in seeds[i : i + step]] if seeds else gen
                ids, lps, trunc = self._sample(prompt_ids[i : i + step], params, gens, device)
                out_ids += ids
                out_lp += lps
                out_trunc += trunc
        finally:
            self.model.train(was_training)
        texts = self.tokenizer.batch_decode(out_ids, skip_special_tokens=True)
        tokens = sum(len(c) for c in out_ids)
        seconds = time.perf_counter() - start
        return Rollout(
            prompt_ids=[list(p) for p in prompt_ids],
            completion_ids=out_ids,
            texts=texts,
            truncated=out_trunc,
            logprobs=out_lp,
            stats={"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / max(seconds, 1e-9)},
        )

    def _sample(self, prompts, params: SamplingParams, gen, device):
        g, n_new = params.num_generations, params.max_completion_length
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding keeps every prompt's end aligned
            input_ids[row, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
            mask[row, width - len(p) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        cache = DynamicCache()
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                         past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(g)  # prefill once, sample G times
        logits = out.logits[:, -1].float().repeat_interleave(g, dim=0)
        mask = mask.repeat_interleave(g, dim=0)
        next_pos = positions[:, -1:].repeat_interleave(g, dim=0) + 1
        rows = logits.shape[0]
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        tokens = torch.empty((rows, n_new), dtype=torch.long, device=device)
        lps = torch.zeros((rows, n_new), dtype=torch.float32, device=device)
        lengths = torch.full((rows,), n_new, dtype=torch.long, device=device)
        eos = torch.tensor(sorted(self.eos_ids), device=device)
        for t in range(n_new):
            logp = torch.log_softmax(logits / params.temperature, dim=-1)
            probs = filter_logits(logp, params.top_k, params.top_p).softmax(-1)
            if isinstance(gen, list):  # a generator per group: its draws do not depend on the batch
                nxt = torch.cat([torch.multinomial(probs[k * g : (k + 1) * g], 1, generator=one)
                                 for k, one in enumerate(gen)]).squeeze(1)
            else:
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            tokens[:, t] = nxt
            lps[:, t] = logp.gather(1, nxt[:, None]).squeeze(1)
            just_ended = ~done & torch.isin(nxt, eos)
            lengths = torch.where(just_ended, torch.full_like(lengths, t + 1), lengths)
            done |= just_ended
            if bool(done.all()) or t == n_new - 1:
                break
            mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
            out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=next_pos,
                             past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1
        ids, lp_rows, trunc = [], [], []
        for r in range(rows):
            n = int(lengths[r])
            ids.append(tokens[r, :n].tolist())
            lp_rows.append(lps[r, :n].tolist())
            trunc.append(not bool(done[r]))
        return ids, lp_rows, trunc


def _device_of(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")
