"""``rewardkit-train``: a bad config file, model path, dataset or column is one line on
stderr and exit status 2, found before any model loads (loading one takes ~20 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rewardkit_trainer.models
import rewardkit_trainer.launch
import rewardkit_trainer.trainer
from rewardkit_trainer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _toml(fields: dict) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake model folder (passes the path check; loading it would fail), two datasets,
    and load_model replaced by a failure: every error here must come before a model loads."""

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the error was found")

    monkeypatch.setattr(rewardkit_trainer.models, "load_model", never)
    monkeypatch.setattr(rewardkit_trainer.trainer, "load_model", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    rows = [{"question": f"{i} + 1", "answer": str(i + 1)} for i in range(4)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps({"q": r["question"], "a": r["answer"]}) + "\n" for r in rows))
    return tmp_path


def run_main(site: Path, capsys, text: str, suffix: str = "toml") -> tuple[int, list[str], float]:
    """(exit status, non-blank stderr lines, seconds) of main([config])."""
    path = site / f"c.{suffix}"
    path.write_text(text)
    capsys.readouterr()
    start = time.perf_counter()
    code = main([str(path)])
    seconds = time.perf_counter() - start
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()], seconds


BASE = {"model": "model", "dataset": "data.jsonl", "eval_size": 1, "output_dir": "out"}

ERRORS = [
    ("missing_model", _toml({**BASE, "model": "no/such/model"}), "toml",
     "model='no/such/model' must be 'smollm2', a .gguf file or a local transformers model folder"),
    ("missing_prompt_column", _toml({**BASE, "dataset": "qa.jsonl"}), "toml",
     "prompt_column='question' is missing from row 0 (has ['a', 'q'])"),
    ("missing_answer_column", _toml({**BASE, "prompt_column": "question", "answer_column": "solution"}), "toml",
     "answer_column='solution' is missing from row 0"),
    # the config's columns exist, but the math rubric's verifier reads 'answer': all rewards would be errors
    ("column_the_rubric_reads", _toml({**BASE, "dataset": "qa.jsonl", "prompt_column": "q", "answer_column": "a"}),
     "toml", "reward='math' has part 'correct' reading column 'answer', which the dataset lacks (has ['a', 'q'])"),
    ("missing_dataset", _toml({**BASE, "dataset": "nope.jsonl"}), "toml", "dataset='nope.jsonl' is not an existing file"),
    ("unknown_reward", _toml({**BASE, "reward": "no_such_rubric"}), "toml", "reward='no_such_rubric' is not a registered"),
    ("bad_toml", 'model = "model"\nlearning_rate = = 1\n', "toml", "is not valid TOML: "),
    ("bad_yaml", "model: model\nreward: [math\n", "yaml", "is not valid YAML: "),
    ("bad_type", _toml({**BASE, "learning_rate": "fast"}), "toml",
     "learning_rate='fast' must be a finite number (float), not str"),
]


@pytest.mark.parametrize("text,suffix,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_config_model_and_data_errors_are_one_line_exit_2_before_the_model_loads(site, capsys, text, suffix, message):
    code, err, seconds = run_main(site, capsys, text, suffix)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("rewardkit-train: error: ") and message in err[0], err[0]
    assert seconds < 1.0


def test_checked_data_and_rubric_reach_train(site, capsys, monkeypatch):
    seen = {}

    def fake_train(config, *, resume=False, **kwargs):
        seen.update(kwargs, resume=resume)
        return {"seconds": 0, "output_dir": config.output_dir}

    monkeypatch.setattr(rewardkit_trainer.launch, "train", fake_train)
    code, err, _ = run_main(site, capsys, _toml({**BASE, "eval_size": 1}))
    assert code == 0, err
    assert len(seen["train_rows"]) == 3 and len(seen["eval_rows"]) == 1  # built once, split as before
    assert seen["train_rows"][0]["prompt"][-1] == {"role": "user", "content": "0 + 1"}
    assert [p.name for p in seen["rubric"].parts] == ["correct", "format"] and seen["resume"] is False


def test_missing_model_path_from_the_command_line(tmp_path):
    (tmp_path / "c.toml").write_text('model = "no/such/model"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "trainer"), str(ROOT)])}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rewardkit_trainer", "c.toml"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)
    seconds = time.perf_counter() - start
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "rewardkit-train: error: model='no/such/model' must be 'smollm2', a .gguf file or a local transformers model folder"
    ]
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert seconds < 5  # no torch, no model: ~0.2 s on an idle machine
