"""Held-out evaluation from the rubric: accuracy, pass@k, format compliance, mean reward.

k = 1 decodes greedily (top-k 1); k > 1 samples k completions per prompt at the run's
temperature, reports accuracy as the mean over all samples and pass@k as the share of
prompts with at least one correct sample. "Correct" is the rubric's verifier part
(value > 0 with status ok); "format" is its format part (value > 0).
Limits: uses the trainer's rollout engine, so it is as fast as that engine.
"""

from __future__ import annotations

from typing import Any, Sequence

from .rewards import correct_part, format_part, score_rollout
from .rollout.base import SamplingParams

__all__ = ["evaluate"]


def evaluate(trainer: Any, rows: Sequence[dict], k: int = 1, batch_prompts: int = 16) -> dict[str, float]:
    c = trainer.config
    if not rows:
        return {}
    greedy = k == 1
    params = SamplingParams(num_generations=k, max_completion_length=c.eval_max_completion_length or c.max_completion_length,
                            temperature=1.0 if greedy else c.temperature, top_k=1 if greedy else c.top_k,
                            top_p=1.0 if greedy else c.top_p, seed=c.seed + 7)
    texts, grouped = [], []
    for i in range(0, len(rows), batch_prompts):
        chunk = list(rows[i : i + batch_prompts])
        ids = [trainer.encode_prompt(r["prompt"]) for r in chunk]
        rollout = trainer.engine.generate(ids, params)
        texts += rollout.texts
        grouped += [r for r in chunk for _ in range(k)]
    totals, results = score_rollout(trainer.rubric, texts, [r["prompt"] for r in grouped], grouped,
                                    workers=c.reward_workers, timeout=c.reward_timeout)
    out: dict[str, float] = {"reward": sum(totals) / len(totals)}
    cp, fp = correct_part(trainer.rubric), format_part(trainer.rubric)
    if cp is not None:
        ok = [_passed(r.parts[cp]) for r in results]
        out["accuracy"] = sum(ok) / len(ok)
        if k > 1:
            out[f"pass@{k}"] = sum(any(ok[i : i + k]) for i in range(0, len(ok), k)) / len(rows)
    if fp is not None:
        out["format"] = sum(_passed(r.parts[fp]) for r in results) / len(results)
    return out


def _passed(score: Any) -> bool:
    return score.value is not None and score.value > 0 and str(score.status) == "ok"
