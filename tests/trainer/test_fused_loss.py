"""fused_token_loss: the one-pass GRPO loss against the unfused reference (token_logprobs,
then losses.LOSSES), on the PyTorch path, the Triton path under TRITON_INTERPRET=1 (in a
subprocess, tiny sizes) and CUDA at real sizes (``gpu`` marker); the trainer's switch.

Tolerances are norm-relative: float32 1e-5; bfloat16 1e-2 for gradients (one bf16 rounding of
the result alone is ~1.7e-3, and the Triton path rounds d logits to bf16 before its matmuls).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.kernels import fused_token_loss, token_logprobs
from rewardkit_trainer.logprobs import pick_kernel
from rewardkit_trainer.losses import LOSSES, TOKEN_WEIGHTS, TokenLoss, token_objective

ROOT = Path(__file__).resolve().parents[2]
NORMS = dict(num_sequences=7, num_tokens=31, max_completion_length=9)


def _rel(a, ref):
    return float((a.detach().double() - ref.detach().double()).norm() / ref.detach().double().norm().clamp_min(1e-300))


def _case(seed, b=5, t=8, h=24, v=97, dtype=torch.float32, device="cpu", ignore=False):
    """A right-padded batch: ``select`` = completion tokens (what the kernel sees), ``mask`` =
    tokens in the loss (one sequence dropped, as mask_truncated_completions does)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    select = torch.arange(t)[None, :] < lengths[:, None]
    mask = select.float()
    mask[1] = 0
    n = int(select.sum())
    hidden = torch.randn(n, h, generator=g).to(dtype)
    weight = (torch.randn(v, h, generator=g) * 2 / h**0.5).to(dtype)
    targets = torch.randint(0, v, (n,), generator=g)
    if ignore:
        targets[::5] = -100
    per_tok = lambda scale, shift: (torch.randn(b, t, generator=g) * scale + shift)
    extra = dict(adv=torch.randn(b, generator=g), old_shift=per_tok(0.3, 0.0), ref_shift=per_tok(0.2, 0.0),
                 is_weight=torch.rand(b, t, generator=g) * 2)
    to = lambda x: x.to(device)
    return (to(hidden), to(weight), to(targets), to(select), to(mask), {k: to(x) for k, x in extra.items()})


def _run(case, loss_type, *, fused, temperature=0.8, beta=0.0, use_old=True, use_is=False, frozen=False,
         backend="torch"):
    """(loss, grads) of one micro-batch; fused via TokenLoss, unfused via LOSSES."""
    hidden, weight, targets, select, mask, x = case
    h = hidden.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(not frozen)
    # old / ref log-probs near the current ones (so the clip range is exercised both ways)
    with torch.no_grad():
        lp0 = torch.zeros(select.shape, device=h.device).masked_scatter(
            select, token_logprobs(hidden.float(), weight.float(), targets, temperature=temperature))
    old = (lp0 + x["old_shift"]) * select if use_old else None
    ref = (lp0 + x["ref_shift"]) * select if beta else None
    isw = x["is_weight"] if use_is else None
    opts = dict(epsilon=0.2, epsilon_high=0.28, beta=beta)
    if fused:
        tl = TokenLoss.build(loss_type, x["adv"], mask, select, old_logp=old, ref_logp=ref, is_weight=isw,
                             **opts, **NORMS)
        loss, _ = fused_token_loss(h, w, targets, tl, temperature=temperature, backend=backend)
    else:
        lp = token_logprobs(h, w, targets, temperature=temperature, backend=backend)
        logp = torch.zeros(select.shape, device=h.device).masked_scatter(select, lp)
        loss, _ = LOSSES[loss_type](logp, logp.detach() if old is None else old, x["adv"], mask, ref_logp=ref,
                                    is_weight=isw, **opts, **NORMS)
    grads = torch.autograd.grad(loss, [h] if frozen else [h, w])
    return loss.detach(), grads


@pytest.mark.parametrize("loss_type", sorted(TOKEN_WEIGHTS))
@pytest.mark.parametrize("beta,use_old,use_is", [(0.0, False, False), (0.0, True, True), (0.04, True, False)])
def test_fused_matches_unfused_float32(loss_type, beta, use_old, use_is):
    case = _case(1)
    a = _run(case, loss_type, fused=True, beta=beta, use_old=use_old, use_is=use_is)
    b = _run(case, loss_type, fused=False, beta=beta, use_old=use_old, use_is=use_is)
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-5, abs=1e-8)
    for got, want in zip(a[1], b[1]):
        assert _rel(got, want) < 1e-5


@pytest.mark.parametrize("frozen", [False, True])
def test_fused_matches_unfused_bfloat16(frozen):
    case = _case(2, dtype=torch.bfloat16)
    a = _run(case, "dapo", fused=True, beta=0.04, use_is=True, frozen=frozen)
    b = _run(case, "dapo", fused=False, beta=0.04, use_is=True, frozen=frozen)
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-4)
    for got, want in zip(a[1], b[1]):
        assert got.dtype == torch.bfloat16
        assert _rel(got, want) < 1e-2


def test_fused_frozen_head_and_temperature():
    case = _case(3)
    for temperature in (0.5, 1.3):
        a = _run(case, "grpo", fused=True, temperature=temperature, frozen=True)
        b = _run(case, "grpo", fused=False, temperature=temperature, frozen=True)
        assert len(a[1]) == 1 and _rel(a[1][0], b[1][0]) < 1e-5


def test_ignored_tokens_get_no_loss_and_no_gradient():
    hidden, weight, targets, *_ = _case(4, ignore=True)
    h = hidden.clone().requires_grad_(True)
    loss, logp, ent = fused_token_loss(h, weight, targets, lambda lp, s, e: (lp + 1.0, torch.ones_like(lp)),
                                       return_entropy=True)
    loss.backward()
    ignored = targets < 0
    assert float(h.grad[ignored].abs().max()) == 0.0
    assert float(logp[ignored].abs().max()) == 0.0 and float(ent[ignored].abs().max()) == 0.0
    assert float(loss.detach()) == pytest.approx(float((logp[~ignored] + 1).sum()), rel=1e-6)
    assert not logp.requires_grad and not ent.requires_grad


def test_values_equal_token_logprobs():
    hidden, weight, targets, *_ = _case(5, ignore=True)
    _, logp, ent = fused_token_loss(hidden, weight, targets, lambda lp, s, e: (lp, lp), temperature=0.7,
                                    return_entropy=True)
    lp2, ent2 = token_logprobs(hidden, weight, targets, temperature=0.7, return_entropy=True)
    assert _rel(logp, lp2) < 1e-6 and _rel(ent, ent2) < 1e-6


def test_no_grad_gives_the_same_values():
    hidden, weight, targets, *_ = _case(8, ignore=True)
    coef = lambda lp, s, e: (2 * lp, 2 * torch.ones_like(lp))
    loss, logp = fused_token_loss(hidden.requires_grad_(True), weight, targets, coef)
    with torch.no_grad():
        loss2, logp2 = fused_token_loss(hidden, weight, targets, coef)
    assert torch.equal(logp, logp2) and float(loss.detach()) == float(loss2)


def test_two_micro_batches_accumulate_to_one_batch():
    """Gradient accumulation: the global normalisers make micro-batch grads sum to the batch's."""
    hidden, weight, targets, select, mask, x = _case(6, b=6)
    w = weight.clone().requires_grad_(True)
    h = hidden.clone().requires_grad_(True)
    norms = dict(num_sequences=6, num_tokens=int(mask.sum()), max_completion_length=8)
    full = TokenLoss.build("dapo", x["adv"], mask, select, **norms)
    fused_token_loss(h, w, targets, full)[0].backward()
    want_w, want_h = w.grad.clone(), h.grad.clone()
    w.grad = None
    h.grad = None
    split = int(select[:3].sum())
    for rows, toks in ((slice(0, 3), slice(0, split)), (slice(3, 6), slice(split, None))):
        part = TokenLoss.build("dapo", x["adv"][rows], mask[rows], select[rows], **norms)
        fused_token_loss(h[toks], w, targets[toks], part)[0].backward()
    assert _rel(w.grad, want_w) < 1e-6 and _rel(h.grad, want_h) < 1e-6


def test_backward_scales_by_the_incoming_gradient_and_refuses_a_second():
    hidden, weight, targets, *_ = _case(7)
    w = weight.clone().requires_grad_(True)
    coef = lambda lp, s, e: (lp, torch.ones_like(lp))
    (2.5 * fused_token_loss(hidden, w, targets, coef)[0]).backward()
    twice = w.grad.clone()
    w.grad = None
    fused_token_loss(hidden, w, targets, coef)[0].backward()
    assert _rel(twice, 2.5 * w.grad) < 1e-6
    loss = fused_token_loss(hidden, w, targets, coef)[0]
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


@settings(max_examples=40, deadline=None)
@given(st.floats(-3, 3), st.floats(-1.5, 1.5), st.floats(-3, 3), st.floats(0, 2), st.floats(-1, 1),
       st.sampled_from([0.0, 0.1]))
def test_property_token_objective_derivative_is_autograds(logp, shift, adv, isw, ref_shift, beta):
    lp = torch.tensor([logp], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([logp + shift], dtype=torch.float64)
    value, grad = token_objective(lp, old, torch.tensor([adv], dtype=torch.float64), epsilon=0.2, epsilon_high=0.28,
                                  beta=beta, ref_logp=old + ref_shift, is_weight=torch.tensor([isw], dtype=torch.float64))
    (auto,) = torch.autograd.grad(value.sum(), lp)
    assert float(grad.detach()) == pytest.approx(float(auto), rel=1e-9, abs=1e-12)


def test_token_loss_refuses_gspo():
    with pytest.raises(ValueError, match="token-level"):
        TokenLoss.build("gspo", torch.zeros(1), torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))


def test_pick_kernel():
    h, w = torch.zeros(4, 8), torch.zeros(5, 8, requires_grad=True)
    assert pick_kernel("auto", h, w) == "unfused"  # CPU
    assert pick_kernel("fused", h, w) == "fused"
    with pytest.raises(ValueError, match="kernel"):
        pick_kernel("fast", h, w)


def test_fused_may_pay_keeps_the_unfused_loss_where_the_fused_pass_cannot_win():
    """auto builds a token loss only on CUDA for a trainable lm_head at least 2048 wide;
    elsewhere the trainer's loss is the unfused LOSSES function, exactly as before."""
    from types import SimpleNamespace

    from rewardkit_trainer.logprobs import fused_may_pay

    def model(width, trainable=True):
        head = torch.nn.Linear(width, 7, bias=False).requires_grad_(trainable)
        return SimpleNamespace(get_decoder=lambda: None, get_output_embeddings=lambda: head)

    assert not fused_may_pay("auto", model(2048), "cpu")
    assert fused_may_pay("auto", model(2048), "cuda")
    assert not fused_may_pay("auto", model(896), "cuda")
    assert not fused_may_pay("auto", model(4096, trainable=False), "cuda")
    assert fused_may_pay("fused", model(8), "cpu") and not fused_may_pay("unfused", model(4096), "cuda")


@pytest.mark.parametrize("kw,needle", [(dict(loss_kernel="fast"), "loss_kernel"),
                                       (dict(loss_kernel="fused", loss_type="gspo"), "sequence-level")])
def test_config_loss_kernel_is_validated(kw, needle):
    with pytest.raises(InvalidArgument, match=needle):
        GRPOConfig(model="tiny", **kw)


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_trainer_fused_matches_the_recorded_unfused_numbers(tmp_path, kind, monkeypatch):
    """The tiny one-process run with ``loss_kernel="fused"`` (the PyTorch fused path on CPU)
    logs the losses and grad norms recorded for the unfused loop (lora: grpo, beta 0.04 with
    the adapter-disabled reference, two iterations, frozen lm_head)."""
    from . import test_one_process_unchanged as golden

    real = GRPOConfig.__init__

    def fused_config(self, **kw):
        real(self, **kw, loss_kernel="fused")

    monkeypatch.setattr(GRPOConfig, "__init__", fused_config)
    got = golden.run(tmp_path, kind)
    assert len(got) == 3
    for row, want in zip(got, golden.GOLDEN[kind]):
        assert row["reward/mean"] == want["reward/mean"]
        assert row["loss"] == pytest.approx(want["loss"], rel=1e-4, abs=1e-7)
        assert row["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-4)


# ---------------------------------------------------------------- Triton under the interpreter
_INTERPRETER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ["REWARDKIT_FUSED_BLOCK_MB"] = "0.02"   # 48-row blocks: several, the last ragged
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/trainer", sys.argv[1] + "/tests/trainer"]
    import torch
    from test_fused_loss import _case, _rel, _run
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        for frozen in (False, True):
            case = _case(11, b=6, t=30, h=32, v=203, dtype=dtype)
            a = _run(case, "grpo", fused=True, beta=0.04, use_is=True, frozen=frozen, backend="triton")
            b = _run(case, "grpo", fused=False, beta=0.04, use_is=True, frozen=frozen, backend="torch")
            out[f"{name}-{frozen}"] = [abs(float(a[0]) / float(b[0]) - 1)] + [_rel(x, y) for x, y in zip(a[1], b[1])]
    from rewardkit_trainer.kernels import fused_token_loss
    hid, w, t = case[:3]
    coef = lambda lp, s, e: (lp, torch.ones_like(lp))
    with_grad = fused_token_loss(hid.requires_grad_(True), w, t, coef, backend="triton")
    with torch.no_grad():
        without = fused_token_loss(hid, w, t, coef, backend="triton")
    out["no_grad_same"] = bool(torch.equal(with_grad[1], without[1])) and float(with_grad[0].detach()) == float(without[0])
    os.environ["REWARDKIT_FUSED_LOGITS"] = "half"   # logits kept in bf16: rounded as TRL's
    case = _case(11, b=6, t=30, h=32, v=203, dtype=torch.bfloat16)
    a = _run(case, "grpo", fused=True, beta=0.04, use_is=True, backend="triton")
    b = _run(case, "grpo", fused=False, beta=0.04, use_is=True, backend="torch")
    out["half"] = [abs(float(a[0]) / float(b[0]) - 1)] + [_rel(x, y) for x, y in zip(a[1], b[1])]
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def interpreted():
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items()
           if k not in ("REWARDKIT_LOGPROB_BACKEND", "REWARDKIT_FUSED_BLOCK_MB", "REWARDKIT_FUSED_LOGITS")}
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _INTERPRETER_SCRIPT, str(ROOT)],
                          capture_output=True, text=True, timeout=600, env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[0][len("RESULT"):])


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 1e-2), ("float16", 3e-3)])
@pytest.mark.parametrize("frozen", [False, True])
def test_triton_interpreter_matches_unfused(interpreted, dtype, tol, frozen):
    loss_err, *grad_errs = interpreted[f"{dtype}-{frozen}"]
    assert loss_err < 1e-5
    assert len(grad_errs) == (1 if frozen else 2)
    assert all(e < tol for e in grad_errs)


def test_triton_interpreter_no_grad_same_values(interpreted):
    assert interpreted["no_grad_same"] is True


def test_triton_interpreter_half_logits(interpreted):
    # REWARDKIT_FUSED_LOGITS=half: the kept logits are bf16, so everything is bf16-rounded once more
    loss_err, gh, gw = interpreted["half"]
    assert loss_err < 5e-3 and gh < 2e-2 and gw < 2e-2


def test_half_logits_env_is_validated(monkeypatch):
    from rewardkit_trainer.kernels._fused import logits_dtype

    monkeypatch.setenv("REWARDKIT_FUSED_LOGITS", "fp8")
    with pytest.raises(InvalidArgument, match="REWARDKIT_FUSED_LOGITS"):
        logits_dtype(torch.bfloat16)
    monkeypatch.setenv("REWARDKIT_FUSED_LOGITS", "half")
    assert logits_dtype(torch.bfloat16) == torch.bfloat16 and logits_dtype(torch.float32) == torch.float32


# ---------------------------------------------------------------- CUDA at real sizes
@pytest.mark.gpu
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("b,t,h,v", [(4, 1000, 896, 151936), (2, 1100, 4096, 128256)])
def test_cuda_fused_matches_float32_unfused(b, t, h, v, frozen):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    case = _case(13, b=b, t=t, h=h, v=v, dtype=torch.bfloat16, device="cuda")
    a = _run(case, "dapo", fused=True, beta=0.04, use_is=True, frozen=frozen, backend="auto")
    f32 = tuple(x.float() if x.is_floating_point() else x for x in case[:2]) + case[2:]
    b_ = _run(f32, "dapo", fused=False, beta=0.04, use_is=True, frozen=frozen)
    assert float(a[0]) == pytest.approx(float(b_[0]), rel=1e-4)
    for got, want in zip(a[1], b_[1]):
        assert _rel(got, want) < 4e-3
