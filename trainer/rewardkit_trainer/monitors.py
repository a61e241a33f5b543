"""Run-time warnings for reward hacking and collapse, each logged and warned once.

``RunMonitor.update(step, metrics)`` reads a step's metrics (the loop's dict) and returns
the names of monitors that fired for the first time; their warnings go to stderr once and
the loop logs ``monitor/<name>`` = 1.0 on that step.

- ``length_drift``: mean completion length moved to >= 2x or <= 0.5x its mean over the
  first ``baseline_steps`` steps (models learn to pad or to stop early for reward).
- ``part_dominates``: one weighted part carries >= 90% of the total reward's variance
  (weight^2 x its variance), so the others no longer steer the advantage.
- ``entropy_collapse``: the sampled tokens' mean negative log-probability (a Monte-Carlo
  estimate of the policy's entropy, ``entropy/sampled``, when the engine returns
  log-probs) fell below 10% of its baseline.

The zero-variance collapse warning belongs to the recipes (``frac_reward_zero_std``).
Limits: heuristics over means; a run that starts collapsed has a collapsed baseline.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

__all__ = ["RunMonitor", "sampled_entropy"]


def sampled_entropy(logprobs: Any) -> float | None:
    """Mean negative log-probability of the sampled tokens, or None without log-probs."""
    flat = [x for seq in (logprobs or []) for x in (seq or [])]
    return -sum(flat) / len(flat) if flat else None


class RunMonitor:
    def __init__(self, weights: Mapping[str, float], *, baseline_steps: int = 3, length_ratio: float = 2.0,
                 dominance: float = 0.9, entropy_floor: float = 0.1, stream: Any = None) -> None:
        self.weights = dict(weights)
        self.baseline_steps, self.length_ratio = baseline_steps, length_ratio
        self.dominance, self.entropy_floor = dominance, entropy_floor
        self.stream = stream
        self.fired: dict[str, int] = {}
        self._lengths: list[float] = []
        self._entropies: list[float] = []

    def update(self, step: int, metrics: Mapping[str, Any]) -> list[str]:
        new = []
        for name, message in self._check(metrics):
            if name not in self.fired:
                self.fired[name] = step
                new.append(name)
                print(f"rewardkit-train: warning: step {step}: {message}", file=self.stream or sys.stderr)
        return new

    def _check(self, m: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        length = m.get("completion_length/mean")
        if length is not None:
            if len(self._lengths) < self.baseline_steps:
                self._lengths.append(float(length))
            else:
                base = sum(self._lengths) / len(self._lengths)
                if base > 0 and not 1 / self.length_ratio < length / base < self.length_ratio:
                    out.append(("length_drift", f"mean completion length {length:.0f} tokens against {base:.0f} "
                                                "at the start: check the rubric for length hacking"))
        spread = {n: w * w * float(m[f"rewards/{n}/std"]) ** 2 for n, w in self.weights.items()
                  if w and f"rewards/{n}/std" in m}
        total = sum(spread.values())
        if len(spread) >= 2 and total > 1e-12:
            name, top = max(spread.items(), key=lambda kv: kv[1])
            if top / total >= self.dominance:
                out.append(("part_dominates", f"part {name!r} carries {top / total:.0%} of the reward variance; "
                                              "the other parts no longer steer training"))
        entropy = m.get("entropy/sampled")
        if entropy is not None:
            if len(self._entropies) < self.baseline_steps:
                self._entropies.append(float(entropy))
            else:
                base = sum(self._entropies) / len(self._entropies)
                if base > 0 and entropy < self.entropy_floor * base:
                    out.append(("entropy_collapse", f"sampled-token entropy {entropy:.3f} against {base:.3f} at the "
                                                    "start: the policy is collapsing onto few answers"))
        return out
