"""launch.train: the config's backend picks the loop."""

from __future__ import annotations

import rewardkit_trainer
from rewardkit_trainer import launch
from rewardkit_trainer.config import GRPOConfig


def test_package_train_is_launch_train():
    assert rewardkit_trainer.train is launch.train


def test_rewardkit_backend_runs_the_bundled_loop(monkeypatch):
    seen = {}

    class Fake:
        def __init__(self, config, **kw):
            seen["config"], seen["kw"] = config, kw

        def train(self, *, resume):
            return {"resume": resume}

    import rewardkit_trainer.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "GRPOTrainer", Fake)
    cfg = GRPOConfig()
    assert launch.train(cfg, resume=True, rubric="x") == {"resume": True}
    assert seen == {"config": cfg, "kw": {"rubric": "x"}}


def test_trl_backend_goes_to_trl(monkeypatch):
    import rewardkit_trainer.trl_backend as trl_backend

    monkeypatch.setattr(trl_backend, "train_with_trl", lambda config, **kw: {"engine": "trl", **kw})
    assert launch.train(GRPOConfig(backend="trl"), model=1) == {"engine": "trl", "model": 1}
