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


def _total(run: dict) -> float:
    """Held-out total reward after GRPO (the rubric's weighted sum: correct + 0.2 x format)."""
    return run["after"]["reward"]


def permutation_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact permutation test of a difference in means (every relabelling)."""
    import itertools

    pooled, k = a + b, len(a)
    observed = abs(statistics.mean(a) - statistics.mean(b))
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), k):
        chosen = set(idx)
        x = [pooled[i] for i in idx]
        y = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        hits += abs(statistics.mean(x) - statistics.mean(y)) >= observed - 1e-12
        total += 1
    return hits / total


def fisher_p(a_yes: int, a_n: int, b_yes: int, b_n: int) -> float:
    """Two-sided Fisher's exact test for a 2x2 table (sum of tables no likelier than this one)."""
    from math import comb

    yes, n = a_yes + b_yes, a_n + b_n

    def prob(x: int) -> float:
        return comb(a_n, x) * comb(b_n, yes - x) / comb(n, yes)

    here = prob(a_yes)
    lo, hi = max(0, yes - b_n), min(a_n, yes)
    return min(1.0, sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= here * (1 + 1e-9)))


def summarize(runs: list[dict]) -> str:
    """Per run, per engine (mean and sample sd over seeds), and the tests between engines."""
    lines = ["| engine | seed | held-out acc before / after warm start / after GRPO | format after | total after | "
             "train correct, last 5 steps | train format, last 5 | completion length, last 5 | truncated share, last 5 | "
             "median s/step | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["seed"], r["engine"])):
        st = _grpo(r)
        lines.append(f"| {r['engine']} | {r['seed']} | {r['before']['accuracy']:.3f} / {r['after_sft']['accuracy']:.3f} / "
                     f"**{r['after']['accuracy']:.3f}** | {r['after']['format']:.2f} | {_total(r):.3f} | "
                     f"{_last(st, 'rewards/correct/mean'):.2f} | {_last(st, 'rewards/format/mean'):.2f} | "
                     f"{_last(st, 'completion_length/mean'):.1f} | "
                     f"{_last(st, 'truncated_share'):.2f} | {statistics.median(x['step_seconds'] for x in st):.1f} | "
                     f"{r['wall_s']:.0f} |")
    engines = list(dict.fromkeys(r["engine"] for r in runs))
    lines += ["", "| engine | runs | held-out acc after GRPO, mean +- sd | held-out total reward, mean +- sd | "
              "runs keeping the format (held-out format >= 0.5) | train reward, mean over all steps | "
              "train correct last 5, mean | truncated share last 5, mean |", "|---|---|---|---|---|---|---|---|"]

    def sd(xs):
        return statistics.stdev(xs) if len(xs) > 1 else float("nan")

    per: dict[str, dict[str, list[float]]] = {}
    for engine in engines:
        rs = [r for r in runs if r["engine"] == engine]
        acc = [r["after"]["accuracy"] for r in rs]
        tot = [_total(r) for r in rs]
        auc = [statistics.mean(x["reward/mean"] for x in _grpo(r)) for r in rs]
        kept = [float(r["after"]["format"] >= 0.5) for r in rs]
        per[engine] = {"acc": acc, "total": tot, "auc": auc, "kept": kept}
        lines.append(f"| {engine} | {len(rs)} | {statistics.mean(acc):.3f} +- {sd(acc):.3f} | "
                     f"{statistics.mean(tot):.3f} +- {sd(tot):.3f} | {int(sum(kept))} of {len(rs)} | "
                     f"{statistics.mean(auc):.3f} +- {sd(auc):.3f} | "
                     f"{statistics.mean(_last(_grpo(r), 'rewards/correct/mean') for r in rs):.2f} | "
                     f"{statistics.mean(_last(_grpo(r), 'truncated_share') for r in rs):.2f} |")
    if len(engines) == 2 and all(len(v["acc"]) > 1 for v in per.values()):
        a, b = (per[e] for e in engines)
        lines += ["", f"Between {engines[0]} and {engines[1]} (two-sided; exact permutation test of the mean "
                  "difference, Fisher's exact test for the format outcome):", "",
                  "| quantity | difference of means | p |", "|---|---|---|"]
        for key, label in (("acc", "held-out accuracy after GRPO"), ("total", "held-out total reward after GRPO"),
                           ("auc", "train reward, mean over all steps (area under the curve)")):
            diff = statistics.mean(a[key]) - statistics.mean(b[key])
            lines.append(f"| {label} | {diff:+.3f} | {permutation_p(a[key], b[key]):.2f} |")
        ka, kb = int(sum(a["kept"])), int(sum(b["kept"]))
        lines.append(f"| runs keeping the format | {ka}/{len(a['kept'])} vs {kb}/{len(b['kept'])} | "
                     f"{fisher_p(ka, len(a['kept']), kb, len(b['kept'])):.2f} |")
        steps = min(len(_grpo(r)) for r in runs)
        lines += ["", "Train reward per step, mean over seeds:", "",
                  "| step | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
        for i in range(steps):
            vals = [statistics.mean(_grpo(r)[i]["reward/mean"] for r in runs if r["engine"] == e) for e in engines]
            lines.append(f"| {i + 1} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--engines", default="hf,vllm")
    ap.add_argument("--out", default="bench/results/vllm_seeds.json")
    ap.add_argument("--report", nargs="+", help="only print the tables for existing JSON files (runs pooled)")
    args = ap.parse_args()
    if args.report:
        print(summarize([run for path in args.report for run in json.loads(Path(path).read_text())]))
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
