"""GRPO step throughput and peak memory: rewardkit's trainer against TRL's GRPOTrainer.

One command, one device call:

    PYTHONPATH=.:trainer python3 bench/grpo_speed/run.py --out "$OUT"      # GPU, full
    PYTHONPATH=.:trainer python3 bench/grpo_speed/run.py --smoke           # CPU, tiny shapes

Each section runs in its own process (so peak memory is that run's alone) under its own
time limit, and the whole script keeps inside ``--budget`` seconds: a section that no
longer fits is skipped and reported as such. Sections:

- ``ours_<arch>`` / ``trl_<arch>``: the same random-init architecture (SmolLM2-135M or
  Qwen2.5-0.5B shapes), bf16, gradient checkpointing, 4 prompts x 8 generations, prompt
  128 tokens, completion 512 (no EOS can end a row early in practice: random weights),
  the same synthetic word-level tokenizer and the same reward function. The first step
  is warm-up; the others are timed. completion tokens/s = completion tokens of the timed
  steps / their wall time. Peak = ``torch.cuda.max_memory_allocated`` over the process.
- ``ours_8b``: Llama-3.1-8B shapes, bf16 weights, LoRA r=16 on every linear layer, one
  prompt of 19,968 tokens + 512 completion tokens (20,480 context), 8 generations, one
  full GRPO step (rollout + log-probs + loss + backward + optimizer), micro-batch 1.

``RK_LOSS_KERNEL=auto|fused|unfused`` sets rewardkit's ``loss_kernel`` (run the script
twice in one call, with two ``--out`` folders, for the step time before and after).

Limits: random weights decide nothing about quality; EOS is possible but rare (~1/V a
token), and each side counts the tokens it actually produced.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCHS = {
    "smol": dict(kind="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5,
                 tie_word_embeddings=True, rope_theta=100000.0),
    "qwen": dict(kind="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rms_norm_eps=1e-6,
                 tie_word_embeddings=True, rope_theta=1000000.0),
    "8b": dict(kind="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
               tie_word_embeddings=False, rope_theta=500000.0, llama3_rope=True),
}
NAMES = {"smol": "SmolLM2-135M", "qwen": "Qwen2.5-0.5B", "8b": "Llama-3.1-8B (LoRA r=16)"}
SMOKE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=512)


# building blocks ---------------------------------------------------------------------
def word_tokenizer(vocab: int):
    """A real fast tokenizer over the words t0..t{V-3} plus <pad>, <eos> (ids V-2, V-1)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {f"t{i}": i for i in range(vocab - 2)}
    words["<pad>"], words["<eos>"] = vocab - 2, vocab - 1
    tok = Tokenizer(models.WordLevel(vocab=words, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def build_model(arch: str, smoke: bool, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(ARCHS[arch])
    kind, llama3 = spec.pop("kind"), spec.pop("llama3_rope", False)
    theta = spec.pop("rope_theta")
    if smoke:
        spec.update(SMOKE)
    rope = {"rope_type": "default", "rope_theta": theta}
    if llama3:
        rope = {"rope_type": "llama3", "rope_theta": theta, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    v = spec["vocab_size"]
    common = dict(pad_token_id=v - 2, eos_token_id=v - 1, bos_token_id=None, rope_parameters=rope)
    cfg = (Qwen2Config(use_sliding_window=False, **spec, **common) if kind == "qwen2"
           else LlamaConfig(**spec, **common))
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = (Qwen2ForCausalLM if kind == "qwen2" else LlamaForCausalLM)(cfg)
    finally:
        torch.set_default_dtype(old)
    model.generation_config.eos_token_id = v - 1
    model.generation_config.pad_token_id = v - 2
    return model


def prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(f"t{rng.randrange(vocab - 2)}" for _ in range(length)) for _ in range(n)]


def distinct_words(prompts=None, completions=None, **kwargs):
    """Bench reward: share of distinct words (varies between samples, costs nothing)."""
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[-1]["content"]
        words = text.split()
        out.append(len(set(words)) / max(1, len(words)))
    return out


def _peak():
    import torch

    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30


# sections ------------------------------------------------------------------------------
def run_ours(arch: str, smoke: bool, steps: int, out_dir: str) -> dict:
    import torch

    from rewardkit_trainer.config import GRPOConfig
    from rewardkit_trainer.rollout.static import StaticCacheEngine
    from rewardkit_trainer.trainer import GRPOTrainer

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    big = arch == "8b"
    model = build_model(arch, smoke, device, dtype)
    v = model.config.vocab_size
    tok = word_tokenizer(v)
    p_len, c_len, n_prompts = (19968, 512, 1) if big else (128, 512, 4)
    if smoke:
        p_len, c_len = (200, 16) if big else (16, 8)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if big:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                 "gate_proj", "up_proj", "down_proj"]))
    rows = [{"prompt": p} for p in prompts(16, p_len, v)]
    cfg = GRPOConfig(model="random-init", dtype="bfloat16" if cuda else "float32", use_peft=big,
                     gradient_checkpointing=True, num_generations=8, prompts_per_step=n_prompts,
                     max_prompt_length=p_len, max_completion_length=c_len, beta=0.0, loss_type="dapo",
                     per_device_train_batch_size=1 if big else 8,
                     learning_rate=1e-6, max_steps=steps, output_dir=out_dir, report_to=["jsonl"],
                     progress=False, log_completions=0, eval_size=0, save_merged=False,
                     loss_kernel=os.environ.get("RK_LOSS_KERNEL", "auto"))
    # free_on_sleep (the default): KV buffers and graph pool are released before training
    engine = StaticCacheEngine(model, tok, share_prompt_kv=True if big else None)
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, rubric=distinct_words, train_rows=rows, eval_rows=[],
                          engine=engine)
    weights_gib = torch.cuda.memory_allocated() / 2**30 if cuda else None
    records = []
    for i in range(steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        m = trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tokens = m["completion_length/mean"] * n_prompts * 8
        records.append({"seconds": dt, "tokens": tokens, "rollout_seconds": m["rollout_seconds"]})
        print(f"  ours {arch} step {i}: {dt:.2f} s, {tokens:.0f} tokens, rollout {m['rollout_seconds']:.2f} s",
              flush=True)
    timed = records[1:] or records
    peak, reserved = _peak()
    secs = sum(r["seconds"] for r in timed)
    return {"tokens_per_s": sum(r["tokens"] for r in timed) / secs, "step_s": secs / len(timed),
            "rollout_s": sum(r["rollout_seconds"] for r in timed) / len(timed), "peak_gib": peak,
            "reserved_gib": reserved, "weights_gib": weights_gib, "steps_timed": len(timed),
            "cuda_graph": bool(engine.cuda_graphs is not False and cuda),
            "context": p_len + c_len, "records": records}


def run_trl(arch: str, smoke: bool, steps: int, out_dir: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    model = build_model(arch, smoke, device, dtype)
    v = model.config.vocab_size
    tok = word_tokenizer(v)
    p_len, c_len = (16, 8) if smoke else (128, 512)
    ds = Dataset.from_list([{"prompt": p} for p in prompts(64, p_len, v)])
    args = GRPOConfig(output_dir=out_dir, per_device_train_batch_size=8, gradient_accumulation_steps=4,
                      num_generations=8, max_completion_length=c_len, bf16=cuda, gradient_checkpointing=True,
                      max_steps=steps, logging_steps=1, report_to="none", save_strategy="no", learning_rate=1e-6,
                      beta=0.0, seed=0, disable_tqdm=True, use_cpu=not cuda)

    class Clock(TrainerCallback):
        def __init__(self):
            self.t0, self.times, self.lengths = 0.0, [], []

        def on_step_begin(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(float(logs["completions/mean_length"]))

    clock = Clock()
    trainer = GRPOTrainer(model=model, reward_funcs=[distinct_words], args=args, train_dataset=ds,
                          processing_class=tok, callbacks=[clock])
    trainer.train()
    n = min(len(clock.times), len(clock.lengths))
    records = [{"seconds": clock.times[i], "tokens": clock.lengths[i] * 32} for i in range(n)]
    for i, r in enumerate(records):
        print(f"  trl {arch} step {i}: {r['seconds']:.2f} s, {r['tokens']:.0f} tokens", flush=True)
    timed = records[1:] or records
    peak, reserved = _peak()
    secs = sum(r["seconds"] for r in timed)
    return {"tokens_per_s": sum(r["tokens"] for r in timed) / secs, "step_s": secs / len(timed), "peak_gib": peak,
            "reserved_gib": reserved, "steps_timed": len(timed), "records": records}


def run_rollout(arch: str, smoke: bool, steps: int, out_dir: str) -> dict:
    """Rollout alone (no training), same 4 x 8 x 512 shape: where the step's time goes."""
    import torch

    from rewardkit_trainer.rollout.base import SamplingParams
    from rewardkit_trainer.rollout.hf import HFEngine
    from rewardkit_trainer.rollout.static import StaticCacheEngine

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    model = build_model(arch, smoke, device, dtype)
    tok = word_tokenizer(model.config.vocab_size)
    p_len, c_len = (16, 8) if smoke else (128, 512)
    ids = [tok(p)["input_ids"] for p in prompts(4, p_len, model.config.vocab_size)]
    params = SamplingParams(num_generations=8, max_completion_length=c_len, seed=0)
    engines = {"static+graphs": StaticCacheEngine(model, tok, eos_token_ids=()),
               "HFEngine (DynamicCache)": HFEngine(model, tok)}
    out = {}
    for name, eng in engines.items():
        eng.generate(ids, params)  # warm-up (and graph capture)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = eng.generate(ids, params)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        out[name] = {"seconds": dt, "tokens": r.stats["tokens"], "tokens_per_s": r.stats["tokens"] / dt}
        print(f"  rollout {arch} {name}: {dt:.2f} s, {r.stats['tokens']} tokens", flush=True)
        eng.close()
    return {"rollout": out}


SECTIONS = {  # name: (function, arch, steps, time limit in seconds)
    "ours_smol": (run_ours, "smol", 4, 90),
    "ours_qwen": (run_ours, "qwen", 4, 90),
    "trl_qwen": (run_trl, "qwen", 3, 110),
    "trl_smol": (run_trl, "smol", 3, 110),
    "ours_8b": (run_ours, "8b", 1, 170),
    "rollout_qwen": (run_rollout, "qwen", 1, 80),
}


# driver --------------------------------------------------------------------------------
def child(name: str, smoke: bool, result: str) -> None:
    fn, arch, steps, _ = SECTIONS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = fn(arch, smoke, 2 if smoke else steps, tmp)
    Path(result).write_text(json.dumps(out))


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        pass
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "cpu")
    return f"{os.cpu_count()} CPU cores, {cpu}"


def table(results: dict, device: str) -> str:
    lines = [f"device: {device}", "",
             "| run | completion tokens/s | s/step | peak GiB (allocated) | vs TRL tokens/s | note |",
             "|---|---|---|---|---|---|"]
    rollout_rows = []
    for name, r in results.items():
        arch = name.split("_", 1)[1]
        if name.startswith("rollout"):
            for eng, x in r.get("rollout", {}).items():
                rollout_rows.append(f"| {NAMES[arch]} rollout only, {eng} | {x['tokens_per_s']:.0f} | "
                                    f"{x['seconds']:.2f} | | | 4 prompts x 8 x 512, no training |")
            if "error" in r:
                rollout_rows.append(f"| {NAMES[arch]} rollout only | - | - | - | - | {r['error']} |")
            continue
        label = f"{'rewardkit' if name.startswith('ours') else 'TRL 1.16'} {NAMES[arch]}"
        if "error" in r:
            lines.append(f"| {label} | - | - | - | - | {r['error']} |")
            continue
        trl = results.get(f"trl_{arch}", {})
        ratio = f"{r['tokens_per_s'] / trl['tokens_per_s']:.2f}x" if name.startswith("ours") and "tokens_per_s" in trl else ""
        peak = f"{r['peak_gib']:.2f}" if r.get("peak_gib") is not None else "n/a (CPU)"
        note = f"rollout {r['rollout_s']:.2f} s/step" if "rollout_s" in r else ""
        if name == "ours_8b":
            note += f"; context {r['context']}, 8 generations, weights {r.get('weights_gib') or 0:.1f} GiB"
        lines.append(f"| {label} | {r['tokens_per_s']:.0f} | {r['step_s']:.2f} | {peak} | {ratio} | {note} |")
    return "\n".join(lines + rollout_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shapes (CPU check of every code path)")
    ap.add_argument("--out", default=os.environ.get("OUT", "bench/results/grpo_speed_raw"))
    ap.add_argument("--budget", type=float, default=460.0, help="seconds for the whole script")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.smoke, a.result)
    start = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="grpo_speed_"))  # per-section files; only two land in --out
    results: dict = {}
    logs: dict = {}
    for name in a.sections.split(","):
        limit = SECTIONS[name][3] * (3 if a.smoke else 1)
        left = a.budget - (time.perf_counter() - start)
        if left < min(limit, 60):
            results[name] = {"error": f"skipped: {left:.0f} s of the budget left"}
            continue
        res = work / f"{name}.json"
        print(f"== {name} (limit {min(limit, left):.0f} s)", flush=True)
        cmd = [sys.executable, __file__, "--child", name, "--result", str(res)] + (["--smoke"] if a.smoke else [])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, timeout=min(limit, left), capture_output=True, text=True)
            log = proc.stdout + proc.stderr
            ok = proc.returncode == 0 and res.exists()
        except subprocess.TimeoutExpired as exc:
            log, ok = f"{exc.stdout or ''}{exc.stderr or ''}", False
            log = log if isinstance(log, str) else str(log)
        logs[name] = log[-6000:]
        if ok:
            results[name] = json.loads(res.read_text())
        else:
            tail = " ".join(log.strip().splitlines()[-1:])[-160:] if log.strip() else "no output"
            results[name] = {"error": f"failed after {time.perf_counter() - t0:.0f} s: {tail}"}
        print("\n".join(log.strip().splitlines()[-6:]), flush=True)
    dev = device_name()
    (out / "grpo_speed.json").write_text(json.dumps({"device": dev, "results": results, "logs": logs}, indent=1))
    text = table(results, dev)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
