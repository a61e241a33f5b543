"""Classifier reward models (``rewardkit[models]``: transformers and torch).

:class:`RewardModel` scores (prompt, completion) pairs with a transformers
``AutoModelForSequenceClassification`` loaded from a local folder (nothing is fetched
from a hub: ``local_files_only``), in batches, on CPU or GPU. The reward is the logit of
label ``label_index`` (one-label reward heads, as TRL, OpenRLHF and verl train them),
optionally squashed with a sigmoid. With a chat template in the tokenizer and a chat
prompt, the conversation is rendered with the completion as the assistant turn; otherwise
prompt and completion are joined with ``separator``.

torch and transformers are imported when the model is first used, so constructing a
``RewardModel`` (and importing rewardkit) stays light; the folder is checked at
construction. Limits: sequences are truncated from the left to ``max_length`` tokens (the
completion's end is what a reward head reads); a failing batch gives ``error`` for that
batch only.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._component import Verifier, completion_text, prompt_text, value_text
from ._score import Score, Status, describe
from .errors import invalid_argument

__all__ = ["RewardModel"]


class RewardModel(Verifier):
    """``RewardModel("path/to/folder")`` - see the module docstring."""

    default_name = "reward_model"
    range = (-math.inf, math.inf)
    cache_ignores = ("device", "batch_size", "_loaded", "_lock")  # where and how it runs, not what it says

    def __init__(self, path: str, *, device: str | None = None, batch_size: int = 8, max_length: int = 1024,
                 label_index: int = 0, sigmoid: bool = False, separator: str = "\n", dtype: str = "float32",
                 name: str | None = None) -> None:
        super().__init__(name=name)
        folder = Path(str(path)).expanduser() if isinstance(path, (str, Path)) else None
        if folder is None or not (folder / "config.json").is_file():
            raise invalid_argument("path", path, "must be a local folder holding a transformers model (config.json)")
        for field, value in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid_argument(field, value, "must be a positive int")
        if isinstance(label_index, bool) or not isinstance(label_index, int) or label_index < 0:
            raise invalid_argument("label_index", label_index, "must be an int >= 0")
        if device is not None and (not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda", "mps")):
            raise invalid_argument("device", device, "must be 'cpu', 'cuda[:N]', 'mps' or None (CUDA when present)")
        labels = _num_labels(folder / "config.json")
        if label_index >= labels:
            raise invalid_argument("label_index", label_index, f"must be < the model's num_labels={labels} ({folder})")
        if dtype not in ("float32", "bfloat16", "float16"):
            raise invalid_argument("dtype", dtype, "must be float32, bfloat16 or float16")
        if not isinstance(separator, str):
            raise invalid_argument("separator", separator, "must be a string")
        self.path, self.device, self.batch_size, self.max_length = str(folder.resolve()), device, batch_size, max_length
        self.label_index, self.sigmoid, self.separator, self.dtype = label_index, bool(sigmoid), separator, dtype
        if sigmoid:
            self.range = (0.0, 1.0)
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # workers load their own copy
        return {k: v for k, v in vars(self).items() if k not in ("_loaded", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._loaded, self._lock = None, threading.Lock()

    # loading ---------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                import torch
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                tok.truncation_side = "left"
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token or tok.unk_token
                model = AutoModelForSequenceClassification.from_pretrained(
                    self.path, local_files_only=True, dtype=getattr(torch, self.dtype)).to(device).eval()
                if model.config.pad_token_id is None:
                    model.config.pad_token_id = tok.pad_token_id
                self._loaded = (model, tok)
        return self._loaded

    def text(self, prompt: Any, completion: Any) -> str:
        """What the classifier reads for one pair."""
        _, tok = self._load()
        answer = completion_text(completion)
        if isinstance(prompt, (list, tuple)) and getattr(tok, "chat_template", None):
            messages = [dict(m) for m in prompt if isinstance(m, Mapping)]
            try:
                return tok.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
            except Exception:  # noqa: BLE001 - a hostile prompt: fall back to plain text
                pass
        question = prompt_text(prompt)
        return f"{question}{self.separator}{answer}" if question else answer

    # scoring ---------------------------------------------------------------------------
    def _score(self, text: str, **columns: Any) -> Score:
        return self._batch([text], [columns.get("prompt")])[0]

    def _score_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        """The whole list in batches of ``batch_size`` (the pool, with ``workers``, goes item by item)."""
        prompts = [r.get("prompt") for r in rows]
        out: list[Score] = []
        for i in range(0, len(completions), self.batch_size):
            out.extend(self._batch(completions[i:i + self.batch_size], prompts[i:i + self.batch_size]))
        return out

    def _batch(self, completions: list, prompts: list) -> list[Score]:
        import time

        start = time.perf_counter()
        try:
            import torch

            model, tok = self._load()
            texts = [self.text(p, c) for p, c in zip(prompts, completions)]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.inference_mode():
                logits = model(**enc).logits[:, self.label_index].float()
            if self.sigmoid:
                logits = torch.sigmoid(logits)
            values = logits.cpu().tolist()
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop training
            reason = describe(exc)[:200]
            return [Score.error(reason=reason, elapsed=time.perf_counter() - start)] * len(completions)
        each = (time.perf_counter() - start) / max(len(completions), 1)
        return [Score(v, Status.OK, None, "reward model", each) if math.isfinite(v)
                else Score.error(reason=f"non-finite reward {v}", elapsed=each) for v in values]


def _num_labels(config_json: Path) -> int:
    """num_labels from config.json as transformers reads it (id2label wins), 2 by default."""
    import json

    try:
        cfg = json.loads(config_json.read_text())
    except (OSError, ValueError) as exc:
        raise invalid_argument("path", str(config_json.parent), f"has an unreadable config.json ({exc})") from None
    if isinstance(cfg.get("id2label"), dict):
        return len(cfg["id2label"])
    return int(cfg.get("num_labels", 2))
