"""The rollout seam: anything that samples G completions per prompt plugs in here.

The trainer owns the policy; an engine owns whatever copy it samples from (the policy
itself for the built-in transformers engine, a colocated vLLM for the vLLM engine) and
is told after every optimizer step to follow the new weights.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["SamplingParams", "Rollout", "RolloutEngine", "eos_token_ids", "generate_groups"]


def eos_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS and the model's generation
    config EOS (either may be one id or a list), sorted, for every engine alike."""
    from ..models import unwrap

    ids: set[int] = set()
    gen = getattr(unwrap(model), "generation_config", None)
    for value in (getattr(tokenizer, "eos_token_id", None), getattr(gen, "eos_token_id", None)):
        if value is not None:
            ids.update(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v is not None)
    return sorted(ids)


@dataclass(frozen=True)
class SamplingParams:
    """What to sample. Names follow TRL's GRPOConfig."""

    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    seed: int | None = None
    #: one seed per prompt (engines with ``supports_group_seeds``): each group draws from its own generator
    group_seeds: tuple[int, ...] | None = None


@dataclass
class Rollout:
    """G completions for each of P prompts, grouped: prompt i owns rows [i*G, (i+1)*G).

    ``completion_ids`` exclude the prompt and any padding; an EOS token that ended a
    completion is included. ``logprobs`` are the sampler's per-token log-probabilities of
    the chosen tokens (same lengths as ``completion_ids``), or None when the engine cannot
    give them. ``truncated[j]`` is True when row j hit ``max_completion_length`` without EOS.
    """

    prompt_ids: list[list[int]]  # one per prompt (P rows), without padding
    completion_ids: list[list[int]]  # P*G rows
    texts: list[str]  # P*G decoded completions (special tokens skipped)
    truncated: list[bool]  # P*G
    logprobs: list[list[float]] | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # e.g. seconds, tokens

    @property
    def num_completions(self) -> int:
        return len(self.completion_ids)


class RolloutEngine(abc.ABC):
    """Interface the trainer talks to. Engines must be usable from one thread."""

    name: str = "engine"

    @abc.abstractmethod
    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> Rollout:
        """Sample ``params.num_generations`` completions for each tokenized prompt."""

    @abc.abstractmethod
    def update_weights(self, model: Any) -> None:
        """Follow the policy after an optimizer step (``model`` is the trainer's policy,
        possibly a peft model). Must leave no stale cache behind."""

    def sleep(self) -> None:
        """Release accelerator memory between rollouts where the engine can (default: no-op)."""

    def wake_up(self) -> None:
        """Undo :meth:`sleep` before the next rollout (default: no-op)."""

    def close(self) -> None:
        """Free everything the engine holds (default: no-op)."""


def generate_groups(engine: RolloutEngine, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
                    seeds: Sequence[int]) -> Rollout:
    """G completions per prompt, each group sampled from its own seeded generator, so a
    group's completions depend on its prompt and seed, not on which rank draws it (the
    distributed loop seeds per group, see distributed.py). Engines that declare
    ``supports_group_seeds`` (HFEngine: one generator per group; StaticCacheEngine: noise
    keyed by each group's seed) sample the whole batch at once; others get one
    ``generate`` call per prompt, joined into one Rollout."""
    import dataclasses

    if getattr(engine, "supports_group_seeds", False):  # one batch, each group seeded alone
        return engine.generate(prompt_ids, dataclasses.replace(params, seed=None, group_seeds=tuple(seeds)))
    parts = [engine.generate([p], dataclasses.replace(params, seed=s)) for p, s in zip(prompt_ids, seeds)]
    seconds = sum(float(r.stats.get("seconds", 0.0)) for r in parts)
    tokens = sum(int(r.stats.get("tokens", sum(len(c) for c in r.completion_ids))) for r in parts)
    logprobs = None if any(r.logprobs is None for r in parts) else [lp for r in parts for lp in r.logprobs]
    return Rollout(prompt_ids=[list(p) for p in prompt_ids],
                   completion_ids=[c for r in parts for c in r.completion_ids],
                   texts=[t for r in parts for t in r.texts], truncated=[t for r in parts for t in r.truncated],
                   logprobs=logprobs,
                   stats={"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / max(seconds, 1e-9)})
