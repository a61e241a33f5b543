"""Atomic checkpoints that resume exactly.

A checkpoint ``<output_dir>/checkpoint-<step>/`` holds ``state.pt``: the trainable
parameters (the LoRA adapter, or every weight in full fine-tuning), optimizer and
scheduler states, python/numpy/torch RNG states, the step and the data position. It is
written into a ``.tmp`` folder first and moved into place with ``os.replace``, so a run
killed at any instant leaves either the old checkpoint or the new one, never half of one.

Under torchrun (``parallel.enabled``) the same folder holds a ``torch.distributed.checkpoint``
(DCP) of the trainable parameters and the optimizer (``.metadata`` plus one ``.distcp`` file
per rank; frozen LoRA base weights are left out), ``meta.pt`` (step, scheduler, sampler,
history, world size; rank 0) and ``rng-<rank>.pt`` (each rank's RNG). Every rank writes
into the same ``.tmp`` folder; after a barrier rank 0 moves it into place, so the
``checkpoint-<step>`` name only ever names a complete checkpoint. DCP reshards on load, so
a checkpoint resumes on another world size (a rank with no RNG file of its own keeps its
seeded RNG; sampling is seeded per prompt group, so the samples match). A one-process
``state.pt`` checkpoint also resumes under torchrun for LoRA (replicated weights).

Limits: CUDA RNG is saved when CUDA is in use, but bitwise equality of a resumed run is
only promised on CPU with deterministic settings, on the same world size.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state"]

_NAME = re.compile(r"^checkpoint-(\d+)$")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(output_dir: str | os.PathLike[str], step: int, *, model, optimizer, scheduler,
                    extra: dict[str, Any], keep: int = 2, parallel: Any = None, wrapped: Any = None) -> Path:
    """Write ``checkpoint-<step>`` atomically; keep the newest ``keep`` checkpoints.
    ``parallel`` (enabled) and ``wrapped`` (the DDP/FSDP2 module): the DCP form, every rank."""
    if parallel is not None and parallel.enabled:
        return _save_sharded(Path(output_dir), step, wrapped, optimizer, scheduler, extra, keep, parallel)
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"checkpoint-{step}"
    tmp = root / f".checkpoint-{step}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {
        "step": step,
        "model": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        **extra,
    }
    with open(tmp / "state.pt", "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    if target.exists():  # re-saving the same step (e.g. final save) replaces it
        shutil.rmtree(target)
    os.replace(tmp, target)
    for old in sorted(_checkpoints(root))[:-keep] if keep else []:
        shutil.rmtree(root / f"checkpoint-{old}", ignore_errors=True)
    return target


def _checkpoints(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        m = _NAME.match(child.name)
        if m and ((child / "state.pt").is_file() or (child / "meta.pt").is_file()):
            out.append(int(m.group(1)))
    return out


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    steps = _checkpoints(Path(output_dir))
    return Path(output_dir) / f"checkpoint-{max(steps)}" if steps else None


def load_checkpoint(path: str | os.PathLike[str], *, model, optimizer, scheduler, parallel: Any = None,
                    wrapped: Any = None) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/RNG in place; return the whole state dict."""
    if (Path(path) / "meta.pt").is_file():
        return _load_sharded(Path(path), wrapped if wrapped is not None else model, optimizer, scheduler, parallel)
    if parallel is not None and getattr(parallel, "fsdp", False):
        from rewardkit.errors import invalid_argument

        raise invalid_argument("resume", str(path), "is a one-process checkpoint; under torchrun it resumes only "
                               "LoRA runs (full fine-tuning is sharded): resume it with one process")
    state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value.to(params[name].device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state


# torchrun: torch.distributed.checkpoint --------------------------------------------------
def _options(load: bool = False) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # LoRA: the adapter, not the base. On load the frozen base is absent on purpose (not
    # strict); a trainable key missing from the checkpoint still fails in dcp.load
    return StateDictOptions(ignore_frozen_params=True, strict=not load)


def _save_sharded(root: Path, step: int, wrapped, optimizer, scheduler, extra, keep: int, parallel) -> Path:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    target, tmp = root / f"checkpoint-{step}", root / f".checkpoint-{step}.tmp"
    if parallel.is_main:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # left by a run killed mid-write
            shutil.rmtree(tmp)
        tmp.mkdir()
    parallel.barrier()
    model_sd, optim_sd = get_state_dict(wrapped, optimizer, options=_options())
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
    _write(tmp / f"rng-{parallel.rank}.pt", rng_state())
    if parallel.is_main:
        _write(tmp / "meta.pt", {"step": step, "scheduler": scheduler.state_dict(),
                                  "world_size": parallel.world_size, **extra})
    parallel.barrier()  # every rank's shard is on disk before the name appears
    if parallel.is_main:
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        for old in sorted(_checkpoints(root))[:-keep] if keep else []:
            shutil.rmtree(root / f"checkpoint-{old}", ignore_errors=True)
    parallel.barrier()
    return target


def _load_sharded(path: Path, wrapped, optimizer, scheduler, parallel) -> dict[str, Any]:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    if parallel is None or not parallel.enabled:
        from rewardkit.errors import invalid_argument

        raise invalid_argument("resume", str(path), "is a torchrun (DCP) checkpoint: resume it under torchrun "
                               "(torchrun --nproc-per-node 1 works)")
    model_sd, optim_sd = get_state_dict(wrapped, optimizer, options=_options())
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))  # reshards to this world size
    set_state_dict(wrapped, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"],
                   options=_options(load=True))
    meta = torch.load(path / "meta.pt", map_location="cpu", weights_only=False)
    scheduler.load_state_dict(meta["scheduler"])
    rng = path / f"rng-{parallel.rank}.pt"
    if rng.is_file():
        set_rng_state(torch.load(rng, map_location="cpu", weights_only=False))
    return meta


def _write(path: Path, obj: Any) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
