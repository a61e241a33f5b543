"""Distributed GRPO scaling: completion tokens/s and peak memory per rank at 1, 2, ... N
ranks, with the bundled loop under torchrun on whatever the machine has.

    python bench/distributed/run.py --device cpu  [--max-ranks 2]   # gloo, 1 thread a rank
    python bench/distributed/run.py --device cuda [--max-ranks 8] --hidden 2048 --layers 16 \\
        --vocab 32000 --tokens 256 --dtype bfloat16                # NCCL, one GPU a rank

The first row is the one-process path (plain ``python``, no torchrun: one seed per step,
no process group); scaling is relative to torchrun with 1 rank. Each world size runs
``bench_worker.py`` (a random-init Llama, EOS outside its vocabulary so
every completion is ``--tokens`` long) for ``--steps`` steps; the first step is warm-up
and left out. ``--prompts`` is the global prompts per step, so each rank does 1/N of it:
tokens/s is the whole step's completion tokens over its wall time (rollout, rewards,
loss and optimizer step). The refresh column is the gather of FSDP2-sharded weights into
each rank's rollout copy after the optimizer step (full fine-tuning; 0 with ``--lora``,
whose engine decodes from the replicated policy). Peak memory: CUDA ``max_memory_allocated`` per rank on GPU, the
process's max RSS on CPU (the Python and torch baseline included). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def run(ranks: int, args: argparse.Namespace, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"rk-dist-{ranks}-"))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "trainer"), str(HERE), env.get("PYTHONPATH", "")])
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    cmd = [*(launch if ranks else [sys.executable]), str(HERE / "bench_worker.py"), "--out", str(out), *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stdout[-3000:] + done.stderr[-3000:])
    per_rank = [json.loads((out / f"rank{r}.json").read_text()) for r in range(max(1, ranks))]
    steps = per_rank[0]["step_seconds"][1:]  # after warm-up; every rank waits for the slowest
    tokens = per_rank[0]["completion_tokens"][1:]
    mem = [r["peak_cuda_gib"] if r["peak_cuda_gib"] is not None else r["peak_rss_gib"] for r in per_rank]
    refresh = per_rank[0]["refresh_seconds"][1:]
    return {"ranks": ranks, "tokens_per_s": sum(tokens) / sum(steps), "step_s": sum(steps) / len(steps),
            "refresh_ms": 1000 * sum(refresh) / len(refresh) if refresh else 0.0,
            "peak_gib_max": max(mem), "peak_gib_min": min(mem), "loss_grad_norm": per_rank[0]["loss_grad_norm"]}


def compare_lora(args: argparse.Namespace, extra: list[str]) -> None:
    """LoRA at ``--max-ranks`` ranks, DDP (the trainer's choice) against FSDP2 with a
    rollout copy, alternated ``--repeats`` times in this one run."""
    rows = []
    for rep in range(args.repeats):
        for how in ("ddp", "fsdp2"):
            r = run(args.max_ranks, args, [*extra, "--lora", "--lora-sharding", how])
            rows.append({**r, "how": how, "rep": rep})
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"device {args.device}; {args.max_ranks} ranks; worker args: {' '.join(extra) or '(defaults)'}")
    print("\n| LoRA sharding | repeat | completion tokens/s | step s | rollout-copy refresh ms | peak GiB per rank "
          "| loss, grad norm of the last step |\n|---|---|---|---|---|---|---|")
    for r in rows:
        loss, norm = r["loss_grad_norm"][-1]
        print(f"| {r['how']} | {r['rep']} | {r['tokens_per_s']:.1f} | {r['step_s']:.2f} | {r['refresh_ms']:.1f} | "
              f"{r['peak_gib_min']:.3f}-{r['peak_gib_max']:.3f} | {loss:.6f}, {norm:.6f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--max-ranks", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="OMP threads per rank")
    ap.add_argument("--compare-lora", action="store_true", help="LoRA: DDP against FSDP2 at --max-ranks ranks")
    ap.add_argument("--repeats", type=int, default=2, help="with --compare-lora: alternations")
    args, extra = ap.parse_known_args()
    if args.max_ranks is None:
        import torch

        args.max_ranks = torch.cuda.device_count() if args.device == "cuda" else 2
    if args.compare_lora:
        return compare_lora(args, extra)
    sizes = [0] + [n for n in (1, 2, 4, 8, 16) if n <= args.max_ranks]  # 0: plain python, no torchrun
    rows = [run(n, args, extra) for n in sizes]
    base = rows[1]["tokens_per_s"]
    kind = "CUDA max_memory_allocated" if args.device == "cuda" else "max RSS"
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"device {args.device}; worker args: {' '.join(extra) or '(defaults)'}")
    print(f"\n| ranks | completion tokens/s | scaling | step s | rollout-copy refresh ms | "
          f"peak GiB per rank ({kind}) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['ranks'] or '1, no torchrun'} | {r['tokens_per_s']:.1f} | {r['tokens_per_s'] / base:.2f}x | {r['step_s']:.2f} | "
              f"{r['refresh_ms']:.1f} | {r['peak_gib_min']:.2f}-{r['peak_gib_max']:.2f} |")


if __name__ == "__main__":
    main()
