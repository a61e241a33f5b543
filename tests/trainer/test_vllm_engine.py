"""The vLLM rollout engine, run for real on a tiny random-init Llama (fp32, CPU).

Three engines per module (full weights, LoRA merged, LoRA adapter), each built once.
The peft merge and config validation need no vLLM.
"""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rewardkit.errors import InvalidArgument  # noqa: E402
from rewardkit_trainer.rollout import SamplingParams  # noqa: E402
from rewardkit_trainer.rollout.vllm_engine import VLLMEngine, hf_weights  # noqa: E402

pytestmark = [
    # vLLM and its dependencies warn at import and at engine start; none of it is ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:vllm.*"),
    pytest.mark.filterwarnings("ignore::UserWarning:vllm.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:importlib.*"),
    pytest.mark.filterwarnings("ignore:.*SwigPy.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*swigvarlink.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.timeout(300),
]

VOCAB = 96
EOS = 2


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i + 3 for i in range(VOCAB - 3)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def tiny_model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    # head_dim 32: vLLM's CPU attention refuses 16
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=EOS)
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # sharpen the logits so greedy choices are not near-ties
        model.model.embed_tokens.weight.mul_(5)
    return model


def tiny_lora(seed: int = 0):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(seed), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    perturb_lora(model, seed)
    return model


def perturb(model, seed: int, scale: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * p.abs().mean())


def perturb_lora(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:  # lora_B starts at zero: give the adapter a real effect
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def hf_logprobs(model, prompt, completion, temperature=1.0):
    """transformers' log-probs of ``completion`` after ``prompt`` (teacher forcing)."""
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None])[:, 0]


def hf_greedy(model, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            ids.append(nxt)
            if nxt == EOS:
                break
    return ids[len(prompt) :]


PROMPTS = [[1, 5, 6, 7], [1, 9, 10], [1, 40, 41, 42, 43, 44]]
GREEDY = SamplingParams(num_generations=1, max_completion_length=12, temperature=0.0)


def assert_follows(engine, model, prompts=PROMPTS):
    """The engine's greedy tokens and their log-probs equal transformers' on ``model``."""
    out = engine.generate(prompts, GREEDY)
    for prompt, ids, lps in zip(prompts, out.completion_ids, out.logprobs):
        assert ids == hf_greedy(model, prompt, GREEDY.max_completion_length)
        ref = hf_logprobs(model, prompt, ids)
        assert torch.allclose(torch.tensor(lps), ref, atol=1e-4), (lps, ref.tolist())
    return out


def config(**kw):
    base = dict(max_prompt_length=16, max_completion_length=24, seed=0)
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture(scope="module")
def full():
    model, tok = tiny_model(), tiny_tokenizer()
    engine = VLLMEngine(model, tok, config())
    yield model, engine
    engine.close()


# ----------------------------------------------------------------------------- engine


@pytest.mark.vllm
def test_rollout_shape_and_grouping(full):
    model, engine = full
    params = SamplingParams(num_generations=3, max_completion_length=10, temperature=1.0, seed=7)
    out = engine.generate(PROMPTS[:2], params)
    assert out.prompt_ids == PROMPTS[:2]
    assert out.num_completions == 6 and len(out.texts) == 6 and len(out.truncated) == 6
    for ids, lps, cut, text in zip(out.completion_ids, out.logprobs, out.truncated, out.texts):
        assert len(ids) == len(lps) and 1 <= len(ids) <= 10
        assert cut == (len(ids) == 10 and ids[-1] != EOS)
        assert all(lp <= 0 for lp in lps)
        assert text == engine.tokenizer.decode(ids, skip_special_tokens=True)
    assert out.stats["tokens"] == sum(map(len, out.completion_ids))


@pytest.mark.vllm
def test_sampled_logprobs_match_transformers_at_temperature(full):
    model, engine = full
    params = SamplingParams(num_generations=2, max_completion_length=8, temperature=0.7, seed=3)
    out = engine.generate(PROMPTS, params)
    for row, (ids, lps) in enumerate(zip(out.completion_ids, out.logprobs)):
        ref = hf_logprobs(model, PROMPTS[row // 2], ids, temperature=0.7)
        assert torch.allclose(torch.tensor(lps), ref, atol=1e-4)


@pytest.mark.vllm
def test_duplicate_prompts_get_distinct_samples(full):
    _, engine = full
    params = SamplingParams(num_generations=4, max_completion_length=12, temperature=1.0, seed=11)
    out = engine.generate([PROMPTS[0]] * 2, params)
    assert len({tuple(ids) for ids in out.completion_ids}) > 4  # not two copies of one group


@pytest.mark.vllm
def test_group_seeds_make_a_group_independent_of_its_batch(full):
    """Under torchrun each prompt group carries its own seed (distributed.group_seed): the
    group must sample the same completions alone, or third in a batch of three, in any call."""
    from rewardkit_trainer.rollout.base import generate_groups

    _, engine = full
    assert engine.supports_group_seeds
    params = SamplingParams(num_generations=3, max_completion_length=10, temperature=1.0, seed=0)
    batch = generate_groups(engine, PROMPTS[:3], params, seeds=[100, 101, 102])
    alone = generate_groups(engine, PROMPTS[2:3], params, seeds=[102])
    assert alone.completion_ids == batch.completion_ids[6:9]
    assert alone.logprobs == batch.logprobs[6:9]
    other = generate_groups(engine, PROMPTS[2:3], params, seeds=[103])  # another seed, other draws
    assert other.completion_ids != alone.completion_ids
    # neighbouring group seeds never share a sample's seed: duplicate prompts differ
    dup = generate_groups(engine, [PROMPTS[0]] * 2, params, seeds=[7, 8])
    assert len({tuple(ids) for ids in dup.completion_ids}) > 3
    with pytest.raises(ValueError, match="group_seeds"):
        engine.generate(PROMPTS[:2], dataclasses.replace(params, group_seeds=(1,)))


@pytest.mark.vllm
@pytest.mark.parametrize("temperature,top_k,top_p", [(0.8, 0, 1.0), (1.6, 0, 1.0), (1.6, 6, 1.0), (1.6, 0, 0.95)])
def test_samples_follow_the_policy_distribution(full, temperature, top_k, top_p):
    # Equal log-probs of the tokens it picked do not show that vLLM picks them with the
    # policy's probabilities. 4,000 two-token samples: the first tokens against
    # transformers' filtered softmax, and the second tokens after the commonest first token
    # (a decode step, with the KV cache) against the softmax given that token. The first
    # counts must also be rejected against a temperature 25% off: the test has power.
    from rewardkit_trainer.rollout.hf import filter_logits

    from .stats import chi2_rejects

    model, engine = full
    prompt = PROMPTS[2]
    params = SamplingParams(num_generations=500, max_completion_length=2, temperature=temperature,
                            top_k=top_k, top_p=top_p, seed=2)
    out = engine.generate([prompt] * 8, params)
    first = torch.tensor([ids[0] for ids in out.completion_ids])
    mode = int(first.mode().values)
    second = torch.tensor([ids[1] for ids in out.completion_ids if ids[0] == mode and len(ids) > 1])
    assert mode != EOS and len(second) > 500  # the prompt is chosen so that this holds

    def policy(context, t):
        with torch.no_grad():
            logits = model(torch.tensor([context])).logits[0, -1].float()
        return filter_logits((logits / t)[None], top_k, top_p)[0].softmax(-1)

    counts = torch.bincount(first, minlength=VOCAB).float()
    assert not chi2_rejects(counts, policy(prompt, temperature))
    assert chi2_rejects(counts, policy(prompt, temperature * 1.25))
    assert not chi2_rejects(torch.bincount(second, minlength=VOCAB).float(), policy(prompt + [mode], temperature))


@pytest.mark.vllm
def test_whole_completions_follow_the_policy(full):
    # Token counts at one position do not cover a whole rollout: every sampled token of
    # 3 x 64 completions of up to 24 tokens is checked against the policy given its own
    # prefix (surprise, mode, stop and within-group pair statistics, each with a control
    # that must fail; tests/trainer/stats.py).
    from .stats import assert_samples_follow_policy

    model, engine = full
    t, g = 1.6, 64  # a flat policy: EOS is drawn often enough to test stopping
    out = engine.generate(PROMPTS, SamplingParams(num_generations=g, max_completion_length=24, temperature=t, seed=4))
    assert_samples_follow_policy(model, PROMPTS, out.completion_ids, t, [EOS], g)


_BUDGET_SCRIPT = """
import json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/trainer", sys.argv[1] + "/tests/trainer"]
from test_vllm_engine import PROMPTS, config, tiny_model, tiny_tokenizer
from rewardkit_trainer.rollout import SamplingParams
from rewardkit_trainer.rollout.vllm_engine import VLLMEngine
engine = VLLMEngine(tiny_model(), tiny_tokenizer(), config(), max_num_batched_tokens=int(sys.argv[2]))
params = SamplingParams(num_generations=8, max_completion_length=10, temperature=1.0, seed=5)
print("RESULT" + json.dumps(engine.generate(PROMPTS * 4, params).completion_ids))
engine.close()
"""


@pytest.mark.vllm
def test_batches_larger_than_the_token_budget_sample_the_same():
    # 12 prompts x 8 seeded samples need more prefill than 48 tokens a step; with vLLM's
    # chunked prefill that crashed on CPU (seeded generators cannot rewind). Same samples
    # as an engine with room for everything: seeds, not batching, decide them. Subprocesses:
    # closing an engine tears down vLLM's process-wide state that the module's engine uses.
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    outs = []
    for budget in ("48", "4096"):
        proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _BUDGET_SCRIPT, root, budget],
                              capture_output=True, text=True, timeout=240)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
        assert proc.returncode == 0 and line, proc.stderr[-2000:]
        outs.append(json.loads(line[0][len("RESULT"):]))
    assert len(outs[0]) == 96
    assert outs[0] == outs[1]


@pytest.mark.vllm
def test_weight_sync_follows_trained_weights(full):
    model, engine = full
    before = assert_follows(engine, model)
    perturb(model, seed=1, scale=0.5)
    engine.update_weights(model)
    after = assert_follows(engine, model)
    assert before.logprobs != after.logprobs  # the sync changed what vLLM computes
    # an optimizer step, as the trainer would take it
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ids = torch.tensor([PROMPTS[0] + after.completion_ids[0]])
    model.train()
    model(ids, labels=ids).loss.backward()
    opt.step()
    model.eval()
    engine.update_weights(model)
    assert_follows(engine, model)
    assert len(engine.sync_seconds) == 2


@pytest.mark.vllm
@pytest.mark.parametrize("mode", ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"])
def test_importance_weights_are_one_when_engine_matches_policy(full, mode):
    # the trainer's correction fed with this engine's log-probs: an fp32 engine that
    # follows the policy needs no correction, whatever the mode
    from rewardkit_trainer.losses import importance_weights

    model, engine = full
    out = engine.generate(PROMPTS, SamplingParams(num_generations=2, max_completion_length=8, seed=5))
    width = max(map(len, out.completion_ids))
    trainer_lp, engine_lp, mask = (torch.zeros(len(out.completion_ids), width) for _ in range(3))
    for row, (ids, lps) in enumerate(zip(out.completion_ids, out.logprobs)):
        trainer_lp[row, : len(ids)] = hf_logprobs(model, PROMPTS[row // 2], ids)
        engine_lp[row, : len(ids)] = torch.tensor(lps)
        mask[row, : len(ids)] = 1
    w = importance_weights(trainer_lp, engine_lp, mask, mode=mode, cap=3.0)
    assert torch.allclose(w, mask, atol=1e-3)


@pytest.mark.vllm
@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 4),
    length=st.integers(1, 9),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    top_k=st.sampled_from([0, 1, 5]),
    top_p=st.sampled_from([1.0, 0.9, 0.3]),
    prompts=st.lists(st.lists(st.integers(3, VOCAB - 1), min_size=1, max_size=10), min_size=1, max_size=3),
)
def test_rollout_invariants_for_any_sampling_params(full, n, length, temperature, top_k, top_p, prompts):
    _, engine = full
    params = SamplingParams(num_generations=n, max_completion_length=length, temperature=temperature,
                            top_k=top_k, top_p=top_p, seed=1)
    out = engine.generate(prompts, params)
    assert out.num_completions == n * len(prompts) == len(out.logprobs) == len(out.truncated)
    for ids, lps, cut in zip(out.completion_ids, out.logprobs, out.truncated):
        assert 1 <= len(ids) <= length and len(lps) == len(ids)
        assert all(0 <= t < VOCAB for t in ids) and all(lp <= 1e-6 for lp in lps)
        assert cut == (len(ids) == length and ids[-1] != EOS)
        if top_k == 1 or temperature == 0.0:  # a single candidate: it has probability 1
            assert all(abs(lp) < 1e-4 for lp in lps) or temperature == 0.0


@pytest.mark.vllm
def test_hostile_prompts_raise_cleanly_and_leave_engine_usable(full):
    model, engine = full
    assert engine.generate([], GREEDY).num_completions == 0
    with pytest.raises(ValueError, match="empty"):
        engine.generate([[]], GREEDY)
    with pytest.raises(ValueError, match="context"):
        engine.generate([list(range(3, 90)) * 3], GREEDY)  # longer than the context
    with pytest.raises(ValueError, match="outside"):
        engine.generate([[1, VOCAB + 50], [1, -3]], GREEDY)  # a token outside the vocabulary
    assert_follows(engine, model)


@pytest.mark.vllm
def test_engine_gives_torch_threads_back(full):
    # vLLM-CPU replaces torch.set_num_threads with a no-op and pins 1 thread; the trainer
    # shares the process, so the engine restores both (and uses 1 only while sampling)
    _, engine = full
    assert torch.set_num_threads.__module__ == "torch"
    torch.set_num_threads(2)
    engine.generate(PROMPTS[:1], GREEDY)
    assert torch.get_num_threads() == 2


@pytest.mark.vllm
@pytest.mark.parametrize("sync", ["merged", "adapter"])
def test_lora_sync_follows_adapter(sync):
    model, tok = tiny_lora(), tiny_tokenizer()
    engine = VLLMEngine(model, tok, config(vllm_lora_sync=sync))
    try:
        assert engine.lora_sync == sync
        assert_follows(engine, model)
        perturb_lora(model, seed=5)
        engine.update_weights(model)
        assert_follows(engine, model)
        # the policy itself was not merged or modified by the sync
        assert any(".lora_A." in n for n, _ in model.named_parameters())
    finally:
        engine.close()


@pytest.mark.vllm
def test_sleep_mode_on_cpu_is_said_once_and_sampling_goes_on(caplog):
    model, tok = tiny_model(), tiny_tokenizer()
    with caplog.at_level("WARNING", logger="rewardkit_trainer.rollout.vllm_engine"):
        engine = VLLMEngine(model, tok, config(vllm_enable_sleep_mode=True, vllm_sleep_level=2))
    try:
        said = [r for r in caplog.records if "sleep mode needs CUDA" in r.getMessage()]
        assert len(said) == 1 and not engine.sleep_enabled
        caplog.clear()
        for _ in range(2):  # a rollout, then the trainer's sleep and the sync before the next
            assert_follows(engine, model)
            engine.sleep()
            engine.update_weights(model)
        assert not engine._asleep
        assert not [r for r in caplog.records if "sleep" in r.getMessage()]  # said once, at start
    finally:
        engine.close()


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("kw", [{"vllm_lora_sync": "fused"}, {"vllm_sleep_level": 3}])
def test_invalid_config_raises_before_building(kw):
    with pytest.raises(InvalidArgument, match=next(iter(kw))):
        VLLMEngine(tiny_model(), tiny_tokenizer(), config(**kw))


@pytest.mark.vllm
def test_failed_start_leaves_no_exported_weights(tmp_path):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(), LoraConfig(r=600, target_modules=["q_proj"]))
    with pytest.raises(InvalidArgument, match="r=600"):
        VLLMEngine(model, tiny_tokenizer(), config(vllm_lora_sync="adapter", output_dir=str(tmp_path)))
    assert not (tmp_path / "vllm_model").exists()


def test_non_lora_adapters_are_refused():
    from peft import IA3Config, get_peft_model

    model = get_peft_model(tiny_model(), IA3Config(target_modules=["q_proj"], feedforward_modules=[]))
    with pytest.raises(InvalidArgument, match="peft_type"):
        VLLMEngine(model, tiny_tokenizer(), config())


def test_hf_weights_merges_lora_without_touching_the_policy():
    model = tiny_lora()
    before = {n: p.clone() for n, p in model.named_parameters()}
    merged = dict(hf_weights(model))
    base = tiny_model()
    assert set(merged) == set(base.state_dict())
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    expect = q.base_layer.weight + q.scaling["default"] * q.lora_B["default"].weight @ q.lora_A["default"].weight
    assert torch.allclose(merged["model.layers.0.self_attn.q_proj.weight"], expect, atol=1e-6)
    assert torch.equal(merged["model.layers.0.self_attn.k_proj.weight"], base.model.layers[0].self_attn.k_proj.weight * 1)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])
    # the merged weights reproduce the peft model's forward exactly
    base.load_state_dict(merged, strict=False)
    ids = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        assert torch.allclose(base(ids).logits, model(ids).logits, atol=1e-5)



