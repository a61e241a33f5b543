"""One-pass fused token loss: logits, log-probs, the loss's per-token coefficient and every
gradient in one sweep over row blocks; three ``[N,H]x[H,V]`` matmuls (two with a frozen
lm_head) and nothing ``[N, V]`` kept (docs/kernels.md, "The fused GRPO loss").

The loss is ``sum_i value_i`` over the tokens that are not ignored, where
``coefficient(logp, start, end) -> (value, d value / d logp)`` gives both for rows
``start:end`` (float32 ``[end - start]``), from nothing but those rows' log-probs: GRPO's
token-level losses (``losses.TOKEN_WEIGHTS``) are of that form. Per row block:

1. ``z = h_blk @ W.T`` in float32 (cuBLAS on CUDA);
2. logsumexp, target log-prob and entropy (``row_stats_kernel``);
3. ``c = coefficient(logp)``;
4. ``dlogits = c / T * (onehot - softmax)``, written in the compute dtype over ``z``'s own
   storage (``row_dlogits_kernel``);
5. ``grad_hidden[blk] = dlogits @ W``; ``grad_weight_acc += dlogits.T @ h_blk`` (float32).

The gradients are computed in the forward and handed over by the autograd Function's
backward, scaled by the incoming gradient of the loss, so hooks (FSDP's reduce-scatter, DDP)
and gradient accumulation into ``.grad`` work as for any op.

Limits: log-probs and entropy come back detached (the loss is the only differentiable
output); no entropy gradient; the gradients are held from the forward to the backward, and
consumed there (a second backward through one call raises); the float32 grad_weight
accumulator costs ``4*V*H`` bytes for the duration of the forward (docs/kernels.md).
"""

from __future__ import annotations

import os
from typing import Callable

import torch

__all__ = ["FusedTokenLoss", "fused_rows", "fused_extra_bytes"]

Coefficient = Callable[[torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]]
_MIN_ROWS = 256
_MIN_ROWS_W = 2048
_addmm_ok: bool | None = None


def logits_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the kept logits block: float32 (exact log-probs; the default), or the
    compute dtype with env ``REWARDKIT_FUSED_LOGITS=half`` (bf16/fp16 inputs only): half the
    block's bytes and ~40% less element-wise traffic, log-probs rounded as TRL's are
    (~2e-4 relative). Read once per call."""
    mode = os.environ.get("REWARDKIT_FUSED_LOGITS", "float32")
    if mode not in ("float32", "half"):
        from rewardkit.errors import invalid_argument

        raise invalid_argument("REWARDKIT_FUSED_LOGITS", mode, "must be 'float32' or 'half'")
    return dtype if mode == "half" and dtype in (torch.bfloat16, torch.float16) else torch.float32


def fused_rows(n: int, v: int, h: int, elem: int, need_w: bool, zbytes: int = 4) -> int:
    """Rows per block. The block is ``zbytes * rows * V`` bytes (the logits; dlogits reuse it).
    With a trainable lm_head every block re-reads and re-writes the float32 grad_weight
    accumulator (8VH bytes against the block's 2*rows*VH-flop matmul: ~840/rows of that
    matmul's time on an H100), so blocks are as large as the gradient buffers and at least
    2048 rows (measured on an H100 at 8x1024 x 896: 256 rows 3.5x the floor, 6912 rows 1.6x);
    with a frozen one, 20% of grad_hidden (at least 32 MiB). Never fewer than 256 rows
    (re-reading W would dominate). Env ``REWARDKIT_FUSED_BLOCK_MB`` overrides the budget."""
    env = os.environ.get("REWARDKIT_FUSED_BLOCK_MB")
    if env:
        budget, low = int(float(env) * 2**20), 16
    elif need_w:
        budget, low = (n + v) * h * elem, _MIN_ROWS_W
    else:
        budget, low = max(32 << 20, int(0.2 * n * h * elem)), _MIN_ROWS
    rows = budget // (zbytes * v)
    rows = rows // 256 * 256 if rows >= 256 else rows // 16 * 16
    return max(1, min(n, max(low, rows)))


def fused_extra_bytes(n: int, v: int, h: int, elem: int, need_w: bool) -> int:
    """Memory the fused path takes beyond the gradient buffers: one block, plus the float32
    accumulator's excess over grad_weight (trainable lm_head)."""
    extra = 4 * fused_rows(n, v, h, elem, need_w) * v
    return extra + ((4 - elem) * v * h if need_w and elem < 4 else 0)


def _addmm_f32(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``acc += a @ b`` with float32 ``acc`` and accumulation, any input dtype, no [V, H] temporary."""
    global _addmm_ok
    if a.dtype == torch.float32:
        acc.addmm_(a, b)
        return
    if a.is_cuda and _addmm_ok is not False:
        try:
            torch.addmm(acc, a, b, out_dtype=torch.float32, out=acc)
            _addmm_ok = True
            return
        except (RuntimeError, TypeError):
            _addmm_ok = False
    step = max(1, (64 << 20) // (4 * max(1, b.shape[1])))  # bounded float32 temporaries
    for s in range(0, a.shape[0], step):
        e = min(a.shape[0], s + step)
        acc[s:e] += a[s:e].float() @ b.float()


def _coef(coefficient, logp, valid, s, e):
    value, grad = coefficient(logp, s, e)
    zero = torch.zeros((), dtype=torch.float32, device=logp.device)
    return torch.where(valid, value.float(), zero).sum(dtype=torch.float64), torch.where(valid, grad.float(), zero)


def _torch_block(h_blk, w32, tgt, inv_t, want_ent, coefficient, s, e, want_d=True):
    """Reference block: float32 throughout. Returns (logp, entropy, loss part, dlogits or None)."""
    z = (h_blk.float() @ w32.T) * inv_t
    lse = torch.logsumexp(z, dim=-1)
    valid = tgt >= 0
    safe = torch.where(valid, tgt, torch.zeros_like(tgt))
    logp = (z.gather(1, safe[:, None]).squeeze(1) - lse) * valid
    logq = z - lse[:, None]
    p = torch.exp(logq)
    ent = (-(p * logq).sum(-1) * valid) if want_ent else None
    part, c = _coef(coefficient, logp, valid, s, e)
    if not want_d:
        return logp, ent, part, None
    d = -p
    rows = torch.nonzero(valid).squeeze(1)
    d[rows, tgt[rows]] += 1.0
    return logp, ent, part, d.mul_((c * inv_t)[:, None])


def _triton_block(h_blk, weight, tgt, inv_t, want_ent, coefficient, s, e, lse_out, logp_out, ent_out, zdt,
                  want_d=True):
    """CUDA block: cuBLAS logits (``zdt``), two row kernels; dlogits overwrite the logits."""
    from ._triton import _mm_f32, _row_stats
    from ._triton_kernels import row_dlogits_kernel

    z = _mm_f32(h_blk, weight.t()) if zdt == torch.float32 else h_blk @ weight.t()
    _row_stats(z, None, tgt, lse_out, logp_out, ent_out if want_ent else lse_out, inv_t, False, want_ent)
    valid = tgt >= 0
    part, c = _coef(coefficient, logp_out, valid, s, e)
    if not want_d:  # no gradient wanted (e.g. under torch.no_grad): the loss value only
        return part, None
    v = z.shape[1]
    d = z.view(h_blk.dtype)[:, :v] if h_blk.dtype != torch.float32 else z
    row_dlogits_kernel[(z.shape[0],)](z, z.stride(0), d, d.stride(0), tgt, lse_out, c.contiguous(), v, inv_t,
                                      BLOCK=min(4096, max(16, 1 << (v - 1).bit_length())), num_warps=8)
    return part, d


class FusedTokenLoss(torch.autograd.Function):
    """Autograd function; call through :func:`rewardkit_trainer.kernels.fused_token_loss`.

    Returns ``(loss, logp, entropy)``: a float32 scalar and two detached float32 ``[N]``
    (``entropy`` is empty when not asked for; the wrapper drops it)."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, coefficient, temperature, want_entropy, use_triton):
        n, h = hidden.shape
        v = weight.shape[0]
        need_h, need_w = bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1])
        inv_t = 1.0 / temperature
        zdt = logits_dtype(hidden.dtype) if use_triton else torch.float32
        rows = fused_rows(n, v, h, hidden.element_size(), need_w, torch.finfo(zdt).bits // 8)
        logp = hidden.new_empty(n, dtype=torch.float32)
        lse = hidden.new_empty(n, dtype=torch.float32)
        ent = hidden.new_empty(n, dtype=torch.float32) if want_entropy else None
        loss = torch.zeros((), dtype=torch.float64, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None
        acc = torch.zeros((v, h), dtype=torch.float32, device=hidden.device) if need_w else None
        w32 = None if use_triton else weight.float()
        w_mm = weight if use_triton else w32
        for s in range(0, n, rows):
            e = min(n, s + rows)
            if use_triton:
                part, d = _triton_block(hidden[s:e], weight, targets[s:e], inv_t, want_entropy, coefficient, s, e,
                                        lse[s:e], logp[s:e], ent[s:e] if want_entropy else None, zdt,
                                        need_h or need_w)
            else:
                lp, en, part, d = _torch_block(hidden[s:e], w32, targets[s:e], inv_t, want_entropy, coefficient, s, e,
                                               need_h or need_w)
                logp[s:e] = lp
                if want_entropy:
                    ent[s:e] = en
            loss += part
            if need_h:
                if d.dtype == hidden.dtype:
                    torch.mm(d, w_mm, out=grad_h[s:e])
                else:
                    grad_h[s:e] = d @ w_mm
            if need_w:
                _addmm_f32(acc, d.t(), hidden[s:e] if use_triton else hidden[s:e].float())
            del d
        grad_w = None
        if need_w:
            grad_w = acc if weight.dtype == torch.float32 else acc.to(weight.dtype)
            del acc
        ctx.grads = [grad_h, grad_w]
        if ent is None:
            ent = logp.new_empty(0)
        ctx.mark_non_differentiable(logp, ent)
        return loss.float(), logp, ent

    @staticmethod
    def backward(ctx, grad_loss, _grad_logp, _grad_ent):
        if ctx.grads is None:
            raise RuntimeError("fused_token_loss: the gradients were handed over by an earlier backward; "
                               "backward twice through one call (retain_graph=True) is not supported")
        grad_h, grad_w = ctx.grads
        ctx.grads = None
        if grad_loss is not None and not (grad_loss.numel() == 1 and float(grad_loss) == 1.0):
            grad_h = grad_h.mul_(grad_loss.to(grad_h.dtype)) if grad_h is not None else None
            grad_w = grad_w.mul_(grad_loss.to(grad_w.dtype)) if grad_w is not None else None
        return grad_h, grad_w, None, None, None, None, None
