"""Tiny offline building blocks for trainer tests: a character tokenizer with a chat
template and a random-init Llama small enough to train on CPU in seconds."""

from __future__ import annotations

import torch

CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789 +-=<>/\n.?")
SPECIAL = ["<pad>", "<eos>", "<bos>"]
TEMPLATE = (
    "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}a:{% endif %}"
)


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + CHARS + [":", "A", "S", "U"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    fast.chat_template = TEMPLATE
    return fast


def tiny_model(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
                      max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


def count_a(prompts=None, completions=None, **kwargs):
    """Toy verifiable reward: share of the letter 'a' in the completion."""
    return [c.count("a") / max(1, len(c)) for c in completions]


def variety(prompts=None, completions=None, **kwargs):
    """Toy reward that varies within every group: distinct characters in the completion."""
    return [len(set(c)) / 8 for c in completions]
