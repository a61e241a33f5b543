"""Turning the config's ``reward`` into a :class:`rewardkit.Rubric`, and scoring rollouts.

``reward`` may be a registered rubric name (``rewardkit.get("math")``), ``"module:attr"``
naming a Rubric, a Component, a TRL-style reward function or a factory returning one of
those, or a list of such specs (each becomes one part, weighted by ``reward_weights``).
A missing total (every weighted part abstained) counts as reward 0, like TRL's nansum.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

from rewardkit.errors import invalid

__all__ = ["build_rubric", "score_rollout", "correct_part", "format_part"]


def _resolve(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            obj = importlib.import_module(module)
            for name in attr.split("."):
                obj = getattr(obj, name)
        except (ImportError, AttributeError) as exc:
            raise invalid("reward", spec, f"could not be imported: {exc}") from exc
        return obj
    import rewardkit

    try:
        return rewardkit.get(spec)
    except Exception as exc:
        raise invalid("reward", spec, f"is not a registered rubric or component ({exc})") from exc


def build_rubric(reward: Any, weights: Sequence[float] | None = None) -> Any:
    """A Rubric from a spec, an object, or a list of them (see the module docstring)."""
    from rewardkit import Rubric

    if isinstance(reward, Rubric):
        return reward
    if isinstance(reward, (list, tuple)):
        objs = [_resolve(r) for r in reward]
        if weights is not None and len(weights) != len(objs):
            raise invalid("reward_weights", list(weights), f"must have one weight per reward ({len(objs)})")
        ws = list(weights) if weights is not None else [1.0] * len(objs)
        parts, names = [], set()
        for obj, w in zip(objs, ws):
            name = getattr(obj, "__name__", type(obj).__name__)
            while name in names:
                name += "_"
            names.add(name)
            parts.append((name, obj, float(w)))
        return Rubric(parts, name="rewards")
    obj = _resolve(reward)
    if isinstance(obj, Rubric):
        return obj
    if isinstance(obj, type) or (callable(obj) and getattr(obj, "__code__", None) is not None
                                 and obj.__code__.co_argcount == 0 and not obj.__code__.co_flags & 0x0C):
        obj = obj()  # a factory (class or zero-argument function)
        if isinstance(obj, Rubric):
            return obj
    if not callable(obj):
        raise invalid("reward", reward, "must resolve to a Rubric, a Component or a reward function")
    name = getattr(obj, "__name__", type(obj).__name__)
    return Rubric([(name, obj, 1.0)], name=name)


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
