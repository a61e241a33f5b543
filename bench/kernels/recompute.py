"""The backward's logits recompute, three ways: which is fastest on this GPU?

    python3 bench/kernels/recompute.py --out $OUT

rewardkit's backward recomputes each [N, cols] logits block to get d loss/d logits for
grad_weight (see trainer/rewardkit_trainer/kernels/_triton.py). ``REWARDKIT_LOGPROB_RECOMPUTE``
picks how: ``triton`` (tl.dot with pointer loads), ``tma`` (persistent, TMA descriptors) or
``cublas`` (float32 logits block from cuBLAS, then an element-wise kernel). For each shape and
mode this measures the one-block kernel time against cuBLAS's plain bf16 matmul of the same
block, and the whole forward+backward (time, peak memory above inputs, and agreement of the
gradients with the ``triton`` mode). Writes recompute.json, recompute.md and best_mode.txt
(the mode with the lowest total forward+backward time over the H=4096 shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import run as kb  # noqa: E402  (bench/kernels/run.py: inputs, timing, peak memory)

from rewardkit_trainer.kernels import _triton  # noqa: E402

MODES = ("triton", "tma", "cublas")
SHAPES = [(8, 4096, 4096, 128256), (8, 16384, 4096, 128256), (8, 8192, 896, 151936)]


def block_times(inp, mode, reps=5):
    hidden, weight, targets, _adv, coef = inp
    n, h = hidden.shape
    v = weight.shape[0]
    _, cols = _triton.plan_blocks(n, v, h, hidden.element_size(), True, mode)
    lse = torch.full((n,), 12.0, device=hidden.device)
    gl = coef.float().contiguous()
    ent = lse
    w = weight[:cols]
    blk = lambda: _triton._dlogits_block(hidden, w, 0, targets, lse, gl, None, ent, 1.0, mode)
    mm = lambda: hidden @ w.t()
    blk(), mm()
    ms_blk, ms_mm = kb.cuda_time(blk, reps), kb.cuda_time(mm, reps)
    flop = 2 * n * h * cols
    return dict(cols=cols, block_ms=ms_blk, block_tflops=flop / ms_blk / 1e9, cublas_bf16_ms=ms_mm,
                cublas_tflops=flop / ms_mm / 1e9)


def profile_frozen(b, t, h, v, out):
    inp = kb.make_inputs(b, t, h, v)
    hidden = inp[0].requires_grad_(True)
    step = lambda: torch.autograd.grad(kb.impl_rewardkit(hidden, inp[1], inp[2], inp[3], inp[4], b, t), [hidden])
    step()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=14)
    kb.log(table)
    with open(os.path.join(out, "profile_frozen.txt"), "w") as f:
        f.write(table)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    device = torch.cuda.get_device_name()
    kb.log(f"device {device}, torch {torch.__version__}")
    rows, totals = [], {m: 0.0 for m in MODES}
    for shape in SHAPES:
        b, t, h, v = shape
        inp = kb.make_inputs(b, t, h, v)
        fl, _parts = kb.floor_ms(inp[0], inp[1], False)
        first = None
        for mode in MODES:
            os.environ["REWARDKIT_LOGPROB_RECOMPUTE"] = mode
            try:
                bt = block_times(inp, mode, args.reps)
                ms, peak, grads = kb.run_impl("rewardkit", kb.impl_rewardkit, inp, b, t, False, args.reps)
            except Exception as exc:  # a mode that cannot compile here is reported, not fatal
                kb.log(f"{shape} {mode}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
                rows.append(dict(shape=shape, mode=mode, error=f"{type(exc).__name__}: {str(exc)[:300]}"))
                totals[mode] = float("inf")
                continue
            if first is None:
                first = grads
                agree = [0.0, 0.0]
            else:
                agree = [kb.rel(a, r) for a, r in zip(grads, first)]
            del grads
            grad_bytes = (b * t + v) * h * 2
            row = dict(shape=shape, mode=mode, ms=ms, x_floor=ms / fl, floor_ms=fl, peak_gib=peak / 2**30,
                       x_grads=peak / grad_bytes, vs_triton_grad_h=agree[0], vs_triton_grad_w=agree[1], **bt)
            kb.log(json.dumps(row))
            rows.append(row)
            if h == 4096:
                totals[mode] += ms
        del first, inp
        torch.cuda.empty_cache()
    os.environ.pop("REWARDKIT_LOGPROB_RECOMPUTE", None)
    best = min(totals, key=totals.get)
    kb.log(f"totals over H=4096 shapes: {totals}; best {best}")
    profile_frozen(8, 4096, 4096, 128256, args.out)
    with open(os.path.join(args.out, "recompute.json"), "w") as fh:
        json.dump(dict(device=device, rows=rows, totals=totals, best=best), fh, indent=1, default=str)
    with open(os.path.join(args.out, "best_mode.txt"), "w") as fh:
        fh.write(best)
    lines = [f"Device: {device}. One block = the backward's [N, cols] recompute; cuBLAS bf16 = `hidden @ w_blk.T` "
             "alone (no float32 output, no element-wise work).", "",
             "| shape | mode | cols | block ms | block TFLOP/s | cuBLAS bf16 TFLOP/s | fwd+bwd ms | x floor | peak GiB | x grads |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['shape']} | {r['mode']} | failed: {r['error'][:80]} |||||||||")
            continue
        lines.append(f"| {r['shape']} | {r['mode']} | {r['cols']} | {r['block_ms']:.3f} | {r['block_tflops']:.0f} | "
                     f"{r['cublas_tflops']:.0f} | {r['ms']:.1f} | {r['x_floor']:.2f} | {r['peak_gib']:.3f} | "
                     f"{r['x_grads']:.2f} |")
    with open(os.path.join(args.out, "recompute.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    kb.log("\n".join(lines))


if __name__ == "__main__":
    main()
