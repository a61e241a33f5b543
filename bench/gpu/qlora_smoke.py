"""One device call: QLoRA (``load_in_4bit``) with ``optimizer="adamw_8bit"`` through the real
trainer on CUDA, loaded from a model folder by the trainer itself, and proof of what ran.

    python bench/gpu/qlora_smoke.py [--steps 40]     # needs bitsandbytes; writes $OUT/qlora_smoke.json

A random-init Llama (hidden 256, 4 layers, the tests' character tokenizer) is saved to a
folder; ``GRPOConfig(model=<folder>, use_peft=True, load_in_4bit=True,
optimizer="adamw_8bit")`` loads it NF4-quantized through bitsandbytes and trains a LoRA
adapter on the toy reward "share of the letter a". Reports the 4-bit module count, the
optimizer class, the reward before/after (greedy, held-out prompts), the trainable
parameter count and peak memory, and reloads the merged folder the trainer saved
(dequantized base + LoRA) to compare its log-probs with the 4-bit policy's. PASS needs 4-bit
linears, bitsandbytes' AdamW8bit, finite losses, a held-out reward that rose and a merged
folder within 5e-2 of the policy (bf16 compute in the policy, float32 in the merged copy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer"), str(ROOT / "tests" / "trainer")]

import torch  # noqa: E402

from rewardkit_trainer.config import GRPOConfig  # noqa: E402
from rewardkit_trainer.trainer import GRPOTrainer  # noqa: E402
from tiny import count_a, tiny_model, tiny_tokenizer  # noqa: E402

ROWS = [{"prompt": [{"role": "user", "content": f"say a {i}"}], "answer": "a"} for i in range(16)]


def merged_vs_policy(trainer, folder: Path) -> float:
    """Max |log-prob difference| between the saved merged folder (dequantized base + LoRA,
    float32) and the trained 4-bit policy, over every position of one prompt + 12 tokens."""
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).cuda().eval()
    ids = trainer.encode_prompt(ROWS[0]["prompt"]) + [trainer.tokenizer.convert_tokens_to_ids("a")] * 12
    x = torch.tensor([ids], device="cuda")
    trainer.model.eval()
    with torch.no_grad():
        a = torch.log_softmax(trainer.model(input_ids=x).logits.float(), -1)
        b = torch.log_softmax(merged(input_ids=x).logits.float(), -1)
    return float((a - b).abs().max())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    out = Path(os.environ.get("OUT", "/tmp"))
    with tempfile.TemporaryDirectory() as tmp:
        tok = tiny_tokenizer()
        tiny_model(tok, hidden=256, layers=4, heads=4).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        cfg = GRPOConfig(model=tmp, use_peft=True, load_in_4bit=True, optimizer="adamw_8bit", lora_r=16,
                         lora_alpha=32, learning_rate=5e-3, num_generations=8, prompts_per_step=2,
                         max_completion_length=12, output_dir=str(out / "qlora_run"), eval_size=0, progress=False,
                         report_to=["jsonl"], max_grad_norm=1.0, per_device_train_batch_size=16, seed=0,
                         max_steps=args.steps, dtype="bfloat16")
        t0 = time.perf_counter()
        trainer = GRPOTrainer(cfg, rubric=count_a, train_rows=ROWS[:12], eval_rows=ROWS[12:])
        four_bit = sum(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        before = trainer.evaluate(k=4)["reward"]
        trainer.train(evaluate=False)
        after = trainer.evaluate(k=4)["reward"]
        rows = [json.loads(x) for x in (out / "qlora_run" / "metrics.jsonl").read_text().splitlines()]
        merged_diff = merged_vs_policy(trainer, out / "qlora_run" / "merged")
    losses = [r.get("loss", float("nan")) for r in rows]
    result = {
        "device": torch.cuda.get_device_name(),
        "linear4bit_modules": four_bit,
        "optimizer": f"{type(trainer.optimizer).__module__}.{type(trainer.optimizer).__name__}",
        "trainable_params": trainable,
        "engine": type(trainer.engine).__name__,
        "eval_reward_before": before,
        "eval_reward_after": after,
        "train_reward_first5": sum(r["reward/mean"] for r in rows[:5]) / 5,
        "train_reward_last5": sum(r["reward/mean"] for r in rows[-5:]) / 5,
        "merged_folder_max_logprob_diff": merged_diff,
        "losses_finite": all(math.isfinite(x) for x in losses),
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
    }
    print(json.dumps(result, indent=2))
    (out / "qlora_smoke.json").write_text(json.dumps(result, indent=2))
    ok = (four_bit > 0 and result["optimizer"].startswith("bitsandbytes") and result["losses_finite"]
          and after > before and merged_diff < 5e-2)
    print("QLORA", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
