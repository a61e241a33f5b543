"""Contract-testing kit for verifiers and scorers.

``check_component(component)`` asserts the contract every rewardkit component keeps on
hostile input (never raises, returns a Score, stays in range, deterministic, bounded
time, same verdict under harmless reformatting). The Hypothesis strategies
(``hostile_text``, ``completions``, ...) load lazily, so importing this package does not
need hypothesis; so do the math strategies of ``rewardkit.testing.math`` when present.
"""

from __future__ import annotations

import importlib
from typing import Any

from .contracts import (
    HOSTILE_SAMPLES,
    HOSTILE_VALUES,
    ContractViolation,
    Raising,
    check_component,
    check_text,
    contract_failures,
    harmless_variants,
)

__all__ = [
    "check_component",
    "check_text",
    "contract_failures",
    "ContractViolation",
    "HOSTILE_SAMPLES",
    "HOSTILE_VALUES",
    "Raising",
    "harmless_variants",
    "hostile_text",
    "hostile_values",
    "completions",
    "answered_completions",
    "harmless_reformattings",
]

_STRATEGIES = {"hostile_text", "hostile_values", "completions", "answered_completions", "harmless_reformattings"}


def _math_module() -> Any:
    try:
        return importlib.import_module("rewardkit.testing.math")
    except ModuleNotFoundError as exc:
        if exc.name != "rewardkit.testing.math":
            raise  # the module exists but one of its imports is missing: say so
        return None


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        value = getattr(importlib.import_module("rewardkit.testing.strategies"), name)
    else:
        math_mod = _math_module() if not name.startswith("__") else None
        public = getattr(math_mod, "__all__", ()) if math_mod is not None else ()
        if name not in public:
            raise AttributeError(f"module 'rewardkit.testing' has no attribute {name!r}")
        value = getattr(math_mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    math_mod = _math_module()
    return sorted(set(__all__) | set(getattr(math_mod, "__all__", ())))
