"""Verifiers decide correctness.

- :class:`MathEquivalence` and :func:`math_equal`: sympy-based math answer equivalence.
- :class:`CodeTests`: runs extracted code against tests inside the sandbox.

The heavy ones load on first use, so ``import rewardkit`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MathEquivalence", "math_equal", "CodeTests"]

_LAZY = {
    "MathEquivalence": "rewardkit.verifiers.math",
    "math_equal": "rewardkit.verifiers.math",
    "CodeTests": "rewardkit.verifiers.code",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit.verifiers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
