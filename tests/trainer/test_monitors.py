"""Run monitors: length drift, one part dominating, entropy collapse; each warned once."""

from __future__ import annotations

import io

from rewardkit_trainer.monitors import RunMonitor, sampled_entropy


def _feed(monitor, steps):
    return [monitor.update(i, m) for i, m in enumerate(steps, 1)]


def test_length_drift_fires_once_after_the_baseline():
    out = io.StringIO()
    mon = RunMonitor({"correct": 1.0}, stream=out)
    fired = _feed(mon, [{"completion_length/mean": x} for x in (100, 110, 90, 150, 250, 300)])
    assert fired == [[], [], [], [], ["length_drift"], []]
    assert out.getvalue().count("warning") == 1 and "250 tokens against 100" in out.getvalue()


def test_steady_lengths_stay_quiet():
    mon = RunMonitor({"correct": 1.0}, stream=io.StringIO())
    assert not any(_feed(mon, [{"completion_length/mean": 100 + (i % 3)} for i in range(20)]))


def test_a_dominating_part_is_named():
    mon = RunMonitor({"correct": 1.0, "format": 0.2}, stream=io.StringIO())
    assert mon.update(1, {"rewards/correct/std": 0.5, "rewards/format/std": 0.5}) == ["part_dominates"]
    balanced = RunMonitor({"correct": 1.0, "format": 1.0}, stream=io.StringIO())
    assert balanced.update(1, {"rewards/correct/std": 0.5, "rewards/format/std": 0.4}) == []
    logged_only = RunMonitor({"correct": 1.0, "length": 0.0}, stream=io.StringIO())  # weight 0: not steering
    assert logged_only.update(1, {"rewards/correct/std": 0.5, "rewards/length/std": 0.0}) == []


def test_entropy_collapse():
    mon = RunMonitor({"c": 1.0}, stream=io.StringIO())
    fired = _feed(mon, [{"entropy/sampled": x} for x in (1.2, 1.0, 1.1, 0.5, 0.05, 0.01)])
    assert fired[4] == ["entropy_collapse"] and not fired[5] and not any(fired[:4])


def test_sampled_entropy():
    assert sampled_entropy([[-1.0, -3.0], [-2.0]]) == 2.0
    assert sampled_entropy(None) is None and sampled_entropy([[]]) is None
