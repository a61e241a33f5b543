"""Triton kernels for the token log-prob path (the matmuls themselves run in cuBLAS).

Two element-wise kernels over float32 logits blocks that cuBLAS wrote:

- ``row_stats_kernel``: one program per row of a ``[rows, V]`` block: online
  max/sum-exp (and the entropy's sum p*z), the target's log-prob, and optionally the row of
  ``softmax - onehot`` in the compute dtype (the forward's unit gradient w.r.t. the logits).
- ``dlogits_kernel``: a 2-D grid over a ``[rows, cols]`` block at column offset ``col0``:
  d(loss)/d(logits) from the saved logsumexp, the incoming gradients and the target.

Limits: the logits block must be float32 and row-major (unit column stride).
"""

from __future__ import annotations

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
        z = tl.load(z_row + offs, mask=mask, other=float("-inf")) * inv_t
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
    zt = tl.load(z_row + safe) * inv_t
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
def dlogits_kernel(
    Z, stride_z, OUT, stride_o, TGT, LSE, GL, GE, ENT,
    n_rows, n_cols, col0, inv_t,
    HAS_GL: tl.constexpr, HAS_GE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    # GL / GE arrive already zeroed on ignored rows, so no validity test is needed here
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    rmask = rows < n_rows
    mask = rmask[:, None] & (cols[None, :] < n_cols)
    rows64 = rows.to(tl.int64)
    z = tl.load(Z + rows64[:, None] * stride_z + cols[None, :], mask=mask, other=0.0) * inv_t
    lse = tl.load(LSE + rows, mask=rmask, other=0.0)
    logq = z - lse[:, None]
    p = tl.exp(logq)
    d = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    if HAS_GL:
        gl = tl.load(GL + rows, mask=rmask, other=0.0)
        tgt = tl.load(TGT + rows, mask=rmask, other=-1)
        onehot = tl.where((cols[None, :] + col0) == tgt[:, None], 1.0, 0.0)
        d += (onehot - p) * gl[:, None]
    if HAS_GE:
        ge = tl.load(GE + rows, mask=rmask, other=0.0)
        ent = tl.load(ENT + rows, mask=rmask, other=0.0)
        d -= p * (logq + ent[:, None]) * ge[:, None]
    d = d * inv_t
    tl.store(OUT + rows64[:, None] * stride_o + cols[None, :], d.to(OUT.dtype.element_ty), mask=mask)
