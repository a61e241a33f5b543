"""The embedded demo, several seeds per rollout engine: do vLLM and the built-in engine learn alike?

    PYTHONPATH=.:trainer python bench/vllm/seeds.py --seeds 0,1,2 --engines hf,vllm

Runs the whole `rewardkit-train --demo` config (SmolLM2-135M-Instruct, LoRA r=16, 3-step
format-only warm start, 20 GRPO steps, G=8, 4 prompts per step, T=0.8, 64 held-out prompts,
greedy evaluation) with only ``seed`` and ``rollout_engine`` changed. The seed moves the
LoRA init, the prompt order and the sampler; the held-out set and the training pool are
fixed (``dataset_seed``). Runs are interleaved (hf s0, vllm s0, hf s1, ...) and the JSON is
rewritten after every run, so a cut-short session still leaves matched pairs.

Writes bench/results/vllm_seeds.json: per run the held-out accuracy/format before, after the
warm start and after GRPO, the per-step training metrics, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def one_run(engine: str, seed: int, root: Path) -> dict:
    from rewardkit_trainer.cli import demo_config_path
    from rewardkit_trainer.config import load_config
    from rewardkit_trainer.trainer import GRPOTrainer

    out = root / f"{engine}-{seed}"
    config = load_config(demo_config_path(), seed=seed, rollout_engine=engine, output_dir=str(out),
                         progress=False, report_to=["jsonl"], save_merged=False, log_completions=0)
    start = time.perf_counter()
    result = GRPOTrainer(config).train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"engine": engine, "seed": seed, "wall_s": round(time.perf_counter() - start, 1),
            "before": result["before"], "after_sft": result["after_sft"], "after": result["after"],
            "steps": rows}


def _grpo(run: dict) -> list[dict]:
    return [x for x in run["steps"] if "step_seconds" in x]  # GRPO steps only (not the warm start's row)


def _last(rows: list[dict], key: str, k: int = 5) -> float:
    vals = [r[key] for r in rows[-k:] if key in r]
    return statistics.mean(vals) if vals else float("nan")


def summarize(runs: list[dict]) -> str:
    """Per run, then per engine (mean and sample sd over seeds)."""
    lines = ["| engine | seed | held-out acc before / after warm start / after GRPO | format after | "
             "train correct, last 5 steps | completion length, last 5 | truncated share, last 5 | "
             "median s/step | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        st = _grpo(r)
        lines.append(f"| {r['engine']} | {r['seed']} | {r['before']['accuracy']:.3f} / {r['after_sft']['accuracy']:.3f} / "
                     f"**{r['after']['accuracy']:.3f}** | {r['after']['format']:.2f} | "
                     f"{_last(st, 'rewards/correct/mean'):.2f} | {_last(st, 'completion_length/mean'):.1f} | "
                     f"{_last(st, 'truncated_share'):.2f} | {statistics.median(x['step_seconds'] for x in st):.1f} | "
                     f"{r['wall_s']:.0f} |")
    lines += ["", "| engine | runs | held-out acc after GRPO, mean +- sd | train correct last 5, mean | "
              "truncated share last 5, mean |", "|---|---|---|---|---|"]
    for engine in dict.fromkeys(r["engine"] for r in runs):
        rs = [r for r in runs if r["engine"] == engine]
        acc = [r["after"]["accuracy"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        lines.append(f"| {engine} | {len(rs)} | {statistics.mean(acc):.3f} +- {sd:.3f} | "
                     f"{statistics.mean(_last(_grpo(r), 'rewards/correct/mean') for r in rs):.2f} | "
                     f"{statistics.mean(_last(_grpo(r), 'truncated_share') for r in rs):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--engines", default="hf,vllm")
    ap.add_argument("--out", default="bench/results/vllm_seeds.json")
    ap.add_argument("--report", help="only print the tables for an existing JSON")
    args = ap.parse_args()
    if args.report:
        print(summarize(json.loads(Path(args.report).read_text())))
        return
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for engine in args.engines.split(","):
                run = one_run(engine, seed, Path(tmp))
                runs.append(run)
                print(f"{engine} seed {seed}: acc {run['before']['accuracy']:.3f} -> "
                      f"{run['after_sft']['accuracy']:.3f} -> {run['after']['accuracy']:.3f} "
                      f"({run['wall_s']:.0f} s)", flush=True)
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(runs, indent=1))
    print(summarize(runs))


if __name__ == "__main__":
    main()
