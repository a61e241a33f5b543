"""Noticing a run that trains on nothing: every group's completions got the same reward.

GRPO learns from differences inside a group. When every group of a step has zero reward
variance (``frac_reward_zero_std`` = 1.0) the advantages are all zero and the step
changes nothing (bar the KL term). A few such steps in a row mean the run is stuck, not
slow: the classic cause is a reward that pays only for form, so the policy settles on a
form every completion shares (a template echo) and correctness never varies. The trainer
says so once, in plain words, instead of training on nothing in silence.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, TextIO

__all__ = ["CollapseWatch"]


class CollapseWatch:
    """Warns once when ``patience`` steps in a row had no reward variance in any group."""

    def __init__(self, patience: int = 3, *, output_dir: str = "", stream: TextIO | None = None) -> None:
        self.patience, self.output_dir, self.stream = patience, output_dir, stream
        self.streak, self.said = 0, False

    def update(self, step: int, metrics: Mapping[str, Any]) -> str | None:
        """Feed one step's metrics; returns the warning the one time it is given."""
        zero = metrics.get("frac_reward_zero_std")
        self.streak = self.streak + 1 if zero is not None and zero >= 1.0 - 1e-9 else 0
        if self.said or self.patience <= 0 or self.streak < self.patience:
            return None
        self.said = True
        parts = {k.split("/")[1]: v for k, v in metrics.items() if k.startswith("rewards/") and k.endswith("/mean")}
        paid = ", ".join(f"{name} {value:.2f}" for name, value in parts.items()) or "n/a"
        where = f" ({self.output_dir}/completions.jsonl)" if self.output_dir else ""
        message = (
            f"rewardkit-train: warning: for {self.streak} steps in a row (up to step {step}) every group of "
            f"completions got the same reward, so GRPO has no signal and these steps trained on nothing. "
            f"Mean reward {metrics.get('reward/mean', float('nan')):.3f}; per part: {paid}. Likely cause: the "
            f"reward cannot tell the completions apart: every completion earns the same form reward (e.g. an "
            f"echoed format template) and none is ever right, or all are. Read the completions{where}, check "
            f"the rubric on sample completions, give the model a task it can sometimes solve, or turn on "
            f"dynamic sampling."
        )
        print(message, file=self.stream or sys.stderr, flush=True)
        return message
