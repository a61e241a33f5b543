"""Atomic checkpoints that resume exactly.

A checkpoint ``<output_dir>/checkpoint-<step>/`` holds ``state.pt``: the trainable
parameters (the LoRA adapter, or every weight in full fine-tuning), optimizer and
scheduler states, python/numpy/torch RNG states, the step and the data position. It is
written into a ``.tmp`` folder first and moved into place with ``os.replace``, so a run
killed at any instant leaves either the old checkpoint or the new one, never half of one.

Limits: single process; CUDA RNG is saved when CUDA is in use, but bitwise equality of
a resumed run is only promised on CPU with deterministic settings.
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
                    extra: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoint-<step>`` atomically; keep the newest ``keep`` checkpoints."""
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
        if m and (child / "state.pt").is_file():
            out.append(int(m.group(1)))
    return out


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    steps = _checkpoints(Path(output_dir))
    return Path(output_dir) / f"checkpoint-{max(steps)}" if steps else None


def load_checkpoint(path: str | os.PathLike[str], *, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/RNG in place; return the whole state dict."""
    state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value.to(params[name].device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state
