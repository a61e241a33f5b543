"""Decode speed of StaticCacheEngine before (main's engine, frozen copy beside this file)
and after #22, with a torch-profiler kernel table of one decode step. One command:

    PYTHONPATH=.:trainer python3 bench/rollout_engine/decode.py --out "$OUT"        # GPU
    PYTHONPATH=.:trainer python3 bench/rollout_engine/decode.py --smoke             # CPU, tiny shapes

Shape (issue #22): random-init Qwen2.5-0.5B architecture, bf16, prompt 128 tokens,
completion 512, EOS off, G = 8; 32 / 128 / 512 sequences (4 / 16 / 64 prompts).

- tokens/s: completion tokens / wall time of a whole ``generate`` (prefill, graph replays,
  copy to host), after a warm-up call (graph capture) of the same shape.
- ms per decode step: the captured decode-step graph replayed T-1 times from slot 0 (the
  decode loop alone), CUDA events, divided by T-1.
- weight-read floor: the model's weight bytes / device-to-device copy bandwidth measured
  here (bytes read + bytes written of a 1 GiB copy).
- profile: ``torch.profiler`` over 8 graph replays from slot 256 (mid-rollout): kernels per
  step, GPU-busy time per step, the span (first kernel start to last kernel end: busy
  plus gaps), top kernels by time; over one whole ``generate``: ``cuda*Synchronize``
  calls and EOS checks (``bool(tensor)``).
- ``--sweep``: the attention kernel alone over block size, warps and key splits (one
  launch at a time outside a graph: launch-bound, see bench/results/rollout_engine.md).
- ``--grpo ours_qwen,trl_qwen``: then the end-to-end GRPO step beside TRL
  (bench/grpo_speed/run.py in its own processes; TRL and datasets carried as wheels), so
  one command gives the issue's table and the step.

The decode part takes 1.5-2.5 minutes on an H100 (Triton compiles included); the GRPO
sections about 3.5 more.
- refresh: ``update_weights`` of the fused engine (rebuilds the fused q/k/v and gate/up
  copies), median of 5, synchronized.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


grpo_speed = _load("grpo_speed_run", HERE.parent / "grpo_speed" / "run.py")  # model, tokenizer, prompts


def load_main_engine():
    import rewardkit_trainer.rollout  # noqa: F401  (parent package for the relative imports)

    return _load("rewardkit_trainer.rollout._static_main", HERE / "static_main.py").StaticCacheEngine


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def copy_bandwidth(nbytes: int = 2**30) -> float:
    """Bytes moved per second (read + write) by a device-to-device copy."""
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * nbytes / sorted(times)[len(times) // 2]


def decode_ms(state, steps: int) -> float:
    """The captured step replayed ``steps`` times from slot 0, ms per step."""
    state.step.zero_()
    state.done.zero_()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        state.graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps


def profile_step(engine, state, ids, params, out_dir: Path, label: str) -> dict:
    from torch.profiler import ProfilerActivity, profile

    reps = 8
    state.step.fill_(256)
    sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            state.graph.replay()
        sync()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    per_name: dict[str, list[float]] = {}
    for e in kernels:
        per_name.setdefault(e.name, []).append(e.device_time)
    busy_us = sum(e.device_time for e in kernels) / reps
    top = sorted(((sum(v) / reps, len(v) / reps, k) for k, v in per_name.items()), reverse=True)[:15]
    start_us = min((e.time_range.start for e in kernels), default=0)
    end_us = max((e.time_range.end for e in kernels), default=0)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof_host:
        engine.generate(ids, params)
    names = [e.name for e in prof_host.events()]
    syncs = sum(n in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize") for n in names)
    checks = sum(n == "aten::is_nonzero" for n in names)  # bool(tensor): the EOS check
    lines = [f"# {label}: torch.profiler, {reps} graph replays from slot 256",
             f"kernels per step: {len(kernels) / reps:.0f}", f"GPU busy per step: {busy_us / 1e3:.3f} ms",
             f"span per step: {(end_us - start_us) / reps / 1e3:.3f} ms",
             f"host syncs in one generate (cuda*Synchronize calls): {syncs}; EOS checks (bool(tensor)): {checks}",
             "",
             "| kernel | us per step | launches per step |", "|---|---|---|"]
    lines += [f"| {k[:110]} | {t:.1f} | {n:.0f} |" for t, n, k in top]
    with open(out_dir / "profiles.md", "a") as f:  # one file for every run (few files come back)
        f.write("\n".join(lines) + "\n\n")
    return {"kernels_per_step": len(kernels) / reps, "busy_ms": busy_us / 1e3,
            "span_ms": (end_us - start_us) / reps / 1e3, "host_syncs_per_generate": syncs,
            "eos_checks_per_generate": checks,
            "top": [{"kernel": k, "us": t, "launches": n} for t, n, k in top]}


def attention_sweep(out_dir: Path) -> list[dict]:
    """The decode attention kernel alone, Qwen2.5-0.5B heads (14 q, 2 kv, dim 64), prompt
    128, completion slot 256 of 512, over block size, warps and key splits."""
    from types import SimpleNamespace

    import triton
    import triton.testing

    from rewardkit_trainer.rollout.fused import _TRITON

    rows_out = []
    w, t, hkv, rep, d, g = 128, 512, 2, 7, 64, 8
    for b in (32, 128, 512):
        kv = dict(dtype=torch.bfloat16, device="cuda")
        st = SimpleNamespace(pk=[torch.randn(b // g, hkv, w, d, **kv)], pv=[torch.randn(b // g, hkv, w, d, **kv)],
                             ck=[torch.randn(b, hkv, t, d, **kv)], cv=[torch.randn(b, hkv, t, d, **kv)],
                             prompt_start=torch.zeros(b // g, dtype=torch.long, device="cuda"),
                             step=torch.tensor([256], device="cuda"))
        q = torch.randn(b, hkv * rep, d, **kv)
        for block in (32, 64):
            for warps in (4, 8):
                for splits in (1, 2, 4, 8):
                    st.attn_block, st.attn_warps, st.attn_splits = block, warps, splits
                    st.attn_chunk = triton.cdiv(triton.cdiv(w + t, splits), block) * block
                    ms = triton.testing.do_bench(lambda: _TRITON.attention(q, st, 0, g, hkv), warmup=5, rep=25)
                    rows_out.append({"rows": b, "block": block, "warps": warps, "splits": splits, "us": ms * 1e3})
    gemms = []  # the decode matmuls alone: weight [N, K] as nn.Linear stores it, or pre-transposed [K, N]
    for m in (32, 128, 512):
        x = torch.randn(m, 4864, dtype=torch.bfloat16, device="cuda")
        for name, n, k in (("qkv", 1152, 896), ("o", 896, 896), ("gate_up", 9728, 896), ("down", 896, 4864),
                           ("lm_head", 151936, 896)):
            wt = torch.randn(n, k, dtype=torch.bfloat16, device="cuda")
            wt_t = wt.t().contiguous()
            xs = x[:, :k].contiguous()
            a = triton.testing.do_bench(lambda: torch.nn.functional.linear(xs, wt), warmup=5, rep=20)
            b = triton.testing.do_bench(lambda: torch.mm(xs, wt_t), warmup=5, rep=20)
            gemms.append({"rows": m, "gemm": name, "linear_us": a * 1e3, "pretransposed_us": b * 1e3,
                          "linear_tb_s": n * k * 2 / a / 1e9})
    glines = ["| rows | matmul | F.linear us | mm on [K,N] us | F.linear TB/s of weight |", "|---|---|---|---|---|"]
    glines += [f"| {g['rows']} | {g['gemm']} | {g['linear_us']:.1f} | {g['pretransposed_us']:.1f} | "
               f"{g['linear_tb_s']:.2f} |" for g in gemms]
    rows_out.append({"gemms": gemms})
    best = {}
    for r in rows_out[:-1]:
        if r["rows"] not in best or r["us"] < best[r["rows"]]["us"]:
            best[r["rows"]] = r
    lines = ["| rows | block | warps | splits | us |", "|---|---|---|---|---|"]
    lines += [f"| {r['rows']} | {r['block']} | {r['warps']} | {r['splits']} | {r['us']:.1f} |" for r in rows_out[:-1]]
    lines += [""] + glines
    (out_dir / "attention_sweep.md").write_text("\n".join(lines) + "\n")
    print("attention sweep, best per rows:", {k: (v["block"], v["warps"], v["splits"], round(v["us"], 1))
                                             for k, v in best.items()}, flush=True)
    return rows_out


def bench_engine(label, make, model, tok, prompts_n, c_len, out_dir, smoke) -> dict:
    from rewardkit_trainer.rollout.base import SamplingParams

    ids = [tok(p)["input_ids"] for p in grpo_speed.prompts(prompts_n, 16 if smoke else 128, model.config.vocab_size)]
    params = SamplingParams(num_generations=8, max_completion_length=c_len, seed=0)
    engine = make()
    torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
    base = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    engine.generate(ids, params)  # warm-up, graph capture
    sync()
    t0 = time.perf_counter()
    r = engine.generate(ids, params)
    sync()
    secs = time.perf_counter() - t0
    out = {"sequences": prompts_n * 8, "tokens": r.stats["tokens"], "seconds": secs,
           "tokens_per_s": r.stats["tokens"] / secs}
    if torch.cuda.is_available():
        out["peak_extra_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        state = next(iter(engine._states.values()))
        out["ms_per_step"] = decode_ms(state, c_len - 1)
        out["profile"] = profile_step(engine, state, ids, params, out_dir, f"{label}_{prompts_n * 8}")
        if getattr(engine, "_fused", None) is not None:
            times = []
            for _ in range(5):
                sync()
                t = time.perf_counter()
                engine.update_weights(model)
                sync()
                times.append(time.perf_counter() - t)
            out["refresh_ms"] = sorted(times)[2] * 1e3
            out["fused_copy_gib"] = engine._fused.fused_bytes() / 2**30
    engine.close()
    print(f"  {label} {prompts_n * 8} seqs: {out['tokens_per_s']:.0f} tok/s, "
          f"{out.get('ms_per_step', float('nan')):.3f} ms/step", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/rollout_engine"))
    ap.add_argument("--sequences", default="32,128,512")
    ap.add_argument("--engines", default="main,fused")
    ap.add_argument("--sweep", action="store_true", help="time the attention kernel's variants first")
    ap.add_argument("--grpo", default="", help="bench/grpo_speed sections to run afterwards, e.g. ours_qwen,trl_qwen")
    ap.add_argument("--grpo-budget", type=float, default=225.0)
    a = ap.parse_args()
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    model = grpo_speed.build_model("qwen", a.smoke, device, dtype).eval()
    tok = grpo_speed.word_tokenizer(model.config.vocab_size)
    c_len = 8 if a.smoke else 512
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    result = {"device": grpo_speed.device_name(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "weights_gib": weight_bytes / 2**30, "runs": {}}
    if cuda:
        bw = copy_bandwidth()
        result["copy_bandwidth_tb_s"] = bw / 1e12
        result["floor_ms"] = weight_bytes / bw * 1e3
    if cuda and a.sweep:
        result["attention_sweep"] = attention_sweep(out_dir)
    from rewardkit_trainer.rollout.static import StaticCacheEngine

    Main = load_main_engine()
    makers = {"main": lambda: Main(model, tok, eos_token_ids=()),
              "fused": lambda: StaticCacheEngine(model, tok, eos_token_ids=(), free_on_sleep=False)}
    for n in map(int, a.sequences.split(",")):
        for label in a.engines.split(","):
            try:
                result["runs"][f"{label}_{n}"] = bench_engine(label, makers[label], model, tok, n // 8, c_len,
                                                              out_dir, a.smoke)
            except Exception as exc:  # keep the other rows
                result["runs"][f"{label}_{n}"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                print(f"  {label} {n}: {result['runs'][f'{label}_{n}']['error']}", flush=True)
    (out_dir / "rollout_engine.json").write_text(json.dumps(result, indent=1))
    lines = [f"device: {result['device']}, {result['date']}, torch {result['torch']}; weights "
             f"{result['weights_gib']:.2f} GiB" + (f", copy bandwidth {result['copy_bandwidth_tb_s']:.2f} TB/s, "
                                                 f"weight-read floor {result['floor_ms']:.3f} ms" if cuda else ""),
             "", "| engine | sequences | tokens/s | ms per decode step | x floor | kernels/step | busy ms/step | "
             "host syncs / EOS checks per generate |", "|---|---|---|---|---|---|---|---|"]
    for key, r in result["runs"].items():
        label, n = key.rsplit("_", 1)
        if "error" in r:
            lines.append(f"| {label} | {n} | - | - | - | - | - | {r['error'][:80]} |")
            continue
        p = r.get("profile", {})
        ms = r.get("ms_per_step")
        lines.append(f"| {label} | {n} | {r['tokens_per_s']:,.0f} | {ms or float('nan'):.3f} | "
                     f"{(ms or 0) / result.get('floor_ms', 1):.1f} | {p.get('kernels_per_step', 0):.0f} | "
                     f"{p.get('busy_ms', 0):.3f} | {p.get('host_syncs_per_generate', '-')} / "
                     f"{p.get('eos_checks_per_generate', '-')} |")
    refresh = [r for r in result["runs"].values() if "refresh_ms" in r]
    if refresh:
        lines.append(f"\nfused refresh (update_weights): {refresh[0]['refresh_ms']:.2f} ms, fused copy "
                     f"{refresh[0]['fused_copy_gib']:.2f} GiB")
    text = "\n".join(lines)
    (out_dir / "rollout_engine.md").write_text(text + "\n")
    print(text, flush=True)
    if a.grpo:
        import subprocess

        cmd = [sys.executable, str(HERE.parent / "grpo_speed" / "run.py"), "--sections", a.grpo,
               "--budget", str(a.grpo_budget), "--out", str(out_dir / "grpo")] + (["--smoke"] if a.smoke else [])
        subprocess.run(cmd, check=False)


if __name__ == "__main__":
    main()
