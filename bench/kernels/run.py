"""Token log-prob kernels: rewardkit (unfused ``token_logprobs`` and the one-pass
``fused_token_loss``) vs naive, TRL, Liger and cut-cross-entropy, on one GPU.

One command (device machine, wheels carried in .whl):
    python3 bench/kernels/run.py --out $OUT
Measures, per shape (B x T, H, V), bf16: forward+backward time (median of CUDA-event timed
runs after a warm-up), peak memory above the inputs (gradients included), and the relative
error ||x - ref|| / ||ref|| of log-probs and both gradients against an fp32 reference (the
PyTorch chunked path on upcast inputs). The loss is GRPO's policy term at ratio 1:
sum_i coef_i * logp_i with coef_i = -advantage_b / (B*T) (DAPO normalization), which is the
gradient Liger's fused GRPO loss produces, so all five are compared on the same gradient.
Floor: the three [N,H]x[H,V] matmuls timed alone in cuBLAS (two with a frozen lm_head).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

import torch

sys.path[:0] = [os.path.join(os.path.dirname(__file__), "..", ".."), os.path.join(os.path.dirname(__file__), "..", "..", "trainer")]

from rewardkit_trainer.kernels import fused_token_loss, naive_token_logprobs, token_logprobs  # noqa: E402

SHAPES = [
    (8, 1024, 896, 151936),
    (8, 8192, 896, 151936),
    (8, 4096, 4096, 128256),
    (8, 16384, 4096, 128256),
    (8, 20480, 4096, 128256),
]
FROZEN = [(8, 4096, 4096, 128256), (8, 16384, 4096, 128256)]
DEV = "cuda"


class _Cpu:
    """Stand-ins so that ``--dry-run`` exercises the whole script on a CPU."""

    @staticmethod
    def sync():
        if DEV == "cuda":
            torch.cuda.synchronize()

    @staticmethod
    def allocated():
        return torch.cuda.memory_allocated() if DEV == "cuda" else 0

    @staticmethod
    def reset_peak():
        if DEV == "cuda":
            torch.cuda.reset_peak_memory_stats()

    @staticmethod
    def peak():
        return torch.cuda.max_memory_allocated() if DEV == "cuda" else 1

    @staticmethod
    def empty_cache():
        if DEV == "cuda":
            torch.cuda.empty_cache()


def log(*a):
    print(*a, flush=True)


def make_inputs(b, t, h, v, seed=0):
    g = torch.Generator(device=DEV).manual_seed(seed)
    n = b * t
    hidden = torch.randn(n, h, device=DEV, generator=g).to(torch.bfloat16)
    # logits with a standard deviation of about 2: an LLM-like, neither flat nor one-hot softmax
    weight = (torch.randn(v, h, device=DEV, generator=g) * (2.0 / h**0.5)).to(torch.bfloat16)
    targets = torch.randint(0, v, (n,), device=DEV, generator=g)
    adv = torch.randn(b, device=DEV, generator=g)
    coef = (-adv / n).repeat_interleave(t)
    return hidden, weight, targets, adv, coef


# ---------------------------------------------------------------- implementations
def impl_rewardkit(hidden, weight, targets, adv, coef, b, t):
    return (token_logprobs(hidden, weight, targets) * coef).sum()


def impl_fused(hidden, weight, targets, adv, coef, b, t):
    # the same loss: value coef * logp, derivative coef, per token
    return fused_token_loss(hidden, weight, targets, lambda lp, s, e: (coef[s:e] * lp, coef[s:e]))[0]


def impl_fused_half(hidden, weight, targets, adv, coef, b, t):
    os.environ["REWARDKIT_FUSED_LOGITS"] = "half"  # the kept logits in bf16 (log-probs rounded as TRL's)
    try:
        return impl_fused(hidden, weight, targets, adv, coef, b, t)
    finally:
        os.environ.pop("REWARDKIT_FUSED_LOGITS")


def impl_naive(hidden, weight, targets, adv, coef, b, t):
    logits = hidden @ weight.t()
    logp = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
    return (logp * coef).sum()


_TRL_NOTE = []


def _trl_ready():
    """TRL's backward imports trl.trainer.utils (datasets, ...); if that cannot import on the
    device, stand in its one helper used there, a ZeRO-3 gather that is a no-op on one GPU."""
    if _TRL_NOTE:
        return
    try:
        import trl.trainer.utils  # noqa: F401

        _TRL_NOTE.append("real trl.trainer.utils")
    except Exception as exc:
        import contextlib
        import types

        mod = types.ModuleType("trl.trainer.utils")
        mod.maybe_gather_lm_head_ctx = lambda *a, **k: contextlib.nullcontext()
        sys.modules["trl.trainer.utils"] = mod
        _TRL_NOTE.append(f"trl.trainer.utils stubbed ({type(exc).__name__}: {exc})")
    log("TRL:", _TRL_NOTE[0])


def impl_trl(hidden, weight, targets, adv, coef, b, t):
    _trl_ready()
    from trl.kernels import ChunkedLogProbFunction

    out = ChunkedLogProbFunction.apply(hidden, weight, None, targets, 1.0, 32768, None, 1.0, ())
    return (out[0] * coef).sum()


_LIGER = {}


def impl_liger(hidden, weight, targets, adv, coef, b, t):
    if "loss" not in _LIGER:
        from liger_kernel.chunked_loss import LigerFusedLinearGRPOLoss

        _LIGER["loss"] = LigerFusedLinearGRPOLoss(beta=0.0, use_ref_model=False, compiled=False)
    mask = torch.ones(b, t, device=DEV, dtype=torch.long)
    out = _LIGER["loss"](hidden.view(b, t, -1), weight, targets.view(b, t), mask, adv)
    return out[0] if isinstance(out, tuple) else out


def impl_cce(hidden, weight, targets, adv, coef, b, t):
    from cut_cross_entropy import linear_cross_entropy

    ce = linear_cross_entropy(hidden, weight, targets, reduction="none")
    return -(ce.float() * coef).sum()


IMPLS = {"rewardkit": impl_rewardkit, "fused": impl_fused, "fused_half": impl_fused_half, "naive": impl_naive, "trl": impl_trl, "liger": impl_liger, "cce": impl_cce}


# ---------------------------------------------------------------- measurement
def cuda_time(fn, reps):
    times = []
    if DEV != "cuda":
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        _Cpu.sync()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def floor_ms(hidden, weight, frozen, rows=8192, reps=3):
    n, h = hidden.shape
    v = weight.shape[0]
    g = torch.Generator(device=DEV).manual_seed(1)
    lg = torch.randn(min(rows, n), v, device=DEV, generator=g).to(hidden.dtype) * 1e-3
    dh = torch.empty(min(rows, n), h, device=DEV, dtype=hidden.dtype)
    dw = torch.empty_like(weight)
    chunks = [(s, min(n, s + rows)) for s in range(0, n, rows)]

    def fwd():
        for s, e in chunks:
            torch.mm(hidden[s:e], weight.t(), out=lg[: e - s])

    def bh():
        for s, e in chunks:
            torch.mm(lg[: e - s], weight, out=dh[: e - s])

    def bw():
        for s, e in chunks:
            torch.mm(lg[: e - s].t(), hidden[s:e], out=dw)

    parts = [fwd, bh] + ([] if frozen else [bw])
    for p in parts:
        p()
    ms = [cuda_time(p, reps) for p in parts]
    del lg, dh, dw
    return sum(ms), ms


def run_impl(name, fn, inp, b, t, frozen, reps):
    hidden, weight, targets, adv, coef = inp
    h = hidden.detach().requires_grad_(True)
    w = weight.detach().requires_grad_(not frozen)
    params = [h] if frozen else [h, w]

    def step():
        loss = fn(h, w, targets, adv, coef, b, t)
        return torch.autograd.grad(loss, params)

    gc.collect()
    _Cpu.empty_cache()
    try:
        step()  # warm-up: compilation, autotuning, cuBLAS handles
        _Cpu.sync()
        gc.collect()
        _Cpu.empty_cache()
        base = _Cpu.allocated()
        _Cpu.reset_peak()
        grads = step()
        _Cpu.sync()
        peak = _Cpu.peak() - base
        del grads

        def timed():
            gr = step()
            del gr

        ms = cuda_time(timed, reps)
        grads = step()
        return ms, peak, grads
    except torch.OutOfMemoryError:
        gc.collect()
        _Cpu.empty_cache()
        return None, None, None


def reference(inp, frozen):
    hidden, weight, targets, adv, coef = inp
    h = hidden.detach().float().requires_grad_(True)
    w = weight.detach().float().requires_grad_(not frozen)
    logp = token_logprobs(h, w, targets, backend="torch", chunk=2048)
    grads = torch.autograd.grad((logp * coef).sum(), [h] if frozen else [h, w])
    return logp.detach(), grads


def rel(a, ref):
    return float((a.float() - ref).norm() / ref.norm().clamp_min(1e-30))


def rel_scaled(a, ref):
    """Error after the best scalar fit: Liger's loss normalization may differ by a constant."""
    a = a.float()
    alpha = float((a * ref).sum() / (a * a).sum().clamp_min(1e-30))
    return rel(a * alpha, ref)


# ---------------------------------------------------------------- correctness at a small shape
def check_small():
    rows = []
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        for ent_grad in (False, True):
            g = torch.Generator(device=DEV).manual_seed(7)
            n, hd, v = 3001, 320, 5003
            h = torch.randn(n, hd, device=DEV, generator=g).to(dt).requires_grad_(True)
            w = (torch.randn(v, hd, device=DEV, generator=g) / hd**0.5 * 3).to(dt).requires_grad_(True)
            t = torch.randint(0, v, (n,), device=DEV, generator=g)
            t[::7] = -100
            gl = torch.randn(n, device=DEV, generator=g)
            ge = torch.randn(n, device=DEV, generator=g)
            lp, en = token_logprobs(h, w, t, temperature=0.7, return_entropy=True)
            loss = (lp * gl).sum() + ((en * ge).sum() if ent_grad else 0)
            gh, gw = torch.autograd.grad(loss, (h, w))
            h2, w2 = h.detach().double().requires_grad_(True), w.detach().double().requires_grad_(True)
            lp2, en2 = naive_token_logprobs(h2, w2, t, temperature=0.7, return_entropy=True)
            loss2 = (lp2 * gl.double()).sum() + ((en2 * ge.double()).sum() if ent_grad else 0)
            gh2, gw2 = torch.autograd.grad(loss2, (h2, w2))
            r = [float((a.detach().double() - b_).norm() / b_.norm()) for a, b_ in ((lp, lp2), (en, en2), (gh, gh2), (gw, gw2))]
            ok = all(x == x for x in r) and float(gh[::7].abs().max()) == 0.0
            rows.append(dict(dtype=str(dt), entropy_grad=ent_grad, logp=r[0], entropy=r[1], grad_h=r[2], grad_w=r[3], ignored_zero=ok))
            log(f"check {dt} entgrad={ent_grad} logp {r[0]:.2e} ent {r[1]:.2e} gh {r[2]:.2e} gw {r[3]:.2e} ignored_zero={ok}")
    return rows


def check_fused_small():
    """fused_token_loss against float64 full logits: a GRPO-like coefficient, ignored rows,
    temperature, trainable and frozen lm_head, bf16 and fp32."""
    rows = []
    for dt in (torch.float32, torch.bfloat16):
        for frozen in (False, True):
            g = torch.Generator(device=DEV).manual_seed(9)
            n, hd, v = 3001, 320, 5003
            h = torch.randn(n, hd, device=DEV, generator=g).to(dt).requires_grad_(True)
            w = (torch.randn(v, hd, device=DEV, generator=g) / hd**0.5 * 3).to(dt).requires_grad_(not frozen)
            t = torch.randint(0, v, (n,), device=DEV, generator=g)
            t[::7] = -100
            a = torch.randn(n, device=DEV, generator=g)
            old = torch.randn(n, device=DEV, generator=g) * 0.1 - 7
            coefficient = lambda lp, s, e: (a[s:e] * torch.exp(lp - old[s:e]), a[s:e] * torch.exp(lp - old[s:e]))
            os.environ["REWARDKIT_FUSED_BLOCK_MB"] = "2"  # several ragged blocks
            loss, lp, en = fused_token_loss(h, w, t, coefficient, temperature=0.7, return_entropy=True)
            os.environ.pop("REWARDKIT_FUSED_BLOCK_MB")
            params = (h,) if frozen else (h, w)
            grads = torch.autograd.grad(loss, params)
            h2 = h.detach().double().requires_grad_(True)
            w2 = w.detach().double().requires_grad_(not frozen)
            lp2, en2 = naive_token_logprobs(h2, w2, t, temperature=0.7, return_entropy=True)
            loss2 = (a.double() * torch.exp(lp2 - old.double()) * (t >= 0)).sum()
            grads2 = torch.autograd.grad(loss2, (h2,) if frozen else (h2, w2))
            r = [float((x.detach().double() - y).norm() / y.norm()) for x, y in ((lp, lp2), (en, en2))]
            r += [float((x.double() - y).norm() / y.norm()) for x, y in zip(grads, grads2)]
            r.append(abs(float(loss) - float(loss2)) / abs(float(loss2)))
            ok = float(grads[0][::7].abs().max()) == 0.0
            rows.append(dict(dtype=str(dt), frozen=frozen, errors=r, ignored_zero=ok))
            log(f"fused check {dt} frozen={frozen}: logp/ent/grads/loss errors " + " ".join(f"{x:.1e}" for x in r)
                + f" ignored_zero={ok}")
    return rows


FUSED_SWEEP = [((8, 1024, 896, 151936), False, ["256", "", "4096"]),
               ((8, 16384, 4096, 128256), False, ["256", "", "4096"])]
FROZEN_SWEEP = [((8, 4096, 4096, 128256), True, ["", "256", "512"])]


def fused_sweep(out_rows, plan):
    """REWARDKIT_FUSED_BLOCK_MB: block size against the accumulator's (trainable lm_head) or
    the weight's (frozen) re-reads."""
    for shape, frozen, budgets in plan:
        b, t, h, v = shape
        inp = make_inputs(b, t, h, v)
        for mb in budgets:
            if mb:
                os.environ["REWARDKIT_FUSED_BLOCK_MB"] = mb
            else:
                os.environ.pop("REWARDKIT_FUSED_BLOCK_MB", None)
            ms, peak, g = run_impl("fused", impl_fused, inp, b, t, frozen, 3)
            del g
            log(f"fused sweep {shape}{' frozen' if frozen else ''} block_mb={mb or 'default'}: {ms:.2f} ms, "
                f"peak {peak / 2**30:.3f} GiB")
            out_rows.append(dict(kind="sweep", impl="fused" + (" frozen" if frozen else ""), shape=shape,
                                 block_mb=mb or "default", ms=ms, peak=peak))
        os.environ.pop("REWARDKIT_FUSED_BLOCK_MB", None)
        del inp
        gc.collect()
        _Cpu.empty_cache()


# ---------------------------------------------------------------- profile
def profile_rewardkit(b, t, h, v, out, fname="profile.txt"):
    inp = make_inputs(b, t, h, v)
    hidden, weight = inp[0].requires_grad_(True), inp[1].requires_grad_(True)
    step = lambda: torch.autograd.grad(impl_rewardkit(hidden, weight, inp[2], inp[3], inp[4], b, t), [hidden, weight])
    step()
    _Cpu.sync()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        _Cpu.sync()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=12)
    log(table)
    fwd_ms = cuda_time(lambda: impl_rewardkit(hidden, weight, inp[2], inp[3], inp[4], b, t), 3)
    all_ms = cuda_time(step, 3)
    log(f"rewardkit {b}x{t},{h},{v}: forward {fwd_ms:.2f} ms, forward+backward {all_ms:.2f} ms")
    with open(os.path.join(out, fname), "w") as f:
        f.write(table)


def sweep(out_rows, impls_ok):
    """Block budget sweep for the rewardkit path at two shapes."""
    for shape in [(8, 1024, 896, 151936), (8, 4096, 4096, 128256)]:
        b, t, h, v = shape
        inp = make_inputs(b, t, h, v)
        for mb in ["32", "", "512", "2048"]:
            if mb:
                os.environ["REWARDKIT_LOGPROB_BLOCK_MB"] = mb
            else:
                os.environ.pop("REWARDKIT_LOGPROB_BLOCK_MB", None)
            ms, peak, g = run_impl("rewardkit", impl_rewardkit, inp, b, t, False, 3)
            del g
            log(f"sweep {shape} block_mb={mb or 'default'}: {ms:.2f} ms, peak {peak / 2**30:.3f} GiB")
            out_rows.append(dict(kind="sweep", shape=shape, block_mb=mb or "default", ms=ms, peak=peak))
        os.environ.pop("REWARDKIT_LOGPROB_BLOCK_MB", None)
        del inp


def bench_shape(shape, frozen, impls, results, ref_ok=True):
    b, t, h, v = shape
    n = b * t
    inp = make_inputs(b, t, h, v)
    elem = 2
    grad_bytes = n * h * elem + (0 if frozen else v * h * elem)
    fl, parts = floor_ms(inp[0], inp[1], frozen)
    mm_tflops = 2 * n * h * v / (parts[0] * 1e-3) / 1e12
    log(f"\n== shape {b}x{t}, H={h}, V={v}{' frozen lm_head' if frozen else ''}: floor {fl:.2f} ms "
        f"({'+'.join(f'{p:.2f}' for p in parts)}; fwd matmul {mm_tflops:.0f} TFLOP/s), grads {grad_bytes / 2**30:.3f} GiB")
    ref = reference(inp, frozen) if ref_ok else None
    reps = 5 if n * v < 2e9 else 3
    for name in impls:
        fn = IMPLS[name]
        if name == "liger" and frozen:
            continue
        t0 = time.time()
        try:
            ms, peak, grads = run_impl(name, fn, inp, b, t, frozen, reps if name != "liger" else 2)
        except Exception as exc:  # a peer failing must not stop the table
            log(f"{name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
            results.append(dict(shape=shape, frozen=frozen, impl=name, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            continue
        row = dict(shape=shape, frozen=frozen, impl=name, floor_ms=fl, floor_parts=parts, grad_bytes=grad_bytes,
                   mm_tflops=mm_tflops)
        if ms is None:
            row.update(oom=True)
            log(f"{name}: out of memory")
        else:
            row.update(ms=ms, x_floor=ms / fl, peak=peak, x_grads=peak / grad_bytes)
            if ref is not None:
                errf = rel_scaled if name == "liger" else rel
                row["err_grad_h"] = errf(grads[0], ref[1][0])
                if not frozen:
                    row["err_grad_w"] = errf(grads[1], ref[1][1])
                if name != "liger":
                    # log-probs themselves, recomputed without grad for the error
                    with torch.no_grad():
                        lp = _logp_only(name, inp, b, t)
                    if lp is not None:
                        row["err_logp"] = rel(lp, ref[0])
            del grads
            log(f"{name}: {ms:.2f} ms = {ms / fl:.2f}x floor, peak {peak / 2**30:.3f} GiB = {peak / grad_bytes:.2f}x grads, "
                + ", ".join(f"{k} {row[k]:.1e}" for k in ("err_logp", "err_grad_h", "err_grad_w") if k in row)
                + f"  [{time.time() - t0:.0f}s]")
        results.append(row)
    del inp, ref
    gc.collect()
    _Cpu.empty_cache()


def _logp_only(name, inp, b, t):
    hidden, weight, targets = inp[:3]
    if name == "rewardkit":
        return token_logprobs(hidden, weight, targets)
    if name in ("fused", "fused_half"):
        os.environ["REWARDKIT_FUSED_LOGITS"] = "half" if name == "fused_half" else "float32"
        out = fused_token_loss(hidden, weight, targets, lambda lp, s, e: (lp, lp))[1]
        os.environ.pop("REWARDKIT_FUSED_LOGITS")
        return out
    if name == "trl":
        from trl.kernels import ChunkedLogProbFunction

        return ChunkedLogProbFunction.apply(hidden, weight, None, targets, 1.0, 32768, None, 1.0, ())[0]
    if name == "cce":
        from cut_cross_entropy import linear_cross_entropy

        return -linear_cross_entropy(hidden, weight, targets, reduction="none").float()
    if name == "naive":
        try:
            return torch.log_softmax((hidden @ weight.t()).float(), -1).gather(1, targets[:, None]).squeeze(1)
        except torch.OutOfMemoryError:
            return None
    return None


def write_md(results, checks, out, device):
    lines = [f"Device: {device}. bf16 inputs; time = forward+backward median; peak = memory above inputs "
             "(gradients included); errors vs fp32 reference (||x-ref||/||ref||).", "",
             "| shape (BxT, H, V) | impl | time ms | x floor | peak GiB | x grads | err logp | err grad_h | err grad_w |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("kind") == "sweep":
            continue
        b, t, h, v = r["shape"]
        sh = f"{b}x{t}, {h}, {v}" + (" frozen" if r["frozen"] else "")
        if "error" in r:
            lines.append(f"| {sh} | {r['impl']} | failed: {r['error'][:60]} | | | | | | |")
            continue
        if r.get("oom"):
            lines.append(f"| {sh} | {r['impl']} | OOM | | | | | | |")
            continue
        f = lambda k, fmt: (fmt % r[k]) if k in r else "-"
        lines.append(f"| {sh} | {r['impl']} | {r['ms']:.1f} | {r['x_floor']:.2f} | {r['peak'] / 2**30:.3f} | "
                     f"{r['x_grads']:.2f} | {f('err_logp', '%.1e')} | {f('err_grad_h', '%.1e')} | {f('err_grad_w', '%.1e')} |")
    sweeps = [r for r in results if r.get("kind") == "sweep"]
    if sweeps:
        lines += ["", "Block budget sweep (rewardkit, REWARDKIT_LOGPROB_BLOCK_MB):", "",
                  "| shape | impl, block MiB | time ms | peak GiB |", "|---|---|---|---|"]
        lines += [f"| {'x'.join(map(str, r['shape'][:2]))}, {r['shape'][2]}, {r['shape'][3]} | "
                  f"{r.get('impl', 'rewardkit')} {r['block_mb']} | "
                  f"{r['ms']:.1f} | {r['peak'] / 2**30:.3f} |" for r in sweeps]
    with open(os.path.join(out, "kernels.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    log("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--impls", default="rewardkit,trl,cce,naive,liger")
    ap.add_argument("--shapes", default="all", help="'all' or indices, e.g. 0,2")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--fused-sweep", action="store_true")
    ap.add_argument("--frozen-sweep", action="store_true")
    ap.add_argument("--frozen", default="all", help="'all', 'none' or indices into FROZEN")
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, to test this script")
    args = ap.parse_args()
    global DEV, SHAPES, FROZEN
    if args.dry_run:
        DEV = "cpu"
        SHAPES = [(2, 64, 32, 1000), (2, 96, 48, 777)]
        FROZEN = SHAPES[:1]
    os.makedirs(args.out, exist_ok=True)
    device = torch.cuda.get_device_name() if DEV == "cuda" else "cpu (dry run)"
    log(f"device {device}, torch {torch.__version__}")
    results = []
    checks = check_small() if DEV == "cuda" else []
    fused_checks = check_fused_small()
    from rewardkit_trainer.kernels import _triton

    log("mm out_dtype=float32 available:", _triton._out_dtype_ok)
    probe = torch.zeros(2, 4096, device=DEV, dtype=torch.bfloat16)
    device += (f"; backward recompute `{_triton.recompute_mode(probe)}` "
               f"(REWARDKIT_LOGPROB_RECOMPUTE={os.environ.get('REWARDKIT_LOGPROB_RECOMPUTE', 'auto')})")
    log(device)
    if not args.no_sweep and DEV == "cuda":
        sweep(results, None)
    if args.fused_sweep and DEV == "cuda":
        fused_sweep(results, FUSED_SWEEP)
    if args.frozen_sweep and DEV == "cuda":
        fused_sweep(results, FROZEN_SWEEP)
    if not args.no_profile and DEV == "cuda":
        profile_rewardkit(8, 4096, 4096, 128256, args.out)
        profile_rewardkit(8, 1024, 896, 151936, args.out, "profile_small.txt")
    impls = args.impls.split(",")
    idx = range(len(SHAPES)) if args.shapes == "all" else [int(i) for i in args.shapes.split(",")]
    for i in idx:
        bench_shape(SHAPES[i], False, impls, results, ref_ok=SHAPES[i][1] <= 16384)
    fidx = [] if args.frozen == "none" else range(len(FROZEN)) if args.frozen == "all" else [int(i) for i in args.frozen.split(",")]
    for i in fidx:
        bench_shape(FROZEN[i], True, [i for i in impls if i != "liger"], results)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(dict(device=device, checks=checks, fused_checks=fused_checks, results=results), fh, indent=1,
                  default=str)
    write_md(results, checks, args.out, device)


if __name__ == "__main__":
    main()
