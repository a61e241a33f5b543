"""``rewardkit-train CONFIG [--resume] [--max-steps N] [--output-dir D]``, ``--demo``, and
``rewardkit-train doctor CONFIG`` (the rubric doctor on samples from the config's model).

``--demo`` runs the embedded default config (package data ``data/demo.toml``): a short
real GRPO run of SmolLM2-135M-Instruct on a reasoning-gym arithmetic task.

Everything cheap is checked before the model loads: the config file, the model path,
the dataset (built, with the prompt and answer columns, and the gold column each
verifier reads) and the reward. Exit codes: 0 done, 2 bad configuration, printed as one
line ``rewardkit-train: error: ...`` naming the field and value (as argparse does for a
usage error), also when the error only shows later (QLoRA without CUDA).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "doctor", "prepare", "demo_config_path"]


def demo_config_path() -> Path:
    return Path(str(resources.files("rewardkit_trainer") / "data" / "demo.toml"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rewardkit-train", description="GRPO training with rewardkit rubrics.")
    p.add_argument("config", nargs="?", help="a .toml or .yaml GRPOConfig file")
    p.add_argument("--demo", action="store_true", help="run the embedded default config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    p.add_argument("--max-steps", type=int, help="override max_steps")
    p.add_argument("--output-dir", help="override output_dir")
    p.add_argument("--backend", help="override backend: rewardkit, trl or any registered backend")
    return p


def _doctor_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rewardkit-train doctor",
                                description="the rubric doctor on completions this config's model samples")
    p.add_argument("config", help="a .toml or .yaml GRPOConfig file ('demo': the embedded one)")
    p.add_argument("--prompts", type=int, default=8, help="training prompts to sample (x num_generations)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def doctor(argv: Sequence[str]) -> int:
    """``rewardkit-train doctor CONFIG``: exit 3 on severe findings, 2 on bad configuration."""
    args = _doctor_parser().parse_args(argv)
    if args.prompts < 1:
        _doctor_parser().error(f"--prompts={args.prompts} must be >= 1")
    from rewardkit.errors import RewardkitError

    try:
        from .config import load_config
        from .doctor import print_report, sample_and_diagnose

        config = load_config(demo_config_path() if args.config == "demo" else args.config)
        report = sample_and_diagnose(config, prepare(config), prompts=args.prompts)
    except RewardkitError as exc:
        return _error(exc)
    return print_report(report, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["doctor"]:
        return doctor(argv[1:])
    args = _parser().parse_args(argv)
    if bool(args.demo) == bool(args.config):
        _parser().error("give exactly one of CONFIG or --demo")
    ours = _check_rewardkit()
    if ours is not None:
        print(f"rewardkit-train: error: {ours}", file=sys.stderr)
        return 2
    from rewardkit.errors import RewardkitError

    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("output_dir", args.output_dir),
                                   ("backend", args.backend)) if v is not None}
    try:
        from .config import load_config

        config = load_config(demo_config_path() if args.demo else args.config, **overrides)
        prepared = prepare(config)
        from .launch import train  # torch and transformers: only once the config holds up

        result = train(config, resume=args.resume, **prepared)
    except RewardkitError as exc:  # InvalidArgument, and PluginError from a reward's plugin
        return _error(exc)
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one line, from rank 0
        print(f"rewardkit-train: done in {result.get('seconds', 0):.0f} s; outputs in {result.get('output_dir')}")
    return 0


def _error(exc: BaseException) -> int:
    """Print a configuration error as one line (its first) and return exit status 2."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"rewardkit-train: error: {first}", file=sys.stderr)
    return 2


def _check_rewardkit() -> str | None:
    """An error when the importable ``rewardkit`` is not the SDK this trainer needs (a
    name clash: see ``rewardkit._origin``); a clash that leaves ours in place is a warning."""
    import rewardkit

    try:
        from rewardkit import _origin
        from rewardkit.plugins import hookspecs

        # an editable install's finder can serve our submodules under a foreign package
        if Path(str(getattr(rewardkit, "__file__", ""))).parent != Path(_origin.__file__).parent:
            raise ImportError("its __init__ is not ours")
    except ImportError as exc:
        where = getattr(rewardkit, "__file__", None) or "nowhere"
        return (f"the importable 'rewardkit' ({where}) is not the rewardkit SDK ({exc}); another distribution "
                "such as harbor-rewardkit installs a package of the same name. Fix: pip uninstall harbor-rewardkit "
                "rewardkit && pip install rewardkit (or separate virtual environments)")
    if not hasattr(hookspecs, "register_backends"):
        return "the installed rewardkit SDK is too old for this trainer (no register_backends hook); upgrade rewardkit"
    clash = _origin.problem()
    if clash:
        print(f"rewardkit-train: warning: {clash}", file=sys.stderr)
    return None


def prepare(config: Any) -> dict[str, Any]:
    """Check what is cheap to check before the model loads (~20 s), in order: the model
    path, the dataset and its columns, the reward. Returns ``train()``'s keyword
    arguments, so the dataset and rubric are built once."""
    from .data import check_columns, load_rows, split
    from .models import resolve_model_path
    from .rewards import build_rubric

    resolve_model_path(config.policy.model)
    train_rows, eval_rows = split(load_rows(config.data), config.data.eval_size)
    rubric = build_rubric(config.scoring.reward, config.scoring.reward_weights, config.scoring.reward_options)
    check_columns(train_rows, rubric, config.scoring.reward)
    return {"train_rows": train_rows, "eval_rows": eval_rows, "rubric": rubric}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
