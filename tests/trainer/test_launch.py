"""launch.train: the config's backend, looked up in rewardkit's plugin registry, runs the job."""

from __future__ import annotations

import sys
import types

import pytest

import rewardkit_trainer
from rewardkit import InvalidArgument, PluginError, plugins
from rewardkit.plugins import hookimpl
from rewardkit_trainer import backends, launch
from rewardkit_trainer.config import GRPOConfig


@pytest.fixture(autouse=True)
def fresh_registry():
    plugins.reload()
    yield
    sys.modules.pop("rk_tmp_backend", None)
    plugins.reload()


def test_package_train_is_launch_train():
    assert rewardkit_trainer.train is launch.train


def test_bundled_backends_are_registered_by_import_path_and_load_lazily():
    backends.ensure_registered()
    found = plugins.available("backend")
    assert found["rewardkit"]["target"] == "rewardkit_trainer.launch:run_bundled"
    assert found["trl"]["target"] == "rewardkit_trainer.trl_backend:run"
    assert found["trl"]["distribution"] == "rewardkit-trainer" and found["trl"]["kind"] == "backend"
    assert backends.load("rewardkit") is launch.run_bundled


def test_a_backend_is_not_a_component():
    backends.ensure_registered()
    with pytest.raises(InvalidArgument, match="'trl' .*trainer backend"):
        plugins.get("trl")


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


def test_bundled_backend_refuses_options():
    with pytest.raises(InvalidArgument, match="backend_options=.*must be empty"):
        launch.train(GRPOConfig(backend_options={"x": 1}))


def test_trl_backend_goes_to_trl_with_its_options(monkeypatch):
    import rewardkit_trainer.trl_backend as trl_backend

    monkeypatch.setattr(trl_backend, "train_with_trl", lambda config, **kw: {"engine": "trl", **kw})
    out = launch.train(GRPOConfig(backend="trl", backend_options={"use_vllm": False}), model=1)
    assert out == {"engine": "trl", "model": 1, "trl_options": {"use_vllm": False}}


def test_trl_options_reach_trls_config_and_unknown_ones_are_refused():
    from rewardkit_trainer.trl_backend import trl_args

    cfg = GRPOConfig(backend="trl", max_steps=3)
    assert trl_args(cfg, {"logging_steps": 7}).logging_steps == 7
    with pytest.raises(InvalidArgument, match="'no_such_field'"):
        trl_args(cfg, {"no_such_field": 1})


def _third_party(run):
    module = types.ModuleType("rk_tmp_backend")
    module.run = run

    class Plugin:
        @staticmethod
        @hookimpl
        def register_backends(register):
            register("echo", "rk_tmp_backend:run", description="echoes its arguments")

    sys.modules["rk_tmp_backend"] = module
    plugins.add_plugin(Plugin, name="rk-tmp-backend")


def test_a_registered_third_party_backend_is_accepted_and_gets_its_options():
    _third_party(lambda config, *, options, resume, **kw: {"options": options, "resume": resume, **kw})
    cfg = GRPOConfig(backend="echo", backend_options={"depth": 3})
    assert launch.train(cfg, resume=True, rubric="r") == {"options": {"depth": 3}, "resume": True, "rubric": "r"}


def test_an_unregistered_backend_is_refused_naming_the_registered_ones():
    with pytest.raises(InvalidArgument, match=r"backend='unsloth' is not a registered backend \(registered: .*rewardkit.*trl"):
        GRPOConfig(backend="unsloth")


@pytest.mark.parametrize("target", ["not a path", "rk_tmp_backend", 3, "a:b c"])
def test_a_backend_must_be_registered_by_import_path(target):
    class Plugin:
        @staticmethod
        @hookimpl
        def register_backends(register):
            register("bad", target)

    with pytest.raises(PluginError, match="import path, 'module:function'"):
        plugins.add_plugin(Plugin, name="rk-bad-backend")


def test_a_backend_that_fails_to_import_names_its_plugin():
    class Plugin:
        @staticmethod
        @hookimpl
        def register_backends(register):
            register("ghost", "rk_no_such_module_xyz:run")

    plugins.add_plugin(Plugin, name="rk-ghost")  # registering imports nothing
    with pytest.raises(PluginError, match="backend 'ghost' of plugin 'rk-ghost' could not be loaded.*ModuleNotFoundError"):
        backends.load("ghost")


def test_a_duplicate_backend_name_names_both_distributions():
    class Plugin:
        @staticmethod
        @hookimpl
        def register_backends(register):
            register("trl", "rk_tmp_backend:run")

    backends.ensure_registered()
    with pytest.raises(PluginError, match="'trl' is registered twice.*'rewardkit-trainer'.*'rk-dup'"):
        plugins.add_plugin(Plugin, name="rk-dup")
