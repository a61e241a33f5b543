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


# each message names the field, echoes the value and says the expected type or range
BAD_TYPES = [
    ({"learning_rate": "fast"}, "learning_rate='fast' must be a finite number (float), not str"),
    ({"learning_rate": "1e-4"}, "learning_rate='1e-4' must be a finite number (float), not str"),  # Python: no parsing
    ({"learning_rate": None}, "learning_rate=None must be a finite number (float), not NoneType"),
    ({"temperature": True}, "temperature=True must be a finite number (float), not bool"),
    ({"use_peft": "false"}, "use_peft='false' must be a boolean (true or false), not str"),
    ({"use_peft": 0}, "use_peft=0 must be a boolean (true or false), not int"),
    ({"progress": None}, "progress=None must be a boolean (true or false), not NoneType"),
    ({"max_steps": True}, "max_steps=True must be an integer, not bool"),
    ({"max_steps": 2.5}, "max_steps=2.5 must be an integer"),
    ({"dataset_seed": 1.5}, "dataset_seed=1.5 must be an integer"),
    ({"seed": "3"}, "seed='3' must be an integer, not str"),
    ({"epsilon_high": "0.28"}, "epsilon_high='0.28' must be a finite number (float) or None, not str"),
    ({"num_threads": 2.5}, "num_threads=2.5 must be an integer or None"),
    ({"reward_timeout": float("inf")}, "reward_timeout=inf must be a finite number (float) or None"),
    ({"epsilon": 2}, "epsilon=2 must be in (0, 1)"),
    ({"epsilon": 1.0}, "epsilon=1.0 must be in (0, 1)"),
    ({"epsilon": 0}, "epsilon=0 must be in (0, 1)"),
    ({"epsilon": 0.3, "epsilon_high": 0.2}, "epsilon_high=0.2 must be >= epsilon=0.3"),
    ({"lora_dropout": 1.0}, "lora_dropout=1.0 must be in [0, 1)"),
    ({"reward_timeout": 0}, "reward_timeout=0 must be > 0 or None"),
    ({"num_threads": 0}, "num_threads=0 must be > 0 or None"),
]


@pytest.mark.parametrize("kwargs,message", BAD_TYPES, ids=[m for _, m in BAD_TYPES])
def test_bad_type_or_range_names_field_value_and_expected_type(kwargs, message):
    with pytest.raises(InvalidArgument) as info:
        GRPOConfig(**kwargs)
    assert message in str(info.value)


def test_good_values_keep_their_meaning():
    c = GRPOConfig(max_steps=4.0, learning_rate=1, epsilon=0.0003, epsilon_high=1.5, num_threads=2)
    assert c.max_steps == 4 and type(c.max_steps) is int  # a whole float is an int
    assert c.learning_rate == 1 and c.clip_high == 1.5    # epsilon_high may exceed 1 (GSPO: tiny epsilons)
    assert GRPOConfig(use_peft=False).use_peft is False


def test_yaml_strings_are_converted_like_hf_argument_parsing(tmp_path):
    # PyYAML reads 1e-4 (no dot) as the string "1e-4"; TOML has no such trap but a quoted value
    (tmp_path / "c.yaml").write_text(
        "learning_rate: 1e-4\nsft_learning_rate: '5E-4'\nuse_peft: 'false'\nprogress: 'YES'\n"
        "save_merged: '0'\ndeterministic: 'True'\nmax_steps: '12'\nwarmup_steps: 1e1\n"
        "epsilon_high: '0.28'\nreward_weights: [1e-1]\nreward: [math]\n")
    c = load_config(tmp_path / "c.yaml")
    assert c.learning_rate == 1e-4 and type(c.learning_rate) is float and c.sft_learning_rate == 5e-4
    assert (c.use_peft, c.progress, c.save_merged, c.deterministic) == (False, True, False, True)
    assert c.max_steps == 12 and c.warmup_steps == 10 and type(c.warmup_steps) is int
    assert c.epsilon_high == 0.28 and c.reward_weights == [0.1]
    (tmp_path / "c.toml").write_text('learning_rate = "1e-4"\nuse_peft = "no"\nmax_steps = 1e1\n')
    c = load_config(tmp_path / "c.toml")
    assert (c.learning_rate, c.use_peft, c.max_steps) == (1e-4, False, 10)


@pytest.mark.parametrize("line,message", [
    ("learning_rate: fast", "learning_rate='fast' must be a finite number (float), not str"),
    ("learning_rate: -1e-4", "learning_rate=-0.0001 must be > 0"),
    ("learning_rate: nan", "learning_rate='nan' must be a finite number (float)"),
    ("use_peft: 'maybe'", "use_peft='maybe' must be a boolean (true or false), not str"),
    ("use_peft: 2", "use_peft=2 must be a boolean (true or false), not int"),
    ("max_steps: '2.5'", "max_steps='2.5' must be an integer, not str"),
    ("max_steps: 1e-1", "max_steps='1e-1' must be an integer, not str"),
    ("epsilon: '2'", "epsilon=2 must be in (0, 1)"),
    ("reward_weights: [1, heavy]", "reward_weights=[1, 'heavy'] must be a list of finite numbers"),
])
def test_file_values_that_do_not_convert_are_refused(tmp_path, line, message):
    (tmp_path / "c.yaml").write_text(line + "\n")
    with pytest.raises(InvalidArgument) as info:
        load_config(tmp_path / "c.yaml")
    assert message in str(info.value)


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
    ("x = = 1\n", "toml", "is not valid TOML: Invalid value (at line 1, column 5)"),
    ("a: [1\n", "yaml", "is not valid YAML: "),
    ("a: 'x\xff'\n", "yaml", "is not valid YAML: "),
])
def test_bad_files(tmp_path, text, suffix, message):
    path = tmp_path / f"c.{suffix}"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InvalidArgument) as info:
        load_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)


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
