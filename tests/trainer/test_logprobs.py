"""logprobs.py: completion log-probs, the reference policy's, and padding engine rows."""

from __future__ import annotations

import torch

from rewardkit_trainer.logprobs import pad_rows, reference_logprobs, sequence_logprobs

from .tiny import tiny_model, tiny_tokenizer


def test_logprobs_match_a_full_forward_pass():
    tok = tiny_tokenizer()
    model = tiny_model(tok).eval()
    prompts, comps = [[3, 4, 5], [6]], [[7, 8], [9, 10, 11]]
    with torch.no_grad():
        lp, mask = sequence_logprobs(model, prompts, comps)
        for i, (p, c) in enumerate(zip(prompts, comps)):
            logits = model(torch.tensor([p + c])).logits[0].log_softmax(-1)
            want = [logits[len(p) - 1 + j, t] for j, t in enumerate(c)]
            assert torch.allclose(lp[i, : len(c)], torch.stack(want), atol=1e-5)
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_reference_is_the_frozen_copy_or_the_adapter_disabled():
    from peft import LoraConfig, get_peft_model

    tok = tiny_tokenizer()
    base = tiny_model(tok)
    ref = tiny_model(tok)
    with torch.no_grad():
        a = reference_logprobs(base, ref, [[3]], [[4, 5]], temperature=1.0, pad_id=0)
        assert torch.allclose(a, sequence_logprobs(ref, [[3]], [[4, 5]])[0])
        peft = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False))
        b = reference_logprobs(peft, None, [[3]], [[4, 5]], temperature=1.0, pad_id=0)
        with peft.disable_adapter():
            assert torch.allclose(b, sequence_logprobs(peft, [[3]], [[4, 5]])[0])


def test_pad_rows_cuts_and_zero_pads():
    out = pad_rows([[-1.0, -2.0, -3.0], [-4.0]], 2, "cpu")
    assert out.tolist() == [[-1.0, -2.0], [-4.0, 0.0]]
