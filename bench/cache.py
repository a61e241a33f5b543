"""The verification cache on GRPO batches like the demo's: verifications/s with and without.

Completions: SmolLM2-135M-Instruct (the demo's model, built-in engine, temperature 1.0)
samples G completions for each of P reasoning-gym basic_arithmetic prompts (the demo's
data and system prompt); they are saved to bench/results/cache_completions.jsonl and
reused with --recorded. Each GRPO batch (P x G) is scored by the demo's rubric
(``math``: MathEquivalence + format) once without a cache and once with a fresh in-memory
cache (only hits inside the batch count: no verdict carries over from an earlier batch),
alternating, in the same run. Run: PYTHONPATH=.:trainer python3 bench/cache.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"


def sample(prompts: int, g: int, length: int) -> list[dict]:
    from rewardkit_trainer.config import GRPOConfig
    from rewardkit_trainer.data import encode_prompt, load_rows
    from rewardkit_trainer.models import load_model
    from rewardkit_trainer.rollout.base import SamplingParams
    from rewardkit_trainer.rollout.hf import HFEngine

    cfg = GRPOConfig(use_peft=False, dataset_size=prompts)
    model, tok = load_model(cfg.policy, device="cpu")
    rows = load_rows(cfg.data)[:prompts]
    ids = [encode_prompt(tok, r["prompt"], cfg.max_prompt_length) for r in rows]
    rollout = HFEngine(model, tok).generate(ids, SamplingParams(num_generations=g, max_completion_length=length,
                                                                 temperature=1.0, top_p=1.0, top_k=0, seed=0))
    return [{"prompt": rows[i // g]["prompt"], "answer": rows[i // g]["answer"], "completion": t}
            for i, t in enumerate(rollout.texts)]


def score(items: list[dict], cache: bool) -> tuple[float, float, dict]:
    from rewardkit.presets import math_rubric

    rubric = math_rubric()  # what `reward = "math"` (the demo's) resolves to
    if cache:
        rubric.cache = True and __import__("rewardkit.cache", fromlist=["VerificationCache"]).VerificationCache()
    start = time.perf_counter()
    results = rubric.score_batch([x["completion"] for x in items], prompts=[x["prompt"] for x in items],
                                 answer=[x["answer"] for x in items])
    seconds = time.perf_counter() - start
    stats = rubric.cache.stats if cache else {}
    return len(items) * len(rubric.parts) / seconds, seconds, {"totals": [r.total for r in results], **stats}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--g", type=int, default=8)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--recorded", action="store_true", help="reuse bench/results/cache_completions.jsonl")
    args = ap.parse_args()
    path = OUT / "cache_completions.jsonl"
    if args.recorded and path.exists():
        items = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        t0 = time.perf_counter()
        items = sample(args.prompts, args.g, args.length)
        print(f"sampled {len(items)} completions in {time.perf_counter() - t0:.0f} s")
        path.write_text("".join(json.dumps(x) + "\n" for x in items))
    from rewardkit.verifiers import MathEquivalence

    MathEquivalence.warm()
    score(items, False)  # warm-up: imports, sympy workers
    rows = {"without": [], "with": []}
    hit = None
    for _ in range(args.repeats):
        plain = score(items, False)
        cached = score(items, True)
        assert plain[2]["totals"] == cached[2]["totals"], "the cache changed a reward"
        rows["without"].append(plain[0])
        rows["with"].append(cached[0])
        hit = cached[2]
    res = {k: {"median_verifications_per_s": statistics.median(v), "runs": v} for k, v in rows.items()}
    res.update({"completions": len(items), "hit_rate_in_batch": hit["hit_rate"], "hits": hit["hits"],
                "misses": hit["misses"], "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                "cores": __import__("os").cpu_count()})
    print(json.dumps(res, indent=1))
    (OUT / "cache.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
