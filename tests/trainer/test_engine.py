"""The transformers rollout engine and the trainer's log-prob path on a tiny Llama."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit_trainer.rollout.base import RolloutEngine, SamplingParams
from rewardkit_trainer.rollout.hf import HFEngine, filter_logits
from rewardkit_trainer.logprobs import sequence_logprobs

from .stats import chi2_rejects
from .tiny import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, seed=1).eval()


def _prompts(tok):
    return [tok("say a")["input_ids"], tok("hi 12 + 3")["input_ids"], tok("x")["input_ids"]]


def test_engine_is_a_rollout_engine(model, tok):
    assert isinstance(HFEngine(model, tok), RolloutEngine)


def test_rollout_shape_and_logprobs_match_trainer(model, tok):
    prompts = _prompts(tok)
    params = SamplingParams(num_generations=3, max_completion_length=10, temperature=0.7, seed=0)
    r = HFEngine(model, tok).generate(prompts, params)
    assert r.num_completions == 9 and len(r.texts) == 9 and len(r.truncated) == 9
    assert [len(x) for x in r.logprobs] == [len(x) for x in r.completion_ids]
    for ids, trunc in zip(r.completion_ids, r.truncated):
        assert (len(ids) == 10 and tok.eos_token_id not in ids) if trunc else ids[-1] == tok.eos_token_id
    reps = [p for p in prompts for _ in range(3)]
    with torch.no_grad():
        lp, mask = sequence_logprobs(model, reps, r.completion_ids, temperature=0.7, pad_id=tok.pad_token_id)
    eng = torch.zeros_like(lp)
    for i, row in enumerate(r.logprobs):
        eng[i, : len(row)] = torch.tensor(row)
    assert torch.allclose(lp * mask, eng * mask, atol=1e-4)


def test_greedy_equals_transformers_generate(model, tok):
    prompt = tok("hi 12 + 3")["input_ids"]
    r = HFEngine(model, tok).generate([prompt], SamplingParams(num_generations=2, max_completion_length=8, top_k=1))
    ref = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    want = ref[0, len(prompt):].tolist()
    if tok.eos_token_id in want:
        want = want[: want.index(tok.eos_token_id) + 1]
    assert r.completion_ids[0] == r.completion_ids[1] == want


def test_left_padding_does_not_change_samples(model, tok):
    """A prompt batched with a longer one gives the same greedy completion as alone."""
    short, long = tok("x")["input_ids"], tok("hi 12 + 3 = ?")["input_ids"]
    params = SamplingParams(num_generations=2, max_completion_length=6, top_k=1)
    eng = HFEngine(model, tok)
    assert eng.generate([short, long], params).completion_ids[:2] == eng.generate([short], params).completion_ids


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.05, 0, 1.0), (0.1, 0, 1.0), (0.05, 5, 1.0), (0.05, 0, 0.8)])
def test_samples_follow_the_policy_distribution(model, tok, temperature, top_k, top_p):
    # 4,000 first tokens against the filtered softmax; the same counts must be rejected
    # against a wrong temperature (the test has power). The random tiny model is nearly
    # uniform: low temperatures give the distribution a shape to test.
    prompt = tok("hi 12 + 3")["input_ids"]
    params = SamplingParams(num_generations=500, max_completion_length=1, temperature=temperature,
                            top_k=top_k, top_p=top_p, seed=2)
    r = HFEngine(model, tok).generate([prompt] * 8, params)
    counts = torch.bincount(torch.tensor([ids[0] for ids in r.completion_ids]), minlength=model.config.vocab_size)
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0, -1].float()

    def policy(t):
        return filter_logits((logits / t)[None], top_k, top_p)[0].softmax(-1)

    assert not chi2_rejects(counts.float(), policy(temperature))
    assert chi2_rejects(counts.float(), policy(temperature * 1.25))


def test_whole_completions_follow_the_policy(model, tok):
    # Every sampled token of 3 x 64 completions of up to 24 tokens against the policy given
    # its own prefix (surprise, mode, stop and within-group pair statistics, each with a
    # control that must fail; stats.py). T=0.05 gives the near-uniform tiny model a shape.
    from .stats import assert_samples_follow_policy

    prompts, t, g = _prompts(tok), 0.05, 64
    out = HFEngine(model, tok).generate(prompts, SamplingParams(num_generations=g, max_completion_length=24,
                                                                temperature=t, seed=4))
    assert_samples_follow_policy(model, prompts, out.completion_ids, t, [tok.eos_token_id], g)


def test_samples_equal_transformers_generate_given_the_seed(model, tok):
    # Left-padded prompts of three lengths, temperature sampling: the engine draws token for
    # token what transformers' own sampler draws from the same seed (same multinomial stream),
    # so its padding, positions and cache give exactly the reference distribution.
    prompts, g = _prompts(tok), 4
    out = HFEngine(model, tok).generate(prompts, SamplingParams(num_generations=g, max_completion_length=12,
                                                                temperature=0.7, seed=11))
    width = max(map(len, prompts))
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(11)
    with torch.no_grad():
        ref = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=0.7, top_k=0, top_p=1.0,
                             max_new_tokens=12, num_return_sequences=g, eos_token_id=tok.eos_token_id,
                             pad_token_id=pad)
    want = []
    for row in ref[:, width:].tolist():
        want.append(row[: row.index(tok.eos_token_id) + 1] if tok.eos_token_id in row else row)
    assert len(set(map(tuple, want))) > 6  # really sampled: the rows differ
    assert out.completion_ids == want
    assert out.truncated == [tok.eos_token_id not in row for row in want]


def test_seed_makes_sampling_reproducible(model, tok):
    eng = HFEngine(model, tok)
    p = SamplingParams(num_generations=4, max_completion_length=8, seed=5)
    assert eng.generate(_prompts(tok), p).completion_ids == eng.generate(_prompts(tok), p).completion_ids


def test_sequence_logprobs_equal_full_logits(model, tok):
    prompts = [tok("say a")["input_ids"], tok("x")["input_ids"]]
    comps = [tok("aaa")["input_ids"], tok("b")["input_ids"]]
    with torch.no_grad():
        lp, mask = sequence_logprobs(model, prompts, comps, pad_id=tok.pad_token_id)
        for i, (p, c) in enumerate(zip(prompts, comps)):
            logits = model(torch.tensor([p + c])).logits[0].log_softmax(-1)
            want = torch.stack([logits[len(p) - 1 + j, t] for j, t in enumerate(c)])
            assert torch.allclose(lp[i, : len(c)], want, atol=1e-5)
            assert mask[i].sum() == len(c)


def test_lora_reference_is_the_base_model(tok):
    """With the adapter disabled the peft model computes exactly the base model's log-probs."""
    from peft import LoraConfig, get_peft_model

    from rewardkit_trainer.models import reference_context

    base = tiny_model(tok, seed=2)
    prompts, comps = [tok("say a")["input_ids"]], [tok("abc")["input_ids"]]
    with torch.no_grad():
        want, _ = sequence_logprobs(base, prompts, comps)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_()  # make the adapter matter
        moved, _ = sequence_logprobs(peft_model, prompts, comps)
        with reference_context(peft_model):
            ref, _ = sequence_logprobs(peft_model, prompts, comps)
    assert not torch.allclose(moved, want, atol=1e-3)
    assert torch.allclose(ref, want, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6), st.integers(0, 6), st.floats(0.05, 1.0))
def test_filter_keeps_top_tokens(values, k, p):
    logits = torch.tensor([values])
    out = filter_logits(logits, k, p)
    kept = torch.isfinite(out[0])
    assert kept.any() and int(logits.argmax()) in kept.nonzero().flatten().tolist()
    if k:
        assert int(kept.sum()) >= 1 and int(kept.sum()) <= max(k, int((logits[0] == logits[0].max()).sum()), k + 5)
    probs = logits.softmax(-1)[0]
    # the kept set reaches top_p mass (top-k off)
    if not k:
        assert float(probs[kept].sum()) >= p - 1e-6
