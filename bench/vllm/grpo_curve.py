"""End-to-end GRPO with each rollout engine: step time and the reward curve.

    PYTHONPATH=.:trainer python bench/vllm/grpo_curve.py --steps 10

Runs the embedded demo config (SmolLM2-135M-Instruct, LoRA r=16, by default 4 prompts x 8
samples x 64 tokens, basic arithmetic, `math` rubric; its SFT warm start is switched off so that only
GRPO steps are timed) once with ``rollout_engine="hf"`` and once with
``"vllm"`` from the same seed, and prints per-step reward and seconds side by side plus
the medians. Writes bench/results/vllm_grpo.json. Limits: one run per engine and few
steps: the curves can only be compared within the noise of sampling (different samplers
draw different completions from the same seed), not token for token.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(engine: str, steps: int, out_root: Path, **overrides) -> list[dict]:
    from rewardkit_trainer.cli import demo_config_path
    from rewardkit_trainer.config import load_config
    from rewardkit_trainer.trainer import GRPOTrainer

    out = out_root / engine
    config = load_config(demo_config_path(), max_steps=steps, output_dir=str(out), rollout_engine=engine,
                         progress=False, report_to=["jsonl"], save_merged=False, log_completions=0, sft_steps=0,
                         **overrides)
    trainer = GRPOTrainer(config)
    trainer.train(evaluate=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--engines", default="hf,vllm")
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--out", default="bench/results/vllm_grpo.json")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            results[engine] = run(engine, args.steps, Path(tmp), prompts_per_step=args.prompts_per_step,
                                  num_generations=args.generations, max_completion_length=args.tokens)
            print(engine, [round(r.get("reward/mean", float("nan")), 3) for r in results[engine]], flush=True)
    keys = ("reward/mean", "step_seconds", "rollout_seconds", "tokens_per_s")
    print("\n| engine | " + " | ".join(f"median {k}" for k in keys) + " | mean reward, last half |")
    print("|---|" + "---|" * (len(keys) + 1))
    for engine, rows in results.items():
        meds = [statistics.median(r.get(k, float("nan")) for r in rows) for k in keys]
        half = [r["reward/mean"] for r in rows[len(rows) // 2 :]]
        print(f"| {engine} | " + " | ".join(f"{m:.3f}" for m in meds) + f" | {statistics.mean(half):.3f} |")
    print("\nstep | " + " | ".join(f"{e} reward" for e in results))
    for i in range(args.steps):
        print(f"{i + 1} | " + " | ".join(f"{rows[i]['reward/mean']:.3f}" if i < len(rows) else "-"
                                          for rows in results.values()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
