"""The embedded demo recipe on several tasks and seeds, runs in parallel on one machine.

    python bench/recipes/run.py --model M.gguf --data DIR --jobs products:0:gate,... \
        [--parallel 12] [--out results.json]

A job is ``task:seed:variant``; the variant overrides a few settings (``VARIANTS``: ``gate``
is ``math_rubric(format_gate=True)``, ``nogate`` the default rubric). Everything else is the
demo's config (trainer/rewardkit_trainer/data/demo.toml) with the task's JSONL
(bench/recipes/make_data.py). Each run is ``python -m rewardkit_trainer CONFIG`` in its
own process; the held-out lines it prints, its wall time and its metrics go to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "trainer" / "rewardkit_trainer" / "data" / "demo.toml"
#: variant -> config overrides on top of the demo's (the recipe choices measured in #17)
VARIANTS = {
    "nogate": {"reward_options": {}},
    "gate": {"reward_options": {"format_gate": True}},
    "lr5": {"reward_options": {}, "learning_rate": 5e-4},
    "sft2": {"reward_options": {}, "sft_learning_rate": 2e-4},
    "gate_lr5": {"reward_options": {"format_gate": True}, "learning_rate": 5e-4},
}
LINE = re.compile(r"held-out \((before|after sft|after)\): (.*)")


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def run_job(job: str, args, base: dict) -> dict:
    task, seed, variant = job.split(":")
    out_dir = Path(args.work) / job.replace(":", "_")
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**base, "model": args.model, "dataset": str(Path(args.data) / f"{task}.jsonl"), "seed": int(seed),
              "output_dir": str(out_dir), **VARIANTS[variant], "progress": False,
              "report_to": ["jsonl"], "save_steps": 0, "save_merged": False}  # fmt: skip
    config.pop("dataset_config", None)
    config.update({k: v for k, v in (("max_steps", args.max_steps), ("eval_size", args.eval_size),
                                     ("sft_steps", args.sft_steps)) if v is not None})  # smoke runs
    path = out_dir / "config.toml"
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in config.items()))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'trainer'}:{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rewardkit_trainer", str(path)], capture_output=True, text=True,
                          env=env, timeout=args.timeout)  # fmt: skip
    wall = time.perf_counter() - start
    evals = {}
    for when, rest in LINE.findall(proc.stdout):
        evals[when] = {k: float(v) for k, v in (kv.split() for kv in rest.split(", "))}
    metrics = []
    mfile = out_dir / "metrics.jsonl"
    if mfile.exists():
        metrics = [json.loads(line) for line in mfile.read_text().splitlines() if line.strip()]
    steps = [m for m in metrics if "reward/mean" in m]
    comp = out_dir / "completions.jsonl"
    last = comp.read_text().splitlines()[-1:] if comp.exists() else []
    return {
        "job": job, "task": task, "seed": int(seed), "variant": variant, "rc": proc.returncode, "wall_s": wall,
        "before": evals.get("before"), "after_sft": evals.get("after sft"), "after": evals.get("after"),
        "train_reward": [round(m["reward/mean"], 4) for m in steps],
        "zero_std": [round(m.get("frac_reward_zero_std", -1), 3) for m in steps],
        "collapse_warned": "got the same reward" in proc.stderr,
        "last_completions": last, "stderr_tail": proc.stderr[-1500:] if proc.returncode else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--parallel", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--work", default="/tmp/recipes")
    ap.add_argument("--out", default="recipes.json")
    ap.add_argument("--device-name", default="")
    ap.add_argument("--max-steps", type=int, help="override (smoke runs only)")
    ap.add_argument("--eval-size", type=int, help="override (smoke runs only)")
    ap.add_argument("--sft-steps", type=int, help="override (smoke runs only)")
    args = ap.parse_args()
    base = tomllib.loads(DEMO.read_text())
    jobs = args.jobs.split(",")
    results = []
    with ThreadPoolExecutor(args.parallel) as ex:
        for res in ex.map(lambda j: run_job(j, args, base), jobs):
            results.append(res)
            print(json.dumps({k: res[k] for k in ("job", "rc", "wall_s", "before", "after_sft", "after", "collapse_warned")}),
                  flush=True)  # fmt: skip
            Path(args.out).write_text(json.dumps({"device": args.device_name, "results": results}, indent=1))


if __name__ == "__main__":
    main()
