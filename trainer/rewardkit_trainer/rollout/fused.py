"""The fused decode step of :class:`~.static.StaticCacheEngine` for Llama-style decoders.

The engine keeps its own weight views in decode-friendly layouts: the q/k/v projections
concatenated into one [q; k; v] matrix (and bias) and gate/up into one [gate; up] matrix,
so a layer is 9 kernels at decode time instead of ~40:

    add+RMSNorm, QKV matmul, RoPE + KV write, attention, O matmul,
    add+RMSNorm, gate/up matmul, SiLU*mul, down matmul

The other matrices (O, down, norms, embeddings, lm_head) are the model's own tensors, read
in place. The fused copies are rebuilt by :meth:`FusedDecoder.refresh` (the engine calls it
on ``update_weights`` and before a rollout after ``sleep``); they cost 2 x (q,k,v,gate,up)
bytes of memory while held, and ``release`` frees them for the training pass.

The KV layout is the engine's shared one: the prompt's K/V once per group
([P, kv heads, W, D]), each row's completion K/V after it ([B, kv heads, T, D]); the
attention reads only the filled slots. On CUDA the elementwise steps and the attention
run as Triton kernels (:mod:`.decode_kernels`); elsewhere the PyTorch references below
compute the same math (used on CPU, and as the reference in the tests).

Limits: model types llama, qwen2, mistral (a sliding window only while a whole sequence
fits it: the engine refuses longer calls) with SiLU MLPs, plain
``nn.Linear`` projections (a peft-wrapped model takes the engine's transformers path),
head_dim a power of two up to 256 (at least 16 on a GPU). Anything else: :meth:`FusedDecoder.unsupported` says
why and the engine decodes through the transformers modules as before.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["FusedDecoder", "two_part_attention"]

_TYPES = ("llama", "qwen2", "mistral")


class _Layer:
    __slots__ = ("ln1", "ln2", "eps1", "eps2", "wqkv", "bqkv", "wo", "bo", "wgu", "bgu", "wdown", "bdown")


def _cat_into(dst: torch.Tensor | None, parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0 into ``dst`` when it has the right shape (the addresses a
    captured graph holds stay valid), else into a new tensor."""
    rows = sum(p.shape[0] for p in parts)
    if dst is None or dst.shape[0] != rows or dst.dtype != parts[0].dtype or dst.device != parts[0].device:
        return torch.cat([p.detach() for p in parts], 0)
    at = 0
    for p in parts:
        dst[at: at + p.shape[0]].copy_(p.detach())
        at += p.shape[0]
    return dst


def _bias(linears, dtype, device) -> list[torch.Tensor] | None:
    if all(m.bias is None for m in linears):
        return None
    return [m.bias.detach() if m.bias is not None else torch.zeros(m.out_features, dtype=dtype, device=device)
            for m in linears]


class FusedDecoder:
    """Fused weight layout and decode step for one causal LM (see the module docstring)."""

    def __init__(self, causal: Any) -> None:
        cfg = causal.config
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.causal = causal
        self.layers: list[_Layer] = []
        self.refresh(causal)

    @staticmethod
    def unsupported(causal: Any) -> str | None:
        """Why the fused step cannot run ``causal`` (None when it can)."""
        cfg = causal.config
        if getattr(cfg, "model_type", None) not in _TYPES:
            return f"model_type {getattr(cfg, 'model_type', None)!r} (fused decode knows {', '.join(_TYPES)})"
        if getattr(cfg, "hidden_act", "silu") != "silu":
            return f"hidden_act {cfg.hidden_act!r}"
        heads = cfg.num_attention_heads
        d = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        if d & (d - 1) or d > 256:
            return f"head_dim {d} (a power of two up to 256)"
        param = next(causal.parameters(), None)
        if d < 16 and param is not None and param.is_cuda:  # tl.dot's inner dimension on a GPU
            return f"head_dim {d} (the Triton attention needs at least 16 on a GPU)"
        inner = getattr(causal, "model", None)
        if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
            return "no model.layers / model.rotary_emb"
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            mods = [att.q_proj, att.k_proj, att.v_proj, att.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
            if any(type(m) is not torch.nn.Linear for m in mods):
                return "projections are not plain nn.Linear (peft adapter?)"
            if abs(float(getattr(att, "scaling", d**-0.5)) - d**-0.5) > 1e-12:
                return "attention scaling other than head_dim ** -0.5"
        return None

    # weights ------------------------------------------------------------------------------
    def refresh(self, causal: Any) -> None:
        """(Re)build the fused q/k/v and gate/up copies from ``causal``'s current weights,
        in place where they exist."""
        self.causal = causal
        inner = causal.model
        old = self.layers
        self.layers = []
        for i, layer in enumerate(inner.layers):
            att, mlp = layer.self_attn, layer.mlp
            prev = old[i] if i < len(old) else None
            lw = _Layer()
            qkv = [att.q_proj, att.k_proj, att.v_proj]
            gu = [mlp.gate_proj, mlp.up_proj]
            w = att.q_proj.weight
            lw.wqkv = _cat_into(prev.wqkv if prev else None, [m.weight for m in qkv])
            b = _bias(qkv, w.dtype, w.device)
            lw.bqkv = None if b is None else _cat_into(prev.bqkv if prev else None, b)
            lw.wgu = _cat_into(prev.wgu if prev else None, [m.weight for m in gu])
            b = _bias(gu, w.dtype, w.device)
            lw.bgu = None if b is None else _cat_into(prev.bgu if prev else None, b)
            lw.wo, lw.bo = att.o_proj.weight, att.o_proj.bias
            lw.wdown, lw.bdown = mlp.down_proj.weight, mlp.down_proj.bias
            lw.ln1, lw.eps1 = layer.input_layernorm.weight, _eps(layer.input_layernorm)
            lw.ln2, lw.eps2 = layer.post_attention_layernorm.weight, _eps(layer.post_attention_layernorm)
            self.layers.append(lw)
        self.embed = inner.embed_tokens.weight
        self.norm, self.norm_eps = inner.norm.weight, _eps(inner.norm)
        self.head = causal.get_output_embeddings().weight

    def release(self) -> None:
        self.layers = []

    def fused_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for lw in self.layers
                   for t in (lw.wqkv, lw.bqkv, lw.wgu, lw.bgu) if t is not None)

    def rope_tables(self, length: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [length, head_dim] in the model dtype, from the model's own rotary module
        (so any rope scaling it implements is the one used)."""
        pos = torch.arange(length, device=device)[None]
        dummy = torch.zeros(1, 1, self.head_dim, dtype=dtype, device=device)
        cos, sin = self.causal.model.rotary_emb(dummy, pos)
        return cos[0].contiguous(), sin[0].contiguous()

    # the decode step ----------------------------------------------------------------------
    def forward(self, st: Any, triton: bool) -> torch.Tensor:
        """Final-norm hidden state [B, H] of the token ``st.cur`` fed at completion slot
        ``st.step``; writes its K/V into ``st.ck``/``st.cv``."""
        ops = _TRITON if triton else _TORCH
        g = st.key.generations
        res = F.embedding(st.cur, self.embed)
        delta = None
        for i, lw in enumerate(self.layers):
            h = ops.add_rmsnorm(res, delta, lw.ln1, lw.eps1)
            qkv = F.linear(h, lw.wqkv, lw.bqkv)
            q = ops.rope_store(qkv, st, i, self.heads, self.kv_heads, self.head_dim)
            a = ops.attention(q, st, i, g, self.kv_heads)
            delta = F.linear(a.view(a.shape[0], -1), lw.wo, lw.bo)
            h = ops.add_rmsnorm(res, delta, lw.ln2, lw.eps2)
            delta = F.linear(ops.silu_mul(F.linear(h, lw.wgu, lw.bgu)), lw.wdown, lw.bdown)
        return ops.add_rmsnorm(res, delta, self.norm, self.norm_eps)


def _eps(norm: Any) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))


# PyTorch references ---------------------------------------------------------------------------
def two_part_attention(q: torch.Tensor, st: Any, layer: int, scale: float) -> torch.Tensor:
    """One query token per row ([B, Hq, 1, D]) against its group's shared prompt keys and its
    own completion keys (the engine's shared layout, masks ``st.prompt_invalid`` and
    ``st.comp_invalid``), joined by one softmax; the transformers path's decode attention and
    the reference of the Triton kernel."""
    pk, pv, ck, cv = st.pk[layer], st.pv[layer], st.ck[layer], st.cv[layer]
    b, hq, _, d = q.shape
    p, hkv, w, _ = pk.shape
    g, rep = b // p, hq // hkv
    # prompt part: the G*rep queries of one prompt and kv head share that prompt's keys
    qp = q.view(p, g, hkv, rep, d).permute(0, 2, 1, 3, 4).reshape(p, hkv, g * rep, d)
    sp = torch.matmul(qp, pk.transpose(-1, -2)).float() * scale  # [P, Hkv, G*rep, W]
    sp = sp.masked_fill(st.prompt_invalid, float("-inf"))
    sp = sp.view(p, hkv, g, rep, w).permute(0, 2, 1, 3, 4)  # [P, G, Hkv, rep, W]
    # completion part: each row's own keys, valid up to the current slot
    qc = q.view(b, hkv, rep, d)
    sc = torch.matmul(qc, ck.transpose(-1, -2)).float() * scale  # [B, Hkv, rep, T]
    sc = sc.masked_fill(st.comp_invalid, float("-inf"))
    m = torch.maximum(sp.amax(-1).reshape(b, hkv, rep), sc.amax(-1))  # [B, Hkv, rep]
    ep = torch.exp(sp - m.view(p, g, hkv, rep)[..., None])
    ec = torch.exp(sc - m[..., None])
    denom = ep.sum(-1).reshape(b, hkv, rep) + ec.sum(-1)
    ep_k = ep.permute(0, 2, 1, 3, 4).reshape(p, hkv, g * rep, w).to(pv.dtype)
    op = torch.matmul(ep_k, pv).view(p, hkv, g, rep, d).permute(0, 2, 1, 3, 4).reshape(b, hkv, rep, d)
    oc = torch.matmul(ec.to(cv.dtype), cv)
    out = (op.float() + oc.float()) / denom[..., None]
    return out.to(q.dtype).reshape(b, 1, hq, d)


class _TORCH:
    @staticmethod
    def add_rmsnorm(res: torch.Tensor, delta: torch.Tensor | None, w: torch.Tensor, eps: float) -> torch.Tensor:
        """``res += delta`` (rounded to the model dtype), then RMSNorm(res) * w."""
        if delta is not None:
            res.copy_((res.float() + delta.float()).to(res.dtype))
        x = res.float()
        normed = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)).to(res.dtype)
        return (normed.float() * w.float()).to(res.dtype)

    @staticmethod
    def rope_store(qkv: torch.Tensor, st: Any, layer: int, hq: int, hkv: int, d: int) -> torch.Tensor:
        b = qkv.shape[0]
        x = qkv.view(b, hq + 2 * hkv, d)
        pos = st.base_pos + st.step
        cos, sin = st.cos[pos][:, None].float(), st.sin[pos][:, None].float()
        qk = x[:, : hq + hkv].float()
        rot = torch.cat([-qk[..., d // 2:], qk[..., : d // 2]], -1)
        ty = qkv.dtype
        y = ((qk * cos).to(ty).float() + (rot * sin).to(ty).float()).to(ty)
        st.ck[layer].index_copy_(2, st.step, y[:, hq:, None])
        st.cv[layer].index_copy_(2, st.step, x[:, hq + hkv:, None])
        return y[:, :hq].contiguous()

    @staticmethod
    def attention(q: torch.Tensor, st: Any, layer: int, g: int, hkv: int) -> torch.Tensor:
        st.comp_invalid.copy_(st.slots > st.step)
        return two_part_attention(q[:, :, None], st, layer, q.shape[-1] ** -0.5).view(q.shape)

    @staticmethod
    def silu_mul(gu: torch.Tensor) -> torch.Tensor:
        gate, up = gu.chunk(2, dim=-1)
        return F.silu(gate) * up


# Triton launchers -----------------------------------------------------------------------------
class _TRITON:
    @staticmethod
    def add_rmsnorm(res: torch.Tensor, delta: torch.Tensor | None, w: torch.Tensor, eps: float) -> torch.Tensor:
        import triton

        from .decode_kernels import add_rmsnorm_kernel

        b, n = res.shape
        out = torch.empty_like(res)
        add_rmsnorm_kernel[(b,)](res, delta if delta is not None else res, res, w, out, n, eps,
                                 HAS_DELTA=delta is not None, BLOCK=triton.next_power_of_2(n))
        return out

    @staticmethod
    def rope_store(qkv: torch.Tensor, st: Any, layer: int, hq: int, hkv: int, d: int) -> torch.Tensor:
        from .decode_kernels import rope_store_kernel

        b = qkv.shape[0]
        q = torch.empty(b, hq, d, dtype=qkv.dtype, device=qkv.device)
        rope_store_kernel[(b, hq + hkv)](qkv, st.cos, st.sin, st.base_pos, st.step, q, st.ck[layer], st.cv[layer],
                                         HQ=hq, HKV=hkv, T=st.ck[layer].shape[2], D=d)
        return q

    @staticmethod
    def attention(q: torch.Tensor, st: Any, layer: int, g: int, hkv: int) -> torch.Tensor:
        import triton

        from .decode_kernels import attention_combine_kernel, attention_kernel

        b, hq, d = q.shape
        rep = hq // hkv
        w, t = st.pk[layer].shape[2], st.ck[layer].shape[2]
        splits, chunk = st.attn_splits, st.attn_chunk
        out = torch.empty_like(q)
        part = torch.empty(b * hq * splits, d, dtype=torch.float32, device=q.device) if splits > 1 else out
        ml = torch.empty(b * hq * splits, 2, dtype=torch.float32, device=q.device) if splits > 1 else out
        attention_kernel[(b, hkv, splits)](q, st.pk[layer], st.pv[layer], st.ck[layer], st.cv[layer],
                                           st.prompt_start, st.step, out, part, ml, d ** -0.5, g, w, t, chunk,
                                           HKV=hkv, REP=rep, REP_P=max(16, triton.next_power_of_2(rep)), D=d,
                                           BLOCK_N=st.attn_block, SPLITS=splits,
                                           PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
                                           num_warps=st.attn_warps)
        if splits > 1:
            attention_combine_kernel[(b * hq,)](part, ml, out, SPLITS=splits,
                                                SPLITS_P=triton.next_power_of_2(splits), D=d)
        return out

    @staticmethod
    def silu_mul(gu: torch.Tensor) -> torch.Tensor:
        from .decode_kernels import silu_mul_kernel

        b, two_i = gu.shape
        inter = two_i // 2
        out = torch.empty(b, inter, dtype=gu.dtype, device=gu.device)
        block = 1024
        silu_mul_kernel[(b, -(-inter // block))](gu, out, inter, BLOCK=block)
        return out
