"""Train with a config file from Python: load it, optionally override fields, run.

    python examples/train_grpo.py [CONFIG]

With REWARDKIT_SMALL=1 it swaps in a tiny random-init Llama (built here, character
tokenizer) and runs two steps in seconds, so the example is tested on CPU.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from rewardkit_trainer import load_config, train

HERE = Path(__file__).resolve().parent


def tiny_model_dir(root: Path) -> str:
    """A 2-layer Llama and a character tokenizer with a chat template, saved locally."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-*/=<>.,:?\n")
    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>"] + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         pad_token_id=0, eos_token_id=1, bos_token_id=1))
    model.save_pretrained(root / "tiny")
    tok.save_pretrained(root / "tiny")
    return str(root / "tiny")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "grpo_arithmetic.toml"
    config = load_config(path)
    if os.environ.get("REWARDKIT_SMALL"):
        out = Path(os.environ.get("REWARDKIT_OUTPUT_DIR") or tempfile.mkdtemp())
        config = config.replace(model=tiny_model_dir(out), output_dir=str(out / "run"), dataset_size=8,
                                eval_size=4, max_steps=2, num_generations=4, prompts_per_step=2,
                                max_completion_length=16, sft_steps=1, save_steps=0, progress=False,
                                lora_target_modules=["q_proj", "v_proj"], backend="rewardkit")
    result = train(config)
    print({k: result[k] for k in ("before", "after", "steps", "output_dir")})


if __name__ == "__main__":
    main()
