"""Setting a run up before its first step: seeding, the optimizer and its schedule, and
the choice of rollout engine. Each function takes the config section it needs.

The order of calls is part of reproducibility: :func:`seed_everything` runs first (the
LoRA initialisation in ``models.load_model`` draws from the seeded generator).
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Iterable

import numpy as np
import torch

from rewardkit.errors import InvalidArgument, invalid_argument

from .config import OptimConfig, RolloutConfig, RunConfig, resolve_rollout_engine
from .rollout.base import RolloutEngine

__all__ = ["seed_everything", "build_optimizer", "lr_factor", "build_engine"]


def seed_everything(run: RunConfig) -> None:
    """Seed Python, NumPy and torch; set threads and deterministic algorithms if asked."""
    random.seed(run.seed)
    np.random.seed(run.seed)
    torch.manual_seed(run.seed)
    if run.num_threads:
        torch.set_num_threads(run.num_threads)
    if run.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def build_optimizer(optim: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW (fused on CUDA, TRL's default there) or bitsandbytes' 8-bit AdamW."""
    if optim.optimizer == "adamw_8bit":
        try:
            import bitsandbytes as bnb
        except Exception as exc:
            raise invalid_argument("optimizer", optim.optimizer, "needs bitsandbytes installed") from exc
        return bnb.optim.AdamW8bit(params, lr=optim.learning_rate, weight_decay=optim.weight_decay)
    params = list(params)
    # fused AdamW needs less temporary memory on CUDA
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.AdamW(params, lr=optim.learning_rate, weight_decay=optim.weight_decay, fused=fused or None)


def lr_factor(optim: OptimConfig) -> Callable[[int], float]:
    """The learning-rate multiplier at a step (for ``LambdaLR``): linear warm-up, then
    constant, linear decay or cosine decay to 0 at ``max_steps``."""
    def factor(step: int) -> float:
        if optim.warmup_steps and step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        if optim.lr_scheduler_type == "constant" or optim.max_steps <= optim.warmup_steps:
            return 1.0
        frac = (step - optim.warmup_steps) / max(1, optim.max_steps - optim.warmup_steps)
        if optim.lr_scheduler_type == "linear":
            return max(0.0, 1.0 - frac)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    return factor


def max_model_len(config: Any) -> int:
    """Tokens an engine must hold: the prompt plus the longest completion asked for."""
    return config.data.max_prompt_length + max(config.grpo.max_completion_length,
                                               config.data.eval_max_completion_length or 0)


def build_engine(rollout: RolloutConfig, model: Any, tokenizer: Any, *, seed: int | None = None,
                 output_dir: str | None = None, max_model_len: int | None = None) -> RolloutEngine:
    """The rollout engine ``rollout.rollout_engine`` names. On CUDA the built-in static-cache
    engine (bench/results/grpo_speed.md) unless the architecture is one it refuses. The
    vLLM engine takes the rollout section and the run's ``seed``, ``output_dir`` and
    ``max_model_len`` (prompt + longest completion)."""
    if resolve_rollout_engine(rollout) == "vllm":
        from .rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model, tokenizer, rollout, seed=seed, output_dir=output_dir, max_model_len=max_model_len)
    from .rollout.hf import HFEngine

    if next(model.parameters()).is_cuda:
        from .rollout.static import StaticCacheEngine

        try:
            return StaticCacheEngine(model, tokenizer)
        except InvalidArgument as exc:
            print(f"rollout: built-in static-cache engine unavailable ({exc}); using HFEngine", flush=True)
    return HFEngine(model, tokenizer)
