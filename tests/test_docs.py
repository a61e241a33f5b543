"""Every ```python block in README.md and docs/*.md runs, each in a fresh namespace.

Blocks that are not meant to run are written as ```text (or ```bash, ```toml ...).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("warm_math")

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _blocks():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for path in files:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for i, match in enumerate(_BLOCK.finditer(text)):
            line = text.count("\n", 0, match.start()) + 2
            yield pytest.param(path, match.group(1), id=f"{path.relative_to(ROOT)}:{line}")


@pytest.mark.parametrize("path, code", list(_blocks()))
def test_python_block_runs(path, code, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("REWARDKIT_SMALL", "1")
    namespace = {"__name__": "__docs__", "__file__": str(path)}
    exec(compile(code, f"{path.name}", "exec"), namespace)


def test_docs_have_blocks():
    # guards the regex: if it stopped matching, every docs example would silently pass
    assert any(True for _ in _blocks()), "no ```python blocks found in README/docs"
