"""Is the truncated share of the engines' samples the same? Three samplers, one checkpoint.

    PYTHONPATH=.:trainer python bench/vllm/truncation.py --seed 4 --repeats 6 \
        --out bench/results/vllm_truncation.json --raw /tmp/truncation_raw.json

Builds the demo trainer with ``--seed``, runs the SFT warm start, and then samples the same
``--prompts`` training prompts x 8 completions at the run's temperature (0.8, 48 tokens),
``--repeats`` times with different sampling seeds, with three samplers on those same weights:

- ``hf``: the built-in engine (left-padded batch, KV cache, ``torch.multinomial``);
- ``vllm``: the vLLM engine (merged LoRA pushed into a colocated ``vllm.LLM``);
- ``generate``: transformers' own ``model.generate`` (left-padded batch, ``top_k=0``), a
  reference that shares no code with either engine. Given the same seed it draws exactly
  the built-in engine's tokens (same ``torch.multinomial`` stream), so it gets other seeds.

Prints each sampler's truncated share, mean length and EOS-at-the-last-position count; for
each pair of samplers the difference in truncated share with a z from the per-prompt paired
differences (prompts are shared, so the prompt-to-prompt spread cancels), and chi-square
tests that they draw alike: lengths (blocks of 8 tokens, truncated apart) and the first and
second tokens (per prompt, pooled over prompts).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
sys.path[:0] = [".", "trainer"]


def generate_reference(model, tokenizer, prompts, g, n_new, temperature, seed, eos_ids):
    """transformers' sampler on the left-padded batch: ids (EOS kept), truncated flags."""
    import torch

    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    x = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(seed)
    out = model.generate(input_ids=x, attention_mask=mask, do_sample=True, temperature=temperature, top_k=0,
                         top_p=1.0, max_new_tokens=n_new, num_return_sequences=g, eos_token_id=sorted(eos_ids),
                         pad_token_id=pad)
    ids, trunc = [], []
    for row in out[:, width:].tolist():
        end = next((i for i, t in enumerate(row) if t in eos_ids), None)
        ids.append(row if end is None else row[: end + 1])
        trunc.append(end is None)
    return ids, trunc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--samplers", default="hf,vllm,generate")
    ap.add_argument("--out", default=None, help="write the tables as JSON here")
    ap.add_argument("--raw", default=None, help="keep every completion's ids here (a few MB)")
    ap.add_argument("--seed-base", type=int, default=5000, help="repeat k samples with seed base + 97 k")
    ap.add_argument("--report", nargs="+", default=None,
                    help="only print the tables of earlier --raw files (same --seed and --prompts; "
                         "a sampler's completions from several files are pooled)")
    args = ap.parse_args()
    if args.report:
        raws = []
        for path in args.report:
            with open(path) as fh:
                raws.append(json.load(fh))
        report(merge(raws), args.out)
        return

    import torch

    from rewardkit_trainer.cli import demo_config_path
    from rewardkit_trainer.config import load_config
    from rewardkit_trainer.rollout import SamplingParams
    from rewardkit_trainer.sft import sft_warm_start
    from rewardkit_trainer.trainer import GRPOTrainer

    c = load_config(demo_config_path(), rollout_engine="hf", output_dir=tempfile.mkdtemp(prefix="truncation-"),
                    seed=args.seed, progress=False, report_to=["jsonl"], log_completions=0)
    tr = GRPOTrainer(c)
    sft_warm_start(tr)
    tr.model.eval()
    g, n_new, temp = 8, c.max_completion_length, c.temperature
    eos = set(tr.engine.eos_ids)
    rows = tr.train_rows[: args.prompts]
    prompts = [tr.encode_prompt(r["prompt"]) for r in rows]
    samplers = args.samplers.split(",")
    engines = {"hf": tr.engine}
    if "vllm" in samplers:
        from rewardkit_trainer.rollout.vllm_engine import VLLMEngine

        engines["vllm"] = VLLMEngine(tr.model, tr.tokenizer, c)
    data: dict = {}
    for name in samplers:
        start = time.perf_counter()
        ids, trunc = [], []
        for k in range(args.repeats):
            seed = args.seed_base + 97 * k
            if name == "generate":
                with torch.no_grad():  # another seed: with the same one it draws hf's very tokens
                    i, t = generate_reference(tr.model, tr.tokenizer, prompts, g, n_new, temp, seed + 1, eos)
            else:
                out = engines[name].generate(prompts, SamplingParams(num_generations=g, max_completion_length=n_new,
                                                                     temperature=temp, seed=seed))
                i, t = out.completion_ids, out.truncated
            ids += i
            trunc += [bool(x) for x in t]
            print(f"{name}: repeat {k + 1} of {args.repeats}, truncated so far {sum(trunc) / len(trunc):.3f}", flush=True)
        data[name] = {"ids": ids, "truncated": trunc, "seconds": round(time.perf_counter() - start, 1)}
    if "vllm" in engines:
        engines["vllm"].close()

    raw = {"seed": args.seed, "prompts": len(prompts), "group": g, "seed_base": args.seed_base,
           "max_completion_length": n_new, "eos_ids": sorted(eos),
           "seconds": {k: v["seconds"] for k, v in data.items()},
           "completions": {k: v["ids"] for k, v in data.items()},
           "truncated_flags": {k: v["truncated"] for k, v in data.items()}}
    if args.raw:
        with open(args.raw, "w") as fh:
            json.dump(raw, fh)
    report(raw, args.out)


def merge(raws: list[dict]) -> dict:
    """One raw record from several runs on the same checkpoint and prompts (per sampler, pooled)."""
    first = raws[0]
    for r in raws[1:]:
        for key in ("seed", "prompts", "group", "max_completion_length"):
            if r[key] != first[key]:
                raise SystemExit(f"--report: {key} differs between files ({r[key]} vs {first[key]})")
        if r.get("seed_base") == first.get("seed_base") and set(r["completions"]) & set(first["completions"]):
            raise SystemExit("--report: two files sampled with the same seeds: the samples would repeat")
    out = {**first, "completions": {}, "truncated_flags": {}, "seconds": {}}
    for r in raws:
        for name in r["completions"]:
            out["completions"].setdefault(name, []).extend(r["completions"][name])
            out["truncated_flags"].setdefault(name, []).extend(r["truncated_flags"][name])
            out["seconds"][name] = round(out["seconds"].get(name, 0) + r["seconds"][name], 1)
    return out


def _chi2_p(stat: float, df: int) -> float:
    """Upper tail of the chi-square distribution: the regularized upper incomplete gamma."""
    import torch

    return round(float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                               torch.tensor(stat / 2, dtype=torch.float64))), 3)


def _homogeneity(rows: list[list[int]]) -> dict:
    """Pearson's chi-square test that the rows (samplers) share one distribution over the columns."""
    cols = [j for j in range(len(rows[0])) if sum(r[j] for r in rows) > 0]
    n = sum(sum(r) for r in rows)
    stat = 0.0
    for r in rows:
        for j in cols:
            e = sum(r) * sum(x[j] for x in rows) / n
            stat += (r[j] - e) ** 2 / e
    df = (len(rows) - 1) * (len(cols) - 1)
    return {"chi2": round(stat, 1), "df": df, "p": _chi2_p(stat, df)}


def _token_homogeneity(raw: dict, a: str, b: str, k: int) -> dict:
    """Do samplers a and b draw the k-th token alike? Per prompt, pooled over prompts (tokens
    with under 10 draws from both together are lumped)."""
    from collections import Counter

    per, g = raw["prompts"] * raw["group"], raw["group"]
    stat, df = 0.0, 0
    counts = {}
    for name in (a, b):
        counts[name] = [Counter() for _ in range(raw["prompts"])]
        for j, x in enumerate(raw["completions"][name]):
            if len(x) > k:
                counts[name][(j % per) // g][x[k]] += 1
    for ca, cb in zip(counts[a], counts[b]):
        na, nb = sum(ca.values()), sum(cb.values())
        if na < 5 or nb < 5:
            continue
        keys = [t for t in set(ca) | set(cb) if ca[t] + cb[t] >= 10]
        table = [[ca[t] for t in keys], [cb[t] for t in keys]]
        rest = [na - sum(table[0]), nb - sum(table[1])]
        if sum(rest):
            table[0].append(rest[0])
            table[1].append(rest[1])
        if len(table[0]) < 2:
            continue
        h = _homogeneity(table)
        stat, df = stat + h["chi2"], df + h["df"]
    return {"chi2": round(stat, 1), "df": df, "p": _chi2_p(stat, df)}


def report(raw: dict, out: str | None) -> dict:
    """Every table of the run from its raw completions (``--raw``), printed and written to ``out``."""
    g, n_new, eos = raw["group"], raw["max_completion_length"], set(raw["eos_ids"])
    per = raw["prompts"] * g  # samples per repeat; row r of a repeat belongs to prompt r // g
    comps, flags = raw["completions"], raw["truncated_flags"]
    table, hist = {}, {}
    for name in comps:
        n = len(flags[name])
        lengths = [len(x) for x in comps[name]]
        table[name] = {"samples": n, "repeats": n // per, "truncated": round(sum(flags[name]) / n, 4),
                       "length": round(sum(lengths) / n, 2),
                       "eos_at_last": sum(1 for x in comps[name] if len(x) == n_new and x[-1] in eos),
                       "seconds": raw["seconds"][name]}
        # stopped completions by length (blocks of 8 tokens), then the truncated ones
        row = [0] * (n_new // 8 + 2)
        for x, t in zip(comps[name], flags[name]):
            row[-1 if t else min(len(x) // 8, n_new // 8)] += 1
        hist[name] = row

    def by_prompt(name):
        counts = [0.0] * raw["prompts"]
        for j, x in enumerate(flags[name]):
            counts[(j % per) // g] += x
        return [x / (len(flags[name]) // per * g) for x in counts]

    pairs = {}
    names = list(comps)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = [x - y for x, y in zip(by_prompt(a), by_prompt(b))]
            mean = sum(d) / len(d)
            sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
            pairs[f"{a}-{b}"] = {
                "truncated_diff": round(mean, 4),
                "truncated_z": round(mean / (sd / math.sqrt(len(d))), 2) if sd else 0.0,
                "lengths_alike": _homogeneity([hist[a], hist[b]]),
                "first_token_alike": _token_homogeneity(raw, a, b, 0),
                "second_token_alike": _token_homogeneity(raw, a, b, 1),
            }
    result = {k: raw[k] for k in ("seed", "prompts", "group", "max_completion_length")}
    result.update({"samplers": table, "length_histogram": {
        "columns": [f"stopped {8 * j}-{min(8 * j + 7, n_new)}" for j in range(n_new // 8 + 1)] + ["truncated"],
        **hist},
        "lengths_alike_all": _homogeneity(list(hist.values())), "paired": pairs})
    print(json.dumps(result, indent=1), flush=True)
    if out:
        with open(out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
