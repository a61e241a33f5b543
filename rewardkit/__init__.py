"""rewardkit: reward functions and verifiers for RL on reasoning models.

Every verifier and scorer returns a :class:`Score`; a :class:`Rubric` composes them with
weights into one reward with a per-part breakdown, and drops unchanged into TRL's
``GRPOTrainer``. Third-party packages add components through the ``rewardkit`` entry
point group; :func:`get` looks any of them up by name.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._component import Component, Scorer, Verifier, completion_text
from ._score import Score, Status
from ._version import __version__
from .errors import InvalidArgument, NotFound, PluginError, RewardkitError

__all__ = [
    "Score",
    "Status",
    "Component",
    "Verifier",
    "Scorer",
    "completion_text",
    "Rubric",
    "Part",
    "RubricResult",
    "resolve_rubric",
    "get",
    "available",
    "RewardkitError",
    "InvalidArgument",
    "PluginError",
    "NotFound",
    "extract",
    "scorers",
    "verifiers",
    "classic",
    "testing",
    "__version__",
]

# name -> module that defines it; loaded on first use so `import rewardkit` stays light
_LAZY = {
    "Rubric": "rewardkit.rubric",
    "Part": "rewardkit.rubric",
    "RubricResult": "rewardkit.rubric",
    "resolve_rubric": "rewardkit.specs",
    "get": "rewardkit.plugins",
    "available": "rewardkit.plugins",
}
_SUBMODULES = {"extract", "scorers", "verifiers", "classic", "testing", "sandbox", "plugins"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"rewardkit.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBMODULES)
