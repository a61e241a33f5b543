"""Per-token log-probs of ``hidden @ weight.T / temperature`` without materializing [N, V].

``token_logprobs`` is the log-prob entry point; ``fused_token_loss`` (``_fused``) computes a
per-token loss and its gradients in the same pass, three matmuls instead of four. On CUDA
tensors ``token_logprobs`` runs the Triton kernels in ``_triton`` (when triton imports);
elsewhere the pure-PyTorch chunked path in ``_torch``.
Force either with ``backend="torch"|"triton"`` or the env var ``REWARDKIT_LOGPROB_BACKEND``
(same values; ``auto`` is the default). The Triton path also runs on CPU tensors under
``TRITON_INTERPRET=1`` (slow; used by the tests).

Limits: targets < 0 (the ignore index, e.g. -100) give 0 and no gradient (entropy too);
outputs are float32; gradients come back in the inputs' dtypes.
"""

from __future__ import annotations

import os

import torch

from rewardkit import InvalidArgument

from ._fused import FusedTokenLoss, fused_extra_bytes
from ._torch import ChunkedLogProbs, default_chunk, naive_token_logprobs

__all__ = ["token_logprobs", "fused_token_loss", "fused_extra_bytes", "naive_token_logprobs", "triton_available",
           "BACKENDS"]

BACKENDS = ("auto", "torch", "triton")


def triton_available() -> bool:
    """True when ``triton`` imports (the Triton path still needs CUDA or TRITON_INTERPRET=1)."""
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


def _check(hidden, weight, targets, temperature, backend):
    if backend not in BACKENDS:
        raise InvalidArgument(f"backend={backend!r} must be one of {BACKENDS}")
    if hidden.dim() != 2 or weight.dim() != 2:
        raise InvalidArgument(
            f"hidden.shape={tuple(hidden.shape)} and weight.shape={tuple(weight.shape)} must both be 2-D"
        )
    if hidden.shape[1] != weight.shape[1]:
        raise InvalidArgument(
            f"hidden.shape={tuple(hidden.shape)} must share its last dim with weight.shape={tuple(weight.shape)}"
        )
    if targets.dim() != 1 or targets.shape[0] != hidden.shape[0]:
        raise InvalidArgument(f"targets.shape={tuple(targets.shape)} must be ({hidden.shape[0]},)")
    if targets.dtype not in (torch.int64, torch.int32):
        raise InvalidArgument(f"targets.dtype={targets.dtype} must be torch.int64 or torch.int32")
    if not float(temperature) > 0:
        raise InvalidArgument(f"temperature={temperature!r} must be > 0")


def _pick(hidden, backend):
    if backend == "auto":
        backend = os.environ.get("REWARDKIT_LOGPROB_BACKEND", "auto").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise InvalidArgument(f"REWARDKIT_LOGPROB_BACKEND={backend!r} must be one of {BACKENDS}")
    if backend == "auto":
        return "triton" if hidden.is_cuda and triton_available() else "torch"
    return backend


def _validate(hidden, weight, targets, temperature, backend):
    _check(hidden, weight, targets, temperature, backend)
    if hidden.dtype != weight.dtype:
        raise InvalidArgument(f"hidden.dtype={hidden.dtype} must equal weight.dtype={weight.dtype}")
    targets = targets.long()
    if targets.numel() and bool((targets >= weight.shape[0]).any()):
        raise InvalidArgument(f"targets.max()={int(targets.max())} must be < vocab size {weight.shape[0]}")
    use_triton = _pick(hidden, backend) == "triton" and hidden.shape[0] > 0
    if use_triton and not hidden.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise InvalidArgument(f"backend='triton' needs CUDA tensors (got {hidden.device}) or TRITON_INTERPRET=1")
    return targets, use_triton


def token_logprobs(hidden, weight, targets, *, temperature=1.0, return_entropy=False, backend="auto", chunk=None):
    """Per-token log-probs (float32 ``[N]``), or ``(logprobs, entropy)`` with ``return_entropy``.

    ``hidden`` [N, H] and ``weight`` [V, H] in float32, bfloat16 or float16 (same dtype);
    ``targets`` [N] integer, < 0 means ignore. Autograd-aware: gradients flow to ``hidden``
    and, when it requires grad, ``weight`` (a frozen lm_head skips that matmul). ``chunk``
    (rows per block) only applies to the PyTorch path.
    """
    targets, use_triton = _validate(hidden, weight, targets, temperature, backend)
    if use_triton:
        from ._triton import triton_token_logprobs

        return triton_token_logprobs(hidden, weight, targets, float(temperature), bool(return_entropy))
    chunk = int(chunk) if chunk else default_chunk(weight.shape[0])
    return ChunkedLogProbs.apply(hidden, weight, targets, float(temperature), bool(return_entropy), chunk)


def fused_token_loss(hidden, weight, targets, coefficient, *, temperature=1.0, return_entropy=False, backend="auto"):
    """A token loss and its gradients in one pass: ``(loss, logp)``, or ``(loss, logp, entropy)``.

    ``coefficient(logp, start, end) -> (value, d value / d logp)`` gives, for the float32
    log-probs of rows ``start:end``, each token's loss term and its derivative (e.g.
    ``losses.TokenLoss``); ``loss`` is the sum of the values over tokens with ``targets >= 0``
    (float32 scalar, differentiable w.r.t. ``hidden`` and ``weight``); ``logp`` and ``entropy``
    are detached float32 ``[N]``. Arguments otherwise as :func:`token_logprobs`, whose values
    these are. Three matmuls instead of four (docs/kernels.md, "The fused GRPO loss").
    """
    targets, use_triton = _validate(hidden, weight, targets, temperature, backend)
    if use_triton:
        hidden, weight, targets = hidden.contiguous(), weight.contiguous(), targets.contiguous()
    loss, logp, ent = FusedTokenLoss.apply(hidden, weight, targets, coefficient, float(temperature),
                                           bool(return_entropy), use_triton)
    return (loss, logp, ent) if return_entropy else (loss, logp)
