"""The seam, end to end: a third-party backend and a third-party verifier, each
pip-installed (``--no-deps --target``) from its own distribution in
``tests/plugins/packages/``, run together through ``rewardkit-train`` on a parquet file.

Nothing is installed into the environment: the command runs in a subprocess with the
target folder and this checkout on PYTHONPATH. The trainer itself is installed the same
way, to prove its two backends come from its own entry point, not from the SDK.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "tests" / "plugins" / "packages"

pytestmark = pytest.mark.slow


def _pip_install(target: Path, *sources: Path) -> None:
    for source in sources:  # build from a copy: pip builds in-tree and would leave build/ here
        copy = target.parent / "src" / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(copy)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site") / "lib"
    _pip_install(target, PACKAGES / "rk-echo-backend", PACKAGES / "rk-suffix-verifier")
    return target


def _env(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REWARDKIT_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in paths] + [str(ROOT), str(ROOT / "trainer")])
    return env


def _parquet(path: Path) -> Path:
    import datasets

    rows = [{"question": f"What is {i} + 2?", "answer": str(i + 2), "level": i % 2} for i in range(8)]
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


def test_third_party_backend_and_verifier_train_together_on_parquet(site, tmp_path):
    data = _parquet(tmp_path / "rows.parquet")
    config = tmp_path / "run.toml"
    config.write_text(f'''
[data]
dataset = "{data}"
eval_size = 2

[scoring]
reward = ["ends_with_answer", "format"]
reward_weights = [1.0, 0.5]

[run]
backend = "echo"
output_dir = "{tmp_path / 'out'}"

[run.backend_options]
template = "The sum is {{answer}}"
''')
    proc = subprocess.run([sys.executable, "-m", "rewardkit_trainer", str(config)], env=_env(site),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["options"] == {"template": "The sum is {answer}"} and result["resume"] is False
    assert result["rows"] == 6 and result["eval_rows"] == 2
    assert result["columns"] == ["answer", "level", "question"]  # every parquet column reached the rubric
    assert result["parts"] == ["ends_with_answer", "format"]
    assert result["totals"] == [1.0] * 6  # the verifier said yes; the format part said no (no tags)


def test_the_backend_is_refused_without_its_package(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[run]\nbackend = "echo"\n')
    proc = subprocess.run([sys.executable, "-m", "rewardkit_trainer", str(config)], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "backend='echo' is not a registered backend (registered: rewardkit, trl)" in proc.stderr


def test_rewardkit_plugins_lists_backends_and_imports_none(site, tmp_path):
    trainer_site = tmp_path / "trainer-site"
    _pip_install(trainer_site, ROOT / "trainer")
    code = ("import json, sys; from rewardkit import plugins; "
            "print(json.dumps([plugins.available('backend'), 'rk_echo_backend.run' in sys.modules, "
            "'rewardkit_trainer.launch' in sys.modules]))")
    # the installed trainer first: its metadata (with the entry point) is what is read
    env = _env(site, trainer_site)
    listed, imported_echo, imported_launch = json.loads(subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert listed["echo"]["distribution"] == "rk-echo-backend" and listed["echo"]["target"] == "rk_echo_backend.run:run"
    assert listed["trl"]["distribution"] == "rewardkit-trainer"
    assert listed["rewardkit"]["target"] == "rewardkit_trainer.launch:run_bundled"
    assert not imported_echo and not imported_launch  # registered by name and path only
    proc = subprocess.run([sys.executable, "-m", "rewardkit", "plugins"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    by_dist = {p["distribution"]: p for p in json.loads(proc.stdout)}
    assert by_dist["rk-echo-backend"]["registers"] == {"backend": ["echo"]}
    assert by_dist["rewardkit-trainer"]["registers"] == {"backend": ["rewardkit", "trl"]}
