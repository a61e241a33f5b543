"""One job as the config says: the bundled GRPO loop (``backend="rewardkit"``) or TRL's
``GRPOTrainer`` (``backend="trl"``). The CLI and ``rewardkit_trainer.train`` end here."""

from __future__ import annotations

from typing import Any

from .config import GRPOConfig

__all__ = ["train"]


def train(config: GRPOConfig, *, resume: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run one job end to end; ``kwargs`` (model, tokenizer, rubric, rows) as
    :class:`~rewardkit_trainer.trainer.GRPOTrainer` takes them."""
    from .distributed import restarted

    resume = resume or restarted()  # torchrun --max-restarts: a restarted worker continues
    if config.run.backend == "trl":
        from .trl_backend import train_with_trl

        return train_with_trl(config, **kwargs)
    from .trainer import GRPOTrainer

    return GRPOTrainer(config, **kwargs).train(resume=resume)
