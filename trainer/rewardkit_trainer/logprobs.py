"""Per-token log-probabilities of completions under a model: the policy now, before the
update (``old``), the reference policy for the KL term, and the engine's own, padded.

Log-probs come from the decoder's last hidden state and the lm_head weight through
``rewardkit_trainer.kernels.token_logprobs``, so [tokens x vocab] logits never exist.
Limits: one forward per call over right-padded prompt+completion rows; no packing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .kernels import token_logprobs
from .models import decoder_and_head, reference_context

__all__ = ["sequence_logprobs", "hidden_logprobs", "reference_logprobs", "pad_rows"]


def sequence_logprobs(model: Any, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                      *, temperature: float = 1.0, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [B, T] of each completion token given its prompt, and the mask [B, T]."""
    device = next(model.parameters()).device
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(s) for s in seqs)
    t_max = max(1, max(len(c) for c in completion_ids))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), t_max), dtype=torch.bool)
    for i, (s, p, c) in enumerate(zip(seqs, prompt_ids, completion_ids)):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[i, : len(s)] = 1
        if c:  # position t predicts token t+1: completion token j sits at len(p)+j
            targets[i, len(p) - 1 : len(s) - 1] = torch.tensor(list(c), dtype=torch.long)
            mask[i, : len(c)] = True
    if getattr(model, "is_logprob_head", False):  # under DDP/FSDP2 (distributed.LogprobHead)
        lp = model(ids.to(device), attn.to(device), targets.to(device), temperature)
    else:
        lp = hidden_logprobs(model, ids.to(device), attn.to(device), targets.to(device), temperature)
    out = torch.zeros(mask.shape, dtype=torch.float32, device=device)
    out = out.masked_scatter(mask.to(device), lp)
    return out, mask.to(device).float()


def hidden_logprobs(model: Any, ids: torch.Tensor, attn: torch.Tensor, targets: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Log-probs of the ``targets >= 0`` positions (flattened, in order): decoder hidden
    states times ``lm_head`` through the chunked kernel, never full logits."""
    decoder, weight = decoder_and_head(model)
    hidden = decoder(input_ids=ids, attention_mask=attn).last_hidden_state
    flat_t = targets.reshape(-1)
    keep = flat_t >= 0
    h = hidden.reshape(-1, hidden.shape[-1])[keep]
    return token_logprobs(h.to(weight.dtype), weight, flat_t[keep], temperature=temperature)


def reference_logprobs(model: Any, ref_model: Any, prompt_ids: Sequence[Sequence[int]],
                       completion_ids: Sequence[Sequence[int]], *, temperature: float, pad_id: int,
                       policy: Any = None) -> torch.Tensor:
    """Log-probs [B, T] under the reference policy: ``ref_model`` (a frozen copy) when
    given, else ``model`` with its LoRA adapter disabled (run through ``policy``, the
    distributed wrapper around ``model``, when there is one)."""
    if ref_model is not None:
        return sequence_logprobs(ref_model, prompt_ids, completion_ids, temperature=temperature, pad_id=pad_id)[0]
    with reference_context(model):
        return sequence_logprobs(model if policy is None else policy, prompt_ids, completion_ids,
                                 temperature=temperature, pad_id=pad_id)[0]


def pad_rows(rows: list[list[float]], width: int, device: Any) -> torch.Tensor:
    """Ragged per-token values (an engine's log-probs) as a zero-padded [B, width] tensor."""
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r[:width], dtype=torch.float32)
    return out.to(device)
