"""backend="trl": the same GRPOConfig and rubric run through TRL's ``GRPOTrainer``.

Useful to compare against the reference implementation, or to use TRL features we do
not have (DeepSpeed, multi-GPU). The rubric's parts become TRL reward functions (one per
part, with their weights), so TRL logs ``rewards/<part>/mean`` as usual. Held-out
evaluation before and after uses our evaluator on the same model.

Mapping notes: ``gspo`` becomes TRL's ``loss_type="grpo"`` with
``importance_sampling_level="sequence"``; ``prompts_per_step * num_generations``
completions make one optimizer step (TRL's ``generation_batch_size``); TRL's own vLLM
and importance-sampling options are left at TRL's defaults (``use_vllm=False``);
``multi_objective_aggregation`` passes through (TRL's own normalization, see
``aggregation.py``). ``dynamic_sampling`` has no TRL counterpart (TRL #3708) and is refused.
Limits: no resume through this path, no SFT warm start.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from .build import seed_everything
from .config import GRPOConfig
from .data import encode_prompt, load_rows, split
from .evaluate import eval_options, evaluate, print_eval
from .models import load_model
from .rewards import build_rubric
from .rollout.hf import HFEngine

__all__ = ["run", "train_with_trl", "trl_args"]


def run(config: GRPOConfig, *, options: dict[str, Any], resume: bool = False, **kwargs: Any) -> dict:
    """The ``trl`` backend: ``options`` (the config's ``backend_options``) are extra
    ``trl.GRPOConfig`` fields, set over the ones mapped from our config."""
    return train_with_trl(config, trl_options=options, **kwargs)


def trl_args(config: GRPOConfig, options: dict[str, Any] | None = None) -> Any:
    """Build TRL's GRPOConfig from ours; ``options`` add or override TRL fields."""
    import dataclasses

    from trl import GRPOConfig as TRLConfig

    c = config
    per_step = c.prompts_per_step * c.num_generations
    micro = min(c.per_device_train_batch_size, per_step)
    while per_step % micro:  # TRL needs whole micro-batches per step
        micro -= 1
    loss_type = "grpo" if c.loss_type == "gspo" else c.loss_type
    options = dict(options or {})
    known = {f.name for f in dataclasses.fields(TRLConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        from rewardkit.errors import invalid_argument

        raise invalid_argument("backend_options", options, f"has {unknown[0]!r}, which is not a trl.GRPOConfig field")
    fields = dict(
        output_dir=str(Path(c.output_dir) / "trl"), report_to="none", use_cpu=not torch.cuda.is_available(),
        max_steps=c.max_steps, logging_steps=c.logging_steps, save_strategy="no", seed=c.seed,
        learning_rate=c.learning_rate, weight_decay=c.weight_decay, lr_scheduler_type=c.lr_scheduler_type if
        c.lr_scheduler_type != "constant" else "constant", warmup_steps=c.warmup_steps, max_grad_norm=c.max_grad_norm,
        per_device_train_batch_size=micro, gradient_accumulation_steps=per_step // micro,
        num_generations=c.num_generations, max_completion_length=c.max_completion_length,
        temperature=c.temperature, top_p=c.top_p, top_k=c.top_k or 0, beta=c.beta, epsilon=c.epsilon,
        epsilon_high=c.clip_high, loss_type=loss_type, scale_rewards=c.scale_rewards,
        num_iterations=c.num_iterations, mask_truncated_completions=c.mask_truncated_completions,
        importance_sampling_level="sequence" if c.loss_type == "gspo" else "token",
        gradient_checkpointing=c.gradient_checkpointing, disable_tqdm=not c.progress,
        bf16=c.dtype == "bfloat16" and torch.cuda.is_available(),
        multi_objective_aggregation=c.multi_objective_aggregation,
    )
    return TRLConfig(**{**fields, **options})


def train_with_trl(config: GRPOConfig, *, model: Any = None, tokenizer: Any = None, rubric: Any = None,
                   train_rows: list[dict] | None = None, eval_rows: list[dict] | None = None,
                   trl_options: dict[str, Any] | None = None, **_: Any) -> dict:
    from datasets import Dataset
    from trl import GRPOTrainer as TRLTrainer

    c = config
    start = time.perf_counter()
    seed_everything(c.run)
    if model is None:
        model, tokenizer = load_model(c.replace(use_peft=False).policy)  # TRL wraps it with peft itself
    rubric = build_rubric(rubric if rubric is not None else c.reward, c.reward_weights, c.reward_options,
                          c.reward_cache)
    if train_rows is None:
        train_rows, eval_rows = split(load_rows(c.data), c.eval_size)
    funcs, weights = rubric.reward_funcs()
    peft_config = None
    if c.use_peft and not hasattr(model, "peft_config"):
        from peft import LoraConfig

        peft_config = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                                 target_modules=list(c.lora_target_modules), task_type="CAUSAL_LM")
    columns = [k for k in train_rows[0] if k != "prompt"]
    data = Dataset.from_list([{"prompt": r["prompt"], **{k: r[k] for k in columns}} for r in train_rows])
    trainer = TRLTrainer(model=model, reward_funcs=funcs, args=trl_args(c, trl_options), train_dataset=data,
                         processing_class=tokenizer, peft_config=peft_config)
    engine = HFEngine(trainer.model, tokenizer)
    encode = partial(encode_prompt, tokenizer, max_length=c.max_prompt_length)
    before = evaluate(engine, rubric, encode, eval_rows, **eval_options(c)) if eval_rows else None
    if before:
        print_eval("before", before)
    trainer.train()
    engine.update_weights(trainer.model)
    after = evaluate(engine, rubric, encode, eval_rows, **eval_options(c)) if eval_rows else None
    if after:
        print_eval("after", after)
    logs = [e for e in trainer.state.log_history if "reward" in e]
    return {"before": before, "after": after, "steps": int(trainer.state.global_step),
            "seconds": time.perf_counter() - start, "engine": "trl", "log_history": logs,
            "output_dir": c.output_dir}
