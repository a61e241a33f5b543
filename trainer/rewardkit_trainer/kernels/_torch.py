"""Pure-PyTorch chunked token log-probs: the CPU path and the tests' reference.

``logp[i] = log_softmax(hidden[i] @ weight.T / temperature)[targets[i]]`` computed over row
chunks so that at most ``[chunk, V]`` float32 logits exist at a time. The backward pass
recomputes each chunk's softmax. Everything is computed in float32 (the weight is upcast once
per call when it is not float32 already), so this path is exact to float32 rounding; it is
not tuned for speed on GPUs (the Triton path is).

Limits: the float32 copy of a half-precision weight costs ``4*V*H`` bytes for the duration of
a forward or backward call; grad_weight is accumulated in float32 (``4*V*H`` bytes) and cast
once at the end, so chunking never adds rounding.
"""

from __future__ import annotations

import torch

__all__ = ["ChunkedLogProbs", "naive_token_logprobs", "default_chunk"]


def default_chunk(vocab: int, budget_bytes: int = 64 << 20) -> int:
    """Rows per chunk so that one float32 ``[chunk, vocab]`` block stays under the budget."""
    return max(1, min(4096, budget_bytes // (4 * max(1, vocab))))


def naive_token_logprobs(hidden, weight, targets, *, temperature=1.0, return_entropy=False, dtype=torch.float64):
    """Full-logits reference in ``dtype`` (float64 by default); materializes ``[N, V]``."""
    logits = (hidden.to(dtype) @ weight.to(dtype).T) / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    valid = targets >= 0
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    logp = logp_all.gather(1, safe[:, None]).squeeze(1) * valid
    if not return_entropy:
        return logp
    entropy = -(logp_all.exp() * logp_all).sum(-1) * valid
    return logp, entropy


def _chunk_stats(h32, w32, tgt, temperature, want_entropy):
    logits = (h32 @ w32.T) / temperature
    lse = torch.logsumexp(logits, dim=-1)
    valid = tgt >= 0
    safe = torch.where(valid, tgt, torch.zeros_like(tgt))
    logp = (logits.gather(1, safe[:, None]).squeeze(1) - lse) * valid
    ent = None
    if want_entropy:
        logq = logits - lse[:, None]
        ent = -(torch.exp(logq) * logq).sum(-1) * valid
    return logp, lse, ent


class ChunkedLogProbs(torch.autograd.Function):
    """Autograd function; call through :func:`rewardkit_trainer.kernels.token_logprobs`."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature, want_entropy, chunk):
        n = hidden.shape[0]
        w32 = weight.float()
        logp = hidden.new_empty(n, dtype=torch.float32)
        lse = hidden.new_empty(n, dtype=torch.float32)
        ent = hidden.new_empty(n, dtype=torch.float32) if want_entropy else None
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            lp, ls, en = _chunk_stats(hidden[s:e].float(), w32, targets[s:e], temperature, want_entropy)
            logp[s:e], lse[s:e] = lp, ls
            if want_entropy:
                ent[s:e] = en
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.temperature, ctx.chunk, ctx.want_entropy = temperature, chunk, want_entropy
        if want_entropy:
            ctx.mark_non_differentiable(targets)
            return logp, ent
        return logp

    @staticmethod
    def backward(ctx, grad_logp, grad_ent=None):
        hidden, weight, targets, lse = ctx.saved_tensors
        temperature, chunk = ctx.temperature, ctx.chunk
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n = hidden.shape[0]
        w32 = weight.float()
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w32 = torch.zeros_like(w32) if need_w else None
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            h32 = hidden[s:e].float()
            dz = chunk_dlogits(h32, w32, targets[s:e], lse[s:e], grad_logp[s:e] if grad_logp is not None else None,
                               grad_ent[s:e] if grad_ent is not None else None, temperature)
            if need_h:
                grad_h[s:e] = (dz @ w32).to(hidden.dtype)
            if need_w:
                grad_w32.addmm_(dz.T, h32)
        grad_w = None
        if need_w:
            grad_w = grad_w32 if weight.dtype == torch.float32 else grad_w32.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None


def chunk_dlogits(h32, w32, tgt, lse, g_logp, g_ent, temperature):
    """d(loss)/d(hidden @ weight.T) for one chunk, float32, ignored rows zero.

    With z = logits / T, p = softmax(z): d logp_t / dz = onehot_t - p and
    d H / dz = -p * (log p + H); the chain rule through the 1/T scale divides by T.
    """
    logits = (h32 @ w32.T) / temperature
    logq = logits - lse[:, None]
    p = torch.exp(logq)
    valid = tgt >= 0
    dz = torch.zeros_like(p)
    if g_logp is not None:
        g = torch.where(valid, g_logp.float(), torch.zeros_like(g_logp, dtype=torch.float32))
        dz -= p * g[:, None]
        rows = torch.nonzero(valid).squeeze(1)
        dz[rows, tgt[rows]] += g[rows]
    if g_ent is not None:
        ge = torch.where(valid, g_ent.float(), torch.zeros_like(g_ent, dtype=torch.float32))
        ent = -(p * logq).sum(-1)
        dz -= p * (logq + ent[:, None]) * ge[:, None]
    return dz / temperature
