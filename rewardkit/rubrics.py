"""Old name of :mod:`rewardkit.presets` (the ready-made rubrics); kept so old imports work."""

from .presets import __all__, gsm8k_classic, math_rubric  # noqa: F401
