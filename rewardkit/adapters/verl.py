"""verl's custom reward function: ``compute_score(data_source, solution_str, ground_truth,
extra_info)`` scored by any rubric, returning verl's dict form.

Point verl at this file (``custom_reward_function.path=<this file>``,
``custom_reward_function.name=compute_score``); choose the rubric with
``custom_reward_function.reward_kwargs.rubric=NAME`` (verl passes reward_kwargs as keyword
arguments) or ``REWARDKIT_RUBRIC``. For a rubric object, write your own file with
``compute_score = make_compute_score(my_rubric)``.

The result is ``{"score": total, "<part>": value, ...}``: verl trains on ``score`` and
logs every other key. ``ground_truth`` reaches the rubric as the ``answer`` column,
``data_source`` as ``data_source``, and each key of ``extra_info`` (a dict) as a column
of its own (never overriding those two). Never raises on model output; an abstaining or
failed part logs 0.0, and a rubric total of None (no part applied) is a score of 0.0.
Limits: one completion a call, as verl's naive reward manager calls it; the prompt is not
passed (verl does not give it).
"""

from __future__ import annotations

from typing import Any, Callable

from rewardkit.adapters import rubric_for

__all__ = ["compute_score", "make_compute_score"]


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _score(rubric: Any, data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> dict[str, float]:
    columns: dict[str, Any] = dict(extra_info) if isinstance(extra_info, dict) else {}
    columns.update(answer=ground_truth, data_source=data_source)
    result = rubric.score(solution_str, **columns)
    out = {"score": _number(result.total)}
    for name, part in result.parts.items():
        out[name if name != "score" else "part_score"] = _number(part.value)
    return out


def make_compute_score(rubric: Any) -> Callable[..., dict[str, float]]:
    """A ``compute_score`` bound to ``rubric`` (an object or a spec, resolved now)."""
    bound = rubric_for(rubric)

    def compute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None,
                      **_: Any) -> dict[str, float]:
        return _score(bound, data_source, solution_str, ground_truth, extra_info)

    return compute_score


def compute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, *,
                  rubric: Any = None, **_: Any) -> dict[str, float]:
    """verl's contract; ``rubric`` from ``reward_kwargs``, else ``REWARDKIT_RUBRIC``, else "math"."""
    return _score(rubric_for(rubric), data_source, solution_str, ground_truth, extra_info)
