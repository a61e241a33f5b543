"""Both engines' trainers on the SAME rollouts: does anything on the vLLM path besides sampling change training?

    PYTHONPATH=.:trainer python bench/vllm/same_rollouts.py --seed 2 --steps 6

Builds two demo trainers with one seed, one per engine, and runs the SFT warm start on both
(identical: same init, same greedy targets). Each step the built-in engine's trainer samples
and trains; the vLLM trainer's engine samples too (so its weight sync, thread switching and
whatever else it does all happen) but its samples are dropped and the trainer trains on the
built-in engine's rollout instead. After every step prints both runs' reward, loss and grad
norm and the largest weight difference, trainable and frozen. If the vLLM path differed
only in its samples, the weights stay together.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
sys.path[:0] = [".", "trainer"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()

    import torch
    from rewardkit_trainer.cli import demo_config_path
    from rewardkit_trainer.config import load_config
    from rewardkit_trainer.sft import sft_warm_start
    from rewardkit_trainer.trainer import GRPOTrainer

    trainers = {}
    for engine in ("hf", "vllm"):
        c = load_config(demo_config_path(), rollout_engine=engine, seed=args.seed, progress=False,
                        output_dir=tempfile.mkdtemp(prefix=f"same-rollouts-{engine}-"), report_to=["jsonl"],
                        log_completions=0)
        trainers[engine] = GRPOTrainer(c)
        sft_warm_start(trainers[engine])
    hf, vl = trainers["hf"], trainers["vllm"]
    shared = {}
    hf_generate, vl_generate = hf.engine.generate, vl.engine.generate

    def sample(ids, params):
        shared["rollout"], shared["ids"] = hf_generate(ids, params), ids
        return shared["rollout"]

    def replay(ids, params):
        assert ids == shared["ids"]  # one seed: both samplers pick the same prompts
        vl_generate(ids, params)  # vLLM samples for real; the samples are dropped
        return shared["rollout"]

    hf.engine.generate, vl.engine.generate = sample, replay

    def gap(tag: str) -> None:
        a, b = dict(hf.model.named_parameters()), dict(vl.model.named_parameters())
        with torch.no_grad():
            trained = max(float((a[n] - b[n]).abs().max()) for n in a if a[n].requires_grad)
            scale = max(float(a[n].abs().max()) for n in a if a[n].requires_grad)
            frozen = max(float((a[n] - b[n]).abs().max()) for n in a if not a[n].requires_grad)
        print(f"{tag}: largest weight difference trainable {trained:.3g} (largest weight {scale:.3g}), "
              f"frozen {frozen:.3g}", flush=True)

    gap("after the warm start")
    for step in range(1, args.steps + 1):
        mh, mv = hf.train_step(), vl.train_step()
        print(f"step {step}: reward {mh['reward/mean']:.4f} / {mv['reward/mean']:.4f}, loss {mh['loss']:.6f} / "
              f"{mv['loss']:.6f}, grad norm {mh['grad_norm']:.6f} / {mv['grad_norm']:.6f}", flush=True)
        gap(f"step {step}")
    vl.engine.close()


if __name__ == "__main__":
    main()
