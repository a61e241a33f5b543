"""StaticCacheEngine on a tiny random-init Llama (fp32, CPU; one CUDA-graph test on GPU).

Greedy (top_k=1) must reproduce transformers' greedy ``generate`` token for token, the
returned log-probs must equal a fresh full forward pass, and sampling must follow the
model's distribution (checked against the exact first-token distribution).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.errors import InvalidArgument
from rewardkit_trainer.rollout import SamplingParams
from rewardkit_trainer.rollout.static import ATTENTION_NAME, StaticCacheEngine

sys.path.insert(0, str(Path(__file__).parent))
from tiny import tiny_model, tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, seed=3, hidden=32, layers=2).eval()


def _prompts(tok, texts):
    return [tok(t)["input_ids"] for t in texts]


def _greedy_ref(model, prompt, n):
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def _forward_logprobs(model, prompt, completion, temperature=1.0):
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(completion)[:, None]).squeeze(1)


LAYOUTS = [(True, True), (True, False), (False, False)]  # (shared prompt KV, fused decode)


@pytest.mark.parametrize("shared,fused", LAYOUTS)
def test_greedy_equals_transformers_generate_with_ragged_prompts(tok, model, shared, fused):
    prompts = _prompts(tok, ["abc de", "hello there x", "q"])  # left padding inside one bucket
    eng = StaticCacheEngine(model, tok, eos_token_ids=(), prompt_bucket=8, share_prompt_kv=shared, fused=fused)
    r = eng.generate(prompts, SamplingParams(num_generations=2, max_completion_length=10, top_k=1, seed=0))
    for i, p in enumerate(prompts):
        ref = _greedy_ref(model, p, 10)
        assert r.completion_ids[2 * i] == ref
        assert r.completion_ids[2 * i + 1] == ref
    assert r.truncated == [True] * 6
    assert model.config._attn_implementation != ATTENTION_NAME  # restored after the rollout
    per_row = 2 * 2 * 2 * 8 * 4  # layers x (k, v) x kv heads x head_dim x fp32 bytes, per slot
    assert r.stats["kv_cache_bytes"] == per_row * (3 * 16 + 6 * 10 if shared else 6 * (16 + 10))  # width 13 -> bucket 16


def test_default_shares_the_prompt_only_when_copies_would_be_large(tok, model):
    params = SamplingParams(num_generations=4, max_completion_length=2, seed=0)
    small = StaticCacheEngine(model, tok, eos_token_ids=())
    big = StaticCacheEngine(model, tok, eos_token_ids=(), share_threshold_bytes=0)
    small.fused = big.fused = False  # the fused step always shares
    a, b = small.generate([[5, 6, 7]], params), big.generate([[5, 6, 7]], params)
    assert not next(iter(small._states)).shared and next(iter(big._states)).shared
    assert a.completion_ids == b.completion_ids


@pytest.mark.parametrize("shared,fused", LAYOUTS)
def test_logprobs_match_a_full_forward(tok, model, shared, fused):
    prompts = _prompts(tok, ["a+b=", "12 34 5"])
    eng = StaticCacheEngine(model, tok, eos_token_ids=(), share_prompt_kv=shared, fused=fused)
    r = eng.generate(prompts, SamplingParams(num_generations=3, max_completion_length=9, temperature=0.7, seed=5))
    for j, (comp, lps) in enumerate(zip(r.completion_ids, r.logprobs)):
        ref = _forward_logprobs(model, prompts[j // 3], comp, temperature=0.7)
        assert torch.allclose(torch.tensor(lps), ref, atol=1e-4), (j, lps, ref.tolist())


def test_eos_ends_rows_and_sets_lengths(tok, model):
    prompts = _prompts(tok, ["abc", "xyz"])
    # declare the greedy continuation's 4th token an EOS: rows stop there, EOS included
    target = _greedy_ref(model, prompts[0], 6)
    eos = target[3]
    first = target.index(eos)
    eng = StaticCacheEngine(model, tok, eos_token_ids=(eos,), check_eos_every=2)
    r = eng.generate(prompts[:1], SamplingParams(num_generations=2, max_completion_length=6, top_k=1, seed=0))
    assert r.completion_ids[0] == target[: first + 1]
    assert r.truncated == [False, False]
    assert len(r.logprobs[0]) == first + 1


def test_seed_reproduces_and_differs(tok, model):
    prompts = _prompts(tok, ["ab", "cd"])
    eng = StaticCacheEngine(model, tok, eos_token_ids=())
    p = SamplingParams(num_generations=4, max_completion_length=8, seed=11)
    a, b = eng.generate(prompts, p), eng.generate(prompts, p)
    c = eng.generate(prompts, SamplingParams(num_generations=4, max_completion_length=8, seed=12))
    assert a.completion_ids == b.completion_ids
    assert a.completion_ids != c.completion_ids
    assert len(set(map(tuple, a.completion_ids[:4]))) > 1  # samples of one group differ


def test_first_token_frequencies_follow_the_model(tok, model):
    """Chi-square-like check: empirical first-token shares against exact probabilities."""
    prompt = _prompts(tok, ["zz"])[0]
    g = 2000
    eng = StaticCacheEngine(model, tok, eos_token_ids=())
    r = eng.generate([prompt], SamplingParams(num_generations=g, max_completion_length=1, temperature=1.5, seed=1))
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([prompt])).logits[0, -1].float() / 1.5, -1)
    counts = torch.bincount(torch.tensor([c[0] for c in r.completion_ids]), minlength=probs.numel()).float()
    expected = probs * g
    keep = expected > 20
    z = (counts[keep] - expected[keep]) / expected[keep].sqrt()
    assert z.abs().max() < 5, z
    assert abs(float(counts.sum()) - g) < 1e-6


@settings(max_examples=6, deadline=None)
@given(top_k=st.integers(1, 5), top_p=st.sampled_from([1.0, 0.5, 0.1]), seed=st.integers(0, 10_000))
def test_top_k_top_p_only_sample_allowed_tokens(tok, model, top_k, top_p, seed):
    prompt = _prompts(tok, ["k"])[0]
    eng = StaticCacheEngine(model, tok, eos_token_ids=())
    r = eng.generate([prompt], SamplingParams(num_generations=64, max_completion_length=1, top_k=top_k,
                                              top_p=top_p, seed=seed))
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0, -1].float()
    order = torch.argsort(logits, descending=True)
    probs = torch.softmax(logits, -1)[order]
    # nucleus: smallest prefix whose mass reaches top_p, then at most top_k of it
    nucleus = int((probs.cumsum(0) - probs < top_p).sum())
    allowed = set(order[: min(top_k, nucleus)].tolist())
    assert {c[0] for c in r.completion_ids} <= allowed
    assert all(math.isfinite(x[0]) and x[0] <= 0 for x in r.logprobs)


def test_peft_model_and_weight_updates_are_followed(tok):
    from peft import LoraConfig, get_peft_model

    base = tiny_model(tok, seed=4)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    prompt = _prompts(tok, ["abc"])
    eng = StaticCacheEngine(model, tok, eos_token_ids=())
    params = SamplingParams(num_generations=2, max_completion_length=6, top_k=1, seed=0)
    before = eng.generate(prompt, params).completion_ids[0]
    with torch.no_grad():  # an in-place "optimizer step" on the adapter and the head
        for name, p in model.named_parameters():
            if "lora_B" in name or "lm_head" in name:
                p.add_(torch.randn_like(p) * 0.5)
    eng.update_weights(model)
    after = eng.generate(prompt, params).completion_ids[0]
    assert after == _greedy_ref(model, prompt[0], 6)
    assert after != before
    assert model.training  # the engine restores train/eval mode


@pytest.mark.parametrize("kwargs", [{"check_eos_every": 0}, {"prompt_bucket": 0}, {"max_cached_shapes": 0}])
def test_invalid_arguments(tok, model, kwargs):
    with pytest.raises(InvalidArgument, match=next(iter(kwargs))):
        StaticCacheEngine(model, tok, **kwargs)


def _sliding_models(vocab, window):
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    shape = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2)
    # Mistral slides on every layer with no switch; Qwen2 only with use_sliding_window
    return [MistralForCausalLM(MistralConfig(sliding_window=window, **shape)).eval(),
            Qwen2ForCausalLM(Qwen2Config(use_sliding_window=True, sliding_window=window, max_window_layers=0,
                                         **shape)).eval()]


@pytest.mark.parametrize("which", [0, 1])
def test_sliding_window_models_run_inside_their_window_and_are_refused_past_it(tok, which):
    model = _sliding_models(len(tok), 12)[which]
    prompt = _prompts(tok, ["abcd"])[0]
    eng = StaticCacheEngine(model, tok, eos_token_ids=())
    assert eng.window == 12
    fits = 12 - len(prompt)
    r = eng.generate([prompt], SamplingParams(num_generations=1, max_completion_length=fits, top_k=1, seed=0))
    assert r.completion_ids[0] == _greedy_ref(model, prompt, fits)  # the model's own windowed attention
    with pytest.raises(InvalidArgument, match="max_completion_length.*sliding window"):
        eng.generate([prompt], SamplingParams(num_generations=1, max_completion_length=fits + 1, seed=0))


def test_window_off_or_absent_is_no_limit(tok, model):
    from transformers import Qwen2Config

    from rewardkit_trainer.rollout.static import _sliding_window

    assert _sliding_window(model.config) is None  # Llama: no window at all
    assert _sliding_window(Qwen2Config(use_sliding_window=False, sliding_window=8)) is None
    assert _sliding_window(_sliding_models(64, 8)[0].config) == 8


def test_refuses_empty_prompts(tok, model):
    eng = StaticCacheEngine(model, tok)
    with pytest.raises(InvalidArgument, match="prompt_ids"):
        eng.generate([[]], SamplingParams(num_generations=2, max_completion_length=2))


def test_hostile_token_ids_are_decoded_without_error(tok, model):
    """Rows hitting max length, prompt longer than one bucket, a one-token budget."""
    eng = StaticCacheEngine(model, tok, eos_token_ids=(), prompt_bucket=4)
    prompt = list(range(3, 3 + 13))
    r = eng.generate([prompt], SamplingParams(num_generations=2, max_completion_length=1, seed=0))
    assert [len(c) for c in r.completion_ids] == [1, 1] and r.truncated == [True, True]
    assert isinstance(r.texts[0], str) and r.stats["tokens"] == 2


@pytest.mark.gpu
def test_cuda_graph_matches_eager_on_gpu(tok):
    model = tiny_model(tok, seed=5, hidden=64, layers=2).cuda().eval()
    prompts = _prompts(tok, ["abc de", "x"])
    params = SamplingParams(num_generations=4, max_completion_length=24, temperature=0.9, top_p=0.9, seed=3)
    for shared, fused in LAYOUTS:
        graphed = StaticCacheEngine(model, tok, eos_token_ids=(), cuda_graphs=True, share_prompt_kv=shared,
                                    fused=fused).generate(prompts, params)
        eager = StaticCacheEngine(model, tok, eos_token_ids=(), cuda_graphs=False, share_prompt_kv=shared,
                                  fused=fused).generate(prompts, params)
        assert graphed.stats["cuda_graph"] and not eager.stats["cuda_graph"]
        assert graphed.completion_ids == eager.completion_ids
    greedy = StaticCacheEngine(model, tok, eos_token_ids=()).generate(
        prompts, SamplingParams(num_generations=2, max_completion_length=16, top_k=1, seed=0))
    for i, p in enumerate(prompts):
        ref = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=16, min_new_tokens=16,
                             do_sample=False, eos_token_id=None, pad_token_id=0)[0, len(p):].tolist()
        assert greedy.completion_ids[2 * i] == ref


# group seeds, policy-following of the sampler, the fused weight copy -------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_a_groups_completions_depend_only_on_its_prompt_and_seed(tok, model, fused):
    from rewardkit_trainer.rollout.base import generate_groups

    eng = StaticCacheEngine(model, tok, eos_token_ids=(), fused=fused)
    assert eng.supports_group_seeds
    prompts = _prompts(tok, ["a much longer prompt 22", "say a 1", "zz top"])
    params = SamplingParams(num_generations=3, max_completion_length=7, temperature=1.0)
    alone = generate_groups(eng, prompts[1:2], params, [12])
    batch = generate_groups(eng, [prompts[2], prompts[0], prompts[1]], params, [13, 11, 12])  # last, not first
    assert batch.completion_ids[6:] == alone.completion_ids
    for a, b in zip(batch.logprobs[6:], alone.logprobs):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5, rtol=0)
    assert len(set(map(tuple, alone.completion_ids))) > 1  # rows of a group draw different noise
    other = generate_groups(eng, [prompts[2], prompts[0], prompts[1]], params, [13, 11, 99])
    assert other.completion_ids[:6] == batch.completion_ids[:6] and other.completion_ids[6:] != alone.completion_ids
    with pytest.raises(InvalidArgument, match="group_seeds"):
        eng.generate(prompts, SamplingParams(num_generations=2, max_completion_length=2, group_seeds=(1, 2)))


def _pair_probs(model, prompt, temperature):
    """Exact P(t1, t2) over the whole vocabulary: p(t1) * p(t2 | t1)."""
    with torch.no_grad():
        first = torch.softmax(model(torch.tensor([prompt])).logits[0, -1].float() / temperature, -1)
        v = first.numel()
        ids = torch.cat([torch.tensor([prompt] * v), torch.arange(v)[:, None]], 1)
        second = torch.softmax(model(ids).logits[:, -1].float() / temperature, -1)
    return first[:, None] * second


@pytest.mark.parametrize("fused", [True, False])
def test_two_token_frequencies_follow_the_model_with_group_seeds(tok, model, fused):
    """Chi-square on the first token and on the second token's marginal over 4,000 draws
    by 100 seeded groups of 40: the decode step and the counter-based sampler follow the
    policy (exact probabilities from full forward passes)."""
    from rewardkit_trainer.rollout.base import generate_groups

    prompt = _prompts(tok, ["ab"])[0]
    eng = StaticCacheEngine(model, tok, eos_token_ids=(), fused=fused)
    params = SamplingParams(num_generations=40, max_completion_length=2, temperature=1.3)
    r = generate_groups(eng, [prompt] * 100, params, list(range(1000, 1100)))
    probs = _pair_probs(model, prompt, 1.3)
    n = len(r.completion_ids)
    for position, exact in ((0, probs.sum(1)), (1, probs.sum(0))):  # first token; second token's marginal
        counts = torch.bincount(torch.tensor([c[position] for c in r.completion_ids]), minlength=exact.numel()).float()
        expected = exact * n
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        dof = exact.numel() - 1
        # chi-square with k dof: mean k, sd sqrt(2k); 5 sd is far beyond chance
        assert chi2 < dof + 5 * (2 * dof) ** 0.5, (position, chi2, dof)


def test_fused_copy_follows_in_place_updates(tok):
    model = tiny_model(tok, seed=6).eval()
    prompt = _prompts(tok, ["abc"])
    eng = StaticCacheEngine(model, tok, eos_token_ids=(), free_on_sleep=False)
    params = SamplingParams(num_generations=2, max_completion_length=6, top_k=1, seed=0)
    before = eng.generate(prompt, params).completion_ids[0]
    assert eng.fused and eng._fused.fused_bytes() > 0
    with torch.no_grad():  # an in-place "optimizer step" on the fused projections
        for name, p in model.named_parameters():
            if any(k in name for k in ("q_proj", "k_proj", "v_proj", "up_proj", "gate_proj")):
                p.add_(torch.randn_like(p) * 0.5)
    eng.update_weights(model)
    after = eng.generate(prompt, params).completion_ids[0]
    assert after == _greedy_ref(model, prompt[0], 6) and after != before
    assert len(eng.refresh_seconds) == 2  # built once, refreshed once
    eng.sleep()
    eng.free_on_sleep = True
    eng.sleep()
    assert eng._fused is None  # released for the training pass; rebuilt by the next rollout


def test_fused_refused_for_a_peft_model_and_followed_otherwise(tok):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(tok, seed=4), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    assert not StaticCacheEngine(model, tok).fused
    with pytest.raises(InvalidArgument, match="fused"):
        StaticCacheEngine(model, tok, fused=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_head_dim_below_16_takes_the_transformers_path():
    """tl.dot needs an inner dimension of at least 16: a tiny model (head_dim 8) on a GPU
    decodes through the transformers modules instead of failing to compile (the trainer's
    GPU smoke test found this)."""
    tok = tiny_tokenizer()
    model = tiny_model(tok, seed=3, hidden=32, layers=2).cuda().eval()
    engine = StaticCacheEngine(model, tok)
    assert not engine.fused
    with pytest.raises(InvalidArgument, match="head_dim 8"):
        StaticCacheEngine(model, tok, fused=True)
    out = engine.generate([[1, 5, 6]], SamplingParams(num_generations=2, max_completion_length=4, seed=0))
    assert len(out.completion_ids) == 2
