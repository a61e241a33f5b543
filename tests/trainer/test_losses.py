"""Loss variants and advantages against direct, loop-based reference computations."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit_trainer.losses import (LOSSES, dapo_loss, dr_grpo_loss, grpo_loss, group_advantages, gspo_loss,
                                      importance_weights, kl_k3)


def _batch(seed=0, b=6, t=5):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(b, t, generator=g) * 3
    old = logp + (torch.rand(b, t, generator=g) - 0.5) * 0.8
    ref = logp + (torch.rand(b, t, generator=g) - 0.5) * 0.4
    adv = torch.randn(b, generator=g)
    lengths = [t, 1, 3, t, 2, 4][:b]
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(t)] for n in lengths])
    return logp, old, ref, adv, mask


def _tok(lp, o, r, a, eps_lo, eps_hi, beta):
    ratio = math.exp(lp - o)
    obj = min(ratio * a, min(max(ratio, 1 - eps_lo), 1 + eps_hi) * a)
    k3 = math.exp(r - lp) - (r - lp) - 1
    return -obj + beta * k3


@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_variants_match_loops(beta):
    logp, old, ref, adv, mask = _batch()
    b, t = logp.shape
    eps_lo, eps_hi = 0.2, 0.28
    per = [[_tok(float(logp[i, j]), float(old[i, j]), float(ref[i, j]), float(adv[i]), eps_lo, eps_hi, beta)
            for j in range(t) if mask[i, j]] for i in range(b)]
    want = {
        "grpo": sum(sum(r) / len(r) for r in per) / b,
        "dapo": sum(sum(r) for r in per) / sum(len(r) for r in per),
        "dr_grpo": sum(sum(r) for r in per) / (b * 16),
    }
    kw = dict(epsilon=eps_lo, epsilon_high=eps_hi, beta=beta, ref_logp=ref, max_completion_length=16)
    for name, fn in (("grpo", grpo_loss), ("dapo", dapo_loss), ("dr_grpo", dr_grpo_loss)):
        got, metrics = fn(logp, old, adv, mask, **kw)
        assert float(got) == pytest.approx(want[name], rel=1e-5), name
        assert 0.0 <= metrics["clip_fraction"] <= 1.0
        assert metrics["kl"] >= 0.0


def test_gspo_matches_loop():
    logp, old, ref, adv, mask = _batch(3)
    total = 0.0
    for i in range(logp.shape[0]):
        idx = [j for j in range(logp.shape[1]) if mask[i, j]]
        s = sum(float(logp[i, j] - old[i, j]) for j in idx) / len(idx)
        ratio = math.exp(s)
        a = float(adv[i])
        total += -min(ratio * a, min(max(ratio, 0.8), 1.2) * a)
    got, _ = gspo_loss(logp, old, adv, mask, epsilon=0.2)
    assert float(got) == pytest.approx(total / logp.shape[0], rel=1e-5)


def test_on_policy_gradient_is_advantage_weighted_score():
    """At ratio 1 every variant's gradient is -A * d logp / normaliser (no clipping)."""
    logp, _, _, adv, mask = _batch(1)
    x = logp.clone().requires_grad_(True)
    loss, m = dapo_loss(x, x.detach(), adv, mask)
    loss.backward()
    expected = -adv[:, None] * mask / mask.sum()
    assert torch.allclose(x.grad, expected, atol=1e-6)
    assert m["clip_fraction"] == 0.0


def test_microbatch_sums_equal_full_batch():
    logp, old, ref, adv, mask = _batch(2)
    n_tok, n_seq = mask.sum(), logp.shape[0]
    for name, fn in LOSSES.items():
        full, _ = fn(logp, old, adv, mask, beta=0.1, ref_logp=ref, max_completion_length=8)
        parts = sum(float(fn(logp[s], old[s], adv[s], mask[s], beta=0.1, ref_logp=ref[s], num_tokens=n_tok,
                             num_sequences=n_seq, max_completion_length=8)[0]) for s in (slice(0, 2), slice(2, 6)))
        assert parts == pytest.approx(float(full), rel=1e-5), name


def test_clipping_stops_gradient_beyond_the_trust_region():
    logp = torch.zeros(1, 2, requires_grad=True)
    old = torch.tensor([[-1.0, 0.0]])  # first token ratio e ~ 2.7 > 1.2
    loss, m = grpo_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), epsilon=0.2)
    loss.backward()
    assert logp.grad[0, 0] == 0.0 and logp.grad[0, 1] != 0.0
    assert m["clip_fraction"] == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=8, max_size=8), st.sampled_from(["group", "batch", "none"]))
def test_advantages_match_definition(rewards, scale):
    r = torch.tensor(rewards)
    got = group_advantages(r, 4, scale)
    for gi in range(2):
        grp = rewards[gi * 4 : gi * 4 + 4]
        mean = sum(grp) / 4
        std = torch.tensor(grp).std().item() if scale == "group" else torch.tensor(rewards).std().item()
        for j, v in enumerate(grp):
            want = (v - mean) / (std + 1e-4) if scale != "none" else v - mean
            assert float(got[gi * 4 + j]) == pytest.approx(want, abs=1e-4)
    assert abs(float(got.sum())) < 1e-3 * max(1.0, float(got.abs().max()))


def test_constant_group_gives_zero_advantage():
    assert torch.equal(group_advantages(torch.ones(8), 4), torch.zeros(8))


@settings(max_examples=40, deadline=None)
@given(st.floats(-10, 10), st.floats(-10, 10))
def test_k3_is_nonnegative_and_zero_at_equality(a, b):
    assert float(kl_k3(torch.tensor(a), torch.tensor(b))) >= -1e-6
    assert float(kl_k3(torch.tensor(a), torch.tensor(a))) == 0.0


@pytest.mark.parametrize("mode", ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"])
def test_importance_weights_modes(mode):
    trainer = torch.tensor([[0.0, 0.0, 0.0], [-0.1, -0.1, 0.0]])
    engine = torch.tensor([[-2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    w = importance_weights(trainer, engine, mask, mode, cap=3.0)
    e2 = math.exp(2.0)  # > cap
    if mode == "token_truncate":
        want = [[3.0, 1, 1], [math.exp(-0.1), math.exp(-0.1), 0]]
    elif mode == "token_mask":
        want = [[0.0, 1, 1], [math.exp(-0.1), math.exp(-0.1), 0]]
    elif mode == "sequence_truncate":
        want = [[min(e2, 3.0)] * 3, [math.exp(-0.2)] * 2 + [0]]
    else:
        want = [[0.0] * 3, [math.exp(-0.2)] * 2 + [0]]
    assert torch.allclose(w, torch.tensor(want), atol=1e-5)


def test_importance_weight_scales_policy_term():
    logp, old, _, adv, mask = _batch(4)
    w = torch.full_like(logp, 0.5)
    base, _ = dapo_loss(logp, old, adv, mask)
    half, _ = dapo_loss(logp, old, adv, mask, is_weight=w)
    assert float(half) == pytest.approx(0.5 * float(base), rel=1e-5)


def test_importance_weights_drop_nan_tokens():
    import torch

    from rewardkit_trainer.losses import importance_weights

    trainer = torch.tensor([[-1.0, -2.0, float("nan")]])
    engine = torch.tensor([[-1.0, -2.0, -0.5]])
    mask = torch.ones(1, 3)
    w = importance_weights(trainer, engine, mask, "token_truncate", 3.0)
    assert torch.equal(w, torch.tensor([[1.0, 1.0, 0.0]]))


@pytest.mark.parametrize("mode", ["token_truncate", "sequence_mask"])
def test_sampling_metrics_report_gap_weights_and_masked_share(mode):
    from rewardkit_trainer.losses import sampling_metrics

    trainer = torch.tensor([[0.0, 0.0, 0.0], [-0.1, -0.1, 0.0], [0.0, 0.0, 0.0]])
    engine = torch.tensor([[-2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # row 3: an empty completion
    entry = {"old": trainer, "eng": engine, "mask": mask, "is": importance_weights(trainer, engine, mask, mode, 3.0)}
    m = sampling_metrics([entry], mode)
    assert m["sampling/sampling_logp_difference/mean"] == pytest.approx(2.2 / 5)
    assert m["sampling/sampling_logp_difference/max"] == pytest.approx(2.0)
    if mode == "token_truncate":  # five real tokens, the first capped
        want = [3.0, 1.0, 1.0, math.exp(-0.1), math.exp(-0.1)]
        masked = 0.0
    else:  # two real sequences, the first zeroed (e^2 > cap)
        want = [0.0, math.exp(-0.2)]
        masked = 0.5
    assert m["sampling/importance_sampling_ratio/min"] == pytest.approx(min(want))
    assert m["sampling/importance_sampling_ratio/mean"] == pytest.approx(sum(want) / len(want))
    assert m["sampling/importance_sampling_ratio/max"] == pytest.approx(max(want))
    assert m["sampling/importance_sampling_masked_share"] == masked
