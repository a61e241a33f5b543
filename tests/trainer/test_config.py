"""GRPOConfig: defaults, file loading, and a table of bad configs with clear errors."""

from __future__ import annotations

import pytest

from rewardkit import InvalidArgument
from rewardkit_trainer.config import GRPOConfig, load_config, resolve_rollout_engine


def test_defaults_follow_trl_names():
    c = GRPOConfig()
    assert c.num_generations == 8 and c.beta == 0.0 and c.loss_type == "dapo"
    assert c.vllm_importance_sampling_mode == "sequence_mask" and c.vllm_importance_sampling_cap == 3.0
    assert c.clip_high == c.epsilon
    assert GRPOConfig(epsilon_high=0.28).clip_high == 0.28


BAD = [
    ({"gradient_accumulation_steps": 4}, "gradient_accumulation_steps=4"),
    ({"num_generations": 1}, "num_generations=1"),
    ({"num_generations": 2.5}, "num_generations=2.5"),
    ({"learning_rate": 0}, "learning_rate=0"),
    ({"learning_rate": float("nan")}, "learning_rate=nan"),
    ({"beta": -0.1}, "beta=-0.1"),
    ({"epsilon_high": 0.1}, "epsilon_high=0.1"),
    ({"loss_type": "ppo"}, "loss_type='ppo'"),
    ({"scale_rewards": "std"}, "scale_rewards='std'"),
    ({"top_p": 0}, "top_p=0"),
    ({"top_p": 1.5}, "top_p=1.5"),
    ({"optimizer": "sgd"}, "optimizer='sgd'"),
    ({"rollout_engine": "sglang"}, "rollout_engine='sglang'"),
    ({"backend": "unsloth"}, "backend='unsloth'"),
    ({"vllm_importance_sampling_mode": "token"}, "vllm_importance_sampling_mode='token'"),
    ({"vllm_importance_sampling_cap": 0}, "vllm_importance_sampling_cap=0"),
    ({"vllm_gpu_memory_utilization": 1.5}, "vllm_gpu_memory_utilization=1.5"),
    ({"vllm_sleep_level": 3}, "vllm_sleep_level=3"),
    ({"vllm_lora_sync": "disk"}, "vllm_lora_sync='disk'"),
    ({"reward": ""}, "reward=''"),
    ({"reward": ["a", "b"], "reward_weights": [1.0]}, "reward_weights=[1.0]"),
    ({"reward_weights": [float("inf")]}, "reward_weights=[inf]"),
    ({"lora_target_modules": []}, "lora_target_modules=[]"),
    ({"load_in_4bit": True, "use_peft": False}, "load_in_4bit=True"),
    ({"max_steps": -1}, "max_steps=-1"),
    ({"temperature": 0}, "temperature=0"),
    ({"report_to": ["wandb"]}, "report_to=['wandb']"),
    ({"dtype": "int8"}, "dtype='int8'"),
    ({"per_device_train_batch_size": True}, "per_device_train_batch_size=True"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_field_and_value(kwargs, message):
    with pytest.raises(InvalidArgument) as info:
        GRPOConfig(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_toml_and_yaml_load_the_same(tmp_path):
    (tmp_path / "c.toml").write_text('num_generations = 4\n[optim]\nlearning_rate = 1e-5\nloss_type = "grpo"\n')
    (tmp_path / "c.yaml").write_text("num_generations: 4\noptim:\n  learning_rate: 1.0e-5\n  loss_type: grpo\n")
    a, b = load_config(tmp_path / "c.toml"), load_config(tmp_path / "c.yaml")
    assert a == b and a.num_generations == 4 and a.loss_type == "grpo"
    assert load_config(tmp_path / "c.toml", max_steps=3).max_steps == 3


@pytest.mark.parametrize("text,suffix,message", [
    ("num_generation = 4\n", "toml", "num_generation=4 is not a GRPOConfig field"),
    ("- 1\n", "yaml", "must hold a mapping"),
    ("x", "json", "must end in .toml"),
])
def test_bad_files(tmp_path, text, suffix, message):
    path = tmp_path / f"c.{suffix}"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.")):
        load_config(path)


def test_missing_file():
    with pytest.raises(InvalidArgument, match="config="):
        load_config("/nonexistent/c.toml")


def test_auto_engine_falls_back_or_picks_vllm(capsys):
    import importlib.util

    got = resolve_rollout_engine(GRPOConfig(rollout_engine="auto"))
    assert got == ("vllm" if importlib.util.find_spec("vllm") else "hf")
    assert resolve_rollout_engine(GRPOConfig(rollout_engine="hf")) == "hf"


def test_demo_config_is_valid():
    from rewardkit_trainer.cli import demo_config_path

    c = load_config(demo_config_path())
    assert c.model == "smollm2" and c.dataset.startswith("reasoning_gym:")


def test_examples_are_valid():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))
    for path in examples:
        load_config(path)


def test_cli_reports_bad_config_with_exit_code_2(tmp_path, capsys):
    from rewardkit_trainer.cli import main

    path = tmp_path / "c.toml"
    path.write_text('loss_type = "ppo"\n')
    assert main([str(path)]) == 2
    assert "loss_type='ppo' must be one of" in capsys.readouterr().err


def test_cli_needs_config_or_demo():
    from rewardkit_trainer.cli import main

    with pytest.raises(SystemExit):
        main([])
