"""The trainer's two backends, registered through rewardkit's plugin hook like any other.

``rewardkit`` (the bundled GRPO loop) and ``trl`` (TRL's ``GRPOTrainer``) are registered by
this module, which the distribution exposes in the ``rewardkit`` entry-point group. A
third-party backend registers the same way (``register_backends``: a name and an import
path); :func:`load` imports it only when a job runs.

A backend is ``function(config, *, options, resume, **prepared) -> dict``: ``options`` is
the config's ``backend_options`` table, ``prepared`` the rows and rubric ``prepare`` built
(``train_rows``, ``eval_rows``, ``rubric``; from Python also ``model``, ``tokenizer``). It
returns a dict with at least ``output_dir`` and ``seconds``.

Running from a source tree (or an install whose metadata predates this entry point), the
entry point is absent: :func:`ensure_registered` then adds this module in-process, so the
bundled backends are always there.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from rewardkit import plugins
from rewardkit.plugins import hookimpl

__all__ = ["BUNDLED", "register_backends", "ensure_registered", "names", "load"]

DISTRIBUTION = "rewardkit-trainer"
BUNDLED = ("rewardkit", "trl")


@hookimpl
def register_backends(register: Callable[..., Any]) -> None:
    register("rewardkit", "rewardkit_trainer.launch:run_bundled",
             description="the bundled GRPO loop (GRPO/DAPO/Dr.GRPO/GSPO, LoRA, vLLM or built-in rollouts)")
    register("trl", "rewardkit_trainer.trl_backend:run",
             description="TRL's GRPOTrainer on the same config and rubric; backend_options go to trl.GRPOConfig")


def ensure_registered() -> None:
    """Make sure the bundled backends are in rewardkit's registry (see the module docstring)."""
    found = plugins.available("backend")
    if not all(name in found for name in BUNDLED):
        plugins.add_plugin(sys.modules[__name__], name=DISTRIBUTION)


def names() -> list[str]:
    """Every registered backend name."""
    ensure_registered()
    return list(plugins.available("backend"))


def load(name: str) -> Callable[..., Any]:
    """The backend function registered as ``name``, imported now."""
    ensure_registered()
    return plugins.load_backend(name)
