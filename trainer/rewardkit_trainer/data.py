"""Datasets: reasoning-gym tasks generated offline, files, saved folders, or a ``datasets.Dataset``.

Every source becomes a list of row dicts with a ``prompt`` (chat messages) plus the
original columns (the answer column is what verifiers read; every column reaches the
rubric's parts as a keyword argument, as in TRL). ``split`` carves a held-out evaluation
set off the end, so training never sees it.

``dataset`` takes: ``"reasoning_gym:<task>"`` (options from ``dataset_config``, e.g.
``{"min_terms": 2, "max_terms": 2}``); a ``.jsonl`` file (read here, errors name the line);
a ``.parquet``, ``.csv`` or ``.json`` file (read through ``datasets``); a folder written by
``datasets.Dataset.save_to_disk`` (a saved ``DatasetDict`` gives its ``train`` split); or,
from Python, a ``datasets.Dataset`` itself.
Limits: rows are held in memory; no streaming; no hub names (nothing is downloaded).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

from rewardkit.errors import InvalidArgument, invalid_argument

__all__ = ["SYSTEM_PROMPT", "load_rows", "build_prompt", "encode_prompt", "split", "check_columns", "PromptSampler"]

SYSTEM_PROMPT = (
    "Respond in the following format:\n"
    "<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
)


def load_rows(config: Any) -> list[dict[str, Any]]:
    """Rows for ``config.dataset`` with a chat ``prompt`` column added."""
    spec = config.dataset
    total = config.dataset_size + config.eval_size
    if not isinstance(spec, str):  # a datasets.Dataset (DataConfig checked it)
        rows: Any = spec
    elif spec.startswith("reasoning_gym:"):
        rows = _reasoning_gym(spec.split(":", 1)[1], total, config.dataset_seed, dict(config.dataset_config))
    elif spec.endswith(".jsonl"):
        rows = _jsonl(Path(spec))
    elif Path(spec).suffix.lower() in _READERS or Path(spec).is_dir():
        rows = _with_datasets(Path(spec))
    else:
        raise invalid_argument("dataset", spec, "must be 'reasoning_gym:<task>', a .jsonl/.json/.parquet/.csv file, "
                                                "a folder saved with Dataset.save_to_disk, or a datasets.Dataset")
    return rows_from(rows, config)


_READERS = {".parquet": "from_parquet", ".csv": "from_csv", ".json": "from_json"}


def _with_datasets(path: Path) -> Any:
    import datasets

    try:
        if path.is_dir():
            data = datasets.load_from_disk(str(path), keep_in_memory=True)
            if isinstance(data, datasets.DatasetDict):
                if "train" not in data:
                    raise invalid_argument("dataset", str(path), f"is a saved DatasetDict without a 'train' split "
                                                                 f"(has {sorted(data)})")
                data = data["train"]
            return data
        if not path.is_file():
            raise invalid_argument("dataset", str(path), "is not an existing file")
        return getattr(datasets.Dataset, _READERS[path.suffix.lower()])(str(path), keep_in_memory=True)
    except InvalidArgument:
        raise
    except Exception as exc:  # pyarrow and datasets raise their own types for broken files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise invalid_argument("dataset", str(path), f"could not be read by datasets: {type(exc).__name__}: {first}") from exc


def rows_from(rows: Sequence[Any], config: Any) -> list[dict[str, Any]]:
    """Add ``prompt`` messages to rows (dicts, or a ``datasets.Dataset``)."""
    out = []
    system = config.system_prompt if config.system_prompt is not None else SYSTEM_PROMPT
    for i, row in enumerate(rows):
        row = dict(row)
        if config.prompt_column not in row:
            raise invalid_argument("prompt_column", config.prompt_column, f"is missing from row {i} (has {sorted(row)})")
        if config.answer_column not in row:
            raise invalid_argument("answer_column", config.answer_column, f"is missing from row {i} (has {sorted(row)})")
        row["prompt"] = build_prompt(row[config.prompt_column], system)
        row[config.answer_column] = str(row[config.answer_column])
        out.append(row)
    return out


def build_prompt(question: Any, system: str | None) -> list[dict[str, str]]:
    if isinstance(question, list):  # already chat messages
        return question
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": str(question)}]


def _reasoning_gym(task: str, size: int, seed: int, options: dict[str, Any]) -> list[dict[str, Any]]:
    import reasoning_gym

    try:
        data = reasoning_gym.create_dataset(task, size=size, seed=seed, **options)
    except Exception as exc:  # unknown task names and bad options surface here
        raise invalid_argument("dataset", f"reasoning_gym:{task}", f"could not be built: {exc}") from exc
    # metadata can hold tuples and other non-JSON values: keep the plain columns only
    return [{"question": r["question"], "answer": str(r["answer"])} for r in data]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise invalid_argument("dataset", str(path), "is not an existing file")
    rows = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise invalid_argument("dataset", str(path), f"has bad JSON on line {n}: {exc.msg}") from exc
    return rows


def encode_prompt(tokenizer: Any, messages: Any, max_length: int) -> list[int]:
    """Token ids of a prompt (chat messages through the chat template with the generation
    prompt, or plain text), cut to the last ``max_length`` ids: the end holds the question."""
    if isinstance(messages, str):
        ids = tokenizer(messages)["input_ids"]
    else:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    return list(ids)[-max_length:]


def split(rows: list[dict[str, Any]], eval_size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, eval): the last ``eval_size`` rows are held out."""
    if eval_size <= 0:
        return rows, []
    if eval_size >= len(rows):
        raise invalid_argument("eval_size", eval_size, f"must be < the number of rows ({len(rows)})")
    return rows[:-eval_size], rows[-eval_size:]


def check_columns(rows: Sequence[dict[str, Any]], rubric: Any, reward: Any = None) -> None:
    """Refuse a rubric part that reads a gold column the rows lack (a verifier's
    ``answer_column``, as ``MathEquivalence`` has): every reward would be an error.
    Only parts that name their column can be checked; ``load_rows`` checks the config's
    prompt and answer columns. ``reward`` is the config's spec, echoed in the message."""
    if not rows:
        return
    for part in getattr(rubric, "parts", ()):
        column = getattr(getattr(part, "func", None), "answer_column", None)
        if isinstance(column, str) and column not in rows[0]:
            have = sorted(k for k in rows[0] if k != "prompt")
            raise invalid_argument("reward", reward if reward is not None else getattr(rubric, "name", rubric),
                          f"has part {part.name!r} reading column {column!r}, which the dataset lacks "
                          f"(has {have}); rename the column or give the verifier answer_column=")


class PromptSampler:
    """Deterministic epoch-wise shuffling whose position is part of a checkpoint."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.epoch, self.pos = 0, 0
        self._order = self._shuffle()

    def _shuffle(self) -> list[int]:
        order = list(range(self.n))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def take(self, k: int) -> list[int]:
        out = []
        for _ in range(k):
            if self.pos >= self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._shuffle()
            out.append(self._order[self.pos])
            self.pos += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._shuffle()

    def __iter__(self) -> Iterator[int]:  # pragma: no cover - convenience
        while True:
            yield from self.take(1)
