"""token_logprobs: the PyTorch chunked path against a float64 full-logits reference, the
Triton kernels on the CPU under TRITON_INTERPRET=1 (in a subprocess, so the interpreter
setting never leaks into other tests), and CUDA at real sizes (``gpu`` marker).

Tolerances are norm-relative (||x - ref|| / ||ref||): float32 inputs 1e-5; bfloat16 inputs
1e-2 for gradients (one bf16 rounding of the output alone is ~1.7e-3, and the Triton path also
rounds d logits to bf16 before its matmuls) and 1e-5 for log-probs (computed in float32).
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
from rewardkit_trainer.kernels import naive_token_logprobs, token_logprobs

ROOT = Path(__file__).resolve().parents[2]


def _rel(a, ref):
    return float((a.detach().double() - ref).norm() / ref.norm().clamp_min(1e-300))


def _inputs(n, h, v, dtype, seed, scale=2.0, ignore_every=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g).to(device=device, dtype=dtype)
    weight = (torch.randn(v, h, generator=g) * scale / h**0.5).to(device=device, dtype=dtype)
    targets = torch.randint(0, v, (n,), generator=g).to(device)
    if ignore_every:
        targets[::ignore_every] = -100
    gl = torch.randn(n, generator=g).to(device)
    ge = torch.randn(n, generator=g).to(device)
    return hidden, weight, targets, gl, ge


def _both(hidden, weight, targets, gl, ge, *, temperature, entropy_grad, frozen=False, **kw):
    """(logp, entropy, grad_h, grad_w) from token_logprobs and from the float64 reference."""
    out = []
    for fn in (token_logprobs, naive_token_logprobs):
        ref = fn is naive_token_logprobs
        h = hidden.detach().clone()
        w = weight.detach().clone()
        if ref:
            h, w = h.double(), w.double()
        h.requires_grad_(True)
        w.requires_grad_(not frozen)
        lp, en = fn(h, w, targets, temperature=temperature, return_entropy=True, **({} if ref else kw))
        g = gl.to(lp.dtype)
        loss = (lp * g).sum() + ((en * ge.to(en.dtype)).sum() if entropy_grad else 0)
        grads = torch.autograd.grad(loss, [h] if frozen else [h, w])
        out.append((lp.detach(), en.detach(), *grads))
    return out


SHAPES = [(1, 1, 1), (7, 5, 3), (33, 17, 257), (130, 48, 1001)]


@pytest.mark.parametrize("n,h,v", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("entropy_grad", [False, True])
def test_torch_path_matches_float64(n, h, v, dtype, tol, entropy_grad):
    hidden, weight, targets, gl, ge = _inputs(n, h, v, dtype, seed=n + v, ignore_every=5)
    mine, ref = _both(hidden, weight, targets, gl, ge, temperature=0.7, entropy_grad=entropy_grad,
                      backend="torch", chunk=16)
    assert mine[0].dtype == torch.float32 and mine[1].dtype == torch.float32
    assert mine[2].dtype == dtype and mine[3].dtype == dtype
    for got, want in zip(mine[:2], ref[:2]):
        if want.norm() > 0:
            assert _rel(got, want) < 1e-5
    for got, want in zip(mine[2:], ref[2:]):
        if want.norm() > 0:
            assert _rel(got, want) < tol
        else:
            assert float(got.abs().max()) == 0.0


def test_ignore_index_gives_zero_and_no_gradient():
    hidden, weight, targets, gl, ge = _inputs(40, 16, 50, torch.float32, seed=3)
    targets[::3] = -100
    targets[1] = -1
    mine, _ = _both(hidden, weight, targets, gl, ge, temperature=1.0, entropy_grad=True, backend="torch")
    ignored = targets < 0
    assert bool((mine[0][ignored] == 0).all()) and bool((mine[1][ignored] == 0).all())
    assert float(mine[2][ignored].abs().max()) == 0.0
    assert float(mine[2][~ignored].abs().max()) > 0.0


def test_all_ignored_gives_zero_gradients():
    hidden, weight, targets, gl, ge = _inputs(9, 8, 20, torch.float32, seed=4)
    targets[:] = -100
    mine, _ = _both(hidden, weight, targets, gl, ge, temperature=1.0, entropy_grad=True, backend="torch")
    assert all(float(t.abs().max()) == 0.0 for t in mine)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_frozen_weight_skips_its_gradient(dtype, tol):
    hidden, weight, targets, gl, ge = _inputs(50, 24, 300, dtype, seed=5, ignore_every=4)
    mine, ref = _both(hidden, weight, targets, gl, ge, temperature=1.3, entropy_grad=False, frozen=True,
                      backend="torch", chunk=7)
    assert len(mine) == 3
    assert _rel(mine[2], ref[2]) < tol


def test_tied_embedding_gradients_accumulate():
    """The lm_head weight is also the input embedding: both uses must add into one grad."""
    hidden_ids = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    targets = torch.tensor([1, 4, 1, 5, 9, 2, 6, -100])
    g = torch.Generator().manual_seed(6)
    base = torch.randn(12, 8, generator=g)
    grads = []
    for ref in (False, True):
        w = base.clone().double() if ref else base.clone()
        w.requires_grad_(True)
        hidden = torch.nn.functional.embedding(hidden_ids, w) * 1.5
        fn = naive_token_logprobs if ref else token_logprobs
        lp = fn(hidden, w, targets) if ref else fn(hidden, w, targets, backend="torch", chunk=3)
        (lp.sum() + hidden.pow(2).sum() * 0.1).backward()
        grads.append(w.grad)
    assert _rel(grads[0], grads[1]) < 1e-5


def test_temperature_equals_scaled_hidden():
    hidden, weight, targets, _, _ = _inputs(20, 10, 40, torch.float32, seed=7)
    a = token_logprobs(hidden, weight, targets, temperature=2.5, backend="torch")
    b = token_logprobs(hidden / 2.5, weight, targets, temperature=1.0, backend="torch")
    assert _rel(a, b.double()) < 1e-6


def test_empty_batch():
    hidden = torch.zeros(0, 4, requires_grad=True)
    weight = torch.randn(6, 4, requires_grad=True)
    lp = token_logprobs(hidden, weight, torch.zeros(0, dtype=torch.long))
    assert lp.shape == (0,)
    lp.sum().backward()
    assert float(weight.grad.abs().max()) == 0.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), h=st.integers(1, 9), v=st.integers(1, 40), seed=st.integers(0, 2**16),
       temperature=st.floats(0.25, 4.0), chunk=st.integers(1, 8))
def test_property_probabilities_normalize(n, h, v, seed, temperature, chunk):
    """Over all V targets of one row, the probabilities sum to 1 and each log-prob is <= 0."""
    hidden, weight, _, _, _ = _inputs(n, h, v, torch.float32, seed=seed)
    rows = hidden.repeat_interleave(v, 0)
    targets = torch.arange(v).repeat(n)
    lp, ent = token_logprobs(rows, weight, targets, temperature=temperature, return_entropy=True,
                             backend="torch", chunk=chunk)
    lp = lp.view(n, v).double()
    assert bool((lp <= 1e-6).all())
    assert torch.allclose(lp.exp().sum(1), torch.ones(n, dtype=torch.float64), atol=1e-5)
    # the entropy is the expectation of -log p
    assert torch.allclose(ent.view(n, v)[:, 0].double(), -(lp.exp() * lp).sum(1), atol=1e-4)


BAD = [
    (dict(hidden=(4, 3), weight=(5, 2)), "shape"),
    (dict(hidden=(4,), weight=(5, 3)), "2-D"),
    (dict(targets=(3,)), "targets.shape"),
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(backend="cuda"), "backend"),
    (dict(target_value=5), "vocab"),
    (dict(target_dtype=torch.float32), "targets.dtype"),
    (dict(weight_dtype=torch.float64), "dtype"),
]


@pytest.mark.parametrize("kw,needle", BAD)
def test_invalid_arguments(kw, needle):
    hidden = torch.randn(*kw.get("hidden", (4, 3)))
    weight = torch.randn(*kw.get("weight", (5, 3)), dtype=kw.get("weight_dtype", torch.float32))
    targets = torch.full(kw.get("targets", (4,)), kw.get("target_value", 1), dtype=kw.get("target_dtype", torch.long))
    with pytest.raises(InvalidArgument, match=needle):
        token_logprobs(hidden, weight, targets, temperature=kw.get("temperature", 1.0),
                       backend=kw.get("backend", "auto"))


def test_env_backend_override(monkeypatch):
    hidden, weight, targets, _, _ = _inputs(5, 4, 6, torch.float32, seed=8)
    monkeypatch.setenv("REWARDKIT_LOGPROB_BACKEND", "nonsense")
    with pytest.raises(InvalidArgument, match="REWARDKIT_LOGPROB_BACKEND"):
        token_logprobs(hidden, weight, targets)
    monkeypatch.setenv("REWARDKIT_LOGPROB_BACKEND", "torch")
    assert token_logprobs(hidden, weight, targets).shape == (5,)
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        monkeypatch.setenv("REWARDKIT_LOGPROB_BACKEND", "triton")
        with pytest.raises(InvalidArgument, match="CUDA"):
            token_logprobs(hidden, weight, targets)


# ---------------------------------------------------------------- Triton under the interpreter
_INTERPRETER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ["REWARDKIT_LOGPROB_BLOCK_MB"] = "0.00001"   # 64-row / 64-column blocks: several, ragged
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/trainer", sys.argv[1] + "/tests/trainer"]
    import torch
    from test_kernels import _both, _inputs, _rel
    from rewardkit_trainer.kernels import token_logprobs
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        for eg in (False, True):
            hid, w, t, gl, ge = _inputs(150, 40, 203, dtype, seed=11, ignore_every=6)
            mine, ref = _both(hid, w, t, gl, ge, temperature=0.7, entropy_grad=eg, backend="triton")
            out[f"{name}-{eg}"] = [_rel(a, b) for a, b in zip(mine, ref)] + [
                float(mine[2][t < 0].abs().max()), str(mine[2].dtype), str(mine[3].dtype)]
        hid, w, t, gl, ge = _inputs(70, 24, 90, dtype, seed=12)
        mine, ref = _both(hid, w, t, gl, ge, temperature=1.0, entropy_grad=False, frozen=True, backend="triton")
        out[f"{name}-frozen"] = [_rel(mine[2], ref[2])]
    for mode in ("tma", "cublas"):  # the other backward recomputes (default: tma on Hopper)
        os.environ["REWARDKIT_LOGPROB_RECOMPUTE"] = mode
        for eg in (False, True):
            hid, w, t, gl, ge = _inputs(150, 40, 203, torch.bfloat16, seed=11, ignore_every=6)
            mine, ref = _both(hid, w, t, gl, ge, temperature=0.7, entropy_grad=eg, backend="triton")
            out[f"{mode}-{eg}"] = [_rel(a, b) for a, b in zip(mine, ref)]
    os.environ.pop("REWARDKIT_LOGPROB_RECOMPUTE")
    h = torch.randn(8, 4, requires_grad=True)
    lp = token_logprobs(h, torch.randn(9, 4), torch.arange(8), backend="triton")
    lp.sum().backward(retain_graph=True)
    try:
        lp.sum().backward()
        out["second_backward"] = "no error"
    except RuntimeError as exc:
        out["second_backward"] = str(exc)
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def interpreted():
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k not in ("REWARDKIT_LOGPROB_BACKEND", "REWARDKIT_LOGPROB_RECOMPUTE")}
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _INTERPRETER_SCRIPT, str(ROOT)],
                          capture_output=True, text=True, timeout=600, env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[0][len("RESULT"):])


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 1e-2), ("float16", 2e-3)])
@pytest.mark.parametrize("entropy_grad", [False, True])
def test_triton_interpreter_matches_float64(interpreted, dtype, tol, entropy_grad):
    lp, ent, gh, gw, ignored_max, gh_dtype, gw_dtype = interpreted[f"{dtype}-{entropy_grad}"]
    assert lp < 1e-5 and ent < 1e-5
    assert gh < tol and gw < tol
    assert ignored_max == 0.0
    assert gh_dtype == gw_dtype == f"torch.{dtype}"


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 1e-2), ("float16", 2e-3)])
def test_triton_interpreter_frozen_weight(interpreted, dtype, tol):
    assert interpreted[f"{dtype}-frozen"][0] < tol


@pytest.mark.parametrize("mode", ["tma", "cublas"])
@pytest.mark.parametrize("entropy_grad", [False, True])
def test_triton_interpreter_recompute_modes(interpreted, mode, entropy_grad):
    # the same bfloat16 case as above, with the TMA-descriptor and the cuBLAS recompute
    lp, ent, gh, gw = interpreted[f"{mode}-{entropy_grad}"]
    assert lp < 1e-5 and ent < 1e-5
    assert gh < 1e-2 and gw < 1e-2
    assert interpreted[f"bfloat16-{entropy_grad}"][2:4] == pytest.approx([gh, gw], rel=0.05)


def test_recompute_mode_env(monkeypatch):
    pytest.importorskip("triton")
    from rewardkit_trainer.kernels._triton import recompute_mode

    monkeypatch.setenv("REWARDKIT_LOGPROB_RECOMPUTE", "fast")
    with pytest.raises(InvalidArgument, match="REWARDKIT_LOGPROB_RECOMPUTE"):
        recompute_mode(torch.zeros(2, 8, dtype=torch.bfloat16))
    monkeypatch.setenv("REWARDKIT_LOGPROB_RECOMPUTE", "tma")
    assert recompute_mode(torch.zeros(2, 8)) == "cublas"  # float32 never goes through tensor cores
    assert recompute_mode(torch.zeros(2, 12, dtype=torch.bfloat16)) == "triton"  # rows not 16-byte aligned


def test_triton_second_backward_raises(interpreted):
    # autograd's saved-tensor version check (or our own guard) refuses: the saved D became grad_hidden
    msg = interpreted["second_backward"]
    assert "inplace" in msg or "retain_graph" in msg


# ---------------------------------------------------------------- CUDA at real sizes
@pytest.mark.gpu
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("n,h,v", [(4096, 1024, 32000), (3000, 896, 151936), (2049, 4096, 128256)])
def test_cuda_matches_float32_reference(n, h, v, frozen):
    hidden, weight, targets, gl, ge = _inputs(n, h, v, torch.bfloat16, seed=13, ignore_every=9, device="cuda")
    res = []
    for dtype, backend in ((torch.bfloat16, "auto"), (torch.float32, "torch")):
        hd = hidden.to(dtype).requires_grad_(True)
        w = weight.to(dtype).requires_grad_(not frozen)
        lp = token_logprobs(hd, w, targets, backend=backend, temperature=0.9)
        res.append((lp.detach(), *torch.autograd.grad((lp * gl).sum(), [hd] if frozen else [hd, w])))
    assert _rel(res[0][0], res[1][0].double()) < 1e-5
    for got, want in zip(res[0][1:], res[1][1:]):
        assert _rel(got, want.double()) < 4e-3


@pytest.mark.gpu
def test_cuda_dispatches_to_triton():
    from rewardkit_trainer.kernels import _pick

    assert _pick(torch.zeros(1, device="cuda"), "auto") == "triton"
