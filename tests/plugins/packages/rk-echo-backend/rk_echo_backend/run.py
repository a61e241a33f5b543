"""The echo backend: a 'policy' that answers each prompt with a template around the gold
answer, scored by the run's rubric. Writes result.json into output_dir."""

import json
import os
import time


def run(config, *, options, resume, train_rows, eval_rows, rubric, **_):
    start = time.perf_counter()
    template = options.get("template", "{answer}")
    column = config.data.answer_column
    texts = [template.format(answer=r[column]) for r in train_rows]
    columns = {k: [r[k] for r in train_rows] for k in train_rows[0] if k != "prompt"}
    results = rubric.score_batch(texts, prompts=[r["prompt"] for r in train_rows], **columns)
    os.makedirs(config.run.output_dir, exist_ok=True)
    out = {"options": options, "resume": resume, "rows": len(train_rows), "eval_rows": len(eval_rows),
           "columns": sorted(columns), "totals": [r.total for r in results],
           "parts": sorted(results[0].parts), "rubric": rubric.name}
    with open(os.path.join(config.run.output_dir, "result.json"), "w") as f:
        json.dump(out, f)
    return {"output_dir": config.run.output_dir, "seconds": time.perf_counter() - start}
