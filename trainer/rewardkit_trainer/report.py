"""Run logging: metrics JSONL, sampled completions, TensorBoard, reward-curve PNG, report.

Files in ``output_dir``: ``metrics.jsonl`` (one line per step), ``completions.jsonl``
(a few sampled completions per step with their reward parts), ``eval.json``,
``reward_curve.png`` and ``report.md``. TensorBoard events go to ``output_dir/tb`` when
the ``tensorboard`` package is installed. Under torchrun only rank 0 writes (the trainer
passes ``enabled=False`` elsewhere); metrics are already the global batch's. Appends on resume.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["RunLogger", "plot_rewards", "write_report", "progress_bar"]


class RunLogger:
    """Writes metrics and completions; ``enabled=False`` (every rank but 0) writes nothing."""

    def __init__(self, output_dir: str | Path, report_to: Sequence[str] = ("jsonl",), *, enabled: bool = True) -> None:
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.enabled = enabled
        self.jsonl = "jsonl" in report_to and enabled
        self.tb = None
        if "tensorboard" in report_to and enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.dir / "tb"))
            except Exception:  # tensorboard not installed: JSONL only
                self.tb = None

    def reset(self) -> None:
        """Start the JSONL files afresh (a new run in a reused output_dir)."""
        if not self.enabled:
            return
        for name in ("metrics.jsonl", "completions.jsonl"):
            (self.dir / name).unlink(missing_ok=True)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if self.jsonl:
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(key, value, step)

    def completions(self, step: int, samples: list[dict[str, Any]]) -> None:
        if self.jsonl and samples:
            with open(self.dir / "completions.jsonl", "a") as f:
                for s in samples:
                    f.write(json.dumps({"step": step, **s}) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if "reward/mean" in row:  # skip non-step rows such as the SFT summary
                rows[row["step"]] = row  # a resumed run may re-log a step: keep the last
    return [rows[k] for k in sorted(rows)]


def _smooth(values: list[float], k: int) -> list[float]:
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


def plot_rewards(output_dir: str | Path, parts: Sequence[str] = ()) -> Path | None:
    """Reward (and each part) against step, with a moving average; PNG via matplotlib Agg."""
    rows = read_metrics(output_dir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    k = max(1, len(rows) // 10)
    series = [("reward", "reward/mean")] + [(p, f"rewards/{p}/mean") for p in parts]
    for label, key in series:
        ys = [r.get(key) for r in rows]
        if any(y is None for y in ys):
            continue
        line = ax.plot(steps, ys, alpha=0.3)[0]
        ax.plot(steps, _smooth(ys, k), color=line.get_color(), label=f"{label} (avg {k})")
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = Path(output_dir) / "reward_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def write_report(output_dir: str | Path, config: Any, evals: dict[str, dict | None],
                 summary: dict[str, Any]) -> Path:
    """A short markdown report: setup, eval before/after, training summary."""
    rows = read_metrics(output_dir)
    lines = [f"# GRPO run: {config.model} on {config.dataset}", ""]
    lines += [f"- loss `{config.loss_type}`, G={config.num_generations}, prompts/step={config.prompts_per_step}, "
              f"steps={summary.get('steps')}, lr={config.learning_rate}, beta={config.beta}, "
              f"LoRA={'r=%d' % config.lora_r if config.use_peft else 'off'}",
              f"- wall time {summary.get('seconds', 0):.0f} s, rollout engine `{summary.get('engine')}`", ""]
    cols = [(name, e) for name, e in evals.items() if e]
    if cols:
        keys = sorted(set().union(*(e for _, e in cols)))
        lines += ["| held-out metric | " + " | ".join(n.replace("_", " ") for n, _ in cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(_fmt(e.get(k)) for _, e in cols) + " |" for k in keys]
        lines.append("")
    if rows:
        n = max(1, len(rows) // 4)
        first = sum(r["reward/mean"] for r in rows[:n]) / n
        last = sum(r["reward/mean"] for r in rows[-n:]) / n
        lines += [f"Mean training reward: first {n} steps {first:.3f}, last {n} steps {last:.3f}.", ""]
    if (Path(output_dir) / "reward_curve.png").is_file():
        lines += ["![reward curve](reward_curve.png)", ""]
    path = Path(output_dir) / "report.md"
    path.write_text("\n".join(lines))
    return path


def progress_bar(enabled: bool, total: int, initial: int) -> Any:
    """A tqdm bar over the steps, or None when disabled or tqdm is not installed."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc="grpo", dynamic_ncols=True)
