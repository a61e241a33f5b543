"""Score bench/math/cases.jsonl with rewardkit and with math-verify, side by side.

    python bench/math/run.py [--passes 3] [--workers 2]

Both tools get the same number of warm worker processes (default 2, one per core):
math-verify runs in a ``multiprocessing`` pool whose workers imported it and verified a
warm-up pair before timing starts; rewardkit runs ``math_verdict`` from that many
threads (plain numbers are decided in-process; the rest go to its sympy workers, started
and warmed before timing). rewardkit's verdict cache is cleared before every pass, so
no pair is answered from memory. Accuracy is against the hand-written expectation
(mathematical truth), per category and overall. Gold answers reach math-verify reduced
to the text after '####' (its users do that themselves) and every answer without ``$``
or ``\\boxed`` is wrapped in ``$...$`` for it (its LaTeX extractor needs delimiters);
rewardkit gets the strings as written.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CASES = Path(__file__).with_name("cases.jsonl")


# ---- math-verify, in its own warm processes ------------------------------------------
def _mv_init() -> None:
    global _mv
    import math_verify

    _mv = math_verify
    _mv_one(("1/2", "0.5"))


def _mv_parse(text: str):
    # Math-Verify reads LaTeX inside delimiters (unwrapped, "2\sqrt{2}" parses as 2):
    # wrap the bare answer as its docs do for gold answers; raw text if that finds nothing
    delimited = re.search(r"(?<!\\)\$", text) or "\\boxed" in text
    parsed = _mv.parse(text if delimited else f"${text}$")
    return parsed or _mv.parse(text)


def _mv_one(pair: tuple[str, str]) -> bool:
    gold, pred = pair
    try:
        return bool(_mv.verify(_mv_parse(gold), _mv_parse(pred)))
    except Exception:
        return False


def run_math_verify(pairs: list[tuple[str, str]], workers: int, passes: int) -> tuple[list[bool], float]:
    gold_reduced = [(g.rsplit("####", 1)[-1].strip(), p) for g, p in pairs]
    with mp.get_context("spawn").Pool(workers, initializer=_mv_init) as pool:
        pool.map(_mv_one, gold_reduced[: workers * 4], chunksize=1)  # warm every worker
        best = float("inf")
        for _ in range(passes):
            start = time.perf_counter()
            out = pool.map(_mv_one, gold_reduced, chunksize=8)
            best = min(best, time.perf_counter() - start)
    return out, best


# ---- rewardkit ------------------------------------------------------------------------
def run_rewardkit(pairs: list[tuple[str, str]], workers: int, passes: int) -> tuple[list[bool], float, float]:
    os.environ["REWARDKIT_MATH_WORKERS"] = str(workers)
    from rewardkit._math.pool import default_pool
    from rewardkit.verifiers.math import math_equal, math_verdict

    default_pool().warm()
    math_verdict(r"\sqrt{8}", r"2\sqrt{2}")
    best = float("inf")
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for _ in range(passes):
            math_equal.cache_clear()
            start = time.perf_counter()
            out = list(ex.map(lambda gp: math_verdict(*gp)[0] == "ok", pairs))
            best = min(best, time.perf_counter() - start)
        start = time.perf_counter()  # a repeat pass, answered by the cache
        list(ex.map(lambda gp: math_verdict(*gp)[0] == "ok", pairs))
        cached = time.perf_counter() - start
    return out, best, cached


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    pairs = [(r["gold"], r["prediction"]) for r in rows]
    load_before = os.getloadavg()
    mv_out, mv_time = run_math_verify(pairs, args.workers, args.passes)
    rk_out, rk_time, rk_cached = run_rewardkit(pairs, args.workers, args.passes)
    load_after = os.getloadavg()

    per_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r, mv, rk in zip(rows, mv_out, rk_out):
        c = per_cat[r["category"]]
        c[0] += 1
        c[1] += mv == r["expected"]
        c[2] += rk == r["expected"]
    n = len(rows)
    mv_acc = sum(c[1] for c in per_cat.values()) / n
    rk_acc = sum(c[2] for c in per_cat.values()) / n
    print(f"machine: {args.workers} worker processes each; {os.cpu_count()} CPU cores, {_cpu()}")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (other jobs share the machine)")
    print(f"cases: {n} ({CASES.relative_to(ROOT)}), best of {args.passes} passes\n")
    print("| tool | accuracy | verifications/s | seconds for all cases |")
    print("|---|---|---|---|")
    print(f"| math-verify 0.9.0 | {mv_acc:.1%} ({sum(c[1] for c in per_cat.values())}/{n}) | {n / mv_time:,.0f} | {mv_time:.3f} |")
    print(f"| rewardkit | {rk_acc:.1%} ({sum(c[2] for c in per_cat.values())}/{n}) | {n / rk_time:,.0f} | {rk_time:.3f} |")
    print(f"| rewardkit, repeated pairs (cache) | - | {n / rk_cached:,.0f} | {rk_cached:.3f} |")
    print(f"\nthroughput ratio rewardkit / math-verify: {mv_time / rk_time:.1f}x\n")
    print("| category | cases | math-verify | rewardkit |")
    print("|---|---|---|---|")
    for cat, (total, mv_ok, rk_ok) in sorted(per_cat.items()):
        print(f"| {cat} | {total} | {mv_ok / total:.0%} | {rk_ok / total:.0%} |")
    if args.show_misses:
        print("\nmisses (tool: gold | prediction | expected):")
        for r, mv, rk in zip(rows, mv_out, rk_out):
            for tool, got in (("math-verify", mv), ("rewardkit", rk)):
                if got != r["expected"]:
                    print(f"- {tool}: `{r['gold'][-40:]}` | `{r['prediction']}` | {r['expected']}")


if __name__ == "__main__":
    main()
