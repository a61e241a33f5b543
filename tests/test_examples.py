"""Every file in examples/ runs small on CPU (REWARDKIT_SMALL=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_small(script, tmp_path):
    env = dict(os.environ, REWARDKIT_SMALL="1", REWARDKIT_OUTPUT_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no .py files"
