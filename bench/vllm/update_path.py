"""Same rollout, both update paths: does the vLLM path (old-log-prob pass + IS weights) give the hf path's gradient?

    PYTHONPATH=.:trainer python bench/vllm/update_path.py

Builds the demo trainer (seed 4), runs the SFT warm start, samples 4 prompts x 8 with the
built-in engine, scores them, then runs the trainer's ``_optimize`` twice on that one
rollout: as the hf path (old log-probs = the live ones, no IS correction) and as the vLLM
path (a separate no-grad old-log-prob pass and the default sequence_mask IS weights, fed
with the engine's log-probs). The optimizer step is replaced by a gradient capture, so
both see the same weights. Prints both paths' metrics and the gradients' relative
difference and cosine.
"""
from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [".", "trainer"]

import torch  # noqa: E402
from rewardkit_trainer.cli import demo_config_path  # noqa: E402
from rewardkit_trainer.config import load_config  # noqa: E402
from rewardkit_trainer.losses import group_advantages  # noqa: E402
from rewardkit_trainer.rewards import score_rollout  # noqa: E402
from rewardkit_trainer.rollout import SamplingParams  # noqa: E402
from rewardkit_trainer.sft import sft_warm_start  # noqa: E402
from rewardkit_trainer.trainer import GRPOTrainer  # noqa: E402


class _EngineName:
    """Stands in for the engine inside ``_optimize``, which reads only ``.name``."""

    def __init__(self, name: str) -> None:
        self.name = name


def main():
    c = load_config(demo_config_path(), rollout_engine="hf", output_dir=tempfile.mkdtemp(prefix="update-path-"),
                    seed=4, progress=False)
    tr = GRPOTrainer(c)
    sft_warm_start(tr)
    rows = tr.train_rows[:4]
    ids = [tr.encode_prompt(r["prompt"]) for r in rows]
    p = SamplingParams(num_generations=8, max_completion_length=48, temperature=0.8, seed=3)
    ro = tr.engine.generate(ids, p)
    g = 8
    grouped = [r for r in rows for _ in range(g)]
    totals, _ = score_rollout(tr.rubric, ro.texts, [r["prompt"] for r in grouped], grouped, workers=0, timeout=5)
    adv = group_advantages(torch.tensor(totals), g, c.scale_rewards)
    print("adv", adv.view(4, 8))
    reps = [x for x in ids for _ in range(g)]
    grads = {}

    def capture(tag):
        def step(*args, **kwargs):  # record the gradient instead of stepping: both paths see one set of weights
            grads[tag] = [q.grad.detach().clone() for q in tr.model.parameters() if q.requires_grad]
        return step

    for tag in ("hf", "vllm"):
        tr.optimizer.step = capture(tag)
        tr.engine = _EngineName(tag)
        m = tr._optimize(reps, ro, adv)
        print(tag, {k: round(v, 6) for k, v in m.items()})
    a, b = grads["hf"], grads["vllm"]
    num = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b)) ** 0.5
    den = sum(float(x.pow(2).sum()) for x in a) ** 0.5
    cos = sum(float((x * y).sum()) for x, y in zip(a, b)) / (den * sum(float(y.pow(2).sum()) for y in b) ** 0.5)
    print("grad rel diff", num / den, "cos", cos, "norm hf", den)


if __name__ == "__main__":
    main()
