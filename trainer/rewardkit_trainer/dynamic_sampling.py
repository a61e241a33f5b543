"""DAPO dynamic sampling: groups whose rewards are all equal carry no gradient (their
advantages are 0), so drop them and refill the step with groups from new prompts.

``fill_groups(draw, ...)`` calls ``draw(k, index)`` for ``k`` fresh prompts (a rollout
scored and aggregated: a :class:`Draw`), keeps the groups with reward std > ``tol`` and
draws again until it holds ``num_prompts`` such groups or has made ``max_num_gen_batches``
draws in all (verl's ``filter_groups.max_num_gen_batches``; the first draw counts).
``frac_reward_zero_std`` is measured on the first draw, before any filtering.

The lockstep rule (several ranks): every step trains on exactly ``num_prompts`` groups on
every rank, so every rank runs the same number of micro-batches. If the draws run out
before enough groups with signal are found, the step is completed with zero-variance
groups from the draws (their advantages are 0: only a KL term, if any, moves the policy),
counted as ``dynamic_sampling/padded_groups``. Ranks may need different numbers of draws;
where draws must also match (a collective rollout), pass ``agree``: called with this
rank's "I need another draw" before each refill, it returns the decision every rank takes
(the distributed code passes an all-reduce MAX over ranks), and a rank that needs nothing
still draws and keeps only what it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["Draw", "fill_groups", "zero_std_groups"]


@dataclass
class Draw:
    """``k`` prompts' groups: rows, prompt ids, the Rollout, totals and RubricResults
    (one per completion), and the rewards advantages are computed from."""

    rows: list[dict]
    prompt_ids: list[list[int]]
    rollout: Any
    totals: list[float]
    results: list[Any]
    rewards: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)

    def select(self, keep: list[int], g: int) -> "Draw":
        """The groups ``keep`` (prompt indices), in that order."""
        rows = [i * g + j for i in keep for j in range(g)]
        r = self.rollout
        rollout = type(r)(prompt_ids=[r.prompt_ids[i] for i in keep], completion_ids=[r.completion_ids[i] for i in rows],
                          texts=[r.texts[i] for i in rows], truncated=[r.truncated[i] for i in rows],
                          logprobs=None if r.logprobs is None else [r.logprobs[i] for i in rows], stats=dict(r.stats))
        return Draw([self.rows[i] for i in keep], [self.prompt_ids[i] for i in keep], rollout,
                    [self.totals[i] for i in rows], [self.results[i] for i in rows], self.rewards[rows], dict(self.stats))


def concat(draws: list[Draw], stats: dict) -> Draw:
    """The draws' groups as one Draw whose rollout carries ``stats`` (the sampling work)."""
    first = draws[0]
    r0 = first.rollout
    logprobs = None if any(d.rollout.logprobs is None for d in draws) else [x for d in draws for x in d.rollout.logprobs]
    rollout = type(r0)(prompt_ids=[x for d in draws for x in d.rollout.prompt_ids],
                       completion_ids=[x for d in draws for x in d.rollout.completion_ids],
                       texts=[x for d in draws for x in d.rollout.texts],
                       truncated=[x for d in draws for x in d.rollout.truncated], logprobs=logprobs, stats=stats)
    return Draw([x for d in draws for x in d.rows], [x for d in draws for x in d.prompt_ids], rollout,
                [x for d in draws for x in d.totals], [x for d in draws for x in d.results],
                torch.cat([d.rewards for d in draws]), dict(first.stats))


def zero_std_groups(rewards: torch.Tensor, g: int, tol: float = 1e-6) -> list[bool]:
    """Per group: True when its rewards are all equal (std <= tol)."""
    grouped = rewards.float().view(-1, g)
    if g == 1:
        return [True] * grouped.shape[0]
    return [bool(s <= tol) for s in grouped.std(dim=1)]


def fill_groups(draw: Callable[[int, int], Draw], num_prompts: int, g: int, *, enabled: bool,
                max_num_gen_batches: int, agree: Callable[[bool], bool] = lambda need: need,
                tol: float = 1e-6) -> tuple[Draw, dict[str, float]]:
    """The step's ``num_prompts`` groups and the metrics (see the module docstring)."""
    first = draw(num_prompts, 0)
    flat = zero_std_groups(first.rewards, g, tol)
    metrics = {"frac_reward_zero_std": sum(flat) / max(len(flat), 1)}
    if not enabled:
        return first, metrics
    kept: list[Draw] = []
    spare: list[Draw] = []  # zero-variance groups, in case the draws run out
    made = [first.rollout.stats]  # every draw's sampling work, dropped groups included
    have = 0
    current, draws = first, 1
    while True:
        zero = zero_std_groups(current.rewards, g, tol)
        signal = [i for i, z in enumerate(zero) if not z][: num_prompts - have]
        if signal:
            kept.append(current.select(signal, g))
            have += len(signal)
        spare.append(current.select([i for i, z in enumerate(zero) if z], g))
        if draws >= max_num_gen_batches:  # the same bound on every rank: no collective needed
            break
        if not agree(have < num_prompts):  # every rank calls agree equally often
            break
        current = draw(num_prompts, draws)
        made.append(current.rollout.stats)
        draws += 1
    padded = 0
    for s in spare:
        if have >= num_prompts:
            break
        take = list(range(min(len(s.rows), num_prompts - have)))
        if take:
            kept.append(s.select(take, g))
            have += len(take)
            padded += len(take)
    # the rollout's time and tokens are those of the draws made, each counted once (a draw
    # split between kept and padded groups would otherwise count twice)
    stats = dict(first.rollout.stats)
    for key in ("seconds", "tokens"):
        if all(key in st for st in made):
            stats[key] = sum(st[key] for st in made)
    if stats.get("seconds"):
        stats["tokens_per_s"] = stats.get("tokens", 0) / stats["seconds"]
    batch = concat(kept, stats)
    metrics.update({"dynamic_sampling/refills": float(draws - 1), "dynamic_sampling/padded_groups": float(padded),
                    "dynamic_sampling/groups_with_signal": float(num_prompts - padded)})
    return batch, metrics
