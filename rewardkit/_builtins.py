"""rewardkit's own verifiers, scorers and rubrics, registered through the plugin hooks.

The factories import their modules only when called, so loading the registry stays cheap
and never fails because one optional module is broken or absent: the failure surfaces
when that one name is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .plugins.hookspecs import Register, hookimpl

__all__ = ["register_verifiers", "register_scorers", "register_rubrics"]


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def factory(**options: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(**options)

    factory.__name__ = attr
    factory.__qualname__ = f"{module}.{attr}"
    factory.__doc__ = f"Build ``{module}.{attr}(**options)``."
    return factory


@hookimpl
def register_verifiers(register: Register) -> None:
    register(
        "math_equivalence",
        _lazy("rewardkit.verifiers.math", "MathEquivalence"),
        description="extracted answer is mathematically equal to the answer column (sympy)",
    )
    register(
        "code_tests",
        _lazy("rewardkit.verifiers.code", "CodeTests"),
        description="extracted code passes the tests, run in the sandbox",
    )


@hookimpl
def register_scorers(register: Register) -> None:
    scorers = {
        "format": ("Format", "reasoning and answer tags laid out as asked (strict or lenient)"),
        "xmlcount": ("XMLCount", "partial credit per well-placed reasoning/answer tag"),
        "proximity": ("Proximity", "more reward the closer a numeric answer is to the truth"),
        "length": ("Length", "rewards or penalises completion length"),
        "contains": ("Contains", "completion contains the given keywords"),
        "exact_match": ("ExactMatch", "completion equals the reference after normalisation"),
    }
    for name, (attr, description) in scorers.items():
        register(name, _lazy("rewardkit.scorers", attr), description=description)


@hookimpl
def register_rubrics(register: Register) -> None:
    register(
        "math",
        _lazy("rewardkit.presets", "math_rubric"),
        description="math answer correctness plus a light format reward (the default)",
    )
    register(
        "gsm8k_classic",
        _lazy("rewardkit.presets", "gsm8k_classic"),
        description="the five classic GSM8K reward functions, exactly as published",
    )
