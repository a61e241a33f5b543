"""Held-out evaluation from the rubric: accuracy, pass@k, format compliance, mean reward.

k = 1 decodes greedily (top-k 1); k > 1 samples k completions per prompt at the run's
temperature, reports accuracy as the mean over all samples and pass@k as the share of
prompts with at least one correct sample. "Correct" is the rubric's verifier part
(value > 0 with status ok); "format" is its format part (value > 0).
Limits: uses the given rollout engine, so it is as fast as that engine.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .rewards import correct_part, format_part, score_rollout
from .rollout.base import RolloutEngine, SamplingParams

__all__ = ["evaluate", "eval_options", "print_eval"]


def eval_options(config: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`evaluate` that a GRPOConfig fixes."""
    return {"k": config.data.eval_k, "temperature": config.grpo.temperature, "top_k": config.grpo.top_k,
            "top_p": config.grpo.top_p, "seed": config.run.seed,
            "max_completion_length": config.data.eval_max_completion_length or config.grpo.max_completion_length,
            "workers": config.scoring.reward_workers, "timeout": config.scoring.reward_timeout}


def evaluate(engine: RolloutEngine, rubric: Any, encode: Callable[[Any], list[int]], rows: Sequence[dict], *,
             k: int = 1, max_completion_length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             seed: int = 0, workers: int = 0, timeout: float | None = None,
             batch_prompts: int = 16) -> dict[str, float]:
    """Metrics over ``rows`` (each with a ``prompt``); ``encode`` turns a prompt into ids."""
    if not rows:
        return {}
    greedy = k == 1
    params = SamplingParams(num_generations=k, max_completion_length=max_completion_length,
                            temperature=1.0 if greedy else temperature, top_k=1 if greedy else top_k,
                            top_p=1.0 if greedy else top_p, seed=seed + 7)
    texts, grouped = [], []
    for i in range(0, len(rows), batch_prompts):
        chunk = list(rows[i : i + batch_prompts])
        rollout = engine.generate([encode(r["prompt"]) for r in chunk], params)
        texts += rollout.texts
        grouped += [r for r in chunk for _ in range(k)]
    totals, results = score_rollout(rubric, texts, [r["prompt"] for r in grouped], grouped,
                                    workers=workers, timeout=timeout)
    out: dict[str, float] = {"reward": sum(totals) / len(totals)}
    cp, fp = correct_part(rubric), format_part(rubric)
    if cp is not None:
        ok = [_passed(r.parts[cp]) for r in results]
        out["accuracy"] = sum(ok) / len(ok)
        if k > 1:
            out[f"pass@{k}"] = sum(any(ok[i : i + k]) for i in range(0, len(ok), k)) / len(rows)
    if fp is not None:
        out["format"] = sum(_passed(r.parts[fp]) for r in results) / len(results)
    return out


def print_eval(when: str, metrics: dict[str, float]) -> None:
    """One console line: ``held-out (after): reward 0.812, accuracy 0.797, format 1.000``."""
    parts = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))
    print(f"held-out ({when}): {parts}", flush=True)


def _passed(score: Any) -> bool:
    return score.value is not None and score.value > 0 and str(score.status) == "ok"
