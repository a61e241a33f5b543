"""A fast built-in rollout engine: preallocated KV cache, one-token decode step replayed
as a CUDA graph, sampling on the GPU, no per-token host syncs.

How it differs from :class:`~rewardkit_trainer.rollout.hf.HFEngine` (same sampling
semantics, same ``Rollout``):

- The prompt KV is stored ONCE per prompt ([P, kv_heads, W, head_dim]); only the
  completion KV is per sample ([P*G, kv_heads, T, head_dim]). Attention for a decoded
  token is computed in two parts (shared prompt keys, own completion keys) joined by
  one softmax, so a group of G samples neither recomputes nor copies its prompt. At
  long context this is the memory that matters: Llama-3.1-8B with a 20K prompt and G=8
  holds 2.4 GiB of prompt KV instead of 19.5 GiB.
- Every buffer the decode step touches is allocated before the loop, so on CUDA the
  whole step (decoder forward, lm_head, temperature/top-k/top-p, sampling, log-prob
  gather, EOS bookkeeping) is captured once with ``torch.cuda.CUDAGraph`` and replayed
  T-1 times. Sampling is an exponential race with Philox noise keyed by each group's
  seed (:mod:`.sampling`): the graph holds no RNG state, a seed reproduces a rollout, and
  per-group seeds are honoured in one batch.
- For Llama / Qwen2 / Mistral the decode step is the engine's own (:mod:`.fused`): fused
  q/k/v and gate/up copies, Triton kernels, attention over the filled slots only.
- The host looks at EOS only every ``check_eos_every`` steps (one sync each; none without
  EOS ids), and copies the results to the CPU once at the end.

Limits: decoder-only transformers models whose attention layers call
``past_key_values.update(k, v, layer_idx)`` and then the attention interface named by
``config._attn_implementation`` (Llama, Qwen2, Mistral, Qwen3 and alike in transformers
5.x); no logit soft-capping (refused at construction). A sliding-window model (Mistral,
Qwen2 with ``use_sliding_window``) runs while prompt + completion fit its window, where
attending to every earlier token is the same thing; a longer call is refused.
Prefill is one forward per prompt chunk (no chunked prefill), so a very long prompt
needs its activations once. Rows that end early keep decoding padding until every row
ends or the next EOS check. On CPU the same code runs eagerly (no graphs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from rewardkit.errors import invalid_argument

from ..models import unwrap
from .base import Rollout, RolloutEngine, SamplingParams
from .base import eos_token_ids as _model_eos_ids  # the argument of that name shadows it
from .fused import FusedDecoder, two_part_attention
from .hf import _device_of, filter_logits
from .sampling import group_row_keys, sample

__all__ = ["StaticCacheEngine", "ATTENTION_NAME"]

ATTENTION_NAME = "rewardkit_static"
_ACTIVE: "_State | None" = None  # the state the attention function reads (engines are single-threaded)


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Attention interface registered under ``ATTENTION_NAME``; dispatches on the active state."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    state = _ACTIVE
    if state is None or state.mode == "off":  # not inside a rollout: behave like sdpa
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if state.mode == "prefill":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                                      scaling=scaling, **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if state.key.shared:
        return two_part_attention(query, state, module.layer_idx, scale), None
    return _expanded_attention(query, state, module.layer_idx, scale), None


def _expanded_attention(q: torch.Tensor, st: "_State", layer: int, scale: float) -> torch.Tensor:
    """One query token per row against the row's own [prompt | completion] keys: four
    kernels (scaled scores plus additive mask, softmax in float32, cast, weighted sum)."""
    k, v = st.ck[layer], st.cv[layer]  # [B, Hkv, W+T, D]
    b, hq, _, d = q.shape
    hkv, length = k.shape[1], k.shape[2]
    rep = hq // hkv
    scores = torch.baddbmm(st.bias, q.reshape(b * hkv, rep, d), k.view(b * hkv, length, d).transpose(1, 2),
                           alpha=scale)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype)
    return torch.bmm(probs, v.view(b * hkv, length, d)).view(b, 1, hq, d)


class _Cache:
    """What the attention layers see as ``past_key_values``: writes K/V into the state's
    preallocated buffers and hands back whatever the attention function ignores."""

    is_compileable = True

    def __init__(self, state: "_State") -> None:
        self.state = state

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        st = self.state
        if st.mode == "prefill":
            if st.key.shared:
                st.pk[layer_idx][:, :, st.prefill_offset:].copy_(key_states)
                st.pv[layer_idx][:, :, st.prefill_offset:].copy_(value_states)
            else:  # each row gets its own copy of the prompt in front of its completion
                g, w = st.key.generations, st.key.width
                st.ck[layer_idx][:, :, st.prefill_offset:w].copy_(key_states.repeat_interleave(g, dim=0))
                st.cv[layer_idx][:, :, st.prefill_offset:w].copy_(value_states.repeat_interleave(g, dim=0))
            return key_states, value_states
        st.ck[layer_idx].index_copy_(2, st.write_slot, key_states)
        st.cv[layer_idx].index_copy_(2, st.write_slot, value_states)
        return key_states, value_states

    def get_seq_length(self, layer_idx: int = 0) -> int:  # never asked: positions are passed
        return 0


@dataclass(frozen=True)
class _Key:
    prompts: int
    generations: int
    width: int
    length: int
    top_k: int
    top_p: float
    shared: bool  # prompt KV stored once per prompt (long prompts) or once per row (short)


class _State:
    """Every tensor one (P, G, W, T) shape of rollout touches, allocated once."""

    def __init__(self, key: _Key, layers: int, heads: int, kv_heads: int, head_dim: int, dtype, device, vocab: int,
                 eos_ids: Sequence[int]) -> None:
        p, b, w, t = key.prompts, key.prompts * key.generations, key.width, key.length
        self.key, self.mode, self.prefill_offset = key, "off", 0
        kv = dict(dtype=dtype, device=device)
        own = t if key.shared else w + t  # per-row slots: completion only, or prompt + completion
        pw = w if key.shared else 0
        self.pk = [torch.zeros(p, kv_heads, pw, head_dim, **kv) for _ in range(layers)]
        self.pv = [torch.zeros(p, kv_heads, pw, head_dim, **kv) for _ in range(layers)]
        self.ck = [torch.zeros(b, kv_heads, own, head_dim, **kv) for _ in range(layers)]
        self.cv = [torch.zeros(b, kv_heads, own, head_dim, **kv) for _ in range(layers)]
        i64 = dict(dtype=torch.long, device=device)
        self.prompt_invalid = torch.ones(p, 1, 1, w, dtype=torch.bool, device=device)
        self.comp_invalid = torch.ones(t, dtype=torch.bool, device=device)
        self.slots = torch.arange(t, **i64)
        self.row_invalid = torch.ones(b, w, dtype=torch.bool, device=device)  # expanded layout: prompt padding
        # expanded layout: 0 or -inf per (row, kv head, query head of that group, slot)
        self.bias = torch.zeros(b * kv_heads, heads // kv_heads, w + t if not key.shared else 0, dtype=dtype,
                                device=device)
        self.step = torch.zeros(1, **i64)  # completion slot of the token being fed
        self.write_slot = torch.zeros(1, **i64)  # where its K/V go in ck/cv
        self.base_pos = torch.zeros(b, **i64)  # position of completion token 0, per row
        self.cur = torch.zeros(b, **i64)
        # sampling: Philox key (the group's seed) and row-in-group per row, the column counter
        self.keys = torch.zeros(b, **i64)
        self.rows = torch.zeros(b, **i64)
        self.col = torch.zeros(1, **i64)
        self.inv_t = torch.ones(1, dtype=torch.float32, device=device)
        # fused decode only: first valid prompt slot per prompt, rope tables, attention split
        self.prompt_start = torch.zeros(p, **i64)
        self.cos = self.sin = None
        self.triton = False
        self.attn_block, self.attn_warps = 32, 4
        sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 8
        longest = w + t
        self.attn_splits = max(1, min(-(-4 * sms // (b * kv_heads)), -(-longest // 128)))
        self.attn_chunk = -(-(-(-longest // self.attn_splits)) // self.attn_block) * self.attn_block
        self.pad = torch.zeros(1, **i64)
        self.eos = torch.tensor(list(eos_ids), **i64)  # fixed per engine: graphs hold its address
        self.out_tok = torch.zeros(b, t, **i64)
        self.out_lp = torch.zeros(b, t, dtype=torch.float32, device=device)
        self.done = torch.zeros(b, dtype=torch.bool, device=device)
        self.lengths = torch.zeros(b, **i64)
        self.cache = _Cache(self)
        self.graph: Any = None
        self.vocab = vocab

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.pk + self.pv + self.ck + self.cv)


class StaticCacheEngine(RolloutEngine):
    """Samples from ``model`` (transformers causal LM, possibly peft-wrapped) with a static
    KV cache; ``cuda_graphs`` defaults to True on CUDA. ``eos_token_ids=()`` ignores EOS
    (fixed-length rollouts for benchmarks); None takes the tokenizer's and the model's.
    ``prompt_bucket`` rounds the prompt width up so nearby lengths share buffers and a
    graph; ``max_cached_shapes`` bounds how many such shapes stay allocated.
    ``share_prompt_kv``: True keeps one prompt KV per group (two-part attention), False
    copies it into every row (one attention pass, fewer kernels); None (default) shares
    once the G-1 extra copies would exceed ``share_threshold_bytes``. ``fused``: decode
    with the engine's own fused weight layout and kernels (:mod:`.fused`; always the shared
    KV layout); None (default) uses it whenever the model is one it supports. ``kernels``:
    run the Triton kernels (None: on CUDA; True on CPU needs ``TRITON_INTERPRET=1``).

    ``params.group_seeds`` (one seed per prompt) are honoured in one batch: a group's
    completions depend on its prompt and seed only (:mod:`.sampling`)."""

    name = "hf"  # samples from the policy's own weights: no importance-sampling correction
    variant = "static"
    supports_group_seeds = True

    def __init__(self, model: Any, tokenizer: Any, *, cuda_graphs: bool | None = None, check_eos_every: int = 32,
                 prompt_bucket: int = 64, eos_token_ids: Sequence[int] | None = None,
                 max_cached_shapes: int = 2, free_on_sleep: bool = True, share_prompt_kv: bool | None = None,
                 share_threshold_bytes: int = 256 * 2**20, fused: bool | None = None,
                 kernels: bool | None = None) -> None:
        if check_eos_every < 1:
            raise invalid_argument("check_eos_every", check_eos_every, "must be >= 1")
        if prompt_bucket < 1:
            raise invalid_argument("prompt_bucket", prompt_bucket, "must be >= 1")
        if max_cached_shapes < 1:
            raise invalid_argument("max_cached_shapes", max_cached_shapes, "must be >= 1")
        self.model, self.tokenizer = model, tokenizer
        self.cuda_graphs, self.check_eos_every, self.prompt_bucket = cuda_graphs, check_eos_every, prompt_bucket
        self.max_cached_shapes, self.free_on_sleep = max_cached_shapes, free_on_sleep
        self.share_prompt_kv, self.share_threshold_bytes = share_prompt_kv, share_threshold_bytes
        cfg = unwrap(model).config
        _check_supported(cfg)
        # every earlier token is attended to: exact for a sliding-window model while a whole
        # sequence fits its window (checked per generate call)
        self.window = _sliding_window(cfg)
        if eos_token_ids is None:
            eos_token_ids = _model_eos_ids(tokenizer, model)
        self.eos_ids = sorted({int(e) for e in eos_token_ids})
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self._states: dict[_Key, _State] = {}
        why = FusedDecoder.unsupported(unwrap(model))
        if fused and why:
            raise invalid_argument("fused", fused, f"cannot run this model: {why}")
        self.fused = (why is None) if fused is None else bool(fused)
        self._fused: FusedDecoder | None = None
        self.kernels = kernels
        self.refresh_seconds: list[float] = []  # host time of each fused-weight rebuild
        _register_attention()

    # seam --------------------------------------------------------------------------------
    def update_weights(self, model: Any) -> None:
        if model is not self.model:  # captured graphs point at the old parameters
            self.close()
            self.model = model
            why = FusedDecoder.unsupported(unwrap(model))
            self.fused = self.fused and why is None
        elif self._fused is not None:  # the fused q/k/v and gate/up copies follow, in place
            self._refresh()
        # other tensors are the model's own: optimizer steps update them in place, graphs stay valid

    def _refresh(self) -> None:
        t0 = time.perf_counter()
        causal = unwrap(self.model)
        if self._fused is None:
            self._fused = FusedDecoder(causal)
        else:
            self._fused.refresh(causal)
        self.refresh_seconds.append(time.perf_counter() - t0)

    def close(self) -> None:
        self._states.clear()
        self._fused = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def sleep(self) -> None:
        """With ``free_on_sleep`` (default), free the KV buffers and graphs so the training
        pass has that memory; the next rollout rebuilds them and recaptures (a few decode
        steps' time). Without it they stay for the next rollout of the same shape."""
        if self.free_on_sleep:
            self.close()

    @torch.no_grad()
    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> Rollout:
        global _ACTIVE
        start = time.perf_counter()
        if not prompt_ids or any(len(p) == 0 for p in prompt_ids):
            raise invalid_argument("prompt_ids", f"{len(prompt_ids)} prompts", "must be non-empty token lists")
        width = max(len(p) for p in prompt_ids)
        if self.window is not None and width + params.max_completion_length > self.window:
            raise invalid_argument(
                "max_completion_length", params.max_completion_length,
                f"plus the longest prompt ({width} tokens) must fit the model's "
                f"{self.window}-token sliding window: StaticCacheEngine attends to every earlier token "
                "(the vLLM engine slides the window)")
        causal = unwrap(self.model)
        device = _device_of(causal)
        if self.fused and (self._fused is None or not self._fused.layers):
            self._refresh()
        state = self._state(len(prompt_ids), params, width, causal, device)
        cfg = causal.config
        was_training, old_attn = causal.training, cfg._attn_implementation
        causal.eval()
        cfg._attn_implementation = ATTENTION_NAME
        _ACTIVE = state
        try:
            state.triton = device.type == "cuda" if self.kernels is None else bool(self.kernels)
            self._reset(state, prompt_ids, params, device)
            hidden = self._prefill(state, causal, prompt_ids, device)
            state.step.zero_()
            state.col.zero_()
            state.mode = "decode"
            _sample_into(state, hidden.repeat_interleave(params.num_generations, dim=0),
                         causal.get_output_embeddings().weight)
            self._decode(state, causal, params.max_completion_length)
            tokens, lps, lengths, done = (state.out_tok.cpu(), state.out_lp.cpu(), state.lengths.cpu(),
                                          state.done.cpu())
        finally:
            state.mode = "off"
            _ACTIVE = None
            cfg._attn_implementation = old_attn
            causal.train(was_training)
        ids, lp_rows, trunc = [], [], []
        for r in range(tokens.shape[0]):
            n = int(lengths[r])
            ids.append(tokens[r, :n].tolist())
            lp_rows.append(lps[r, :n].tolist())
            trunc.append(not bool(done[r]))
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        n_tok = sum(len(c) for c in ids)
        seconds = time.perf_counter() - start
        return Rollout(prompt_ids=[list(p) for p in prompt_ids], completion_ids=ids, texts=texts, truncated=trunc,
                       logprobs=lp_rows, stats={"seconds": seconds, "tokens": n_tok,
                                                "tokens_per_s": n_tok / max(seconds, 1e-9),
                                                "kv_cache_bytes": state.nbytes(),
                                                "cuda_graph": state.graph is not None,
                                                "fused": self.fused})

    # internals ---------------------------------------------------------------------------
    def _use_graphs(self, device: torch.device) -> bool:
        return device.type == "cuda" if self.cuda_graphs is None else bool(self.cuda_graphs and device.type == "cuda")

    def _state(self, prompts: int, params: SamplingParams, width: int, causal, device) -> _State:
        bucket = -(-width // self.prompt_bucket) * self.prompt_bucket
        cfg = causal.config
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        weight = causal.get_output_embeddings().weight
        # copying the prompt KV G times is fastest to attend to; share it once it would cost memory
        copies = (params.num_generations - 1) * prompts * bucket * cfg.num_hidden_layers * 2 * kv_heads * head_dim
        shared = self.share_prompt_kv if self.share_prompt_kv is not None else (
            copies * weight.element_size() > self.share_threshold_bytes)
        shared = shared or self.fused  # the fused step knows the shared layout only
        key = _Key(prompts, params.num_generations, bucket, params.max_completion_length, params.top_k,
                   float(params.top_p), bool(shared))
        state = self._states.pop(key, None)
        if state is None:
            while len(self._states) >= self.max_cached_shapes:  # oldest first
                self._states.pop(next(iter(self._states)))
            state = _State(key, cfg.num_hidden_layers, heads, kv_heads, head_dim, weight.dtype, device, weight.shape[0],
                           self.eos_ids)
            if self.fused:
                state.cos, state.sin = self._fused.rope_tables(bucket + key.length, weight.dtype, device)
        self._states[key] = state  # most recent last
        return state

    def _reset(self, st: _State, prompt_ids, params: SamplingParams, device) -> None:
        g, w = params.num_generations, st.key.width
        lens = torch.tensor([len(p) for p in prompt_ids], dtype=torch.long)
        invalid = torch.arange(w)[None, :] < (w - lens)[:, None]  # left padding inside the bucket
        st.prompt_invalid.copy_(invalid.view(len(prompt_ids), 1, 1, w).to(device))
        st.row_invalid.copy_(invalid.repeat_interleave(g, dim=0).to(device))
        st.base_pos.copy_(lens.repeat_interleave(g).to(device))
        st.prompt_start.copy_((w - lens).to(device))
        seeds = params.group_seeds
        if seeds is None:  # one seed for the call: each group's key drawn from it
            gen = torch.Generator(device="cpu")
            gen.manual_seed(params.seed if params.seed is not None else int(torch.randint(2**62, (1,))))
            seeds = torch.randint(2**62, (len(prompt_ids),), generator=gen).tolist()
        elif len(seeds) != len(prompt_ids):
            raise invalid_argument("group_seeds", f"{len(seeds)} seeds", f"must be one per prompt ({len(prompt_ids)})")
        keys, rows = group_row_keys(seeds, g, device)
        st.keys.copy_(keys)
        st.rows.copy_(rows)
        st.inv_t.fill_(1.0 / float(params.temperature))
        st.pad.fill_(self.pad_id)
        st.done.zero_()
        st.lengths.fill_(params.max_completion_length)
        st.out_tok.fill_(self.pad_id)
        st.out_lp.zero_()
        st.comp_invalid.fill_(True)

    def _prefill(self, st: _State, causal, prompt_ids, device) -> torch.Tensor:
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((len(prompt_ids), width), dtype=torch.bool)
        for row, p in enumerate(prompt_ids):
            ids[row, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            valid[row, width - len(p):] = True
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        mask = None
        if not bool(valid.all()):  # causal AND real key; a padding query sees itself (no empty rows)
            causal_m = torch.ones(width, width, dtype=torch.bool).tril()
            mask = (causal_m[None] & valid[:, None, :]) | torch.eye(width, dtype=torch.bool)[None]
            mask = mask[:, None].to(device)
        st.mode, st.prefill_offset = "prefill", st.key.width - width
        decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else causal.model
        out = decoder(input_ids=ids.to(device), attention_mask=mask, position_ids=positions.to(device),
                      past_key_values=st.cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    def _decode(self, st: _State, causal, length: int) -> None:
        if length <= 1:
            return
        decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else causal.model
        weight = causal.get_output_embeddings().weight

        shared, width = st.key.shared, st.key.width
        fused, triton = self._fused if self.fused else None, st.triton

        def fused_step() -> None:
            hidden = fused.forward(st, triton)
            torch.add(st.step, 1, out=st.col)
            _sample_into(st, hidden, fused.head)
            st.step.add_(1)

        def step() -> None:
            st.comp_invalid.copy_(st.slots > st.step)
            if shared:
                st.write_slot.copy_(st.step)
            else:
                st.write_slot.copy_(st.step + width)
                invalid = torch.cat([st.row_invalid, st.comp_invalid[None].expand(st.row_invalid.shape[0], -1)], 1)
                bias = torch.zeros(invalid.shape, dtype=st.bias.dtype, device=invalid.device)
                bias = bias.masked_fill_(invalid, float("-inf"))
                b, slots = invalid.shape
                st.bias.view(b, -1, slots).copy_(bias[:, None, :].expand(b, st.bias.shape[0] // b * st.bias.shape[1], slots))
            out = decoder(input_ids=st.cur[:, None], position_ids=(st.base_pos + st.step)[:, None],
                          past_key_values=st.cache, use_cache=True)
            torch.add(st.step, 1, out=st.col)
            _sample_into(st, out.last_hidden_state[:, -1], weight)
            st.step.add_(1)

        run = fused_step if fused is not None else step
        if self._use_graphs(weight.device):
            if st.graph is None:
                st.graph = _capture(run, st)
            run = st.graph.replay
        for t in range(length - 1):
            run()
            # no EOS to look for (fixed-length rollouts): no host sync inside the loop at all
            if self.eos_ids and (t + 1) % self.check_eos_every == 0 and bool(st.done.all()):
                break


def _sample_into(st: _State, hidden: torch.Tensor, weight: torch.Tensor) -> None:
    """Sample one token per row from ``hidden @ weight.T / temperature`` (top-k / top-p
    applied) and record it at column ``st.col``; graph-safe (no host syncs, no RNG state:
    counter-based noise, see :mod:`.sampling`)."""
    key = st.key
    col_t = st.col
    logits = torch.nn.functional.linear(hidden, weight)
    filtered = None
    if (key.top_k and key.top_k < logits.shape[-1]) or key.top_p < 1.0:
        filtered = filter_logits(torch.log_softmax(logits.float() * st.inv_t, dim=-1), key.top_k, key.top_p)
    tok, lp = sample(logits, st.inv_t, st.keys, st.rows, col_t, filtered, use_triton=st.triton)
    lp = lp[:, None]
    tok = torch.where(st.done, st.pad, tok)
    st.out_tok.index_copy_(1, col_t, tok[:, None])
    st.out_lp.index_copy_(1, col_t, torch.where(st.done[:, None], torch.zeros_like(lp), lp))
    ended = ~st.done & (tok[:, None] == st.eos[None, :]).any(-1)
    st.lengths.copy_(torch.where(ended, col_t + 1, st.lengths))
    st.done.logical_or_(ended)
    st.cur.copy_(tok)


def _capture(step, st: _State):
    """Warm ``step`` up on a side stream, then capture it; restores the state it touched."""
    saved = [t.clone() for t in (st.step, st.col, st.cur, st.out_tok, st.out_lp, st.done, st.lengths)]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # always at slot 0: later slots may not exist (T = 2)
            st.step.zero_()
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for dst, src in zip((st.step, st.col, st.cur, st.out_tok, st.out_lp, st.done, st.lengths), saved):
        dst.copy_(src)
    # the warm-up wrote completion KV slot 0 and output column 1: harmless, a slot is
    # rewritten before it is read and the column is rewritten by the first replay
    return graph


def _sliding_window(cfg: Any) -> int | None:
    """The window (tokens) that any attention layer of ``cfg`` slides over, or None.

    Mistral sets ``sliding_window`` with no switch (every layer slides); Qwen2 and others
    carry ``use_sliding_window`` and/or per-layer ``layer_types``.
    """
    window = getattr(cfg, "sliding_window", None)
    if not window:
        return None
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types:
        return int(window) if any("sliding" in str(t) for t in layer_types) else None
    if hasattr(cfg, "use_sliding_window"):
        return int(window) if cfg.use_sliding_window else None
    return int(window)


def _check_supported(cfg: Any) -> None:
    if getattr(cfg, "attn_logit_softcapping", None):
        raise invalid_argument("model", type(cfg).__name__, "must not use attention logit soft-capping (StaticCacheEngine)")
    if getattr(cfg, "is_encoder_decoder", False):
        raise invalid_argument("model", type(cfg).__name__, "must be a decoder-only causal LM")


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, _attention)
