"""Triton path (work in progress): falls back to the PyTorch chunked path for now."""

from __future__ import annotations

from ._torch import ChunkedLogProbs, default_chunk


def triton_token_logprobs(hidden, weight, targets, temperature, want_entropy):
    return ChunkedLogProbs.apply(hidden, weight, targets, temperature, want_entropy, default_chunk(weight.shape[0]))
