"""The name clash with harbor-rewardkit, with a stand-in distribution (the real one does
not install here): both CLIs name it and give the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stand_in(site: Path, *, with_package: bool) -> None:
    info = site / "harbor_rewardkit-0.2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: harbor-rewardkit\nVersion: 0.2.0\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nrewardkit = harbor_rewardkit.cli:main\n")
    record = "harbor_rewardkit-0.2.0.dist-info/METADATA,,\n"
    if with_package:
        record += "rewardkit/__init__.py,,\n"
        (site / "rewardkit").mkdir()
        (site / "rewardkit" / "__init__.py").write_text("HARBOR = True\n")
    (info / "RECORD").write_text(record)


def _run(args, *paths):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT), str(ROOT / "trainer")])}
    cwd = paths[0]  # `python -m` puts the working directory first on sys.path: the first path wins
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_no_clash_here():
    from rewardkit._origin import problem

    assert problem() is None


def test_the_sdk_cli_names_the_other_distribution_and_the_fix(tmp_path):
    _stand_in(tmp_path, with_package=False)  # only the command clashes; our package is importable
    proc = _run(["-m", "rewardkit", "list", "--kind", "rubric"], tmp_path)
    assert proc.returncode == 0
    assert "rewardkit: warning: another distribution ('harbor-rewardkit')" in proc.stderr
    assert "pip uninstall harbor-rewardkit rewardkit && pip install rewardkit" in proc.stderr


def test_the_trainer_refuses_a_foreign_rewardkit_package(tmp_path):
    _stand_in(tmp_path, with_package=True)  # theirs first on the path: `import rewardkit` gets it
    config = tmp_path / "bad.toml"
    config.write_text("learning_rate = -1\n")  # were the check missed, this still ends at once
    proc = _run(["-m", "rewardkit_trainer", str(config)], tmp_path)
    assert proc.returncode == 2
    assert "is not the rewardkit SDK" in proc.stderr and "pip uninstall harbor-rewardkit" in proc.stderr


def test_the_trainer_warns_when_ours_is_in_place(tmp_path):
    _stand_in(tmp_path, with_package=True)
    config = tmp_path / "bad.toml"
    config.write_text("learning_rate = -1\n")
    proc = _run(["-m", "rewardkit_trainer", str(config)], ROOT, tmp_path)  # ours first on the path
    assert "rewardkit-train: warning: another distribution ('harbor-rewardkit')" in proc.stderr
    assert proc.returncode == 2 and "learning_rate=-1" in proc.stderr
