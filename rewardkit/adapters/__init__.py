"""Hand any rubric to other trainers: ``rewardkit.adapters.verl`` (a ``compute_score``
for verl's custom reward function) and ``rewardkit.adapters.openrlhf`` (a
``reward_func`` file for OpenRLHF's ``--remote_rm_url``). TRL needs no adapter: a
rubric is already a TRL reward function.

Both modules use absolute imports only, because both trainers load the file by its path.
The rubric is the ``rubric`` argument where the trainer can pass one, else the
``REWARDKIT_RUBRIC`` environment variable (a registered name or ``module:attr``), else
``"math"``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

__all__ = ["ENV_VAR", "rubric_for"]

ENV_VAR = "REWARDKIT_RUBRIC"


@lru_cache(maxsize=16)
def _cached(spec: str) -> Any:
    from rewardkit.specs import resolve_rubric

    return resolve_rubric(spec)


def rubric_for(rubric: Any = None) -> Any:
    """The rubric to score with: an object as given, a spec resolved once per process."""
    if rubric is None:
        rubric = os.environ.get(ENV_VAR) or "math"
    if isinstance(rubric, str):
        return _cached(rubric)
    from rewardkit.specs import resolve_rubric

    return resolve_rubric(rubric)
