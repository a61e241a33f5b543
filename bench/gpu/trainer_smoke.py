"""One device call: the trainer on CUDA end to end (Triton log-prob kernel + static-cache
engine), a tiny random Llama learning a toy verifiable task, and which paths actually ran.

    python bench/gpu/trainer_smoke.py [--steps 40]      # writes $OUT/trainer_smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer"), str(ROOT / "tests" / "trainer")]

import torch  # noqa: E402

from rewardkit_trainer import kernels  # noqa: E402
from rewardkit_trainer.config import GRPOConfig  # noqa: E402
from rewardkit_trainer.trainer import GRPOTrainer  # noqa: E402
from tiny import count_a, tiny_model, tiny_tokenizer  # noqa: E402

ROWS = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(16)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    calls = {"triton": 0, "torch": 0}
    from rewardkit_trainer import logprobs

    original = logprobs.token_logprobs

    def counting(hidden, weight, targets, **kw):  # record which backend the trainer used
        calls["triton" if hidden.is_cuda and kernels.triton_available() else "torch"] += 1
        return original(hidden, weight, targets, **kw)

    logprobs.token_logprobs = counting  # the name the trainer's log-prob pass calls
    tok = tiny_tokenizer()
    out_dir = Path(os.environ.get("OUT", "/tmp")) / "smoke_run"
    cfg = GRPOConfig(model="tiny", use_peft=False, learning_rate=3e-3, num_generations=8, prompts_per_step=2,
                     max_completion_length=12, output_dir=str(out_dir), eval_size=0, progress=False,
                     report_to=["jsonl"], max_grad_norm=1.0, per_device_train_batch_size=16, seed=0,
                     max_steps=args.steps)
    model = tiny_model(tok).to(device)
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, rubric=count_a, train_rows=ROWS[:12], eval_rows=ROWS[12:])
    t0 = time.perf_counter()
    before = trainer.evaluate(k=4)["reward"]
    trainer.train(evaluate=False)
    after = trainer.evaluate(k=4)["reward"]
    rewards = [json.loads(x)["reward/mean"] for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "engine": type(trainer.engine).__name__,
        "optimizer_fused": bool(trainer.optimizer.defaults.get("fused")),
        "logprob_calls": calls,
        "eval_reward_before": before,
        "eval_reward_after": after,
        "train_reward_first5": sum(rewards[:5]) / 5,
        "train_reward_last5": sum(rewards[-5:]) / 5,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    Path(os.environ.get("OUT", "/tmp"), "trainer_smoke.json").write_text(json.dumps(result, indent=2))
    ok = after > before + 0.2 and (device == "cpu" or calls["triton"] > 0)
    print("SMOKE", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
