"""How a rubric's parts become the reward the advantages are computed from.

TRL's names (``GRPOConfig.multi_objective_aggregation``):

- ``"sum_then_normalize"`` (default): the rubric's weighted total per completion (TRL's
  nansum; None counts 0), then the usual group advantages (``scale_rewards``).
- ``"normalize_then_sum"`` (GDPO): each weighted part is z-scored within its prompt's
  group, ``(v - nanmean) / (nanstd + 1e-4)`` with Bessel's correction as TRL does, a None
  (abstain) staying out of its part's mean and std; then the weighted nansum. A part that
  is constant within a group contributes 0 there, so a part with a large range cannot drown
  the others. A completion for which every weighted part abstained gets 0.

Where ours differs from TRL 1.16: TRL then centres the summed reward on the *batch* mean
and divides by the *batch* std, whatever ``scale_rewards`` says; here the summed reward
goes through the same ``group_advantages(scale_rewards)`` as the default (per group by
default), so the two aggregations differ only in what is summed. Weight-0 parts are
metrics in both and never enter the sum.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

__all__ = ["AGGREGATIONS", "aggregate_rewards"]

AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")
EPS = 1e-4


def aggregate_rewards(rubric: Any, results: Sequence[Any], num_generations: int,
                      how: str = "sum_then_normalize") -> torch.Tensor:
    """One reward per completion (float32 [N]) from RubricResults grouped consecutively."""
    if how == "sum_then_normalize":
        return torch.tensor([float(r.total) if r.total is not None else 0.0 for r in results], dtype=torch.float32)
    if how != "normalize_then_sum":
        raise ValueError(f"multi_objective_aggregation={how!r} must be one of {AGGREGATIONS}")
    weighted = [(p.name, p.weight) for p in rubric.parts if p.weight > 0]
    values = torch.tensor([[_nan(r.parts[name].value) for name, _ in weighted] for r in results], dtype=torch.float64)
    grouped = values.view(-1, num_generations, len(weighted))
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    count = (~grouped.isnan()).sum(dim=1, keepdim=True)
    var = torch.nanmean((grouped - mean) ** 2, dim=1, keepdim=True) * count / (count - 1).clamp(min=1)
    std = torch.where(count > 1, var.sqrt(), torch.zeros_like(var))
    z = ((grouped - mean) / (std + EPS)).view(-1, len(weighted))
    w = torch.tensor([wt for _, wt in weighted], dtype=torch.float64)
    return (z * w).nansum(dim=1).float()


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
