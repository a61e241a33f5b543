"""Rollout engines behind one seam (:class:`RolloutEngine`)."""

from .base import Rollout, RolloutEngine, SamplingParams

__all__ = ["Rollout", "RolloutEngine", "SamplingParams"]
