"""Checkpoint/resume: a run SIGKILLed mid-way and resumed ends with the same parameters
as a run never interrupted (same seed, CPU, deterministic settings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _setup(tmp: Path, steps: int) -> Path:
    sys.path.insert(0, str(HERE))
    from tiny import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_model(tok)
    model.save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    with open(tmp / "data.jsonl", "w") as f:
        for i in range(12):
            f.write(json.dumps({"question": f"say a {i}", "answer": "a"}) + "\n")
    return tmp / "model"


def _config(tmp: Path, model: Path, out: str, steps: int) -> Path:
    text = f"""
model = "{model}"
dataset = "{tmp / 'data.jsonl'}"
dataset_size = 12
eval_size = 0
reward = "tiny:count_a"
use_peft = true
lora_r = 4
lora_alpha = 8
lora_target_modules = ["q_proj", "v_proj"]
learning_rate = 0.01
num_generations = 4
prompts_per_step = 2
max_completion_length = 8
max_steps = {steps}
save_steps = 1
save_merged = false
seed = 3
deterministic = true
num_threads = 1
progress = false
report_to = ["jsonl"]
output_dir = "{tmp / out}"
"""
    path = tmp / f"{out}.toml"
    path.write_text(text)
    return path


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "trainer"), str(HERE), env.get("PYTHONPATH", "")])
    return env


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "rewardkit_trainer", *args], env=_env(), capture_output=True,
                          text=True, timeout=300, **kw)


def _final(out: Path) -> dict:
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return torch.load(ckpts[-1] / "state.pt", weights_only=False)


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    steps = 6
    model = _setup(tmp_path, steps)
    straight = _run([str(_config(tmp_path, model, "straight", steps))])
    assert straight.returncode == 0, straight.stderr[-2000:]

    cfg = _config(tmp_path, model, "killed", steps)
    proc = subprocess.Popen([sys.executable, "-m", "rewardkit_trainer", str(cfg)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoint-3").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "killed" / "checkpoint-3").exists()
    assert not (tmp_path / "killed" / "adapter").exists(), "the run finished before it was killed"
    resumed = _run([str(cfg), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a, b = _final(tmp_path / "straight"), _final(tmp_path / "killed")
    assert a["step"] == b["step"] == steps
    assert a["model"].keys() == b["model"].keys() and a["model"]
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert a["sampler"] == b["sampler"]
    # the adapter did train (LoRA B starts at zero), so equal parameters mean something
    assert any(float(v.abs().max()) > 0 for n, v in a["model"].items() if "lora_B" in n)


def test_checkpoint_is_atomic_and_pruned(tmp_path):
    from rewardkit_trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    for step in (1, 2, 3):
        torch.manual_seed(step)
        save_checkpoint(tmp_path, step, model=model, optimizer=opt, scheduler=sched, extra={"sampler": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3"]
    (tmp_path / ".checkpoint-4.tmp").mkdir()  # a half-written checkpoint is ignored
    (tmp_path / "checkpoint-5").mkdir()  # a folder without state.pt too
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    expect = torch.rand(1)  # the first draw after the step-3 save
    with torch.no_grad():
        model.weight.add_(1.0)
    load_checkpoint(tmp_path / "checkpoint-3", model=model, optimizer=opt, scheduler=sched)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.rand(1), expect)  # RNG restored
