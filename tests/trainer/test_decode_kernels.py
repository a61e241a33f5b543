"""The fused decode step's Triton kernels and the counter-based sampler.

On CPU the kernels run under ``TRITON_INTERPRET=1`` in a subprocess (so the setting never
leaks into other tests): the whole engine with ``kernels=True`` must give the same tokens
as with the PyTorch references and log-probs within 1e-5, greedy, tempered and top-p, with
a prompt long enough for the attention to split over the key axis. On CUDA (``gpu``
marker) the fused, graph-captured bf16 path must follow the policy the way the reference
path does: greedy equal to transformers' in float32, first- and second-token frequencies
within chi-square bounds at bf16, and the Triton sampler equal to the PyTorch one on the
same logits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rewardkit_trainer.rollout.sampling import exponential, philox_bits, sample, sample_reference

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from tiny import tiny_model, tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.timeout(600)


def test_philox_reference_matches_known_triton_words():
    # words from triton's tl.philox (checked in the interpreter test below) for one key/counter
    key = torch.tensor([123456789012345])
    bits = philox_bits(key[:, None], torch.arange(4)[None], torch.tensor(7), torch.tensor(3))
    assert bits.shape == (1, 4) and bool((bits >= 0).all()) and bool((bits < 2**32).all())
    assert len(set(bits[0].tolist())) == 4
    e = exponential(torch.tensor([0, 2**31, 2**32 - 1]))
    assert e[0] > 0 and abs(float(e[1]) - 0.6931) < 1e-3 and e[2] < 17


def test_reference_sampler_is_exact_gumbel_max():
    """Frequencies of the race over one fixed distribution, 20,000 independent rows."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(20000, 1)
    keys = torch.arange(20000)
    tok, lp = sample_reference(logits, torch.tensor([1.0]), keys, torch.zeros(20000, dtype=torch.long),
                               torch.tensor([0]))
    probs = torch.softmax(logits[0], -1)
    counts = torch.bincount(tok, minlength=5).float()
    z = (counts[:4] - probs[:4] * 20000) / (probs[:4] * 20000).sqrt()
    assert z.abs().max() < 5, z
    assert torch.allclose(lp, torch.log(probs)[tok], atol=1e-6)


SCRIPT = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {tests!r})
    import triton, triton.language as tl
    from tiny import tiny_model, tiny_tokenizer
    from rewardkit_trainer.rollout import SamplingParams
    from rewardkit_trainer.rollout.sampling import philox_words, sample, sample_reference
    from rewardkit_trainer.rollout.static import StaticCacheEngine

    @triton.jit
    def words(seed_ptr, out_ptr, col, grow, N: tl.constexpr):
        c = tl.arange(0, N).to(tl.uint32)
        z = c * 0
        b0, b1, b2, b3 = tl.philox(tl.load(seed_ptr), c, z + col, z + grow, z)
        tl.store(out_ptr + tl.arange(0, N), b0.to(tl.int64))
        tl.store(out_ptr + N + tl.arange(0, N), b3.to(tl.int64))

    seed = torch.tensor([123456789012345])
    out = torch.zeros(128, dtype=torch.long)
    words[(1,)](seed, out, 7, 3, N=64)
    ref = philox_words(seed[:, None], torch.arange(64)[None], torch.tensor(7), torch.tensor(3))
    assert torch.equal(out[:64] & 0xFFFFFFFF, ref[0][0]) and torch.equal(out[64:] & 0xFFFFFFFF, ref[3][0]), "philox"

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3000, generator=g) * 3
    args = (torch.tensor([1.25]), torch.tensor([5, 5, 5, 9, 9, 9]), torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([4]))
    filt = torch.log_softmax(logits * 1.25, -1)
    filt[:, 100:] = float("-inf")
    for f in (None, filt):
        for splits in (1, 3):  # 3000 columns: chunks of 1024 with a ragged tail
            a = sample(logits, *args, f, splits=splits, use_triton=True)
            b = sample_reference(logits, *args, f)
            assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-5), ("sampler", splits)

    tok = tiny_tokenizer()
    model = tiny_model(tok, seed=3, hidden=32, layers=2).eval()
    prompts = [tok(t)["input_ids"] for t in ["abc de", "hello there x", "q" * 150]]
    for params in [SamplingParams(num_generations=2, max_completion_length=6, top_k=1, seed=0),
                   SamplingParams(num_generations=2, max_completion_length=6, temperature=0.8, seed=4),
                   SamplingParams(num_generations=2, max_completion_length=6, top_p=0.7, seed=4)]:
        eng = StaticCacheEngine(model, tok, eos_token_ids=(), kernels=True)
        a = eng.generate(prompts, params)
        assert next(iter(eng._states.values())).attn_splits > 1  # the long prompt splits the keys
        b = StaticCacheEngine(model, tok, eos_token_ids=(), kernels=False).generate(prompts, params)
        assert a.completion_ids == b.completion_ids, params
        diff = max(abs(x - y) for la, lb in zip(a.logprobs, b.logprobs) for x, y in zip(la, lb))
        assert diff < 1e-5, diff
    print("ok")
    """
)


def test_kernels_match_references_under_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "trainer"), os.environ.get("PYTHONPATH", "")]))
    code = SCRIPT.format(tests=str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], env=env,
                          capture_output=True, text=True, timeout=550)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


# GPU ------------------------------------------------------------------------------------------
def _qwen_like(dtype):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                      num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=1024,
                      use_sliding_window=False, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg).to(device="cuda", dtype=dtype).eval()


class _Tok:  # token ids only; decoding is not under test here
    pad_token_id, eos_token_id = 0, None

    @staticmethod
    def batch_decode(ids, skip_special_tokens=True):
        return [" ".join(map(str, r)) for r in ids]


@pytest.mark.gpu
def test_fused_greedy_equals_transformers_on_gpu_float32():
    from rewardkit_trainer.rollout import SamplingParams
    from rewardkit_trainer.rollout.static import StaticCacheEngine

    model = _qwen_like(torch.float32)
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, 512, (n,), generator=g).tolist() for n in (5, 300, 77)]  # 300: split keys
    eng = StaticCacheEngine(model, _Tok(), eos_token_ids=())
    r = eng.generate(prompts, SamplingParams(num_generations=2, max_completion_length=20, top_k=1, seed=0))
    assert r.stats["fused"] and r.stats["cuda_graph"]
    for i, p in enumerate(prompts):
        ref = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=20, min_new_tokens=20, do_sample=False,
                             eos_token_id=None, pad_token_id=0)[0, len(p):].tolist()
        assert r.completion_ids[2 * i] == ref and r.completion_ids[2 * i + 1] == ref, i


@pytest.mark.gpu
def test_fused_bf16_path_follows_the_policy_on_gpu():
    """First token and second-token marginal frequencies against exact probabilities
    (from transformers' own forward), 8,000 draws by 200 seeded groups, graphs on."""
    from rewardkit_trainer.rollout import SamplingParams
    from rewardkit_trainer.rollout.base import generate_groups
    from rewardkit_trainer.rollout.static import StaticCacheEngine

    model = _qwen_like(torch.bfloat16)
    prompt = [3, 14, 15, 92, 65]
    eng = StaticCacheEngine(model, _Tok(), eos_token_ids=())
    params = SamplingParams(num_generations=40, max_completion_length=2, temperature=0.7)
    r = generate_groups(eng, [prompt] * 200, params, list(range(200)))
    assert r.stats["tokens"] == 16000
    with torch.no_grad():
        first = torch.softmax(model(torch.tensor([prompt], device="cuda")).logits[0, -1].float() / 0.7, -1)
        ids = torch.cat([torch.tensor([prompt] * 512, device="cuda"), torch.arange(512, device="cuda")[:, None]], 1)
        second = torch.softmax(model(ids).logits[:, -1].float() / 0.7, -1)
    pair = first[:, None] * second
    n = len(r.completion_ids)
    for position, exact in ((0, pair.sum(1)), (1, pair.sum(0))):
        counts = torch.bincount(torch.tensor([c[position] for c in r.completion_ids]), minlength=512).float()
        expected = exact.cpu() * n
        keep = expected > 5
        rest = counts[~keep].sum() - expected[~keep].sum()
        chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
                     + rest**2 / expected[~keep].sum().clamp_min(1e-9))
        dof = int(keep.sum())
        assert chi2 < dof + 5 * (2 * dof) ** 0.5, (position, chi2, dof)


@pytest.mark.gpu
def test_triton_sampler_equals_reference_on_gpu():
    g = torch.Generator().manual_seed(2)
    logits = (torch.randn(64, 151936, generator=g) * 4).to("cuda", torch.bfloat16)
    inv_t = torch.tensor([1 / 0.9], device="cuda")
    keys = torch.randint(0, 2**62, (64,), generator=g).cuda()
    rows = torch.arange(64, device="cuda") % 8
    col = torch.tensor([17], device="cuda")
    a = sample(logits, inv_t, keys, rows, col)
    b = sample_reference(logits, inv_t, keys, rows, col)
    assert (a[0] == b[0]).float().mean() > 0.99  # float log on two code paths: near-ties may differ
    assert torch.allclose(a[1], b[1], atol=1e-4)
