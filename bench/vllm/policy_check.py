"""Do both engines sample the policy along whole completions, on the real demo model?

    PYTHONPATH=.:trainer python bench/vllm/policy_check.py --seed 2 --calls 4

Builds the demo trainer (SmolLM2-135M-Instruct + LoRA, built-in engine), runs the SFT warm
start, then builds a vLLM engine on those same weights. Each engine samples 16 prompts x 8
completions per call at the run's temperature (0.8, 48 tokens). Every sampled token is
checked against the policy given its own prefix with the statistics of
tests/trainer/stats.py (surprise, mode, stop, within-group pairs): each z is about N(0, 1)
when the engine draws from the policy. Also prints the format share, length and truncated
share of the samples, the same z's against a temperature 25% off (the power check), and
the z's of surprise, mode and stop per block of 12 positions (0-11, 12-23, 24-35, 36-47).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
sys.path[:0] = [".", "trainer", "tests/trainer"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument("--out", default=None, help="write the table as JSON here too")
    args = ap.parse_args()

    import torch
    from stats import completion_logits, policy_residuals, z_score

    from rewardkit_trainer.cli import demo_config_path
    from rewardkit_trainer.config import load_config
    from rewardkit_trainer.rewards import format_part, score_rollout
    from rewardkit_trainer.rollout import SamplingParams
    from rewardkit_trainer.rollout.vllm_engine import VLLMEngine
    from rewardkit_trainer.sft import sft_warm_start
    from rewardkit_trainer.trainer import GRPOTrainer

    c = load_config(demo_config_path(), rollout_engine="hf", output_dir=tempfile.mkdtemp(prefix="policy-check-"),
                    seed=args.seed, progress=False, report_to=["jsonl"], log_completions=0)
    tr = GRPOTrainer(c)
    sft_warm_start(tr)
    engines = {"hf": tr.engine, "vllm": VLLMEngine(tr.model, tr.tokenizer, c)}
    tr.model.eval()
    t, g, eos = c.temperature, 8, sorted(tr.engine.eos_ids)
    fp = format_part(tr.rubric)
    table = {}
    for name, engine in engines.items():
        stats: dict = {}
        wrong: dict = {}
        fmt, lengths, cut = [], [], []
        buckets: dict = {}  # (statistic, first position of the bucket) -> parts
        for k in range(args.calls):
            rows = tr.train_rows[k * 16 : (k + 1) * 16]
            prompts = [tr.encode_prompt(r["prompt"]) for r in rows]
            out = engine.generate(prompts, SamplingParams(num_generations=g, max_completion_length=c.max_completion_length,
                                                          temperature=t, seed=1000 + k))
            grouped = [r for r in rows for _ in range(g)]
            _, results = score_rollout(tr.rubric, out.texts, [r["prompt"] for r in grouped], grouped, workers=0, timeout=5)
            fmt += [float((r.parts[fp].value or 0) > 0) for r in results]
            lengths += [len(x) for x in out.completion_ids]
            cut += [float(x) for x in out.truncated]
            logits = completion_logits(tr.model, prompts, out.completion_ids, g)
            pos = torch.cat([torch.arange(len(x)) for x in out.completion_ids if x])
            for into, temp in ((stats, t), (wrong, t * 1.25)):
                for key, (res, var) in policy_residuals(tr.model, prompts, out.completion_ids, temp, eos, g,
                                                        logits=logits).items():
                    into.setdefault(key, []).append((res, var))
                    if into is stats and key != "pair":  # pair terms are per pair, not per token
                        for lo in (0, 12, 24, 36):
                            m = (pos >= lo) & (pos < lo + 12)
                            buckets.setdefault((key, lo), []).append((res[m], var[m]))
            print(f"{name}: call {k + 1} of {args.calls} checked", flush=True)

        def z(parts):
            return round(z_score(torch.cat([r for r, _ in parts]), torch.cat([v for _, v in parts])), 2)

        table[name] = {"completions": len(lengths), "tokens": sum(lengths), "format": round(sum(fmt) / len(fmt), 3),
                       "length": round(sum(lengths) / len(lengths), 2), "truncated": round(sum(cut) / len(cut), 3),
                       "z": {k: z(v) for k, v in stats.items()}, "z_T_x1.25": {k: z(v) for k, v in wrong.items()}}
        table[name]["z_by_position"] = {f"{k}@{lo}-{lo + 11}": z(v) for (k, lo), v in buckets.items()}
        print(name, json.dumps(table[name]), flush=True)
    engines["vllm"].close()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"seed": args.seed, "calls": args.calls, "engines": table}, fh, indent=1)


if __name__ == "__main__":
    main()
