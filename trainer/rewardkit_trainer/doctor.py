"""``rewardkit-train doctor CONFIG``: the rubric doctor (``rewardkit.doctor``) on completions
this config's own model samples, before a run.

It builds exactly what training would (data, rubric, model, rollout engine), samples
``num_generations`` completions for the first ``prompts`` training prompts with the
config's sampling settings, and prints the doctor's table: per-part statistics, the share
of groups with no reward variance, dominating or correlated parts, cliffs and known
hacks. Exit 3 on severe findings (as ``rewardkit doctor``), 0 otherwise.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["sample_and_diagnose"]


def sample_and_diagnose(config: Any, prepared: dict[str, Any], *, prompts: int = 8) -> Any:
    """The doctor's ``Report`` on ``prompts`` x ``num_generations`` fresh samples."""
    import torch

    from rewardkit.doctor import diagnose

    from .build import build_engine, max_model_len, seed_everything
    from .data import encode_prompt
    from .models import load_model
    from .rollout.base import SamplingParams

    c = config
    seed_everything(c.run)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model(c.policy, device=device)
    engine = build_engine(c.rollout, model, tokenizer, seed=c.run.seed, output_dir=c.run.output_dir,
                          max_model_len=max_model_len(c))
    rows = prepared["train_rows"][:prompts]
    g = c.grpo.num_generations
    params = SamplingParams(num_generations=g, max_completion_length=c.grpo.max_completion_length,
                            temperature=c.grpo.temperature, top_p=c.grpo.top_p, top_k=c.grpo.top_k,
                            seed=c.run.seed)  # fmt: skip
    try:
        out = engine.generate([encode_prompt(tokenizer, r["prompt"], c.data.max_prompt_length) for r in rows], params)
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()
    samples = [(j // g, text) for j, text in enumerate(out.texts)]
    return diagnose(prepared["rubric"], rows, samples, answer_column=c.data.answer_column)


def print_report(report: Any, as_json: bool) -> int:
    print(json.dumps(report.as_dict(), indent=2, default=str) if as_json else report.table())
    return 3 if report.severe else 0
