"""rewardkit-trainer: a small, memory-aware GRPO trainer that consumes rewardkit rubrics.

``train(config)`` runs one GRPO job end to end (load, evaluate, train, evaluate,
report); :class:`GRPOConfig` holds every setting. Torch and transformers are imported
lazily so ``import rewardkit_trainer`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["GRPOConfig", "load_config", "GRPOTrainer", "train", "__version__"]

_LAZY = {
    "GRPOConfig": "rewardkit_trainer.config",
    "load_config": "rewardkit_trainer.config",
    "GRPOTrainer": "rewardkit_trainer.trainer",
    "train": "rewardkit_trainer.launch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit_trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
