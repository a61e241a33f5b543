"""Rewards for the loop: the rubric from the config, scoring a rollout, and which parts
mean "correct" and "format" for evaluation.

``reward`` is a rubric spec for :func:`rewardkit.resolve_rubric` (a registered name,
``"module:attr"``, an object, or a list of them weighted by ``reward_weights``).
A missing total (every weighted part abstained) counts as reward 0, like TRL's nansum.
"""

from __future__ import annotations

from typing import Any, Sequence

from rewardkit import Rubric
from rewardkit.cache import as_cache
from rewardkit.specs import resolve_rubric

__all__ = ["build_rubric", "score_rollout", "correct_part", "format_part"]


def build_rubric(reward: Any, weights: Sequence[float] | None = None, options: dict | None = None,
                 cache: str | None = None) -> Rubric:
    """The run's Rubric: ``reward`` resolved (``options`` to its factory), errors naming the
    ``reward`` setting; ``cache`` ("memory" or a sqlite path, the ``reward_cache`` setting)
    memoizes verdicts."""
    rubric = resolve_rubric(reward, options or None, weights=weights, field="reward")
    if cache is not None:
        rubric.cache = as_cache(True if cache == "memory" else cache, "reward_cache")
    return rubric


def score_rollout(rubric: Any, texts: Sequence[str], prompts: Sequence[Any], rows: Sequence[dict],
                  *, workers: int = 0, timeout: float | None = None) -> tuple[list[float], list[Any]]:
    """``(totals, results)``: one reward per completion (None -> 0.0) and the RubricResults."""
    keys = [k for k in (rows[0] if rows else {}) if k != "prompt"]
    columns = {k: [r.get(k) for r in rows] for k in keys}
    results = rubric.score_batch(list(texts), prompts=list(prompts), workers=workers or None,
                                 timeout=timeout, **columns)
    totals = [float(r.total) if r.total is not None else 0.0 for r in results]
    return totals, results


def correct_part(rubric: Any) -> str | None:
    """The part that decides correctness (for accuracy): a verifier, or a part named so."""
    for part in rubric.parts:
        if getattr(part.func, "kind", None) == "verifier":
            return part.name
    for part in rubric.parts:
        if "correct" in part.name:
            return part.name
    return None


def format_part(rubric: Any) -> str | None:
    """The part that grades format compliance, if any."""
    for part in rubric.parts:
        if "format" in part.name:
            return part.name
    return None
