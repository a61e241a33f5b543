"""Triton kernels for the token log-prob path (the matmuls themselves run in cuBLAS).

Element-wise kernels over float32 logits blocks that cuBLAS wrote, and one matmul kernel:

- ``row_stats_kernel``: one program per row of a ``[rows, V]`` block (float32 logits, or
  the compute dtype's for the fused loss's ``REWARDKIT_FUSED_LOGITS=half``): online
  max/sum-exp (and the entropy's sum p*z), the target's log-prob, and optionally the row of
  ``softmax - onehot`` in the compute dtype (the forward's unit gradient w.r.t. the logits).
- ``scale_rows_kernel``: one program per row of a float32 ``[rows, H]`` block: the row's
  absolute maximum over ``limit`` becomes its scale, and the scaled row is written in the
  store's dtype (the forward's float16 copy of ``(softmax - onehot) @ W``).
- ``dlogits_kernel``: a 2-D grid over a ``[rows, cols]`` block at column offset ``col0``:
  d(loss)/d(logits) from the saved logsumexp, the incoming gradients and the target.
- ``dlogits_mm_kernel``: the same d loss/d logits, recomputing the logits block with tl.dot
  instead of reading it (half-precision inputs; no float32 logits ever reach memory).
- ``dlogits_tma_kernel``: the same as ``dlogits_mm_kernel``, persistent (one program per SM
  looping over tiles) with operands fetched by TMA descriptors (Hopper and newer; H a
  multiple of 8 so that rows are 16-byte aligned). Out-of-range rows, columns and the K tail
  come back as zeros from the descriptor, so the hot loop has no masks at all.

- ``row_dlogits_kernel``: one program per row: the fused loss's d loss / d logits from the
  row's logits, logsumexp and per-token coefficient, written over the logits themselves.

Limits: logits blocks must be float32 (or, for the two row kernels, the compute dtype) and row-major (unit column stride); matmul operands
row-major with unit last stride.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl


@triton.jit
def row_stats_kernel(
    Z, stride_z, P, stride_p, TGT, LSE, LOGP, ENT,
    V, inv_t,
    WANT_P: tl.constexpr, WANT_ENT: tl.constexpr, BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    z_row = Z + row * stride_z
    tgt = tl.load(TGT + row)
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.zeros((), tl.float32)
    a = tl.zeros((), tl.float32)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < V
        z = tl.load(z_row + offs, mask=mask, other=float("-inf")).to(tl.float32) * inv_t
        new_m = tl.maximum(m, tl.max(z, 0))
        scale = tl.exp(m - new_m)
        e = tl.exp(z - new_m)
        s = s * scale + tl.sum(e, 0)
        if WANT_ENT:
            a = a * scale + tl.sum(tl.where(mask, e * z, 0.0), 0)
        m = new_m
    lse = m + tl.log(s)
    valid = tgt >= 0
    safe = tl.where(valid, tgt, 0)
    zt = tl.load(z_row + safe).to(tl.float32) * inv_t
    tl.store(LSE + row, lse)
    tl.store(LOGP + row, tl.where(valid, zt - lse, 0.0))
    if WANT_ENT:
        tl.store(ENT + row, tl.where(valid, lse - a / s, 0.0))
    if WANT_P:
        p_row = P + row * stride_p
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < V
            z = tl.load(z_row + offs, mask=mask, other=0.0) * inv_t
            p = tl.exp(z - lse) - tl.where(offs == tgt, 1.0, 0.0)
            p = tl.where(valid, p, 0.0)
            tl.store(p_row + offs, p.to(P.dtype.element_ty), mask=mask)


@triton.jit
def scale_rows_kernel(D, stride_d, OUT, stride_o, SCALE, H, limit, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    d_row = D + row * stride_d
    m = tl.zeros((), tl.float32)
    for start in range(0, H, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        m = tl.maximum(m, tl.max(tl.abs(tl.load(d_row + offs, mask=offs < H, other=0.0)), 0))
    sc = tl.maximum(m, 1e-30) / limit
    tl.store(SCALE + row, sc)
    o_row = OUT + row * stride_o
    for start in range(0, H, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        x = tl.load(d_row + offs, mask=offs < H, other=0.0)
        tl.store(o_row + offs, (x / sc).to(OUT.dtype.element_ty), mask=offs < H)


@triton.jit
def _grad_logits(logq, rows, rmask, cols, col0, inv_t, GL, TGT, GE, ENT,
                 HAS_GL: tl.constexpr, HAS_GE: tl.constexpr):
    """d loss / d logits for one tile, from log-softmax ``logq`` (shared by both kernels):
    the log-prob term (onehot - p) * g_logp and the entropy term -p (logq + H) * g_ent."""
    p = tl.exp(logq)
    d = tl.zeros(logq.shape, tl.float32)
    if HAS_GL:
        gl = tl.load(GL + rows, mask=rmask, other=0.0)
        tgt = tl.load(TGT + rows, mask=rmask, other=-1)
        onehot = tl.where((cols[None, :] + col0) == tgt[:, None], 1.0, 0.0)
        d += (onehot - p) * gl[:, None]
    if HAS_GE:
        ge = tl.load(GE + rows, mask=rmask, other=0.0)
        ent = tl.load(ENT + rows, mask=rmask, other=0.0)
        d -= p * (logq + ent[:, None]) * ge[:, None]
    return d * inv_t


@triton.jit
def _store_dlogits(logits, rows, cols, n_rows, n_cols, col0, inv_t, OUT, stride_o, LSE, GL, TGT, GE, ENT,
                   HAS_GL: tl.constexpr, HAS_GE: tl.constexpr):
    """The shared epilogue: a tile of raw logits -> d loss / d logits, stored in OUT's dtype."""
    rmask = rows < n_rows
    mask = rmask[:, None] & (cols[None, :] < n_cols)
    lse = tl.load(LSE + rows, mask=rmask, other=0.0)
    logq = logits * inv_t - lse[:, None]
    d = _grad_logits(logq, rows, rmask, cols, col0, inv_t, GL, TGT, GE, ENT, HAS_GL, HAS_GE)
    tl.store(OUT + rows.to(tl.int64)[:, None] * stride_o + cols[None, :], d.to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _grouped_tile(tile, num_m, num_n, GROUP_M: tl.constexpr):
    """Grouped tile order: neighbouring tiles share W tiles in L2."""
    per_group = GROUP_M * num_n
    first_m = (tile // per_group) * GROUP_M
    gsize = tl.minimum(num_m - first_m, GROUP_M)
    return first_m + (tile % per_group) % gsize, (tile % per_group) // gsize


@triton.jit
def dlogits_kernel(
    Z, stride_z, OUT, stride_o, TGT, LSE, GL, GE, ENT,
    n_rows, n_cols, col0, inv_t,
    HAS_GL: tl.constexpr, HAS_GE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    # GL / GE arrive already zeroed on ignored rows, so no validity test is needed here
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows < n_rows)[:, None] & (cols[None, :] < n_cols)
    z = tl.load(Z + rows.to(tl.int64)[:, None] * stride_z + cols[None, :], mask=mask, other=0.0)
    _store_dlogits(z, rows, cols, n_rows, n_cols, col0, inv_t, OUT, stride_o, LSE, GL, TGT, GE, ENT, HAS_GL, HAS_GE)


def _tile_configs(shapes, pre_hook=None):
    # the interpreter runs every autotune candidate on the CPU: give it one small tile
    if os.environ.get("TRITON_INTERPRET") == "1":
        shapes, group = [(32, 32, 16, 4, 1)], 4
    else:
        group = 8
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": group}, num_warps=w, num_stages=st,
                          pre_hook=pre_hook) for m, n, k, w, st in shapes]


_MM_SHAPES = [(128, 256, 64, 8, 3), (128, 256, 64, 8, 4), (256, 128, 64, 8, 3), (256, 128, 64, 8, 4),
              (128, 128, 64, 4, 4), (128, 128, 64, 8, 4), (128, 128, 128, 8, 3), (128, 256, 32, 8, 5),
              (64, 256, 64, 4, 4)]
_TMA_SHAPES = [(128, 256, 64, 8, 3), (128, 256, 64, 8, 4), (128, 128, 64, 8, 4), (128, 128, 64, 4, 4),
               (128, 128, 128, 8, 3), (256, 128, 64, 8, 3), (128, 256, 128, 8, 2)]


@triton.autotune(configs=_tile_configs(_MM_SHAPES), key=["H", "HAS_GE"])
@triton.heuristics({"EVEN_K": lambda a: a["H"] % a["BLOCK_K"] == 0})
@triton.jit
def dlogits_mm_kernel(
    X, stride_x, W, stride_w, OUT, stride_o, TGT, LSE, GL, GE, ENT,
    n_rows, n_cols, H, col0, inv_t,
    HAS_GL: tl.constexpr, HAS_GE: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    EVEN_K: tl.constexpr,
):
    """d loss / d logits for a [rows, cols] block, recomputing the logits with tl.dot over H.

    ``W`` points at the block's first vocabulary row (``col0`` is its index, for the one-hot).
    The logits never leave registers; only the compute-dtype result is written.
    """
    pid_m, pid_n = _grouped_tile(tl.program_id(0), tl.cdiv(n_rows, BLOCK_M), tl.cdiv(n_cols, BLOCK_N), GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    # wrap out-of-range rows/cols onto valid ones so the hot loop needs no row/col masks
    a_ptrs = X + (rows % n_rows).to(tl.int64)[:, None] * stride_x + rk[None, :]
    b_ptrs = W + (cols % n_cols).to(tl.int64)[None, :] * stride_w + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for k in range(0, tl.cdiv(H, BLOCK_K)):
        if EVEN_K:  # no K tail: unmasked loads pipeline and vectorize better
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            kmask = rk < H - k * BLOCK_K
            a = tl.load(a_ptrs, mask=kmask[None, :], other=0.0)
            b = tl.load(b_ptrs, mask=kmask[:, None], other=0.0)
        if UPCAST:  # the CPU interpreter's dot mishandles bfloat16 operands
            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc)
        else:
            acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    _store_dlogits(acc, rows, cols, n_rows, n_cols, col0, inv_t, OUT, stride_o, LSE, GL, TGT, GE, ENT, HAS_GL, HAS_GE)


def _set_desc_blocks(nargs):
    nargs["x_desc"].block_shape = [nargs["BLOCK_M"], nargs["BLOCK_K"]]
    nargs["w_desc"].block_shape = [nargs["BLOCK_N"], nargs["BLOCK_K"]]


@triton.autotune(configs=_tile_configs(_TMA_SHAPES, _set_desc_blocks), key=["H", "HAS_GE"])
@triton.jit
def dlogits_tma_kernel(
    x_desc, w_desc, OUT, stride_o, TGT, LSE, GL, GE, ENT,
    n_rows, n_cols, H, col0, inv_t,
    HAS_GL: tl.constexpr, HAS_GE: tl.constexpr, UPCAST: tl.constexpr, NUM_SMS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """``dlogits_mm_kernel``'s result, persistent over tiles, operands loaded through TMA."""
    start = tl.program_id(0)
    num_m = tl.cdiv(n_rows, BLOCK_M)
    num_n = tl.cdiv(n_cols, BLOCK_N)
    k_tiles = tl.cdiv(H, BLOCK_K)
    for tile in tl.range(start, num_m * num_n, NUM_SMS, flatten=True):
        pid_m, pid_n = _grouped_tile(tile, num_m, num_n, GROUP_M)
        om = pid_m * BLOCK_M
        on = pid_n * BLOCK_N
        acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
        for ki in range(k_tiles):
            a = x_desc.load([om, ki * BLOCK_K])
            b = w_desc.load([on, ki * BLOCK_K])
            if UPCAST:
                acc = tl.dot(a.to(tl.float32), b.to(tl.float32).T, acc)
            else:
                acc = tl.dot(a, b.T, acc)
        _store_dlogits(acc, om + tl.arange(0, BLOCK_M), on + tl.arange(0, BLOCK_N), n_rows, n_cols, col0, inv_t,
                       OUT, stride_o, LSE, GL, TGT, GE, ENT, HAS_GL, HAS_GE)


@triton.jit
def row_dlogits_kernel(Z, stride_z, OUT, stride_o, TGT, LSE, COEF, V, inv_t, BLOCK: tl.constexpr):
    """One program per row: ``OUT = coef / T * (onehot - softmax(Z / T))``, row ``Z`` read in
    column order. ``OUT`` may alias ``Z`` with a narrower dtype and the same row start (the
    fused loss writes bf16 over its float32 logits): each step's stores land on bytes that
    this or an earlier step read, and the barrier makes every thread's load of the step land
    before any thread stores. ``COEF`` is 0 on ignored rows (so is the whole row then)."""
    row = tl.program_id(0).to(tl.int64)
    z_row = Z + row * stride_z
    o_row = OUT + row * stride_o
    tgt = tl.load(TGT + row)
    lse = tl.load(LSE + row)
    c = tl.load(COEF + row) * inv_t
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < V
        z = tl.load(z_row + offs, mask=mask, other=0.0).to(tl.float32)
        tl.debug_barrier()
        p = tl.exp(z * inv_t - lse)
        d = (tl.where(offs == tgt, 1.0, 0.0) - p) * c
        tl.store(o_row + offs, d.to(OUT.dtype.element_ty), mask=mask)
