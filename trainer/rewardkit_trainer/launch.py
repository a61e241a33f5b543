"""One job as the config says: the backend registered as ``config.run.backend`` runs it.

The bundled GRPO loop (``"rewardkit"``) and TRL's ``GRPOTrainer`` (``"trl"``) are two
registered backends among any others (:mod:`rewardkit_trainer.backends`); the CLI and
``rewardkit_trainer.train`` end here. ``config.run.backend_options`` reaches the backend
as ``options``.
"""

from __future__ import annotations

from typing import Any

from . import backends
from .config import GRPOConfig

__all__ = ["train", "run_bundled"]


def train(config: GRPOConfig, *, resume: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run one job end to end; ``kwargs`` (model, tokenizer, rubric, rows) as
    :class:`~rewardkit_trainer.trainer.GRPOTrainer` takes them."""
    from .distributed import restarted

    resume = resume or restarted()  # torchrun --max-restarts: a restarted worker continues
    run = backends.load(config.run.backend)
    return run(config, options=dict(config.run.backend_options), resume=resume, **kwargs)


def run_bundled(config: GRPOConfig, *, options: dict[str, Any], resume: bool = False, **kwargs: Any) -> dict[str, Any]:
    """The ``rewardkit`` backend: the bundled loop. Every knob is a config field, so it
    takes no backend options."""
    if options:
        from rewardkit.errors import invalid_argument

        raise invalid_argument("backend_options", options, "must be empty for backend='rewardkit' "
                                                           "(every setting of the bundled loop is a config field)")
    from .trainer import GRPOTrainer

    return GRPOTrainer(config, **kwargs).train(resume=resume)
