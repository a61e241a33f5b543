"""models.py: one unwrap, decoder and head, the reference context, weight export."""

from __future__ import annotations

import pytest
import torch

from rewardkit import InvalidArgument
from rewardkit_trainer.models import (decoder_and_head, export_hf_folder, hf_weights, is_peft, reference_context,
                                      resolve_model_path, unwrap)

from .tiny import tiny_model, tiny_tokenizer


def _peft(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False))


def test_unwrap_and_head_see_through_peft():
    tok = tiny_tokenizer()
    base = tiny_model(tok)
    wrapped = _peft(base)
    assert unwrap(wrapped) is base and unwrap(base) is base and is_peft(wrapped) and not is_peft(base)
    _, weight = decoder_and_head(wrapped)
    assert weight is base.lm_head.weight
    assert reference_context(base) is None and reference_context(wrapped) is not None


def test_exported_weights_are_the_merged_policy(tmp_path):
    from transformers import AutoModelForCausalLM

    tok = tiny_tokenizer()
    model = _peft(tiny_model(tok))
    names = dict(hf_weights(model))
    assert not any("lora" in n for n in names)
    export_hf_folder(model, tok, tmp_path / "out", merged=True)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)


def test_unknown_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidArgument, match="model="):
        resolve_model_path(str(tmp_path / "nothing"))
