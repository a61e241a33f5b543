"""Sampling by exponential race with counter-based noise: graph-safe, batch-independent.

A token is drawn from softmax(l / T) as ``argmax_i(l_i / T - log E_i)`` with E_i ~ Exp(1)
independent (the Gumbel-max trick: -log E is a standard Gumbel variable), which is exact
sampling from the tempered distribution; with top-k / top-p the race runs over the
filtered, tempered log-probabilities, which is exact sampling from the filtered
distribution. The E_i are not drawn from a stateful generator: each is a pure function of
(group seed, column, row within the group, token id) through Philox-4x32-10 (the key is
the 64-bit group seed, the counter is (token // 4, column, row, 0), and token i takes
output word i % 4), so

- the noise lives in no graph state: the seeds are a device tensor, the column a device
  counter, and a captured CUDA graph replays the right draws;
- a group's draws do not depend on which other groups share the batch, where it sits, or
  how many ranks split the work (``supports_group_seeds``).

Uniforms have 2^-32 resolution (v = (bits + 0.5) / 2^32); the Gumbel tail is cut at
-log(-log1p(-2^-33)) ~ 22.9, a 2.3e-10 chance a token. The chosen token's log-probability
is taken under the tempered distribution before filtering (as the trainer computes it).

On CUDA the race runs in two Triton kernels (:mod:`.decode_kernels`) reading the logits
once; elsewhere the PyTorch reference below (same Philox, same transform) runs. The two
agree up to float rounding of the logits and of ``log``; they are not promised bit-equal.
"""

from __future__ import annotations

import torch

__all__ = ["philox_words", "philox_bits", "exponential", "sample_reference", "sample", "group_row_keys"]

_M32 = 0xFFFFFFFF
_KEY_A, _KEY_B = 0x9E3779B9, 0xBB67AE85
_ROUND_A, _ROUND_B = 0xD2511F53, 0xCD9E8D57


def _mulhilo(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit halves of a * b for uint32 values held in int64 (no overflow:
    b is split in 16-bit halves so every partial product stays under 2^49)."""
    lo_part = a * (b & 0xFFFF)
    hi_part = a * (b >> 16)
    low = (((hi_part & 0xFFFF) << 16) + lo_part) & _M32
    high = (hi_part + (lo_part >> 16)) >> 16
    return high, low


def philox_words(seed: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, rounds: int = 10):
    """The 4 output words of Philox-4x32 (Triton's ``tl.philox``) for key ``seed`` (int64,
    >= 0) and counter (c0, c1, c2, 0); all broadcast together; uint32 values in int64."""
    k0, k1 = seed & _M32, (seed >> 32) & _M32
    c0, c1, c2 = torch.broadcast_tensors(c0 & _M32, c1 & _M32, c2 & _M32)
    c3 = torch.zeros_like(c0)
    for _ in range(rounds):
        hi_b, lo_b = _mulhilo(_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0, k1 = (k0 + _KEY_A) & _M32, (k1 + _KEY_B) & _M32
    return c0, c1, c2, c3


def philox_bits(seed: torch.Tensor, token: torch.Tensor, col: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """The noise word of each token: word ``token % 4`` of counter (token // 4, col, row, 0)."""
    words = torch.stack(philox_words(seed, token // 4, col, row), -1)
    lane = torch.broadcast_to(token % 4, words.shape[:-1])
    return words.gather(-1, lane[..., None]).squeeze(-1)


def exponential(bits: torch.Tensor) -> torch.Tensor:
    """Exp(1) from uint32 bits, float32, the same transform as the Triton kernel."""
    v = ((bits.to(torch.float32) + 0.5) * 2.3283064365386963e-10).clamp_(max=0.99999994)
    series = v * (1.0 + v * (0.5 + v * (1.0 / 3.0 + v * (0.25 + v * 0.2))))
    return torch.where(v < 0.01, series, -torch.log(1.0 - v))


def group_row_keys(seeds, generations: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(key per row, row index within its group) for P groups of ``generations`` rows."""
    keys = torch.tensor([int(s) % 2**63 for s in seeds], dtype=torch.long).repeat_interleave(generations)
    rows = torch.arange(generations, dtype=torch.long).repeat(len(seeds))
    return keys.to(device), rows.to(device)


def sample_reference(logits: torch.Tensor, inv_t: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor,
                     col: torch.Tensor, filtered: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(token [B], log-prob [B]): the race over ``logits * inv_t`` (or over ``filtered``,
    already tempered), the log-prob under ``log_softmax(logits * inv_t)``."""
    x = logits.float() * inv_t
    tokens = torch.arange(x.shape[-1], device=x.device)
    bits = philox_bits(keys[:, None], tokens[None, :], col.view(1, 1), rows[:, None])
    scores = (x if filtered is None else filtered.float()) - torch.log(exponential(bits))
    tok = scores.argmax(-1)
    lp = x.gather(1, tok[:, None]).squeeze(1) - torch.logsumexp(x, -1)
    return tok, lp


def sample(logits: torch.Tensor, inv_t: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor, col: torch.Tensor,
           filtered: torch.Tensor | None = None, *, splits: int | None = None,
           use_triton: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sample_reference`'s result through the Triton kernels on CUDA (graph-safe:
    every argument is a device tensor). ``col`` is a 1-element int64 tensor."""
    if use_triton is None:
        use_triton = logits.is_cuda
    if not use_triton:
        return sample_reference(logits, inv_t, keys, rows, col, filtered)
    import triton

    from .decode_kernels import gumbel_combine_kernel, gumbel_partial_kernel

    b, v = logits.shape
    block = 1024
    if splits is None:
        sms = torch.cuda.get_device_properties(logits.device).multi_processor_count if logits.is_cuda else 8
        splits = max(1, min(triton.cdiv(2 * sms, b), triton.cdiv(v, 4 * block)))
    chunk = triton.cdiv(triton.cdiv(v, splits), block) * block
    splits = triton.cdiv(v, chunk)
    f32 = dict(dtype=torch.float32, device=logits.device)
    best = torch.empty(b, splits, **f32)
    idx = torch.empty(b, splits, dtype=torch.int32, device=logits.device)
    lse = torch.empty(b, splits, 2, **f32)
    tok = torch.empty(b, dtype=torch.long, device=logits.device)
    lp = torch.empty(b, **f32)
    sample_src = logits if filtered is None else filtered.contiguous()
    gumbel_partial_kernel[(b, splits)](logits, sample_src, inv_t, keys, rows, col, best, idx, lse, v, chunk,
                                       SPLITS=splits, SAMPLE_SCALED=filtered is None, BLOCK=block)
    gumbel_combine_kernel[(b,)](logits, inv_t, best, idx, lse, tok, lp, v, SPLITS=splits,
                                SPLITS_P=triton.next_power_of_2(splits))
    return tok, lp
