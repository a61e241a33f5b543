"""Per-token log-probabilities of completions under a model: the policy now, before the
update (``old``), the reference policy for the KL term, and the engine's own, padded.

Log-probs come from the decoder's last hidden state and the lm_head weight through
``rewardkit_trainer.kernels.token_logprobs``, so [tokens x vocab] logits never exist. With a
``token_loss`` (``losses.TokenLoss``) the same call returns the loss too, computed with its
gradients in one pass (``kernels.fused_token_loss``) or, where that does not pay, from the
unfused log-probs (``pick_kernel``).
Limits: one forward per call over right-padded prompt+completion rows; no packing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .config import LOSS_KERNELS
from .kernels import fused_extra_bytes, fused_token_loss, token_logprobs
from .models import decoder_and_head, reference_context

__all__ = ["sequence_logprobs", "hidden_logprobs", "reference_logprobs", "pad_rows", "completion_mask",
           "pick_kernel", "fused_may_pay", "LOSS_KERNELS"]


def completion_mask(completion_ids: Sequence[Sequence[int]], device: Any = None) -> torch.Tensor:
    """Float [B, T] mask of the completion tokens (T = the longest, at least 1), as
    ``sequence_logprobs`` returns it."""
    mask = torch.zeros((len(completion_ids), max(1, max((len(c) for c in completion_ids), default=0))))
    for i, c in enumerate(completion_ids):
        mask[i, : len(c)] = 1.0
    return mask.to(device)


def sequence_logprobs(model: Any, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                      *, temperature: float = 1.0, pad_id: int = 0, token_loss: Any = None,
                      kernel: str = "auto") -> tuple[torch.Tensor, ...]:
    """Log-probs [B, T] of each completion token given its prompt, and the mask [B, T].

    With ``token_loss`` (built over ``completion_mask``'s tokens): ``(loss, logp, mask)``,
    ``logp`` detached; ``kernel`` is ``auto``, ``fused`` or ``unfused`` (``pick_kernel``)."""
    device = next(model.parameters()).device
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = completion_mask(completion_ids).bool()
    for i, (s, p, c) in enumerate(zip(seqs, prompt_ids, completion_ids)):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[i, : len(s)] = 1
        if c:  # position t predicts token t+1: completion token j sits at len(p)+j
            targets[i, len(p) - 1 : len(s) - 1] = torch.tensor(list(c), dtype=torch.long)
    extra = {} if token_loss is None else {"token_loss": token_loss, "kernel": kernel}
    if getattr(model, "is_logprob_head", False):  # under DDP/FSDP2 (distributed.LogprobHead)
        lp = model(ids.to(device), attn.to(device), targets.to(device), temperature, **extra)
    else:
        lp = hidden_logprobs(model, ids.to(device), attn.to(device), targets.to(device), temperature, **extra)
    loss = None
    if token_loss is not None:
        loss, lp = lp
    mask = mask.to(device)
    out = torch.zeros(mask.shape, dtype=torch.float32, device=device).masked_scatter(mask, lp)
    return (out, mask.float()) if token_loss is None else (loss, out, mask.float())


def hidden_logprobs(model: Any, ids: torch.Tensor, attn: torch.Tensor, targets: torch.Tensor,
                    temperature: float, token_loss: Any = None, kernel: str = "auto") -> Any:
    """Log-probs of the ``targets >= 0`` positions (flattened, in order): decoder hidden
    states times ``lm_head`` through the chunked kernel, never full logits. With
    ``token_loss``: ``(loss, detached log-probs)`` by the kernel ``pick_kernel`` chooses."""
    decoder, weight = decoder_and_head(model)
    hidden = decoder(input_ids=ids, attention_mask=attn).last_hidden_state
    flat_t = targets.reshape(-1)
    keep = flat_t >= 0
    h = hidden.reshape(-1, hidden.shape[-1])[keep].to(weight.dtype)
    if token_loss is None:
        return token_logprobs(h, weight, flat_t[keep], temperature=temperature)
    if pick_kernel(kernel, h, weight) == "fused":
        return fused_token_loss(h, weight, flat_t[keep], token_loss, temperature=temperature)
    logp = token_logprobs(h, weight, flat_t[keep], temperature=temperature)
    value, _ = token_loss(logp, 0, logp.shape[0])
    return value.sum(), logp.detach()


def fused_may_pay(kernel: str, model: Any, device: Any) -> bool:
    """Whether the trainer should build a ``token_loss`` at all: ``fused``, or ``auto`` where
    :func:`pick_kernel` can choose the fused pass (CUDA, a trainable lm_head at least 2048
    wide). Elsewhere the trainer keeps its unfused loss, bit for bit what it was."""
    if kernel != "auto":
        return kernel == "fused"
    _, weight = decoder_and_head(model)
    return _fused_shape(torch.device(device).type == "cuda", weight)


def _fused_shape(cuda: bool, weight: torch.Tensor) -> bool:
    """Where ``auto`` considers the fused pass: CUDA, a trainable lm_head at least 2048 wide."""
    return cuda and weight.requires_grad and weight.shape[1] >= 2048


def pick_kernel(kernel: str, hidden: torch.Tensor, weight: torch.Tensor) -> str:
    """``fused`` or ``unfused`` for one call. ``auto`` takes the fused pass on CUDA when the
    lm_head is trainable and at least 2048 wide, and its extra memory (``fused_extra_bytes``:
    a logits block and the float32 grad_weight accumulator) takes at most half of the free
    memory. Measured on an H100 (bench/results/kernels.md, issue 21): at H=4096 fused is
    1.12-1.13x the three-matmul floor against the unfused 1.49-1.63x, for ~1.2-2.4 GB more;
    at H=896 it is 1.5-1.7x against 2.2x, but a whole Qwen2.5-0.5B-shaped step did not get
    faster (2.81 against 2.78 s) while its peak grew 4.8 -> 6.1 GiB, so there the unfused
    path stays. A frozen lm_head takes two matmuls either way and the unfused path was as
    fast (1.32x against 1.35x at the default blocks): unfused."""
    if kernel not in LOSS_KERNELS:
        raise ValueError(f"kernel={kernel!r} must be one of {LOSS_KERNELS}")
    if kernel != "auto":
        return kernel
    if not _fused_shape(hidden.is_cuda, weight):
        return "unfused"
    need = fused_extra_bytes(hidden.shape[0], weight.shape[0], weight.shape[1], weight.element_size(), True)
    free, _ = torch.cuda.mem_get_info(hidden.device)
    return "fused" if need <= free // 2 else "unfused"


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
