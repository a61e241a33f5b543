"""The GRPO loop, top to bottom: sample G completions per prompt, score them with a
rubric, turn rewards into group-relative advantages, and take a clipped policy step.

What it leaves out on purpose (compared with TRL's GRPOTrainer): multi-GPU/DeepSpeed,
liger/unsloth patches, entropy masking, reward models. Per-token log-probs come from the
decoder's last hidden state and the lm_head weight through
``rewardkit_trainer.kernels.token_logprobs``, so [tokens x vocab] logits never exist.
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import GRPOConfig, resolve_rollout_engine
from .data import PromptSampler, load_rows, split
from .losses import LOSSES, group_advantages, importance_weights
from .models import decoder_and_head, load_model, reference_context, save_merged, save_model
from .report import RunLogger, plot_rewards, write_report
from .rewards import build_rubric, correct_part, format_part, score_rollout
from .rollout.base import RolloutEngine, SamplingParams

__all__ = ["GRPOTrainer", "train", "sequence_logprobs"]


def sequence_logprobs(model: Any, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                      *, temperature: float = 1.0, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [B, T] of each completion token given its prompt, and the mask [B, T]."""
    from .kernels import token_logprobs

    device = next(model.parameters()).device
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(s) for s in seqs)
    t_max = max(1, max(len(c) for c in completion_ids))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), t_max), dtype=torch.bool)
    for i, (s, p, c) in enumerate(zip(seqs, prompt_ids, completion_ids)):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[i, : len(s)] = 1
        if c:  # position t predicts token t+1: completion token j sits at len(p)+j
            targets[i, len(p) - 1 : len(s) - 1] = torch.tensor(list(c), dtype=torch.long)
            mask[i, : len(c)] = True
    decoder, weight = decoder_and_head(model)
    hidden = decoder(input_ids=ids.to(device), attention_mask=attn.to(device)).last_hidden_state
    flat_t = targets.reshape(-1).to(device)
    keep = flat_t >= 0
    h = hidden.reshape(-1, hidden.shape[-1])[keep]
    lp = token_logprobs(h.to(weight.dtype), weight, flat_t[keep], temperature=temperature)
    out = torch.zeros(mask.shape, dtype=torch.float32, device=device)
    out = out.masked_scatter(mask.to(device), lp)
    return out, mask.to(device).float()


class GRPOTrainer:
    """Holds the policy, optimizer, engine and rubric; ``train()`` runs the loop."""

    def __init__(self, config: GRPOConfig, *, model: Any = None, tokenizer: Any = None, rubric: Any = None,
                 train_rows: list[dict] | None = None, eval_rows: list[dict] | None = None,
                 engine: RolloutEngine | None = None) -> None:
        self.config = c = config
        _seed_everything(c.seed, c.deterministic, c.num_threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if model is None:
            model, tokenizer = load_model(c, device=self.device)
        self.model, self.tokenizer = model, tokenizer
        self.rubric = build_rubric(rubric if rubric is not None else c.reward, c.reward_weights)
        if train_rows is None:
            train_rows, eval_rows = split(load_rows(c), c.eval_size)
        self.train_rows, self.eval_rows = train_rows, eval_rows or []
        self.sampler = PromptSampler(len(self.train_rows), c.seed)
        self.ref_model = None
        if c.beta > 0 and reference_context(model) is None:  # full fine-tuning needs a frozen copy
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = _optimizer(c, params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _schedule(c))
        self.engine = engine or _engine(c, model, tokenizer)
        self.step = 0
        self.logger = RunLogger(c.output_dir, c.report_to)
        self.history: list[dict[str, Any]] = []
        self.after_sft: dict[str, float] | None = None

    # data ----------------------------------------------------------------------------
    def encode_prompt(self, messages: Any) -> list[int]:
        if isinstance(messages, str):
            ids = self.tokenizer(messages)["input_ids"]
        else:
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return list(ids)[-self.config.max_prompt_length :]  # keep the end: the question

    # one step --------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        c = self.config
        t0 = time.perf_counter()
        rows = [self.train_rows[i] for i in self.sampler.take(c.prompts_per_step)]
        prompt_ids = [self.encode_prompt(r["prompt"]) for r in rows]
        params = SamplingParams(num_generations=c.num_generations, max_completion_length=c.max_completion_length,
                                temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                                seed=c.seed * 100_003 + self.step)
        self.engine.wake_up()
        rollout = self.engine.generate(prompt_ids, params)
        self.engine.sleep()
        g = c.num_generations
        grouped_rows = [r for r in rows for _ in range(g)]
        totals, results = score_rollout(self.rubric, rollout.texts, [r["prompt"] for r in grouped_rows],
                                        grouped_rows, workers=c.reward_workers, timeout=c.reward_timeout)
        rewards = torch.tensor(totals, dtype=torch.float32)
        adv = group_advantages(rewards, g, c.scale_rewards)
        prompts_rep = [p for p in prompt_ids for _ in range(g)]
        loss_metrics = self._optimize(prompts_rep, rollout, adv)
        self.engine.update_weights(self.model)
        self.step += 1
        metrics = self._metrics(rollout, rewards, results, loss_metrics, time.perf_counter() - t0)
        self._log_samples(rows, rollout, totals, results)
        return metrics

    def _optimize(self, prompts_rep, rollout, adv) -> dict[str, float]:
        c = self.config
        n = len(rollout.completion_ids)
        keep = [not (c.mask_truncated_completions and t) for t in rollout.truncated]
        num_tokens = sum(len(ids) for ids, k in zip(rollout.completion_ids, keep) if k) or 1
        num_seqs = sum(keep) or 1
        mb = c.per_device_train_batch_size
        batches = [list(range(i, min(i + mb, n))) for i in range(0, n, mb)]
        use_is = (c.vllm_importance_sampling_correction and rollout.logprobs is not None
                  and self.engine.name != "hf")  # the hf engine samples from these very weights
        need_old = c.num_iterations > 1 or use_is
        pad = self.tokenizer.pad_token_id or 0
        fixed = {}  # per micro-batch: old/ref log-probs, IS weights (computed before any update)
        for b, idx in enumerate(batches):
            p = [prompts_rep[i] for i in idx]
            comp = [rollout.completion_ids[i] for i in idx]
            entry = {}
            with torch.no_grad():
                if need_old:
                    entry["old"], mask = sequence_logprobs(self.model, p, comp, temperature=c.temperature, pad_id=pad)
                if c.beta > 0:
                    entry["ref"] = self._ref_logprobs(p, comp, pad)
            if use_is:  # need_old is set, so "old" and its mask exist
                eng = _pad([rollout.logprobs[i] for i in idx], entry["old"].shape[1], entry["old"].device)
                entry["is"] = importance_weights(entry["old"], eng, mask, c.vllm_importance_sampling_mode,
                                                 c.vllm_importance_sampling_cap)
                entry["eng"], entry["mask"] = eng, mask
            fixed[b] = entry
        loss_fn = LOSSES[c.loss_type]
        sums: dict[str, float] = {}
        count = 0
        self.model.train()
        for _ in range(c.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            for b, idx in enumerate(batches):
                p = [prompts_rep[i] for i in idx]
                comp = [rollout.completion_ids[i] for i in idx]
                logp, mask = sequence_logprobs(self.model, p, comp, temperature=c.temperature, pad_id=pad)
                mask = mask * torch.tensor([keep[i] for i in idx], dtype=mask.dtype, device=mask.device)[:, None]
                old = fixed[b].get("old", logp.detach())
                loss, m = loss_fn(logp, old, adv[idx].to(logp.device), mask, epsilon=c.epsilon,
                                  epsilon_high=c.epsilon_high, beta=c.beta, ref_logp=fixed[b].get("ref"),
                                  is_weight=fixed[b].get("is"), num_sequences=num_seqs, num_tokens=num_tokens,
                                  max_completion_length=c.max_completion_length)
                loss.backward()
                m["loss"] = float(loss.detach())
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + (v if k == "loss" else v * len(idx) / n)
            params = [p for p in self.model.parameters() if p.requires_grad]
            sums["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm or float("inf")))
            self.optimizer.step()
            # free the gradients now, not at the next step: the next rollout gets that memory
            self.optimizer.zero_grad(set_to_none=True)
            count += 1
        self.scheduler.step()
        out = {k: v / count for k, v in sums.items()}
        if use_is:  # how far the sampler is from the trainer (TRL's metric names); once per step
            out.update(_sampling_metrics(fixed, c.vllm_importance_sampling_mode))
        return out

    def _ref_logprobs(self, p, comp, pad):
        c = self.config
        if self.ref_model is not None:
            return sequence_logprobs(self.ref_model, p, comp, temperature=c.temperature, pad_id=pad)[0]
        with reference_context(self.model):
            return sequence_logprobs(self.model, p, comp, temperature=c.temperature, pad_id=pad)[0]

    def _metrics(self, rollout, rewards, results, loss_metrics, seconds) -> dict[str, Any]:
        g = self.config.num_generations
        grouped = rewards.view(-1, g)
        lengths = torch.tensor([len(x) for x in rollout.completion_ids], dtype=torch.float32)
        m: dict[str, Any] = {
            "reward/mean": float(rewards.mean()),
            "reward/std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            "frac_reward_zero_std": float((grouped.std(dim=1) < 1e-6).float().mean()),
            "completion_length/mean": float(lengths.mean()),
            "completion_length/max": float(lengths.max()),
            "truncated_share": sum(rollout.truncated) / len(rollout.truncated),
            "tokens_per_s": float(rollout.stats.get("tokens_per_s", 0.0)),
            "rollout_seconds": float(rollout.stats.get("seconds", 0.0)),
            "step_seconds": seconds,
            "learning_rate": self.scheduler.get_last_lr()[0],
        }
        for name in self.rubric.part_names:
            vals = [r.parts[name].value for r in results if r.parts[name].value is not None]
            if vals:
                m[f"rewards/{name}/mean"] = float(np.mean(vals))
                m[f"rewards/{name}/std"] = float(np.std(vals))
        m.update(loss_metrics)
        return m

    def _log_samples(self, rows, rollout, totals, results) -> None:
        k = self.config.log_completions
        if not k:
            return
        g = self.config.num_generations
        samples = []
        for j in range(min(k, len(rollout.texts))):
            i = (j * g + j) % len(rollout.texts)  # spread over prompts
            row = rows[i // g]
            samples.append({"prompt": row["prompt"][-1]["content"] if isinstance(row["prompt"], list) else row["prompt"],
                            "completion": rollout.texts[i], "reward": totals[i],
                            "parts": {n: s.value for n, s in results[i].parts.items()}})
        self.logger.completions(self.step, samples)

    # evaluation ------------------------------------------------------------------------
    def evaluate(self, rows: Sequence[dict] | None = None, k: int | None = None) -> dict[str, float]:
        """Held-out accuracy (mean correct), pass@k when k > 1, format compliance, reward."""
        from .evaluate import evaluate

        return evaluate(self, self.eval_rows if rows is None else rows, k or self.config.eval_k)

    # checkpoints -----------------------------------------------------------------------
    def save(self) -> Path:
        extra = {"sampler": self.sampler.state_dict(), "history": self.history}
        return ckpt.save_checkpoint(self.config.output_dir, self.step, model=self.model, optimizer=self.optimizer,
                                    scheduler=self.scheduler, extra=extra)

    def resume(self) -> bool:
        path = ckpt.latest_checkpoint(self.config.output_dir)
        if path is None:
            return False
        state = ckpt.load_checkpoint(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        self.history = list(state.get("history", []))
        self.engine.update_weights(self.model)
        return True

    # the loop --------------------------------------------------------------------------
    def train(self, *, resume: bool = False, evaluate: bool = True) -> dict[str, Any]:
        c = self.config
        start = time.perf_counter()
        resumed = self.resume() if resume else False
        if not resumed:
            self.logger.reset()
        before = self.evaluate() if evaluate and self.eval_rows and not resumed else None
        if before:
            _print_eval("before", before)
        if c.sft_steps and not resumed:
            from .sft import sft_warm_start

            losses = sft_warm_start(self)
            print(f"sft warm start: {c.sft_steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
            if evaluate and self.eval_rows:
                self.after_sft = self.evaluate()
                _print_eval("after sft", self.after_sft)
        bar = _progress(c.progress, c.max_steps, self.step)
        while self.step < c.max_steps:
            metrics = self.train_step()
            self.history.append({"step": self.step, "reward": metrics["reward/mean"]})
            if self.step % c.logging_steps == 0 or self.step == c.max_steps:
                self.logger.log(self.step, metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}", kl=f"{metrics.get('kl', 0):.4f}",
                                len=f"{metrics['completion_length/mean']:.0f}")
            if c.save_steps and self.step % c.save_steps == 0:
                self.save()
        if bar is not None:
            bar.close()
        after = self.evaluate() if evaluate and self.eval_rows else None
        if after:
            _print_eval("after", after)
        return self._finish(before, after, time.perf_counter() - start)

    def _finish(self, before, after, seconds) -> dict[str, Any]:
        c = self.config
        out = Path(c.output_dir)
        self.save()
        save_model(self.model, self.tokenizer, out / ("adapter" if c.use_peft else "model"))
        if c.save_merged and c.use_peft:
            save_merged(self.model, self.tokenizer, out / "merged")
        self.logger.close()
        import json

        evals = {"before": before, "after_sft": self.after_sft, "after": after}
        (out / "eval.json").write_text(json.dumps(evals, indent=2))
        summary = {"steps": self.step, "seconds": seconds, "engine": self.engine.name}
        plot_rewards(out, self.rubric.part_names)
        write_report(out, c, evals, summary)
        self.engine.close()
        return {**evals, **summary, "output_dir": str(out)}


# helpers ---------------------------------------------------------------------------------
def _sampling_metrics(fixed: dict[int, dict[str, torch.Tensor]], mode: str) -> dict[str, float]:
    """|trainer - engine| token log-prob gap and the applied IS weights, over one step's batches.

    Weights are taken per real token in ``token_*`` modes and per sequence in ``sequence_*``
    modes (the zeroed ones of ``*_mask`` included, and counted in ``masked_share``).
    """
    gaps, weights = [], []
    for e in fixed.values():
        mask = e["mask"].bool()
        gap = (e["old"] - e["eng"]).abs()[mask]
        gaps.append(gap[~torch.isnan(gap)])
        if mode.startswith("sequence"):
            rows = mask.any(-1)
            weights.append(e["is"][:, 0][rows])  # broadcast along T: any real token holds it
        else:
            weights.append(e["is"][mask])
    gap, w = torch.cat(gaps), torch.cat(weights)
    if not w.numel():
        return {}
    return {
        "sampling/sampling_logp_difference/mean": float(gap.mean()) if gap.numel() else 0.0,
        "sampling/sampling_logp_difference/max": float(gap.max()) if gap.numel() else 0.0,
        "sampling/importance_sampling_ratio/min": float(w.min()),
        "sampling/importance_sampling_ratio/mean": float(w.mean()),
        "sampling/importance_sampling_ratio/max": float(w.max()),
        "sampling/importance_sampling_masked_share": float((w == 0).float().mean()),
    }


def _pad(rows: list[list[float]], width: int, device) -> torch.Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r[:width], dtype=torch.float32)
    return out.to(device)


def _seed_everything(seed: int, deterministic: bool, threads: int | None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _optimizer(c: GRPOConfig, params):
    if c.optimizer == "adamw_8bit":
        try:
            import bitsandbytes as bnb
        except Exception as exc:
            from rewardkit.errors import invalid

            raise invalid("optimizer", c.optimizer, "needs bitsandbytes installed") from exc
        return bnb.optim.AdamW8bit(params, lr=c.learning_rate, weight_decay=c.weight_decay)
    params = list(params)
    # fused AdamW (TRL's default on recent torch) needs less temporary memory on CUDA
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.AdamW(params, lr=c.learning_rate, weight_decay=c.weight_decay, fused=fused or None)


def _schedule(c: GRPOConfig):
    def factor(step: int) -> float:
        if c.warmup_steps and step < c.warmup_steps:
            return (step + 1) / c.warmup_steps
        if c.lr_scheduler_type == "constant" or c.max_steps <= c.warmup_steps:
            return 1.0
        frac = (step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps)
        if c.lr_scheduler_type == "linear":
            return max(0.0, 1.0 - frac)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    return factor


def _engine(c: GRPOConfig, model, tokenizer) -> RolloutEngine:
    if resolve_rollout_engine(c) == "vllm":
        from .rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model, tokenizer, c)
    from .rollout.hf import HFEngine

    if next(model.parameters()).is_cuda:
        # static KV cache + CUDA-graph decode (bench/results/grpo_speed.md); it refuses
        # architectures it cannot serve (sliding window, soft-capping) at construction
        from rewardkit.errors import InvalidArgument

        from .rollout.static import StaticCacheEngine

        try:
            return StaticCacheEngine(model, tokenizer)
        except InvalidArgument as exc:
            print(f"rollout: built-in static-cache engine unavailable ({exc}); using HFEngine", flush=True)
    return HFEngine(model, tokenizer)


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc="grpo", dynamic_ncols=True)


def _print_eval(when: str, m: dict[str, float]) -> None:
    parts = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if isinstance(v, float))
    print(f"held-out ({when}): {parts}", flush=True)


def train(config: GRPOConfig, *, resume: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run one job as the config says (backend "rewardkit" or "trl")."""
    if config.backend == "trl":
        from .trl_backend import train_with_trl

        return train_with_trl(config, **kwargs)
    return GRPOTrainer(config, **kwargs).train(resume=resume)
