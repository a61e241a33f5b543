"""Where does the GPU sit idle during a rewardkit token-log-prob step? (diagnostic, one GPU)

    python3 bench/kernels/trace.py --out $OUT

For 8x4096 x 4096 x 128256 bf16 with a trainable lm_head: (1) runs one step under
``torch.cuda.set_sync_debug_mode("warn")`` and prints every synchronizing call; (2) profiles
one step (CPU and CUDA), prints the ops by self CPU time and the largest idle gaps between
consecutive GPU kernels with the CPU op that was running when each gap ended.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
import run as kb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--shape", default="8,4096,4096,128256")
    args = ap.parse_args()
    b, t, h, v = (int(x) for x in args.shape.split(","))
    inp = kb.make_inputs(b, t, h, v)
    hidden, weight = inp[0].requires_grad_(True), inp[1].requires_grad_(True)

    def fwd():
        return kb.impl_rewardkit(hidden, weight, inp[2], inp[3], inp[4], b, t)

    step = lambda: torch.autograd.grad(fwd(), [hidden, weight])
    step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        step()
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    kb.log(f"synchronizing calls in one step: {len(caught)}")
    for w in caught[:10]:
        kb.log("  SYNC:", str(w.message)[:300], f"({w.filename}:{w.lineno})")

    # CPU time to issue the forward and the backward (no sync inside) vs their GPU time
    for name, fn in (("forward", fwd), ("step", step)):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        del out
        kb.log(f"{name}: CPU issue {1e3 * (t1 - t0):.1f} ms, until GPU done {1e3 * (t2 - t0):.1f} ms")

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    kb.log(table)
    evs = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    evs.sort(key=lambda e: e.time_range.start)
    cpu = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU]
    gaps = []
    for a, c in zip(evs, evs[1:]):
        gap = c.time_range.start - a.time_range.end
        if gap > 20:
            gaps.append((gap, a.name[:50], c.name[:50], c.time_range.start))
    gaps.sort(reverse=True)
    total_gap = sum(g[0] for g in gaps)
    kb.log(f"GPU idle gaps > 20 us: {len(gaps)}, total {total_gap / 1e3:.2f} ms; largest:")
    for gap, an, cn, start in gaps[:15]:
        running = [e.name for e in cpu if e.time_range.start <= start - gap <= e.time_range.end]
        kb.log(f"  {gap / 1e3:7.3f} ms after {an!r} before {cn!r}; CPU in: {running[-3:]}")
    with open(os.path.join(args.out, "trace.txt"), "w") as fh:
        fh.write(table)


if __name__ == "__main__":
    main()
