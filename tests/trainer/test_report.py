"""report.py: metrics and completions JSONL, the reward curve, the progress bar."""

from __future__ import annotations

from rewardkit_trainer.report import RunLogger, plot_rewards, progress_bar, read_metrics


def test_logger_appends_and_reset_starts_afresh(tmp_path):
    log = RunLogger(tmp_path, ["jsonl"])
    log.log(1, {"reward/mean": 0.5})
    log.completions(1, [{"completion": "a"}])
    assert read_metrics(tmp_path) == [{"step": 1, "reward/mean": 0.5}]
    log.reset()
    assert read_metrics(tmp_path) == [] and not (tmp_path / "completions.jsonl").exists()
    log.close()


def test_curve_and_disabled_bar(tmp_path):
    log = RunLogger(tmp_path, ["jsonl"])
    for step in range(1, 4):
        log.log(step, {"reward/mean": step / 3, "rewards/a/mean": 0.1})
    path = plot_rewards(tmp_path, ["a"])
    assert path is None or path.exists()
    assert progress_bar(False, 10, 0) is None
