"""GRPO objectives: one small function per loss variant, plus advantages and IS weights.

Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask`` and ``is_weight`` are [B, T]
(completion tokens, right-padded; ``mask`` 1 on real tokens); ``advantages`` is [B].
Each loss returns ``(loss, metrics)`` where ``loss`` is to be minimised.

Micro-batching: pass ``num_sequences`` / ``num_tokens`` for the WHOLE optimizer step so
that the sum of micro-batch losses equals the full-batch loss exactly (dapo's token
normalizer and dr_grpo's constant are global, grpo's and gspo's are per sequence).

Fused kernels (``kernels.fused_token_loss``) need, per token, only d loss / d logp. For the
token-level losses (grpo, dr_grpo, dapo, bnpo) the loss is sum_t w_t * objective_t:
``TOKEN_WEIGHTS[loss_type]`` gives w_t (normalisation times mask) and ``token_objective``
the objective and its derivative. gspo is sequence-level and has no entry there.

Formulas (REFERENCE.md section 4): ratio rho = exp(logp - old_logp); per-token objective
min(rho A, clip(rho, 1 - epsilon, 1 + epsilon_high) A); KL k3 = exp(ref - logp) - (ref - logp) - 1
weighted by beta. Limits: no entropy bonus, no token-level reward shaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = [
    "group_advantages",
    "importance_weights",
    "sampling_metrics",
    "kl_k3",
    "grpo_loss",
    "dr_grpo_loss",
    "dapo_loss",
    "gspo_loss",
    "LOSSES",
    "token_objective",
    "TOKEN_WEIGHTS",
    "TokenLoss",
]


def group_advantages(rewards: torch.Tensor, num_generations: int, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """A_i = r_i - mean(group), divided by the group std ("group"), the batch std
    ("batch") or nothing ("none", Dr. GRPO). Rows are grouped consecutively."""
    r = rewards.float().view(-1, num_generations)
    centered = r - r.mean(dim=1, keepdim=True)
    if scale == "group":
        centered = centered / (r.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centered = centered / (r.std() + eps)
    elif scale != "none":
        raise ValueError(f"scale={scale!r} must be one of group, batch, none")
    return centered.reshape(-1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(policy || reference); >= 0, exact in expectation."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def importance_weights(trainer_logp: torch.Tensor, engine_logp: torch.Tensor, mask: torch.Tensor,
                       mode: str = "sequence_mask", cap: float = 3.0) -> torch.Tensor:
    """Weights correcting for the sampler (engine) differing from the trainer's policy.

    w = pi_trainer / pi_engine per token ("token_*") or per sequence (product over its
    tokens, "sequence_*"); "*_truncate" caps w at ``cap``, "*_mask" zeroes weights above it.
    Returns a detached [B, T] tensor (sequence modes broadcast along T).
    """
    delta = (trainer_logp - engine_logp).detach() * mask
    level, how = mode.split("_")
    if level == "sequence":
        delta = delta.sum(dim=-1, keepdim=True).expand_as(mask)
    w = torch.exp(delta.clamp(max=20.0))
    if how == "truncate":
        w = w.clamp(max=cap)
    else:
        w = torch.where(w > cap, torch.zeros_like(w), w)
    # a NaN log-prob from either side says nothing trustworthy about that token: drop it
    return torch.nan_to_num(w, nan=0.0) * mask


def _clipped(logp, old_logp, advantages, eps_low, eps_high):
    """Per-token negative clipped objective and the 'was clipped' indicator."""
    ratio = torch.exp(logp - old_logp)
    a = advantages[:, None]
    unclipped = ratio * a
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a
    was_clipped = (clipped < unclipped).float()  # the min picked the clipped branch
    return -torch.minimum(unclipped, clipped), was_clipped


def _per_token(logp, old_logp, advantages, mask, eps_low, eps_high, beta, ref_logp, is_weight):
    loss, was_clipped = _clipped(logp, old_logp, advantages, eps_low, eps_high)
    if is_weight is not None:
        loss = loss * is_weight
    kl = kl_k3(logp, ref_logp) if ref_logp is not None else None
    if beta and kl is not None:
        loss = loss + beta * kl
    return loss * mask, was_clipped * mask, kl


def _metrics(mask, was_clipped, kl):
    mask, was_clipped = mask.detach(), was_clipped.detach()
    n = mask.sum().clamp(min=1)
    out = {"clip_fraction": float(was_clipped.sum() / n)}
    if kl is not None:
        out["kl"] = float((kl.detach() * mask).sum() / n)
    return out


def grpo_loss(logp, old_logp, advantages, mask, *, epsilon=0.2, epsilon_high=None, beta=0.0, ref_logp=None,
              is_weight=None, num_sequences=None, num_tokens=None, max_completion_length=None):
    """GRPO: mean over each sequence's tokens, then mean over sequences."""
    per_tok, clipped, kl = _per_token(logp, old_logp, advantages, mask, epsilon,
                                      epsilon if epsilon_high is None else epsilon_high, beta, ref_logp, is_weight)
    per_seq = per_tok.sum(-1) / mask.sum(-1).clamp(min=1)
    loss = per_seq.sum() / (num_sequences or logp.shape[0])
    return loss, _metrics(mask, clipped, kl)


def dapo_loss(logp, old_logp, advantages, mask, *, epsilon=0.2, epsilon_high=None, beta=0.0, ref_logp=None,
              is_weight=None, num_sequences=None, num_tokens=None, max_completion_length=None):
    """DAPO / BNPO: token level, sum over every token of the batch / number of tokens."""
    per_tok, clipped, kl = _per_token(logp, old_logp, advantages, mask, epsilon,
                                      epsilon if epsilon_high is None else epsilon_high, beta, ref_logp, is_weight)
    loss = per_tok.sum() / (num_tokens or mask.sum().clamp(min=1))
    return loss, _metrics(mask, clipped, kl)


def dr_grpo_loss(logp, old_logp, advantages, mask, *, epsilon=0.2, epsilon_high=None, beta=0.0, ref_logp=None,
                 is_weight=None, num_sequences=None, num_tokens=None, max_completion_length=None):
    """Dr. GRPO: sum over tokens / (number of sequences x max_completion_length), no length bias."""
    per_tok, clipped, kl = _per_token(logp, old_logp, advantages, mask, epsilon,
                                      epsilon if epsilon_high is None else epsilon_high, beta, ref_logp, is_weight)
    length = max_completion_length or logp.shape[1]
    loss = per_tok.sum() / ((num_sequences or logp.shape[0]) * length)
    return loss, _metrics(mask, clipped, kl)


def gspo_loss(logp, old_logp, advantages, mask, *, epsilon=0.2, epsilon_high=None, beta=0.0, ref_logp=None,
              is_weight=None, num_sequences=None, num_tokens=None, max_completion_length=None):
    """GSPO: one ratio per sequence, exp(mean_t(logp - old_logp)), clipped per sequence;
    mean over sequences. The KL term is averaged per sequence like GRPO."""
    eps_high = epsilon if epsilon_high is None else epsilon_high
    lengths = mask.sum(-1).clamp(min=1)
    seq_log_ratio = ((logp - old_logp) * mask).sum(-1) / lengths
    ratio = torch.exp(seq_log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_high) * advantages
    per_seq = -torch.minimum(unclipped, clipped)
    if is_weight is not None:  # sequence weight: the (broadcast) value on the first real token
        per_seq = per_seq * (is_weight * mask).sum(-1) / lengths
    kl = kl_k3(logp, ref_logp) if ref_logp is not None else None
    if beta and kl is not None:
        per_seq = per_seq + beta * (kl * mask).sum(-1) / lengths
    loss = per_seq.sum() / (num_sequences or logp.shape[0])
    was_clipped = (clipped < unclipped).float()[:, None] * mask
    return loss, _metrics(mask, was_clipped, kl)


def token_objective(logp, old_logp, advantages, *, epsilon=0.2, epsilon_high=None, beta=0.0, ref_logp=None,
                    is_weight=None):
    """Per-token objective (what ``_per_token`` sums, before the mask) and its derivative
    d objective / d logp, for tensors of one shape (``advantages`` broadcast per token).

    d/dlogp of -min(rho A, clip(rho) A) is -rho A where the min takes the unclipped branch
    (inside the clip range both branches are equal), else 0; the IS weight scales it; the
    k3 term adds beta * (1 - exp(ref - logp)).
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_high) * advantages
    value = -torch.minimum(unclipped, clipped)
    grad = torch.where(unclipped <= clipped, -unclipped, torch.zeros_like(unclipped))
    if is_weight is not None:
        value, grad = value * is_weight, grad * is_weight
    if beta and ref_logp is not None:
        value = value + beta * kl_k3(logp, ref_logp)
        grad = grad + beta * (1 - torch.exp(ref_logp - logp))
    return value, grad


def grpo_weights(mask, *, num_sequences=None, num_tokens=None, max_completion_length=None):
    """grpo: each sequence's tokens share 1 / (its length x number of sequences)."""
    return mask / mask.sum(-1, keepdim=True).clamp(min=1) / (num_sequences or mask.shape[0])


def dapo_weights(mask, *, num_sequences=None, num_tokens=None, max_completion_length=None):
    """dapo / bnpo: every token 1 / (tokens in the batch)."""
    return mask / (num_tokens or mask.sum().clamp(min=1))


def dr_grpo_weights(mask, *, num_sequences=None, num_tokens=None, max_completion_length=None):
    """dr_grpo: every token 1 / (number of sequences x max_completion_length)."""
    return mask / ((num_sequences or mask.shape[0]) * (max_completion_length or mask.shape[1]))


#: w_t of the token-level losses: loss = sum_t w_t * token_objective_t (gspo is sequence-level)
TOKEN_WEIGHTS: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": grpo_weights,
    "dr_grpo": dr_grpo_weights,
    "dapo": dapo_weights,
    "bnpo": dapo_weights,
}


@dataclass
class TokenLoss:
    """A token-level loss as ``kernels.fused_token_loss`` consumes it: per selected token
    (flattened in row-major order) its weight w_t and the objective's inputs. Called as
    ``coefficient(logp, start, end) -> (w * objective, w * d objective / d logp)``.
    ``old_logp=None`` means on-policy: ratio exp(logp - logp) = 1, as the loop's detached copy."""

    weight: torch.Tensor
    advantages: torch.Tensor
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    is_weight: torch.Tensor | None = None
    epsilon: float = 0.2
    epsilon_high: float | None = None
    beta: float = 0.0

    TYPES = tuple(TOKEN_WEIGHTS)  # the token-level loss types

    @classmethod
    def build(cls, loss_type, advantages, mask, select, *, old_logp=None, ref_logp=None, is_weight=None,
              epsilon=0.2, epsilon_high=None, beta=0.0, num_sequences=None, num_tokens=None,
              max_completion_length=None) -> "TokenLoss":
        """From the loop's [B, T] tensors (``mask``: tokens in the loss; ``select``: bool, the
        tokens the kernel sees, i.e. every completion token) and [B] advantages."""
        if loss_type not in TOKEN_WEIGHTS:
            raise ValueError(f"loss_type={loss_type!r} is not token-level (one of {sorted(TOKEN_WEIGHTS)})")
        w = TOKEN_WEIGHTS[loss_type](mask.float(), num_sequences=num_sequences, num_tokens=num_tokens,
                                     max_completion_length=max_completion_length)
        pick = lambda x: None if x is None else x[select].float()
        return cls(pick(w), advantages.float()[:, None].expand_as(mask)[select], pick(old_logp), pick(ref_logp),
                   pick(is_weight), epsilon, epsilon_high, beta)

    def __call__(self, logp, start, end):
        cut = lambda x: None if x is None else x[start:end]
        old = logp if self.old_logp is None else self.old_logp[start:end]
        value, grad = token_objective(logp, old, self.advantages[start:end], epsilon=self.epsilon,
                                      epsilon_high=self.epsilon_high, beta=self.beta, ref_logp=cut(self.ref_logp),
                                      is_weight=cut(self.is_weight))
        w = self.weight[start:end]
        return w * value, w * grad


LOSSES: dict[str, Callable[..., tuple[torch.Tensor, dict]]] = {
    "grpo": grpo_loss,
    "dr_grpo": dr_grpo_loss,
    "dapo": dapo_loss,
    "bnpo": dapo_loss,
    "gspo": gspo_loss,
}


def sampling_metrics(fixed: Sequence[dict[str, torch.Tensor]], mode: str) -> dict[str, float]:
    """|trainer - engine| token log-prob gap and the applied IS weights, over one step's batches.

    Weights are taken per real token in ``token_*`` modes and per sequence in ``sequence_*``
    modes (the zeroed ones of ``*_mask`` included, and counted in ``masked_share``).
    """
    gaps, weights = [], []
    for e in fixed:  # one entry per micro-batch
        mask = e["mask"].bool()
        gap = (e["old"] - e["eng"]).abs()[mask]
        gaps.append(gap[~torch.isnan(gap)])
        if mode.startswith("sequence"):
            rows = mask.any(-1)
            weights.append(e["is"][:, 0][rows])  # broadcast along T: any real token holds it
        else:
            weights.append(e["is"][mask])
    gap, w = torch.cat(gaps), torch.cat(weights)
    if not w.numel():
        return {}
    return {
        "sampling/sampling_logp_difference/mean": float(gap.mean()) if gap.numel() else 0.0,
        "sampling/sampling_logp_difference/max": float(gap.max()) if gap.numel() else 0.0,
        "sampling/importance_sampling_ratio/min": float(w.min()),
        "sampling/importance_sampling_ratio/mean": float(w.mean()),
        "sampling/importance_sampling_ratio/max": float(w.max()),
        "sampling/importance_sampling_masked_share": float((w == 0).float().mean()),
    }
