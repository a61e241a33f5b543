"""Data-parallel GRPO on torch.distributed: the process group, sharding, gradient and
metric reduction, and which rank writes. The loop in ``trainer.py`` stays the same loop;
it asks this module's :class:`Parallel` for every place where ranks differ.

Launch with torchrun (``torchrun --nproc-per-node N -m rewardkit_trainer CONFIG``);
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment switch the distributed path on,
also at ``--nproc-per-node 1``. Without them (``python -m rewardkit_trainer``) nothing here
runs a collective and the one-process loop is exactly today's (same RNG stream, same math).

What is sharded (shape copied from torchtitan's ``parallelize``):

- Full fine-tuning: FSDP2, ``fully_shard`` on every decoder layer, then on the root (a
  :class:`LogprobHead` around the policy, so the log-prob kernel runs inside the root's
  forward and its ``lm_head`` gradient is reduce-scattered like any other). Parameters,
  gradients and AdamW state are sharded; ``mixed_precision="bf16"`` computes in bf16 with
  fp32 master weights and fp32 gradient reduction.
- LoRA: the base is replicated (the rollout engine decodes from it anyway) and the policy
  runs under DDP, which all-reduces only the adapter gradients (``init_sync=False``: every
  rank built the same weights from the same seed; no 8B broadcast at start).

Rollouts: each rank samples its share of the step's prompts with its own engine from its
own full-weight copy, so decoding runs no collectives. For LoRA that copy is the policy
itself (no extra memory); for full fine-tuning it is one extra full copy of the weights in
the policy dtype per rank (16 GiB for an 8B model in bf16), refreshed after each optimizer
step one parameter at a time (``refresh_rollout_model``: peak extra memory is the largest
single tensor, not the model). The vLLM engine is that copy itself: built before sharding,
it reloads the gathered shards one tensor at a time (``models.hf_weights``).

LoRA runs under DDP rather than FSDP2 by measurement (bench/results/distributed.md): the
engine needs the whole base on every rank anyway, so FSDP2 was slower and heavier.

Limits: data parallel only (no tensor/pipeline/context parallel); the SFT warm start and
``beta > 0`` with full fine-tuning keep a replicated model (warm start refused, reference
copy replicated); QLoRA under torchrun is refused (bitsandbytes' 4-bit storage is uint8,
which FSDP2 cannot shard; see docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist

from rewardkit.errors import invalid_argument

__all__ = ["Parallel", "LogprobHead", "launched", "restarted", "group_seed", "DEFAULT_REWARD_TIMEOUT"]

#: seconds a reward may take per completion when more than one rank runs (a hung reward
#: on one rank would otherwise hold every other rank in its next collective)
DEFAULT_REWARD_TIMEOUT = 60.0


def launched() -> bool:
    """True under torchrun (or any launcher that sets torch.distributed's env variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def restarted() -> bool:
    """True in a worker that torchrun restarted after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def group_seed(seed: int, step: int, index: int) -> int:
    """The sampling seed of one prompt group: a function of the run seed, the step and the
    prompt's position in the step's global batch, so it does not depend on ranks."""
    return ((seed * 1_000_003 + step) * 1_000_033 + index) % (2**63)


class LogprobHead(torch.nn.Module):
    """The policy's per-token log-probs as one module's forward, so FSDP2's root hooks and
    DDP's reducer see the whole computation (the kernel reads ``lm_head`` directly)."""

    is_logprob_head = True

    def __init__(self, policy: torch.nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, ids: torch.Tensor, attn: torch.Tensor, targets: torch.Tensor, temperature: float,
                token_loss: Any = None, kernel: str = "auto") -> Any:
        from .logprobs import hidden_logprobs

        # the fused loss hands lm_head's gradient over in autograd's backward: hooks see it as usual
        return hidden_logprobs(self.policy, ids, attn, targets, temperature, token_loss, kernel)


@dataclass
class Parallel:
    """Where this process sits (torchtitan keeps the same in ``ParallelDims``), and every
    operation that differs between one process and many. ``enabled`` is False on the
    one-process path, where each method is the identity or today's call."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False
    device: str = "cpu"
    fsdp: bool = False
    _rollout_copy: Any = None

    @classmethod
    def setup(cls, run: Any) -> "Parallel":
        """Join the process group when launched by torchrun (NCCL on CUDA, gloo on CPU,
        ``run.ddp_timeout`` seconds before a stuck collective fails the run)."""
        cuda = torch.cuda.is_available()
        if not launched():
            return cls(device="cuda" if cuda else "cpu")
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", 0))
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            timeout = datetime.timedelta(seconds=run.ddp_timeout)
            store, _, _ = next(dist.rendezvous("env://", timeout=timeout))
            # torchrun's agent store outlives a restart: without a per-attempt prefix the
            # restarted ranks read the dead ranks' gloo/NCCL addresses and fail to connect
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group("nccl" if cuda else "gloo", store=dist.PrefixStore(f"rewardkit/{attempt}/", store),
                                    rank=rank, world_size=world, timeout=timeout)
        return cls(rank=rank, world_size=world, local_rank=local, enabled=True,
                   device=f"cuda:{local}" if cuda else "cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # configuration checks ---------------------------------------------------------------
    def check(self, config: Any) -> None:
        """Refuse settings that cannot mean the same update on N ranks."""
        if not self.enabled:
            return
        p = config.optim.prompts_per_step
        if p % self.world_size:
            raise invalid_argument("prompts_per_step", p, f"must divide by the world size ({self.world_size}): it "
                                   "is the global number of prompts per step, split across ranks")
        if config.policy.load_in_4bit:
            raise invalid_argument("load_in_4bit", True, "is not supported under torchrun yet: bitsandbytes stores "
                                   "4-bit weights as uint8, which FSDP2 cannot shard (needs a float "
                                   "bnb_4bit_quant_storage); use LoRA in bf16")
        if config.sft.sft_steps and not config.policy.use_peft:
            raise invalid_argument("sft_steps", config.sft.sft_steps, "needs use_peft=True under torchrun (the "
                                   "warm start steps the unsharded model)")

    def reward_timeout(self, timeout: float | None) -> float | None:
        """With more than one rank a reward that never returns must not hang the run."""
        if timeout is None and self.world_size > 1:
            return DEFAULT_REWARD_TIMEOUT
        return timeout

    # sharding ---------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module, mixed_precision: str = "no", rollout_copy: bool = True) -> torch.nn.Module:
        """The module the loss runs through: ``model`` itself on one process; DDP over a
        :class:`LogprobHead` for LoRA; FSDP2 (per decoder layer, then the root) otherwise.
        ``rollout_copy=False``: the engine keeps its own weights (vLLM), so FSDP2 keeps no
        full copy for it; the refresh then streams gathered tensors into the engine."""
        if not self.enabled:
            return model
        from .models import is_peft, unwrap

        if is_peft(model):
            from torch.nn.parallel import DistributedDataParallel as DDP

            ddp = DDP(LogprobHead(model), device_ids=[self.local_rank] if self.device != "cpu" else None,
                      init_sync=False)
            ddp.is_logprob_head = True
            return ddp
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        self.fsdp = True
        if rollout_copy:
            rollout = copy.deepcopy(model).requires_grad_(False)  # decodes without collectives
            # with bf16 compute the sampler needs no fp32 weights: half the copy's memory
            self._rollout_copy = rollout.to(torch.bfloat16) if mixed_precision == "bf16" else rollout
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if mixed_precision == "bf16" else MixedPrecisionPolicy()
        for layer in unwrap(model).model.layers:
            fully_shard(layer, mp_policy=policy)
        head = LogprobHead(model)
        fully_shard(head, mp_policy=policy)
        return head

    def rollout_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The full-weight model the rollout engine decodes from."""
        return self._rollout_copy if self._rollout_copy is not None else model

    @torch.no_grad()
    def refresh_rollout_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Copy the sharded weights into the rollout copy one parameter at a time (an
        all-gather each), so the gather never holds the whole model twice. Without a copy
        (LoRA, one process, or an engine with its own weights) the model itself: the vLLM
        engine's sync reads its tensors one at a time and gathers each shard
        (``models.hf_weights``), every rank in the same order."""
        if self._rollout_copy is None:
            return model
        target = dict(self._rollout_copy.named_parameters())
        for name, param in model.named_parameters():
            full = param.full_tensor() if hasattr(param, "full_tensor") else param
            target[name].copy_(full)
            del full
        return self._rollout_copy

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
        """The whole model's weights for rank 0 to save, or None where ``model`` itself has
        them. Sharded without a rollout copy: gathered to rank 0's CPU, parameter by
        parameter (torch.distributed.checkpoint's full state dict; a collective: every
        rank calls it, other ranks get an empty dict)."""
        if not self.fsdp or self._rollout_copy is not None:
            return None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    # rollouts ---------------------------------------------------------------------------
    def generate(self, engine: Any, prompt_ids: Sequence[Sequence[int]], params: Any, seed: int, step: int,
                 offset: int) -> Any:
        """This rank's rollout. Distributed: one seed per prompt group (:func:`group_seed`
        of the prompt's index in the global batch), so a group's completions do not depend
        on the number of ranks. One process: today's single seeded batch."""
        if not self.enabled:
            return engine.generate(prompt_ids, params)
        from .rollout.base import generate_groups

        seeds = [group_seed(seed, step, offset + j) for j in range(len(prompt_ids))]
        return generate_groups(engine, prompt_ids, params, seeds)

    # gradients --------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        """DDP and FSDP2 average gradients over ranks; each rank's loss is already its share
        of the global loss, so scaling by the world size makes the reduction a sum."""
        if self.enabled:
            (loss * self.world_size).backward()
        else:
            loss.backward()

    @contextlib.contextmanager
    def accumulate(self, module: torch.nn.Module, last: bool) -> Iterator[None]:
        """Around one micro-batch's forward and backward: reduce gradients on the last."""
        if self.enabled and not last and hasattr(module, "no_sync"):
            with module.no_sync():
                yield
        else:
            yield

    def clip_grad_norm(self, params: Sequence[torch.nn.Parameter], max_norm: float) -> float:
        """Clip to ``max_norm`` over the global gradient; returns the norm before clipping."""
        if not self.enabled:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        grads = [p.grad for p in params if p.grad is not None]
        total = torch.nn.utils.get_total_norm(grads)
        if hasattr(total, "full_tensor"):  # FSDP2: a partial norm over shards
            total = total.full_tensor()
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
        return float(total)

    # reduction --------------------------------------------------------------------------
    def sum(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._coll_device())
        dist.all_reduce(t)
        return float(t.item())

    def max(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._coll_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def mean(self, value: float) -> float:
        return self.sum(value) / self.world_size if self.enabled else value

    def gather(self, values: list) -> list:
        """Every rank's list, concatenated in rank order (small Python values only)."""
        if not self.enabled:
            return values
        out: list = [None] * self.world_size
        dist.all_gather_object(out, values)
        return [v for part in out for v in part]

    def shard(self, items: Sequence[Any]) -> tuple[list[Any], int]:
        """This rank's contiguous share of a global list, and its offset in it."""
        if not self.enabled:
            return list(items), 0
        k = len(items) // self.world_size
        return list(items[self.rank * k : (self.rank + 1) * k]), self.rank * k

    def strided(self, items: Sequence[Any]) -> list[Any]:
        """Every ``world_size``-th item from this rank's (evaluation rows: any count works)."""
        return list(items[self.rank :: self.world_size]) if self.enabled else list(items)

    def reduce_metrics(self, metrics: dict[str, float], sums: Sequence[str] = (),
                       same: Sequence[str] = ()) -> dict[str, float]:
        """Per-rank metrics as the global batch's, in one collective: keys in ``sums`` add
        up, keys in ``same`` are equal on every rank already, ``*/min`` and ``*/max`` are the
        min and max over ranks, every other key is the mean over ranks."""
        if not self.enabled:
            return metrics
        parts = self.gather([metrics])
        out = {}
        for k in sorted({k for p in parts for k in p}):  # a key one rank lacks still counts
            vals = [p[k] for p in parts if k in p]
            if k in same:
                out[k] = vals[0]
            elif k in sums:
                out[k] = sum(vals)
            elif k.endswith("/min"):
                out[k] = min(vals)
            elif k.endswith("/max"):
                out[k] = max(vals)
            else:
                out[k] = sum(vals) / len(vals)
        return out

    def weighted_mean(self, metrics: dict[str, float], weight: int) -> dict[str, float]:
        """Per-rank means (over ``weight`` rows each) as the mean over every rank's rows."""
        if not self.enabled:
            return metrics
        parts = self.gather([(metrics, weight)])
        total = sum(w for m, w in parts if m)
        keys = sorted({k for m, _ in parts for k in m})
        return {k: sum(m[k] * w for m, w in parts if k in m) / total for k in keys} if total else {}

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def _coll_device(self) -> str:
        return self.device if dist.get_backend() == "nccl" else "cpu"
