"""CUDA path: cuBLAS for most matmuls, Triton for the logits recompute and all element-wise work.

Design (three matmuls are the floor: logits, grad_hidden, grad_weight):

forward, over row blocks of ``rows`` tokens:
  1. ``z = hidden_blk @ weight.T`` in cuBLAS with float32 output ([rows, V], exact logits);
  2. ``row_stats_kernel``: logsumexp, target log-prob, entropy and ``u = softmax - onehot``
     in the compute dtype;
  3. when hidden needs a gradient: ``D = u @ weight`` (float32 out). ``grad_hidden`` is
     ``-grad_logp / T * D`` row by row, so D is stored now, in the space grad_hidden will use:
     as float16 with a per-row float32 scale (11-bit mantissa: one rounding far below the
     final bfloat16 rounding), and turned into grad_hidden in place in the backward.
backward (grad_weight only), over column blocks of ``cols`` vocabulary entries:
  4. ``dlogits_mm_kernel`` (Triton) recomputes ``hidden @ weight_blk.T`` with tl.dot and
     writes only d loss/d logits in the compute dtype (float32 inputs: cuBLAS logits plus
     ``dlogits_kernel``); ``grad_weight_blk = dlogits.T @ hidden`` in cuBLAS, an exact fp32
     sum over all tokens, written once.

So each gradient is a single fp32-accumulated reduction rounded once, and no buffer holds
more than one ``[rows, V]`` or ``[N, cols]`` block besides the gradients themselves.
Cost: four [N,H]x[H,V] matmuls (the logits twice; two with a frozen lm_head) plus ~18 bytes
of memory traffic per logit. Measured on an H200: 1.55-1.64x the three-matmul floor at
H=4096 (see bench/results/kernels.md).

Limits: an entropy *gradient* (not just the value) takes a recompute pass for grad_hidden
(five matmuls). The saved D is consumed by the first backward: a second backward through
the same graph (``retain_graph=True``) raises.
"""

from __future__ import annotations

import os

import torch

from ._triton_kernels import dlogits_kernel, dlogits_mm_kernel, dlogits_tma_kernel, row_stats_kernel, scale_rows_kernel

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # Triton without host-side TMA descriptors: the pointer kernel only
    TensorDescriptor = None

__all__ = ["TritonLogProbs", "triton_token_logprobs", "plan_blocks", "recompute_mode", "RECOMPUTE_MODES"]

# how the backward recomputes a logits block (env ``REWARDKIT_LOGPROB_RECOMPUTE``):
#   tma    - persistent Triton kernel, operands through TMA descriptors (Hopper+, H % 8 == 0)
#   triton - Triton kernel with pointer loads (any GPU; the CPU interpreter)
#   cublas - cuBLAS float32 logits block, then an element-wise kernel (6 bytes/logit of memory)
#   auto   - tma where it can run, else triton
RECOMPUTE_MODES = ("auto", "tma", "triton", "cublas")

_D_SCALE = 2.0**14  # |D| / scale <= 2**14 < 65504, the float16 maximum
_MIN_ROWS = 256  # fewer rows than this per block and the weight re-reads dominate
_out_dtype_ok: bool | None = None
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def _mm_f32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` accumulated and returned in float32, without rounding to the inputs' dtype."""
    global _out_dtype_ok
    if a.dtype == torch.float32:
        return a @ b
    if a.is_cuda and _out_dtype_ok is not False:
        try:
            out = torch.mm(a, b, out_dtype=torch.float32)
            _out_dtype_ok = True
            return out
        except (RuntimeError, TypeError):
            _out_dtype_ok = False
    return a.float() @ b.float()


def recompute_mode(x: torch.Tensor) -> str:
    """The backward's recompute implementation for operand ``x`` (see ``RECOMPUTE_MODES``)."""
    mode = os.environ.get("REWARDKIT_LOGPROB_RECOMPUTE", "auto")
    if mode not in RECOMPUTE_MODES:
        from rewardkit.errors import invalid_argument

        raise invalid_argument("REWARDKIT_LOGPROB_RECOMPUTE", mode, f"must be one of {RECOMPUTE_MODES}")
    if x.dtype == torch.float32:
        return "cublas"  # tensor cores would round float32 operands to tf32
    hopper = x.is_cuda and torch.cuda.get_device_capability(x.device)[0] >= 9
    tma_ok = TensorDescriptor is not None and x.shape[1] % 8 == 0 and (hopper or _INTERPRET)
    if mode == "auto":  # the interpreter runs "tma" only when asked for
        mode = "tma" if hopper else "triton"
    return "triton" if mode == "tma" and not tma_ok else mode


_SMS: dict[int, int] = {}


def _num_sms(device: torch.device) -> int:
    if _INTERPRET or device.type != "cuda":
        return 4
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SMS:
        _SMS[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _SMS[idx]


def plan_blocks(n: int, v: int, h: int, elem: int, need_w: bool = True, mode: str = "triton") -> tuple[int, int]:
    """Rows per forward block and vocabulary columns per backward block.

    Budget: 4% of the gradient buffers, at least 32 MiB (env ``REWARDKIT_LOGPROB_BLOCK_MB``
    overrides). The forward may also use the space grad_weight will take, since that buffer
    only exists in the backward. Never fewer than 256 rows/columns (64 under the override):
    below that, re-reading the other operand costs more than the matmul. Columns come in
    multiples of 256, the widest matmul tile, so no tile is partly wasted.
    """
    env = os.environ.get("REWARDKIT_LOGPROB_BLOCK_MB")
    grads = (n + (v if need_w else 0)) * h * elem
    budget_b = int(float(env) * 2**20) if env else max(32 << 20, int(0.04 * grads))
    budget_f = budget_b if env else budget_b + (v * h * elem if need_w else 0)
    rows = budget_f // (v * (4 + elem) + 4 * h)
    # the fused kernels write only d logits; the cuBLAS route also holds the float32 logits
    cols = budget_b // (n * (elem if mode in ("tma", "triton") else 4 + elem))
    low = 64 if env else _MIN_ROWS
    rows = max(1, min(n, max(low, rows // 64 * 64)))
    cols = max(1, min(v, max(low, cols // low * low)))
    return rows, cols


def _row_stats(z, u, tgt, lse, logp, ent, inv_t, want_u, want_ent):
    v = z.shape[1]
    block = min(4096, max(16, 1 << (v - 1).bit_length()))
    row_stats_kernel[(z.shape[0],)](
        z, z.stride(0), u if want_u else z, u.stride(0) if want_u else 0, tgt, lse, logp,
        ent if want_ent else lse, v, inv_t, WANT_P=want_u, WANT_ENT=want_ent, BLOCK=block,
        num_warps=8,
    )


def _dlogits(z, out, tgt, lse, gl, ge, ent, col0, inv_t):
    r, c = z.shape
    br, bc = 16, 256
    grid = (triton_cdiv(r, br), triton_cdiv(c, bc))
    dlogits_kernel[grid](
        z, z.stride(0), out, out.stride(0), tgt, lse, gl if gl is not None else lse,
        ge if ge is not None else lse, ent, r, c, col0, inv_t,
        HAS_GL=gl is not None, HAS_GE=ge is not None, BLOCK_R=br, BLOCK_C=bc, num_warps=4,
    )


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


class TritonLogProbs(torch.autograd.Function):
    """Autograd function; call through :func:`rewardkit_trainer.kernels.token_logprobs`."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature, want_entropy):
        ctx.set_materialize_grads(False)
        n, h = hidden.shape
        v = weight.shape[0]
        dt = hidden.dtype
        inv_t = 1.0 / temperature
        mode = recompute_mode(hidden)
        rows, cols = plan_blocks(n, v, h, hidden.element_size(), bool(ctx.needs_input_grad[1]), mode)
        lse = hidden.new_empty(n, dtype=torch.float32)
        logp = hidden.new_empty(n, dtype=torch.float32)
        ent = hidden.new_empty(n, dtype=torch.float32) if want_entropy else lse
        want_d = bool(ctx.needs_input_grad[0])
        store_dt = torch.float32 if dt == torch.float32 else torch.float16
        d_store = hidden.new_empty((n, h), dtype=store_dt) if want_d else None
        d_scale = hidden.new_empty(n, dtype=torch.float32) if want_d and dt != torch.float32 else None
        wt = weight.t()
        for s in range(0, n, rows):
            e = min(n, s + rows)
            z = _mm_f32(hidden[s:e], wt)
            u = torch.empty(z.shape, device=z.device, dtype=dt) if want_d else None
            _row_stats(z, u, targets[s:e], lse[s:e], logp[s:e], ent[s:e], inv_t, want_d, want_entropy)
            del z
            if want_d:
                if d_scale is None:
                    torch.mm(u, weight, out=d_store[s:e])
                else:
                    d = _mm_f32(u, weight)
                    scale_rows_kernel[(e - s,)](d, d.stride(0), d_store[s:e], d_store.stride(0), d_scale[s:e], h,
                                                _D_SCALE, BLOCK=min(4096, max(16, 1 << (h - 1).bit_length())),
                                                num_warps=8)
                    del d
                del u
        ctx.save_for_backward(hidden, weight, targets, lse, ent, d_store, d_scale)
        ctx.inv_t, ctx.cols, ctx.rows, ctx.want_entropy, ctx.consumed = inv_t, cols, rows, want_entropy, False
        ctx.mode = mode
        if want_entropy:
            return logp, ent
        return logp

    @staticmethod
    def backward(ctx, grad_logp, grad_ent=None):
        hidden, weight, targets, lse, ent, d_store, d_scale = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        valid = targets >= 0
        gl = torch.where(valid, grad_logp.float(), 0.0).contiguous() if grad_logp is not None else None
        ge = torch.where(valid, grad_ent.float(), 0.0).contiguous() if grad_ent is not None else None
        if not ctx.want_entropy:
            ge = None
        grad_h = grad_w = None
        if need_h:
            if ge is None:
                grad_h = _grad_hidden_from_store(ctx, d_store, d_scale, gl, hidden.dtype)
            else:
                grad_h = _grad_hidden_recompute(ctx, hidden, weight, targets, lse, ent, gl, ge)
        if need_w:
            grad_w = _grad_weight(ctx, hidden, weight, targets, lse, ent, gl, ge)
        return grad_h, grad_w, None, None, None


def _grad_hidden_from_store(ctx, d_store, d_scale, gl, out_dtype):
    if ctx.consumed:
        raise RuntimeError("token_logprobs: the saved gradient was consumed by an earlier backward; "
                           "backward twice through one call (retain_graph=True) is not supported")
    ctx.consumed = True
    if gl is None:
        return torch.zeros(d_store.shape, device=d_store.device, dtype=out_dtype)
    c = gl * (-ctx.inv_t)
    if d_scale is not None:
        c = c * d_scale
    if d_store.dtype == out_dtype:
        return d_store.mul_(c[:, None])
    # bfloat16 result written over the float16 store, block by block (same element size)
    out = d_store.view(out_dtype)
    step = max(1, (64 << 20) // (4 * d_store.shape[1]))
    for s in range(0, d_store.shape[0], step):
        e = min(d_store.shape[0], s + step)
        blk = d_store[s:e].float().mul_(c[s:e, None])
        out[s:e] = blk
        del blk
    return out


def _grad_hidden_recompute(ctx, hidden, weight, targets, lse, ent, gl, ge):
    n = hidden.shape[0]
    grad_h = torch.empty_like(hidden)
    for s in range(0, n, ctx.rows):
        e = min(n, s + ctx.rows)
        dl = _dlogits_block(hidden[s:e], weight, 0, targets[s:e], lse[s:e], _sl(gl, s, e), _sl(ge, s, e),
                            ent[s:e], ctx.inv_t, ctx.mode)
        torch.mm(dl, weight, out=grad_h[s:e])
        del dl
    return grad_h


def _grad_weight(ctx, hidden, weight, targets, lse, ent, gl, ge):
    v = weight.shape[0]
    grad_w = torch.empty_like(weight)
    if gl is None and ge is None:
        return grad_w.zero_()
    for c0 in range(0, v, ctx.cols):
        c1 = min(v, c0 + ctx.cols)
        dl = _dlogits_block(hidden, weight[c0:c1], c0, targets, lse, gl, ge, ent, ctx.inv_t, ctx.mode)
        torch.mm(dl.t(), hidden, out=grad_w[c0:c1])
        del dl
    return grad_w


def _dlogits_block(x, w, col0, tgt, lse, gl, ge, ent, inv_t, mode="triton"):
    """d loss / d (x @ w.T) in the compute dtype, by the ``mode`` recompute (RECOMPUTE_MODES)."""
    r, c = x.shape[0], w.shape[0]
    out = torch.empty((r, c), device=x.device, dtype=x.dtype)
    if mode == "cublas":
        z = _mm_f32(x, w.t())
        _dlogits(z, out, tgt, lse, gl, ge, ent, col0, inv_t)
        return out
    if mode == "tma":
        nsm = _num_sms(x.device)
        grid = lambda meta: (min(nsm, triton_cdiv(r, meta["BLOCK_M"]) * triton_cdiv(c, meta["BLOCK_N"])),)
        dlogits_tma_kernel[grid](
            TensorDescriptor.from_tensor(x, [1, 1]), TensorDescriptor.from_tensor(w, [1, 1]), out, out.stride(0),
            tgt, lse, gl if gl is not None else lse, ge if ge is not None else lse, ent, r, c, x.shape[1], col0,
            inv_t, HAS_GL=gl is not None, HAS_GE=ge is not None, UPCAST=_INTERPRET and x.dtype == torch.bfloat16,
            NUM_SMS=nsm,
        )
        return out
    grid = lambda meta: (triton_cdiv(r, meta["BLOCK_M"]) * triton_cdiv(c, meta["BLOCK_N"]),)
    dlogits_mm_kernel[grid](
        x, x.stride(0), w, w.stride(0), out, out.stride(0), tgt, lse, gl if gl is not None else lse,
        ge if ge is not None else lse, ent, r, c, x.shape[1], col0, inv_t,
        HAS_GL=gl is not None, HAS_GE=ge is not None, UPCAST=_INTERPRET and x.dtype == torch.bfloat16,
    )
    return out


def _sl(t, s, e):
    return None if t is None else t[s:e]


def triton_token_logprobs(hidden, weight, targets, temperature, want_entropy):
    return TritonLogProbs.apply(hidden.contiguous(), weight.contiguous(), targets.contiguous(),
                                temperature, want_entropy)
