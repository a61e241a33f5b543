"""A colocated vLLM rollout engine that follows the policy after every optimizer step.

The engine lives in the trainer's process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` is set
before vLLM starts unless the caller set it), so weights travel as tensors, never through
files or sockets. At start the policy is written once as an HF folder (a temp dir, or
``<output_dir>/vllm_model`` when the config names an output dir) and vLLM loads it.

Weight sync, without restarting the engine:

- full model: every tensor goes through the worker's ``reload_weights`` path (HF names;
  vLLM fuses q/k/v and gate/up itself). ``model.load_weights`` is NOT used: on CPU vLLM
  prepacks linear weights and ``load_weights`` fails half way.
- peft LoRA, ``vllm_lora_sync="merged"`` (default, faster here; see bench/results/vllm.md):
  ``W + scale * B @ A`` is computed per target module from peft's own
  ``get_delta_weight`` without touching the policy, then pushed like a full model. All
  weights travel every time: a partial set leaves the fused modules it touches half loaded.
- peft LoRA, ``vllm_lora_sync="adapter"``: the adapter is saved to a fresh folder each
  step and served as a ``LoRARequest`` with a new id (vLLM caches adapters by id).

After every sync the prefix cache is reset: stale prefix KV silently changes outputs.

Log-probs: ``logprobs_mode="processed_logprobs"``, i.e. of the distribution actually
sampled from (after temperature, top-k, top-p), for the chosen tokens. With top-k/top-p
off that equals ``log_softmax(logits / temperature)``, which is what the trainer computes,
so ``rewardkit_trainer.losses.importance_weights`` compares like with like (with top-k or
top-p on, the engine's log-probs are of the renormalized truncated distribution: the one
really sampled from, a little above the trainer's).

Limits: one engine at a time per process; tensor parallelism is not wired; sleep mode needs CUDA
(on CPU it is refused by vLLM, so it is skipped with one log line); DoRA adapters and
``fan_in_fan_out`` layers are merged through peft's own delta, other peft tuners are
refused. On CPU, vLLM pins the process's torch threads to 1 and disables
``torch.set_num_threads``; the engine puts both back after start so training is not slowed,
and drops to one thread only while it samples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from rewardkit.errors import invalid_argument

from ..config import RolloutConfig
from ..models import export_hf_folder, hf_weights, is_peft, unwrap
from .base import Rollout, RolloutEngine, SamplingParams, eos_token_ids

__all__ = ["VLLMEngine", "hf_weights"]

log = logging.getLogger(__name__)

LORA_SYNC_MODES = ("merged", "adapter")
_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM's max_lora_rank accepts


# ----------------------------------------------------------------------------- weights


def _lora_rank(model: Any) -> int:
    ranks = [int(cfg.r) for cfg in model.peft_config.values()]
    ranks += [int(r) for cfg in model.peft_config.values() for r in (getattr(cfg, "rank_pattern", None) or {}).values()]
    top = max(ranks)
    for supported in _LORA_RANKS:
        if top <= supported:
            return supported
    raise invalid_argument("r", top, f"must be <= {_LORA_RANKS[-1]} (vLLM's largest max_lora_rank)")


# ----------------------------------------------------------------------------- engine


class VLLMEngine(RolloutEngine):
    """Sample rollouts with a colocated ``vllm.LLM`` built from the policy's weights.

    ``rollout`` is the config's typed rollout section (``RolloutConfig``:
    ``vllm_gpu_memory_utilization``, ``vllm_enable_sleep_mode``, ``vllm_sleep_level``,
    ``vllm_lora_sync``); ``seed``, ``output_dir`` (scratch for exported weights) and
    ``max_model_len`` (prompt + completion tokens) come as arguments. A whole
    ``GRPOConfig``, or any object with the same flat attribute names, is accepted in place
    of the section (:meth:`from_config` reads the rest from it). ``dtype`` overrides the
    engine's dtype (default: the policy's, so log-probs match). ``llm_kwargs`` are passed
    through to ``vllm.LLM``.
    """

    name = "vllm"
    #: ``params.group_seeds`` seeds each prompt's request on its own (see :meth:`generate`)
    supports_group_seeds = True

    @classmethod
    def from_config(cls, model: Any, tokenizer: Any, config: Any, **kwargs: Any) -> "VLLMEngine":
        """The engine for a whole config (a ``GRPOConfig`` or a flat namespace)."""
        return cls(model, tokenizer, config, **kwargs)

    def __init__(self, model: Any, tokenizer: Any, rollout: Any = None, *, seed: int | None = None,
                 output_dir: str | None = None, max_model_len: int | None = None, dtype: Any = None,
                 **llm_kwargs: Any) -> None:
        if rollout is not None and not isinstance(rollout, RolloutConfig):  # a whole, flat config
            flat = rollout
            rollout = RolloutConfig(**{f.name: getattr(flat, f.name) for f in dataclasses.fields(RolloutConfig)
                                       if hasattr(flat, f.name)})  # fmt: skip
            seed = getattr(flat, "seed", None) if seed is None else seed
            output_dir = getattr(flat, "output_dir", None) if output_dir is None else output_dir
            max_model_len = max_model_len or _wanted_len(flat)
        rollout = rollout if rollout is not None else RolloutConfig()
        lora_sync, sleep_level = rollout.vllm_lora_sync, rollout.vllm_sleep_level
        self.tokenizer = tokenizer
        self.is_peft = is_peft(model)
        if self.is_peft:
            kinds = sorted({str(getattr(c.peft_type, "value", c.peft_type)) for c in model.peft_config.values()})
            if kinds != ["LORA"]:
                raise invalid_argument("peft_type", kinds, "must be LoRA (the only adapter the engine can merge or serve)")
        self.lora_sync = lora_sync if self.is_peft else "full"
        self.sleep_level = sleep_level
        self.seed = seed
        self.eos_ids = eos_token_ids(tokenizer, model)
        self.sync_seconds: list[float] = []  # one entry per update_weights call
        self.ignore_eos = False  # benchmarks set it for fixed-length rollouts
        self._calls = itertools.count()
        self._lora_ids = itertools.count(1)
        self._lora_request: Any = None
        self._asleep = False
        self._sleeping: set[str] = set()
        self.cuda = cuda = next(model.parameters()).device.type == "cuda"
        self.sleep_enabled = bool(rollout.vllm_enable_sleep_mode) and cuda
        if rollout.vllm_enable_sleep_mode and not cuda:
            log.warning("vLLM sleep mode needs CUDA; running without it on %s", next(model.parameters()).device)

        # scratch either way (the exported weights, adapters): close() removes it
        if output_dir:
            self._root = Path(output_dir) / "vllm_model"
        else:
            self._root = Path(tempfile.mkdtemp(prefix="rewardkit-vllm-"))
        self.llm = None
        try:
            export_hf_folder(model, tokenizer, self._root / "base", merged=self.lora_sync != "adapter")
            self.llm = self._build_llm(model, rollout, max_model_len, dtype, cuda, llm_kwargs)
            if self.lora_sync == "adapter":
                self._save_adapter(model)
        except BaseException:
            self.close()  # leave no exported weights behind
            raise

    def _build_llm(self, model: Any, rollout: RolloutConfig, max_model_len: int | None, dtype: Any, cuda: bool,
                   extra: dict) -> Any:
        # colocated: in-process engine so that weight sync passes tensors by reference
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if not cuda:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        threads, set_threads = torch.get_num_threads(), torch.set_num_threads
        import vllm

        base = unwrap(model)
        self.max_model_len = int(extra.get("max_model_len") or _max_model_len(base, max_model_len))
        self.vocab_size = int(base.config.vocab_size)
        kwargs: dict[str, Any] = dict(
            model=str(self._root / "base"),
            dtype=dtype if dtype is not None else next(model.parameters()).dtype,
            seed=int(self.seed or 0),
            max_model_len=self.max_model_len,
            enforce_eager=not cuda,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
        )
        if not cuda:
            # A chunked prefill makes vLLM rewind each seeded request's generator offset, which
            # CPU generators do not support ("CPU Generator does not use offset"): any batch
            # whose prompts exceed max_num_batched_tokens crashed. Whole prefills only.
            kwargs["enable_chunked_prefill"] = False
        if cuda:
            kwargs["gpu_memory_utilization"] = float(rollout.vllm_gpu_memory_utilization)
            kwargs["enable_sleep_mode"] = self.sleep_enabled
        if self.lora_sync == "adapter":
            kwargs.update(enable_lora=True, max_lora_rank=_lora_rank(model), max_loras=1)
        kwargs.update(extra)
        try:
            return vllm.LLM(**kwargs)
        finally:
            # vLLM-CPU pins torch to 1 thread and disables set_num_threads process-wide;
            # the trainer shares this process and needs its threads back
            torch.set_num_threads = set_threads
            torch.set_num_threads(threads)

    # -- sampling ------------------------------------------------------------------

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> Rollout:
        from vllm import SamplingParams as VSamplingParams

        if not prompt_ids:
            return Rollout(prompt_ids=[], completion_ids=[], texts=[], truncated=[], logprobs=[])
        self._check_prompts(prompt_ids, params.max_completion_length)
        if self._asleep:
            self.wake_up()
        start = time.perf_counter()
        call = next(self._calls)
        group = params.num_generations
        # vLLM refuses n > 1 when greedy; greedy samples are identical, so sample once and copy
        greedy = params.temperature == 0.0
        requests, sampling = [], []
        if params.group_seeds is not None and len(params.group_seeds) != len(prompt_ids):
            raise ValueError(f"group_seeds has {len(params.group_seeds)} seeds for {len(prompt_ids)} prompts")
        for i, ids in enumerate(prompt_ids):
            seed = _request_seed(params, call, len(prompt_ids), i, group)
            sampling.append(VSamplingParams(
                n=1 if greedy else group,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k if params.top_k > 0 else -1,
                max_tokens=params.max_completion_length,
                seed=seed,
                logprobs=0,
                detokenize=False,
                stop_token_ids=[] if self.ignore_eos else self.eos_ids,
                ignore_eos=self.ignore_eos,
            ))
            requests.append({"prompt_token_ids": [int(t) for t in ids]})
        with self._serving_threads():
            outputs = self.llm.generate(requests, sampling, use_tqdm=False, lora_request=self._lora_request)
        completion_ids, logprobs, truncated = [], [], []
        for out in outputs:
            samples = sorted(out.outputs, key=lambda s: s.index)
            for sample in samples * group if greedy else samples:
                ids = list(sample.token_ids)
                completion_ids.append(ids)
                logprobs.append([step[t].logprob for step, t in zip(sample.logprobs or [], ids)])
                truncated.append(sample.finish_reason == "length")
        texts = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        seconds = time.perf_counter() - start
        tokens = sum(map(len, completion_ids))
        return Rollout(
            prompt_ids=[list(map(int, p)) for p in prompt_ids],
            completion_ids=completion_ids,
            texts=texts,
            truncated=truncated,
            logprobs=logprobs,
            stats={"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / max(seconds, 1e-9)},
        )

    @contextlib.contextmanager
    def _serving_threads(self) -> Iterator[None]:
        """On CPU, sample with one torch thread (vLLM's own choice), train with all of them.

        Measured on 2 shared cores: 2.5-6x more tokens/s with 1 thread than with 2 (OpenMP
        spin-waits between vLLM's many small ops). An explicit OMP_NUM_THREADS is respected.
        """
        if self.cuda or "OMP_NUM_THREADS" in os.environ:
            yield
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _check_prompts(self, prompt_ids: Sequence[Sequence[int]], max_tokens: int) -> None:
        # fail before vLLM does: its errors come from deep in the renderer, one per request
        for row, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {row} is empty")
            if len(ids) + max_tokens > self.max_model_len:
                raise ValueError(f"prompt {row} has {len(ids)} tokens; with max_completion_length={max_tokens} "
                                 f"it exceeds the engine's context of {self.max_model_len} tokens "
                                 "(raise max_prompt_length or truncate prompts)")
            bad = [t for t in ids if not 0 <= int(t) < self.vocab_size]
            if bad:
                raise ValueError(f"prompt {row} has token ids outside [0, {self.vocab_size}): {bad[:5]}")

    # -- weight sync ---------------------------------------------------------------

    def update_weights(self, model: Any) -> None:
        start = time.perf_counter()
        dropped = self._asleep and self.sleep_level == 2  # level 2 discarded the weights
        if self._asleep and "weights" in self._sleeping:
            self.llm.wake_up(tags=["weights"])  # weights must be resident to be overwritten
            self._sleeping.discard("weights")
        if self.lora_sync == "adapter":
            if dropped:
                self._worker().reload_weights()  # the base weights, from the exported folder
            self._save_adapter(model)
        else:
            # a generator: merged LoRA weights are made one at a time, never all at once
            self._worker().reload_weights(weights_iterator=hf_weights(model))
        self.llm.reset_prefix_cache()
        self.sync_seconds.append(time.perf_counter() - start)

    def _worker(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = getattr(executor, "driver_worker", None)
        if worker is None:
            raise RuntimeError(
                "weight sync needs the in-process engine: set VLLM_ENABLE_V1_MULTIPROCESSING=0 "
                "before vLLM is first imported (VLLMEngine does this unless it was set to 1)")
        return worker

    def _save_adapter(self, model: Any) -> None:
        from vllm.lora.request import LoRARequest

        lora_id = next(self._lora_ids)
        path = self._root / f"adapter-{lora_id}"
        # no embedding layers: vLLM serves none from an adapter, and peft would warn looking for them
        model.save_pretrained(str(path), save_embedding_layers=False)
        previous = self._lora_request
        self._lora_request = LoRARequest(f"policy-{lora_id}", lora_id, str(path))
        if previous is not None:
            self.llm.llm_engine.remove_lora(previous.lora_int_id)
            shutil.rmtree(previous.lora_path, ignore_errors=True)

    # -- memory --------------------------------------------------------------------

    def sleep(self) -> None:
        """Free the engine's GPU memory for training (level 1 offloads weights, 2 drops them).

        Call :meth:`update_weights` before the next rollout after level 2: the weights are
        gone. :meth:`generate` wakes the engine itself if needed.
        """
        if self.sleep_enabled and not self._asleep:
            self.llm.sleep(level=self.sleep_level)
            self._asleep = True
            self._sleeping = {"weights", "kv_cache"}

    def wake_up(self) -> None:
        if self._asleep:
            self.llm.wake_up(tags=sorted(self._sleeping) or None)
            self._asleep = False
            self._sleeping = set()

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            shutdown = getattr(llm.llm_engine, "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
        shutil.rmtree(self._root, ignore_errors=True)


def _request_seed(params: SamplingParams, call: int, prompts: int, index: int, group: int) -> int | None:
    """vLLM's seed for one prompt's request; its G samples use that seed and the next G-1.

    With ``group_seeds`` (the distributed loop: one seed per prompt group) the seed depends
    on the group's seed alone, so a group samples the same completions whichever batch,
    call or rank draws it; consecutive group seeds are spaced G apart so that no two groups
    share a sample's seed. Otherwise each request gets a distinct seed from the call's seed,
    the call counter and its position (duplicate prompts in a batch must not share samples).
    """
    if params.group_seeds is not None:
        return (int(params.group_seeds[index]) * group) % (2**31)
    if params.seed is None:
        return None
    return (params.seed * 1_000_003 + (call * prompts + index) * group) % (2**31)


def _wanted_len(config: Any) -> int | None:
    """Prompt + the longest completion a flat config asks for (None if it does not say)."""
    prompt = getattr(config, "max_prompt_length", None)
    completion = max(int(getattr(config, "max_completion_length", 0) or 0),
                     int(getattr(config, "eval_max_completion_length", 0) or 0))
    return int(prompt) + completion if prompt and completion else None


def _max_model_len(model: Any, wanted: int | None) -> int:
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
    if wanted:
        return min(wanted, limit) if limit else wanted
    return limit or 4096
