"""The GRPO loop, top to bottom: sample G completions per prompt, score them with a
rubric, turn rewards into group-relative advantages, and take a clipped policy step.

One step (``train_step``): rollout (``rollout/``) -> rewards (``rewards.py``) ->
advantages and loss (``losses.py``, log-probs from ``logprobs.py``) -> optimizer step.
Set-up (seeding, optimizer, engine) is in ``build.py``, evaluation in ``evaluate.py``,
the SFT warm start in ``sft.py``; ``launch.train`` picks this loop or TRL's.

Under torchrun the same loop runs data-parallel: ``distributed.Parallel`` owns the process
group, sharding (FSDP2 / DDP), gradient and metric reduction; each rank samples, scores and
differentiates its share of the step's prompts (docs/scaling.md). On one process every
``self.parallel`` call is the identity or today's call.

What it leaves out on purpose (compared with TRL's GRPOTrainer): DeepSpeed,
liger/unsloth patches, entropy masking. (Reward models are rubric parts: `rewardkit.reward_model`.)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import checkpoint as ckpt
from .aggregation import aggregate_rewards
from .build import build_engine, max_model_len, build_optimizer, lr_factor, seed_everything
from .config import GRPOConfig, resolve_rollout_engine
from .distributed import Parallel
from .data import PromptSampler, encode_prompt, load_rows, split
from .dynamic_sampling import Draw, fill_groups
from .evaluate import eval_options, evaluate, print_eval
from .logprobs import completion_mask, fused_may_pay, pad_rows, reference_logprobs, sequence_logprobs
from .monitors import RunMonitor, sampled_entropy
from .losses import LOSSES, TokenLoss, group_advantages, importance_weights, sampling_metrics
from .models import load_model, reference_context, save_merged, save_model
from .report import RunLogger, plot_rewards, progress_bar, write_report
from .rewards import build_rubric, score_rollout
from .rollout.base import RolloutEngine, SamplingParams
from .sft import sft_warm_start

__all__ = ["GRPOTrainer"]


class GRPOTrainer:
    """Holds the policy, optimizer, engine and rubric; ``train()`` runs the loop."""

    def __init__(self, config: GRPOConfig, *, model: Any = None, tokenizer: Any = None, rubric: Any = None,
                 train_rows: list[dict] | None = None, eval_rows: list[dict] | None = None,
                 engine: RolloutEngine | None = None) -> None:
        self.config = c = config
        self.parallel = Parallel.setup(c.run)
        self.parallel.check(c)
        seed_everything(c.run)
        self.device = self.parallel.device
        if model is None:
            model, tokenizer = load_model(c.policy, device=self.device)
        self.model, self.tokenizer = model, tokenizer
        self.rubric = build_rubric(rubric if rubric is not None else c.scoring.reward, c.scoring.reward_weights,
                                   c.scoring.reward_options, c.scoring.reward_cache)
        self.monitor = RunMonitor({p.name: p.weight for p in self.rubric.parts}, enabled=self.parallel.is_main,
                                  no_signal_steps=c.run.collapse_warning_steps, output_dir=c.run.output_dir)
        if train_rows is None:
            train_rows, eval_rows = split(load_rows(c.data), c.data.eval_size)
        self.train_rows, self.eval_rows = train_rows, eval_rows or []
        self.sampler = PromptSampler(len(self.train_rows), c.run.seed)
        self.ref_model = None
        if c.grpo.beta > 0 and reference_context(model) is None:  # full fine-tuning needs a frozen copy
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        # vLLM holds its own copy of the weights: built from the whole model before sharding,
        # it needs no second copy (distributed.py); the built-in engines decode from one
        self._rollout = dataclasses.replace(c.rollout, rollout_engine=resolve_rollout_engine(c.rollout))
        if engine is None and self._rollout.rollout_engine == "vllm":
            engine = self._build_engine(model)
        self.policy = self.parallel.wrap(model, c.policy.mixed_precision, rollout_copy=engine is None)
        self.optimizer = build_optimizer(c.optim, [p for p in self.policy.parameters() if p.requires_grad])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(c.optim))
        self.engine = engine or self._build_engine(self.parallel.rollout_model(model))
        self.step = 0
        self.logger = RunLogger(c.run.output_dir, c.run.report_to, enabled=self.parallel.is_main)
        self.history: list[dict[str, Any]] = []
        self.after_sft: dict[str, float] | None = None

    def _build_engine(self, model: Any) -> RolloutEngine:
        c = self.config
        return build_engine(self._rollout, model, self.tokenizer, seed=c.run.seed, output_dir=c.run.output_dir,
                            max_model_len=max_model_len(c))

    def encode_prompt(self, messages: Any) -> list[int]:
        return encode_prompt(self.tokenizer, messages, self.config.data.max_prompt_length)

    # one step --------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        c, g = self.config.grpo, self.config.grpo.num_generations
        t0 = time.perf_counter()
        # 1-3. rollout, rewards, advantages on this rank's share of the step's prompts; with
        # dynamic sampling, zero-variance groups are replaced by groups from new prompts
        # (dynamic_sampling.py: every rank draws as often as the neediest one, in lockstep)
        share = self.config.optim.prompts_per_step // self.parallel.world_size
        agree = (lambda need: self.parallel.max(float(need)) > 0) if self.parallel.enabled else (lambda need: need)
        batch, sampling = fill_groups(self._draw, share, g, enabled=c.dynamic_sampling,
                                      max_num_gen_batches=c.max_num_gen_batches, agree=agree)
        rows, prompt_ids, rollout, totals, results = batch.rows, batch.prompt_ids, batch.rollout, batch.totals, batch.results
        offset = self.parallel.rank * share
        # the global batch's totals (metrics) and aggregated rewards (advantages), one gather
        both = torch.tensor(self.parallel.gather(list(zip(totals, batch.rewards.tolist()))), dtype=torch.float32)
        rewards, pooled = both[:, 0].contiguous(), both[:, 1].contiguous()  # reductions as over a flat list
        # advantages: each reward against its group's (a group never spans ranks)
        adv = group_advantages(pooled, g, c.scale_rewards)[offset * g : offset * g + len(totals)]
        sampling = self.parallel.reduce_metrics(sampling)  # means over ranks, one collective
        # 4-5. loss and optimizer step(s); then the engine follows the new weights
        prompts_rep = [p for p in prompt_ids for _ in range(g)]
        loss_metrics = self._optimize(prompts_rep, rollout, adv)
        self.engine.update_weights(self.parallel.refresh_rollout_model(self.model))
        self.step += 1
        metrics = self._metrics(rollout, rewards, results, loss_metrics, time.perf_counter() - t0)
        metrics.update(sampling)  # frac_reward_zero_std as drawn, before any filtering
        if self.rubric.cache is not None:
            metrics["reward_cache/hit_rate"] = self.rubric.cache.hit_rate
        self._log_samples(rows, rollout, totals, results)
        return metrics

    def _draw(self, num_prompts: int, index: int) -> Draw:
        """G completions for each of ``num_prompts`` new prompts, scored (steps 1-2)."""
        c, g = self.config.grpo, self.config.grpo.num_generations
        # every rank takes the same global prompts (same sampler) and keeps its own share
        picked, offset = self.parallel.shard(self.sampler.take(num_prompts * self.parallel.world_size))
        rows = [self.train_rows[i] for i in picked]
        prompt_ids = [self.encode_prompt(r["prompt"]) for r in rows]
        key = self.step + index * 1_000_003  # a refill's groups get seeds of their own
        params = SamplingParams(num_generations=g, max_completion_length=c.max_completion_length,
                                temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                                seed=self.config.run.seed * 100_003 + key)
        self.engine.wake_up()
        rollout = self.parallel.generate(self.engine, prompt_ids, params, self.config.run.seed, key, offset)
        self.engine.sleep()
        grouped_rows = [r for r in rows for _ in range(g)]
        s = self.config.scoring
        totals, results = score_rollout(self.rubric, rollout.texts, [r["prompt"] for r in grouped_rows],
                                        grouped_rows, workers=s.reward_workers,
                                        timeout=self.parallel.reward_timeout(s.reward_timeout))
        rewards = aggregate_rewards(self.rubric, results, g, s.multi_objective_aggregation)
        return Draw(rows, prompt_ids, rollout, totals, results, rewards)

    def _optimize(self, prompts_rep, rollout, adv) -> dict[str, float]:
        c, r = self.config.grpo, self.config.rollout
        n = len(rollout.completion_ids)
        keep = [not (c.mask_truncated_completions and t) for t in rollout.truncated]
        # the loss is normalised by the global batch's counts: ranks' losses then add up
        num_tokens = self.parallel.sum(sum(len(ids) for ids, k in zip(rollout.completion_ids, keep) if k)) or 1
        num_seqs = self.parallel.sum(sum(keep)) or 1
        mb = self.config.optim.per_device_train_batch_size
        batches = [list(range(i, min(i + mb, n))) for i in range(0, n, mb)]
        use_is = (r.vllm_importance_sampling_correction and rollout.logprobs is not None
                  and self.engine.name != "hf")  # the hf engine samples from these very weights
        micro = [([prompts_rep[i] for i in idx], [rollout.completion_ids[i] for i in idx]) for idx in batches]
        fixed = [self._before_update(p, comp, [rollout.logprobs[i] for i in idx] if use_is else None)
                 for (p, comp), idx in zip(micro, batches)]
        loss_kw = dict(epsilon=c.epsilon, epsilon_high=c.epsilon_high, beta=c.beta, num_sequences=num_seqs,
                       num_tokens=num_tokens, max_completion_length=c.max_completion_length)
        # the fused loss pass (token-level losses; "auto": where it can pay, logprobs.pick_kernel
        # then decides per call by free memory)
        fused = c.loss_type in TokenLoss.TYPES and fused_may_pay(c.loss_kernel, self.model, self.device)
        sums: dict[str, float] = {}
        count = 0
        self.model.train()
        for _ in range(c.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            for b, (idx, (p, comp)) in enumerate(zip(batches, micro)):
                kept = torch.tensor([keep[i] for i in idx], dtype=torch.float32, device=self.device)[:, None]
                with self.parallel.accumulate(self.policy, last=b == len(batches) - 1):
                    loss, m = self._loss(p, comp, fixed[b], adv[idx].to(self.device), kept, fused, loss_kw)
                    self.parallel.backward(loss)
                m["loss"] = float(loss.detach())
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + (v if k == "loss" else v * len(idx) / n)
            params = [p for p in self.policy.parameters() if p.requires_grad]
            max_norm = self.config.optim.max_grad_norm or float("inf")
            sums["grad_norm"] = self.parallel.clip_grad_norm(params, max_norm)
            self.optimizer.step()
            # free the gradients now, not at the next step: the next rollout gets that memory
            self.optimizer.zero_grad(set_to_none=True)
            count += 1
        self.scheduler.step()
        out = {k: v / count for k, v in sums.items()}
        if use_is:  # how far the sampler is from the trainer (TRL's metric names); once per step
            out.update(sampling_metrics(fixed, r.vllm_importance_sampling_mode))
        # ranks' loss shares add up; grad_norm is global already; min/max over ranks; the rest
        # are per-rank means of equal-sized shares
        return self.parallel.reduce_metrics(out, sums=("loss",), same=("grad_norm",))

    @torch.no_grad()
    def _before_update(self, prompts, comp, engine_logprobs=None) -> dict[str, torch.Tensor]:
        """One micro-batch's fixed inputs, computed before any update: the old log-probs
        (several iterations, or importance sampling), the reference log-probs (``beta > 0``),
        and, given the engine's own log-probs, those padded and the importance weights."""
        c, r = self.config.grpo, self.config.rollout
        pad = self.tokenizer.pad_token_id or 0
        entry = {}
        if c.num_iterations > 1 or engine_logprobs is not None:
            entry["old"], mask = sequence_logprobs(self.policy, prompts, comp, temperature=c.temperature, pad_id=pad)
        if c.beta > 0:
            entry["ref"] = reference_logprobs(self.model, self.ref_model, prompts, comp, temperature=c.temperature,
                                              pad_id=pad, policy=self.policy)
        if engine_logprobs is not None:
            eng = pad_rows(engine_logprobs, entry["old"].shape[1], entry["old"].device)
            entry["is"] = importance_weights(entry["old"], eng, mask, r.vllm_importance_sampling_mode,
                                             r.vllm_importance_sampling_cap)
            entry["eng"], entry["mask"] = eng, mask
        return entry

    def _loss(self, prompts, completions, fixed, adv, kept, fused, loss_kw) -> tuple[torch.Tensor, dict]:
        """One micro-batch's loss and metrics: its log-probs, then ``LOSSES[loss_type]``; or,
        ``fused``, the loss computed with its gradients in the log-prob pass (the metrics
        still from ``LOSSES``, on the same log-probs)."""
        c = self.config.grpo
        logprobs = partial(sequence_logprobs, self.policy, prompts, completions, temperature=c.temperature,
                           pad_id=self.tokenizer.pad_token_id or 0)
        loss_fn = LOSSES[c.loss_type]
        kw = dict(ref_logp=fixed.get("ref"), is_weight=fixed.get("is"), **loss_kw)
        if not fused:
            logp, mask = logprobs()
            return loss_fn(logp, fixed.get("old", logp.detach()), adv, mask * kept, **kw)
        select = completion_mask(completions, self.device)
        token_loss = TokenLoss.build(c.loss_type, adv, select * kept, select.bool(), old_logp=fixed.get("old"), **kw)
        loss, logp, mask = logprobs(token_loss=token_loss, kernel=c.loss_kernel)
        with torch.no_grad():
            return loss, loss_fn(logp, fixed.get("old", logp), adv, mask * kept, **kw)[1]

    def _metrics(self, rollout, rewards, results, loss_metrics, seconds) -> dict[str, Any]:
        """Metrics of the global batch: ``rewards`` are every rank's already; the rest is gathered."""
        grouped = rewards.view(-1, self.config.grpo.num_generations)
        mine = {"lengths": [len(x) for x in rollout.completion_ids], "truncated": list(rollout.truncated),
                "tokens_per_s": float(rollout.stats.get("tokens_per_s", 0.0)),
                "rollout_seconds": float(rollout.stats.get("seconds", 0.0)), "step_seconds": seconds,
                "parts": {name: [r.parts[name].value for r in results if r.parts[name].value is not None]
                          for name in self.rubric.part_names}}
        ranks = self.parallel.gather([mine])  # one collective for all of it (rank order)
        lengths = torch.tensor([n for r in ranks for n in r["lengths"]], dtype=torch.float32)
        truncated = [t for r in ranks for t in r["truncated"]]
        m: dict[str, Any] = {
            "reward/mean": float(rewards.mean()),
            "reward/std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            "frac_reward_zero_std": float((grouped.std(dim=1) < 1e-6).float().mean()),
            "completion_length/mean": float(lengths.mean()),
            "completion_length/max": float(lengths.max()),
            "truncated_share": sum(truncated) / len(truncated),
            "tokens_per_s": sum(r["tokens_per_s"] for r in ranks),
            "rollout_seconds": max(r["rollout_seconds"] for r in ranks),
            "step_seconds": max(r["step_seconds"] for r in ranks),
            "learning_rate": self.scheduler.get_last_lr()[0],
        }
        for name in self.rubric.part_names:
            vals = [v for r in ranks for v in r["parts"][name]]
            if vals:
                m[f"rewards/{name}/mean"] = float(np.mean(vals))
                m[f"rewards/{name}/std"] = float(np.std(vals))
        entropy = sampled_entropy(rollout.logprobs)
        if entropy is not None:
            m["entropy/sampled"] = entropy
        m.update(loss_metrics)
        for name in self.monitor.update(self.step, m):
            m[f"monitor/{name}"] = 1.0
        return m

    def _log_samples(self, rows, rollout, totals, results) -> None:
        k = self.config.run.log_completions
        if not k:
            return
        g = self.config.grpo.num_generations
        samples = []
        for j in range(min(k, len(rollout.texts))):
            i = (j * g + j) % len(rollout.texts)  # spread over prompts
            row = rows[i // g]
            samples.append({"prompt": row["prompt"][-1]["content"] if isinstance(row["prompt"], list) else row["prompt"],
                            "completion": rollout.texts[i], "reward": totals[i],
                            "parts": {n: s.value for n, s in results[i].parts.items()}})
        self.logger.completions(self.step, samples)

    # evaluation and checkpoints ----------------------------------------------------------
    def evaluate(self, rows: Sequence[dict] | None = None, k: int | None = None) -> dict[str, float]:
        """Held-out accuracy (mean correct), pass@k when k > 1, format compliance, reward."""
        options = {**eval_options(self.config), **({"k": k} if k else {})}
        options["timeout"] = self.parallel.reward_timeout(options["timeout"])
        mine = self.parallel.strided(self.eval_rows if rows is None else rows)  # every rank a share
        return self.parallel.weighted_mean(evaluate(self.engine, self.rubric, self.encode_prompt, mine, **options),
                                           len(mine))

    def save(self) -> Path:
        extra = {"sampler": self.sampler.state_dict(), "history": self.history}
        return ckpt.save_checkpoint(self.config.run.output_dir, self.step, model=self.model,
                                    optimizer=self.optimizer, scheduler=self.scheduler, extra=extra,
                                    parallel=self.parallel, wrapped=self.policy)

    def resume(self) -> bool:
        path = ckpt.latest_checkpoint(self.config.run.output_dir)
        if path is None:
            return False
        state = ckpt.load_checkpoint(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                     parallel=self.parallel, wrapped=self.policy)
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        self.history = list(state.get("history", []))
        self.engine.update_weights(self.parallel.refresh_rollout_model(self.model))
        return True

    # the loop --------------------------------------------------------------------------
    def train(self, *, resume: bool = False, evaluate: bool = True) -> dict[str, Any]:
        run = self.config.run
        start = time.perf_counter()
        resumed = self.resume() if resume else False
        if not resumed:
            self.logger.reset()
        before = self.evaluate() if evaluate and self.eval_rows and not resumed else None
        if before and self.parallel.is_main:
            print_eval("before", before)
        if self.config.sft.sft_steps and not resumed:
            self._warm_start(evaluate)
        max_steps = self.config.optim.max_steps
        bar = progress_bar(run.progress and self.parallel.is_main, max_steps, self.step)
        while self.step < max_steps:
            metrics = self.train_step()
            self.history.append({"step": self.step, "reward": metrics["reward/mean"]})
            if self.step % run.logging_steps == 0 or self.step == max_steps:
                self.logger.log(self.step, metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}", kl=f"{metrics.get('kl', 0):.4f}",
                                len=f"{metrics['completion_length/mean']:.0f}")
            if run.save_steps and self.step % run.save_steps == 0:
                self.save()
        if bar is not None:
            bar.close()
        after = self.evaluate() if evaluate and self.eval_rows else None
        if after and self.parallel.is_main:
            print_eval("after", after)
        return self._finish(before, after, time.perf_counter() - start)

    def _warm_start(self, evaluate: bool) -> None:
        c = self.config
        losses = sft_warm_start(self.model, self.tokenizer, self.engine, self.encode_prompt, self.train_rows, c.sft,
                                batch_size=c.optim.per_device_train_batch_size, answer_column=c.data.answer_column,
                                max_completion_length=c.grpo.max_completion_length)
        self.engine.update_weights(self.model)
        self.logger.log(0, {"sft/loss_first": losses[0], "sft/loss_last": losses[-1]} if losses else {})
        if self.parallel.is_main:
            print(f"sft warm start: {c.sft.sft_steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
        if evaluate and self.eval_rows:
            self.after_sft = self.evaluate()
            if self.parallel.is_main:
                print_eval("after sft", self.after_sft)

    def _finish(self, before, after, seconds) -> dict[str, Any]:
        c = self.config
        out = Path(c.run.output_dir)
        self.save()
        evals = {"before": before, "after_sft": self.after_sft, "after": after}
        summary = {"steps": self.step, "seconds": seconds, "engine": self.engine.name,
                   "world_size": self.parallel.world_size}
        gathered = self.parallel.full_state_dict(self.model)  # every rank takes part in the gather
        if self.parallel.is_main:  # one writer; the rollout model holds full weights on every rank
            full = self.parallel.rollout_model(self.model)
            save_model(full, self.tokenizer, out / ("adapter" if c.policy.use_peft else "model"), gathered)
            if c.run.save_merged and c.policy.use_peft:
                save_merged(full, self.tokenizer, out / "merged")
            self.logger.close()
            (out / "eval.json").write_text(json.dumps(evals, indent=2))
            plot_rewards(out, self.rubric.part_names)
            write_report(out, c, evals, summary)
        self.engine.close()
        self.parallel.close()
        return {**evals, **summary, "output_dir": str(out)}
