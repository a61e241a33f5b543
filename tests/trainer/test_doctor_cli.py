"""``rewardkit-train doctor CONFIG``: the rubric doctor on completions sampled by the
config's own model (a tiny random model here), exit 3 on severe findings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rewardkit_trainer.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny import tiny_model, tiny_tokenizer  # noqa: E402


def _config(tmp: Path, reward: str) -> Path:
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    with open(tmp / "data.jsonl", "w") as f:
        for i in range(6):
            f.write(json.dumps({"question": f"{i} + 1", "answer": str(i + 1)}) + "\n")
    path = tmp / "c.toml"
    path.write_text(f'model = "{tmp / "model"}"\ndataset = "{tmp / "data.jsonl"}"\ndataset_size = 6\neval_size = 0\n'
                    f'reward = "{reward}"\nnum_generations = 4\nmax_completion_length = 8\nmax_prompt_length = 32\n'
                    f'output_dir = "{tmp / "out"}"\n')  # fmt: skip
    return path


@pytest.mark.parametrize("reward, code", [("gsm8k_classic", 3), ("math", 0)])
def test_doctor_samples_with_the_configs_model_and_reports(tmp_path, capsys, reward, code):
    assert main(["doctor", str(_config(tmp_path, reward)), "--prompts", "2", "--json"]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["rubric"] == reward and set(report["parts"]) >= ({"xmlcount"} if code else {"correct", "format"})
    severe = [f for f in report["findings"] if f["severity"] == "severe"]
    assert bool(severe) == (code == 3)  # the classic rules' EOS cliff; nothing severe for math


def test_doctor_bad_config_is_one_line(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('model = "nowhere"\n')
    assert main(["doctor", str(tmp_path / "c.toml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
