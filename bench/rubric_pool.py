"""Per-item overhead of rewardkit's process pool versus the standard library's pools,
and whether a Rubric lets a batch-parallel verifier (MathEquivalence) run in parallel.

One command: ``PYTHONPATH=. python bench/rubric_pool.py`` (writes nothing; prints a
markdown table). A trivial scorer isolates overhead: microseconds per item, warm pools,
best of ``REPEATS``. Only rewardkit's pool enforces a hard per-item timeout. The last two
rows score ``M`` symbolic pairs (sympy in the math workers) with ``MathEquivalence``
alone and inside a 2-part Rubric, in-process.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import platform
import time

from rewardkit import Rubric, Scorer
from rewardkit._scoring_pool import shutdown

N = 2000 if os.environ.get("REWARDKIT_SMALL") else 20000
M = 32  # symbolic pairs for the MathEquivalence rows
WORKERS = 2
REPEATS = 3


class Tiny(Scorer):
    def _score(self, text, **columns):
        return len(text) % 7 / 7


def _score_one(text):
    return Tiny().score(text).value


def _best(fn):
    fn()  # warm-up: start workers, import modules
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) / N * 1e6


def _math_rows() -> dict:
    from rewardkit.verifiers import MathEquivalence

    verifier = MathEquivalence()
    rubric = Rubric({"correct": verifier, "tiny": (Tiny(), 0.0)})
    verifier.warm()
    calls = iter(range(1, 1000))

    def batch():  # fresh pairs every call (no cache hits): equal only after expanding
        k = next(calls) * M
        texts = [f"\\boxed{{(x+{k + i})^2}}" for i in range(M)]
        golds = [f"x^2+{2 * (k + i)}x+{(k + i) ** 2}" for i in range(M)]
        return texts, golds

    out = {}
    for label, fn in (("`MathEquivalence.score_batch` alone", lambda t, g: verifier.score_batch(t, answer=g)),
                      ("2-part Rubric with MathEquivalence", lambda t, g: rubric.score_batch(t, answer=g))):
        fn(*batch())
        times = []
        for _ in range(REPEATS):
            texts, golds = batch()
            t0 = time.perf_counter()
            res = fn(texts, golds)
            times.append(time.perf_counter() - t0)
            values = [r.value if hasattr(r, "value") else r.parts["correct"].value for r in res]
            assert values == [1.0] * M, values
        out[f"{label}, {M} symbolic pairs, in-process (ms per completion)"] = min(times) / M * 1e3
    return out


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except Exception:
        return platform.processor() or "unknown"


def main() -> None:
    texts = [f"completion {i} " * (i % 5) for i in range(N)]
    scorer = Tiny()
    rubric = Rubric({"a": Tiny(), "b": (Tiny(), 0.5)})
    rows = {}
    rows["in-process `Scorer.score_batch`"] = _best(lambda: scorer.score_batch(texts))
    rows["rewardkit pool, `score_batch(workers=2, timeout=5)`"] = _best(
        lambda: scorer.score_batch(texts, workers=WORKERS, timeout=5)
    )
    rows["in-process 2-part `Rubric.score_batch`"] = _best(lambda: rubric.score_batch(texts))
    rows["rewardkit pool, 2-part Rubric (2 items per completion)"] = _best(
        lambda: rubric.score_batch(texts, workers=WORKERS, timeout=5)
    )
    ctx = mp.get_context("forkserver")
    with ctx.Pool(WORKERS) as pool:
        rows["`multiprocessing.Pool.map` (forkserver, auto chunks), no timeout"] = _best(
            lambda: pool.map(_score_one, texts)
        )
    with cf.ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
        rows["`ProcessPoolExecutor.map` (chunksize=64), no timeout"] = _best(
            lambda: list(ex.map(_score_one, texts, chunksize=64))
        )
        rows["`ProcessPoolExecutor.submit` per item (what per-item timeouts need)"] = _best(
            lambda: [f.result(timeout=5) for f in [ex.submit(_score_one, t) for t in texts]]
        )
    shutdown()
    rows.update(_math_rows())
    print(f"{N} completions, {WORKERS} workers, {os.cpu_count()} CPU cores, {_cpu()}\n")
    print("| method | us per completion (ms where said) |\n|---|---|")
    for name, us in rows.items():
        print(f"| {name} | {us:.1f} |")


if __name__ == "__main__":
    main()
