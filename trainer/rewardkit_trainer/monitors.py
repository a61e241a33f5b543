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
- ``no_signal``: every group of completions had the same reward (``frac_reward_zero_std``
  = 1) for ``no_signal_steps`` steps in a row (``collapse_warning_steps``, 3; 0: never).
  GRPO learns from differences inside a group, so those steps trained on nothing: the run
  is stuck, not slow. The classic cause is a reward that pays only for form, so the policy
  settles on a form every completion shares (an echoed template) and correctness never
  varies. The warning names the per-part means and the completions file.

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
                 dominance: float = 0.9, entropy_floor: float = 0.1, no_signal_steps: int = 3,
                 output_dir: str = "", enabled: bool = True, stream: Any = None) -> None:
        """``enabled=False`` (a rank other than 0) checks and returns names but prints nothing."""
        self.weights = dict(weights)
        self.baseline_steps, self.length_ratio = baseline_steps, length_ratio
        self.dominance, self.entropy_floor = dominance, entropy_floor
        self.no_signal_steps, self.output_dir = no_signal_steps, output_dir
        self.stream, self.enabled = stream, enabled
        self.fired: dict[str, int] = {}
        self._lengths: list[float] = []
        self._entropies: list[float] = []
        self._flat_streak = 0

    def update(self, step: int, metrics: Mapping[str, Any]) -> list[str]:
        new = []
        for name, message in self._check(metrics):
            if name not in self.fired:
                self.fired[name] = step
                new.append(name)
                if self.enabled:
                    print(f"rewardkit-train: warning: step {step}: {message}", file=self.stream or sys.stderr)
        return new

    def _against_start(self, seen: list[float], value: Any) -> float | None:
        """The mean of the first ``baseline_steps`` values once they are in, else None
        (``value`` joins them while they are being collected)."""
        if value is None:
            return None
        if len(seen) < self.baseline_steps:
            seen.append(float(value))
            return None
        return sum(seen) / len(seen)

    def _check(self, m: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        length = m.get("completion_length/mean")
        base = self._against_start(self._lengths, length)
        if base and not 1 / self.length_ratio < length / base < self.length_ratio:
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
        base = self._against_start(self._entropies, entropy)
        if base and entropy < self.entropy_floor * base:
            out.append(("entropy_collapse", f"sampled-token entropy {entropy:.3f} against {base:.3f} at the "
                                            "start: the policy is collapsing onto few answers"))
        zero = m.get("frac_reward_zero_std")
        self._flat_streak = self._flat_streak + 1 if zero is not None and zero >= 1.0 - 1e-9 else 0
        if self.no_signal_steps > 0 and self._flat_streak >= self.no_signal_steps:
            out.append(("no_signal", self._no_signal(m)))
        return out

    def _no_signal(self, m: Mapping[str, Any]) -> str:
        parts = {k.split("/")[1]: v for k, v in m.items() if k.startswith("rewards/") and k.endswith("/mean")}
        paid = ", ".join(f"{name} {value:.2f}" for name, value in parts.items()) or "n/a"
        where = f" ({self.output_dir}/completions.jsonl)" if self.output_dir else ""
        return (f"for {self._flat_streak} steps in a row every group of completions got the same reward, so GRPO has "
                f"no signal and these steps trained on nothing. Mean reward {m.get('reward/mean', float('nan')):.3f}; "
                f"per part: {paid}. Likely cause: the reward cannot tell the completions apart: every completion "
                f"earns the same form reward (e.g. an echoed format template) and none is ever right, or all are. "
                f"Read the completions{where}, check the rubric on sample completions (rewardkit-train doctor), give "
                f"the model a task it can sometimes solve, or turn on dynamic sampling.")
