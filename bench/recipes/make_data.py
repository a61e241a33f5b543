"""Write each task's rows (question, answer) as JSONL, the way the trainer builds them from
``reasoning_gym:<task>`` with dataset_seed 0: machines without reasoning-gym (the GPU
machine) then train on exactly the same data.

    python bench/recipes/make_data.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import EVAL, SIZE, TASKS  # noqa: E402


def main() -> None:
    import reasoning_gym

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, (task, options) in TASKS.items():
        data = reasoning_gym.create_dataset(task, size=SIZE + EVAL, seed=0, **options)
        with open(out / f"{name}.jsonl", "w") as f:
            for row in data:
                f.write(json.dumps({"question": row["question"], "answer": str(row["answer"])}) + "\n")
        print(name, SIZE + EVAL, "rows")


if __name__ == "__main__":
    main()
