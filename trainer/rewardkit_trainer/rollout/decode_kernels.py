"""Triton kernels for the fused decode step of :mod:`.fused` and the sampler of
:mod:`.sampling`; each has a PyTorch reference of the same math beside it in those modules
(used on CPU, and compared with these in the tests, on CPU under ``TRITON_INTERPRET=1``).

- ``add_rmsnorm``: residual add + RMSNorm, one read of each operand, rounding where
  transformers rounds (the sum to the model dtype, the normalised value, then the product
  with the weight).
- ``rope_store``: rotary embedding of the new token's query and key heads, the key and
  value written into the completion KV cache at the current slot (one kernel instead of
  rotate_half / cat / mul / add / index_copy).
- ``decode_attention``: one query token per row against its prompt's shared keys (read
  from the group's one copy) and its own completion keys, up to the filled slot only
  (the loop bound is read from the step counter on the device, so a CUDA graph replays
  it); split over the key axis when rows x kv heads cannot fill the GPU, with a combine
  kernel.
- ``silu_mul``: SiLU(gate) * up over the fused gate/up projection's output.
- ``gumbel_sample``: the exponential race (Gumbel-max) over the vocabulary with
  counter-based Philox noise, plus the log-sum-exp for the chosen token's log-prob, split
  over the vocabulary, then a per-row combine.

Limits: head_dim must be a power of two (<= 256); the hidden size and intermediate size
any; bf16/fp16/fp32 inputs.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["add_rmsnorm_kernel", "rope_store_kernel", "attention_kernel", "attention_combine_kernel",
           "silu_mul_kernel", "gumbel_partial_kernel", "gumbel_combine_kernel"]


@triton.jit
def add_rmsnorm_kernel(x_ptr, delta_ptr, res_ptr, w_ptr, out_ptr, n, eps, HAS_DELTA: tl.constexpr,
                       BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(x_ptr + row * n + cols, mask=mask, other=0.0)
    if HAS_DELTA:
        d = tl.load(delta_ptr + row * n + cols, mask=mask, other=0.0)
        x = (x.to(tl.float32) + d.to(tl.float32)).to(res_ptr.dtype.element_ty)
        tl.store(res_ptr + row * n + cols, x, mask=mask)
    xf = x.to(tl.float32)
    var = tl.sum(xf * xf, axis=0) / n
    normed = (xf * (1.0 / tl.sqrt(var + eps))).to(out_ptr.dtype.element_ty)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    tl.store(out_ptr + row * n + cols, (normed.to(tl.float32) * w.to(tl.float32)).to(out_ptr.dtype.element_ty),
             mask=mask)


@triton.jit
def rope_store_kernel(qkv_ptr, cos_ptr, sin_ptr, pos_ptr, step_ptr, q_ptr, ck_ptr, cv_ptr,
                      HQ: tl.constexpr, HKV: tl.constexpr, T, D: tl.constexpr):
    """Grid (rows, HQ + HKV): head h < HQ is a query head, else a kv head (key and value)."""
    row = tl.program_id(0)
    h = tl.program_id(1)
    half: tl.constexpr = D // 2
    d = tl.arange(0, half)
    step = tl.load(step_ptr)
    pos = tl.load(pos_ptr + row) + step
    c1 = tl.load(cos_ptr + pos * D + d).to(tl.float32)
    c2 = tl.load(cos_ptr + pos * D + half + d).to(tl.float32)
    s1 = tl.load(sin_ptr + pos * D + d).to(tl.float32)
    s2 = tl.load(sin_ptr + pos * D + half + d).to(tl.float32)
    src = qkv_ptr + row * (HQ + 2 * HKV) * D + h * D
    x1 = tl.load(src + d)
    x2 = tl.load(src + half + d)
    ty = x1.dtype
    # (x * cos) + (rotate_half(x) * sin), each product and the sum rounded as transformers does
    y1 = ((x1.to(tl.float32) * c1).to(ty).to(tl.float32) + (-(x2.to(tl.float32)) * s1).to(ty).to(tl.float32)).to(ty)
    y2 = ((x2.to(tl.float32) * c2).to(ty).to(tl.float32) + (x1.to(tl.float32) * s2).to(ty).to(tl.float32)).to(ty)
    if h < HQ:
        dst = q_ptr + (row * HQ + h) * D
        tl.store(dst + d, y1)
        tl.store(dst + half + d, y2)
    else:
        kh = h - HQ
        dst = ck_ptr + ((row * HKV + kh) * T + step) * D
        tl.store(dst + d, y1)
        tl.store(dst + half + d, y2)
        dv = tl.arange(0, D)
        v = tl.load(qkv_ptr + row * (HQ + 2 * HKV) * D + (HQ + HKV + kh) * D + dv)
        tl.store(cv_ptr + ((row * HKV + kh) * T + step) * D + dv, v)


@triton.jit
def _attend(q, k, v, valid, m, lsum, acc, qk_scale, PRECISION: tl.constexpr):
    """One block of keys into the running (max, sum, weighted values), base-2 exponentials."""
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
    s = tl.where(valid[None, :], s, float("-inf"))
    m_new = tl.maximum(m, tl.max(s, axis=1))
    alpha = tl.exp2(m - m_new)
    p = tl.exp2(s - m_new[:, None])
    lsum = lsum * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return m_new, lsum, acc


@triton.jit
def attention_kernel(q_ptr, pk_ptr, pv_ptr, ck_ptr, cv_ptr, start_ptr, step_ptr, out_ptr, part_ptr, ml_ptr,
                     scale, G, W, T, CHUNK, HKV: tl.constexpr, REP: tl.constexpr, REP_P: tl.constexpr,
                     D: tl.constexpr, BLOCK_N: tl.constexpr, SPLITS: tl.constexpr, PRECISION: tl.constexpr):
    """Grid (rows, HKV, SPLITS). Keys in order: prompt slots [start, W) of the row's prompt,
    then completion slots [0, step]; split s takes keys [s*CHUNK, (s+1)*CHUNK), the prompt
    part and the completion part each in its own loop (plain, unmasked loads)."""
    row = tl.program_id(0)
    kh = tl.program_id(1)
    split = tl.program_id(2)
    prompt = row // G
    start = tl.load(start_ptr + prompt)
    n_prompt = W - start
    n = n_prompt + tl.load(step_ptr) + 1
    r = tl.arange(0, REP_P)
    d = tl.arange(0, D)
    qmask = r < REP
    q = tl.load(q_ptr + (row * HKV * REP + kh * REP + r)[:, None] * D + d[None, :], mask=qmask[:, None], other=0.0)
    m = tl.full((REP_P,), float("-inf"), tl.float32)
    lsum = tl.zeros((REP_P,), tl.float32)
    acc = tl.zeros((REP_P, D), tl.float32)
    lo = split * CHUNK
    hi = tl.minimum(lo + CHUNK, n)
    qk_scale = scale * 1.4426950408889634
    p_hi = tl.minimum(hi, n_prompt)
    base = ((prompt * HKV + kh) * W + start) * D  # offset of virtual key 0
    for j0 in range(lo, p_hi, BLOCK_N):
        j = j0 + tl.arange(0, BLOCK_N)
        valid = j < p_hi
        off = base + j[:, None] * D + d[None, :]
        k = tl.load(pk_ptr + off, mask=valid[:, None], other=0.0)
        v = tl.load(pv_ptr + off, mask=valid[:, None], other=0.0)
        m, lsum, acc = _attend(q, k, v, valid, m, lsum, acc, qk_scale, PRECISION)
    cbase = (row * HKV + kh) * T * D
    for j0 in range(tl.maximum(lo, n_prompt), hi, BLOCK_N):
        j = j0 + tl.arange(0, BLOCK_N)
        valid = j < hi
        off = cbase + (j - n_prompt)[:, None] * D + d[None, :]
        k = tl.load(ck_ptr + off, mask=valid[:, None], other=0.0)
        v = tl.load(cv_ptr + off, mask=valid[:, None], other=0.0)
        m, lsum, acc = _attend(q, k, v, valid, m, lsum, acc, qk_scale, PRECISION)
    heads = row * HKV * REP + kh * REP + r
    if SPLITS == 1:
        out = acc / lsum[:, None]
        tl.store(out_ptr + heads[:, None] * D + d[None, :], out.to(out_ptr.dtype.element_ty), mask=qmask[:, None])
    else:
        tl.store(part_ptr + (heads * SPLITS + split)[:, None] * D + d[None, :], acc, mask=qmask[:, None])
        tl.store(ml_ptr + (heads * SPLITS + split) * 2, m, mask=qmask)
        tl.store(ml_ptr + (heads * SPLITS + split) * 2 + 1, lsum, mask=qmask)


@triton.jit
def attention_combine_kernel(part_ptr, ml_ptr, out_ptr, SPLITS: tl.constexpr, SPLITS_P: tl.constexpr,
                             D: tl.constexpr):
    """Grid (rows * HQ,): joins the splits' partial sums (empty splits carry m = -inf)."""
    head = tl.program_id(0)
    s = tl.arange(0, SPLITS_P)
    d = tl.arange(0, D)
    smask = s < SPLITS
    m = tl.load(ml_ptr + (head * SPLITS + s) * 2, mask=smask, other=float("-inf"))
    lsum = tl.load(ml_ptr + (head * SPLITS + s) * 2 + 1, mask=smask, other=0.0)
    mx = tl.max(m, axis=0)
    w = tl.where(smask & (m > float("-inf")), tl.exp2(m - mx), 0.0)
    part = tl.load(part_ptr + (head * SPLITS + s)[:, None] * D + d[None, :], mask=smask[:, None], other=0.0)
    out = tl.sum(part * w[:, None], axis=0) / tl.sum(lsum * w, axis=0)
    tl.store(out_ptr + head * D + d, out.to(out_ptr.dtype.element_ty))


@triton.jit
def silu_mul_kernel(gu_ptr, out_ptr, inter, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < inter
    g = tl.load(gu_ptr + row * 2 * inter + cols, mask=mask, other=0.0)
    u = tl.load(gu_ptr + row * 2 * inter + inter + cols, mask=mask, other=0.0)
    gf = g.to(tl.float32)
    act = (gf / (1.0 + tl.exp(-gf))).to(g.dtype)
    tl.store(out_ptr + row * inter + cols, (act.to(tl.float32) * u.to(tl.float32)).to(g.dtype), mask=mask)


@triton.jit
def _exponential(bits):
    """Exp(1) draws from uint32 Philox output: E = -log(1 - v), v = (bits + 0.5) / 2^32,
    with a series where 1 - v would lose digits (small v means small E: the winners)."""
    v = (bits.to(tl.float32) + 0.5) * 2.3283064365386963e-10
    v = tl.minimum(v, 0.99999994)
    series = v * (1.0 + v * (0.5 + v * (0.3333333333333333 + v * (0.25 + v * 0.2))))
    return tl.where(v < 0.01, series, -tl.log(1.0 - v))


@triton.jit
def gumbel_partial_kernel(logits_ptr, sample_ptr, inv_t_ptr, seed_ptr, grow_ptr, col_ptr, best_ptr, idx_ptr,
                          lse_ptr, V, CHUNK, SPLITS: tl.constexpr, SAMPLE_SCALED: tl.constexpr,
                          BLOCK: tl.constexpr):
    """Grid (rows, SPLITS): over columns [s*CHUNK, (s+1)*CHUNK) the best score
    sample/T - log(E) (or sample - log(E) for pre-filtered, already tempered input) and its
    index, and the running max / sum of exp(logits/T) for the log-sum-exp."""
    row = tl.program_id(0)
    split = tl.program_id(1)
    inv_t = tl.load(inv_t_ptr)
    seed = tl.load(seed_ptr + row)
    grow = tl.load(grow_ptr + row).to(tl.uint32)
    col = tl.load(col_ptr).to(tl.uint32)
    best = tl.full((BLOCK,), float("-inf"), tl.float32)
    best_i = tl.zeros((BLOCK,), tl.int32)
    m = tl.full((BLOCK,), float("-inf"), tl.float32)
    acc = tl.zeros((BLOCK,), tl.float32)
    lo = split * CHUNK
    for c0 in range(lo, tl.minimum(lo + CHUNK, V), BLOCK):
        cols = c0 + tl.arange(0, BLOCK)
        mask = cols < V
        x = tl.load(logits_ptr + row * V + cols, mask=mask, other=float("-inf")).to(tl.float32) * inv_t
        m_new = tl.maximum(m, x)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # lanes past V: no -inf minus -inf
        acc = acc * tl.exp(m - m_safe) + tl.exp(x - m_safe)
        m = m_new
        if SAMPLE_SCALED:
            s = x
        else:
            s = tl.load(sample_ptr + row * V + cols, mask=mask, other=float("-inf")).to(tl.float32)
        # one Philox call gives 4 words: token i takes word i % 4 of counter i // 4
        c = (c0 // 4 + tl.arange(0, BLOCK // 4)).to(tl.uint32)
        zero = c * 0
        w0, w1, w2, w3 = tl.philox(seed, c, zero + col, zero + grow, zero)
        bits = tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), (BLOCK,))
        score = s - tl.log(_exponential(bits))
        better = mask & (score > best)
        best = tl.where(better, score, best)
        best_i = tl.where(better, cols, best_i)
    top = tl.max(best, axis=0)
    top_i = tl.min(tl.where(best == top, best_i, 2147483647), axis=0)  # lowest index on ties
    mx = tl.max(m, axis=0)
    total = tl.sum(tl.where(m > float("-inf"), acc * tl.exp(m - mx), 0.0), axis=0)
    tl.store(best_ptr + row * SPLITS + split, top)
    tl.store(idx_ptr + row * SPLITS + split, top_i)
    tl.store(lse_ptr + (row * SPLITS + split) * 2, mx)
    tl.store(lse_ptr + (row * SPLITS + split) * 2 + 1, total)


@triton.jit
def gumbel_combine_kernel(logits_ptr, inv_t_ptr, best_ptr, idx_ptr, lse_ptr, tok_ptr, lp_ptr, V,
                          SPLITS: tl.constexpr, SPLITS_P: tl.constexpr):
    row = tl.program_id(0)
    s = tl.arange(0, SPLITS_P)
    smask = s < SPLITS
    best = tl.load(best_ptr + row * SPLITS + s, mask=smask, other=float("-inf"))
    idx = tl.load(idx_ptr + row * SPLITS + s, mask=smask, other=2147483647)
    top = tl.max(best, axis=0)
    tok = tl.min(tl.where(best == top, idx, 2147483647), axis=0)
    m = tl.load(lse_ptr + (row * SPLITS + s) * 2, mask=smask, other=float("-inf"))
    acc = tl.load(lse_ptr + (row * SPLITS + s) * 2 + 1, mask=smask, other=0.0)
    mx = tl.max(m, axis=0)
    lse = mx + tl.log(tl.sum(tl.where(m > float("-inf"), acc * tl.exp(m - mx), 0.0), axis=0))
    x = tl.load(logits_ptr + row * V + tok).to(tl.float32) * tl.load(inv_t_ptr)
    tl.store(tok_ptr + row, tok.to(tl.int64))
    tl.store(lp_ptr + row, x - lse)
