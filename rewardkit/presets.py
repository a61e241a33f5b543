"""Ready-made rubrics (``rewardkit.rubrics`` is the old name of this module).

- :func:`math_rubric`: answer correctness (``MathEquivalence``, weight 1.0) plus a light
  lenient format reward (``Format``, weight 0.2). Why 0.2: format should break ties
  between equally right (or equally wrong) completions, never outweigh correctness: the
  best wrong-but-tidy completion (0.2) stays far below any right one (>= 1.0).
- :func:`gsm8k_classic`: the five classic GSM8K reward functions from the widely copied
  seed notebooks, each weight 1, for reproducing published runs (defects included; see
  ``rewardkit.classic``).

The component modules load only when a factory is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import invalid
from .rubric import Part, Rubric

__all__ = ["math_rubric", "gsm8k_classic"]


def math_rubric(
    *,
    answer_column: str = "answer",
    correct_weight: float = 1.0,
    format_weight: float = 0.2,
    format_style: str = "lenient",
    reasoning_tag: str = "reasoning",
    answer_tag: str = "answer",
    format_gate: bool = False,
    name: str = "math",
    **verifier_options: Any,
) -> Rubric:
    """Correctness via ``MathEquivalence`` plus format; parts ``correct`` and ``format``.

    ``verifier_options`` go to ``MathEquivalence`` (an ``extractor``, tolerances, ...).
    ``format_weight=0`` keeps format as a logged metric only. ``format_gate=True`` pays
    format only when the verifier read an answer (``Rubric(gates={"format": "correct"})``).
    Format never pays for a template echo either way (``rewardkit.scorers.template_echo``).
    """
    from .scorers import Format
    from .verifiers import MathEquivalence

    correct = MathEquivalence(answer_column=answer_column, **verifier_options)
    fmt = Format(style=format_style, reasoning_tag=reasoning_tag, answer_tag=answer_tag)
    if not isinstance(format_gate, bool):
        raise invalid("format_gate", format_gate, "must be a bool")
    return Rubric(
        [Part("correct", correct, weight=correct_weight), Part("format", fmt, weight=format_weight)],
        name=name,
        gates={"format": "correct"} if format_gate else None,
    )


# (part name, candidate attribute names in rewardkit.classic): the seed notebooks' names first
_CLASSIC = (
    ("xmlcount", ("xmlcount_reward_func", "xmlcount")),
    ("soft_format", ("soft_format_reward_func", "soft_format")),
    ("strict_format", ("strict_format_reward_func", "strict_format")),
    ("int", ("int_reward_func", "int_reward")),
    ("correctness", ("correctness_reward_func", "correctness")),
)


def gsm8k_classic(*, name: str = "gsm8k_classic") -> Rubric:
    """The five classic GSM8K reward functions as parts, each weight 1.

    Part names: ``xmlcount``, ``soft_format``, ``strict_format``, ``int``, ``correctness``
    (the notebooks' order). Expects an ``answer`` column holding the gold answer.
    """
    classic = importlib.import_module("rewardkit.classic")
    parts = []
    for part_name, candidates in _CLASSIC:
        func = next((getattr(classic, c) for c in candidates if hasattr(classic, c)), None)
        if func is None:
            raise invalid("rewardkit.classic", classic.__name__, f"must define one of {candidates}")
        parts.append(Part(part_name, func, weight=1.0))
    return Rubric(parts, name=name)
