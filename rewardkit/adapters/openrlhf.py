"""OpenRLHF's reward function file: ``reward_func(queries, prompts, labels)`` scored by
any rubric.

Pass this file where a remote reward-model URL would go (``--remote_rm_url <this file>``,
with ``--label_key`` naming the gold column); choose the rubric with ``REWARDKIT_RUBRIC``
(OpenRLHF passes no options), or write your own file with
``reward_func = make_reward_func(my_rubric)``.

OpenRLHF's ``queries`` are prompt + response: the completion is the query with its prompt
cut off the front (the whole query when it does not start with the prompt). ``labels``
reach the rubric as the ``answer`` column. Returns ``{"rewards", "scores", "extra_logs"}``:
``rewards`` the rubric totals (None -> 0.0), ``scores`` the 0-1 value OpenRLHF's dynamic
filtering reads (the first verifier part's value, else the total clipped to [0, 1]),
``extra_logs`` one entry per part. Values are ``torch`` tensors when torch imports (as it
always does inside OpenRLHF), else lists. Never raises on model output.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rewardkit._component import completion_text
from rewardkit.adapters import rubric_for

__all__ = ["reward_func", "make_reward_func", "completion_of"]


def completion_of(query: Any, prompt: Any) -> str:
    """The response part of an OpenRLHF query (prompt + response)."""
    query, prompt = completion_text(query), completion_text(prompt)
    return query[len(prompt):] if prompt and query.startswith(prompt) else query


def _tensor(values: list[float]) -> Any:
    try:
        import torch
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


def _score(rubric: Any, queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any] | None,
           columns: dict[str, Any]) -> dict[str, Any]:
    n = len(queries)
    prompts = list(prompts) if prompts is not None else [""] * n
    labels = list(labels) if labels is not None else [None] * n
    texts = [completion_of(q, p) for q, p in zip(queries, prompts)]
    extra = {k: list(v) for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == n}
    results = rubric.score_batch(texts, prompts=prompts, answer=labels, **extra)
    rewards = [float(r.total) if r.total is not None else 0.0 for r in results]
    verifier = next((p.name for p in rubric.parts if getattr(p.func, "kind", None) == "verifier"), None)
    if verifier is not None:
        scores = [float(r.parts[verifier].value or 0.0) for r in results]
    else:
        scores = [min(1.0, max(0.0, x)) for x in rewards]
    logs = {name: _tensor([float(r.parts[name].value or 0.0) for r in results]) for name in [p.name for p in rubric.parts]}
    return {"rewards": _tensor(rewards), "scores": _tensor(scores), "extra_logs": logs}


def make_reward_func(rubric: Any) -> Callable[..., dict[str, Any]]:
    """A ``reward_func`` bound to ``rubric`` (an object or a spec, resolved now)."""
    bound = rubric_for(rubric)

    def reward_func(queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any] | None = None,
                    **kwargs: Any) -> dict[str, Any]:
        return _score(bound, queries, prompts, labels, kwargs)

    return reward_func


def reward_func(queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """OpenRLHF's contract, with the rubric from ``REWARDKIT_RUBRIC`` (else "math")."""
    return _score(rubric_for(None), queries, prompts, labels, kwargs)
