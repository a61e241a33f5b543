"""``rewardkit-train CONFIG [--resume] [--max-steps N] [--output-dir D]`` and ``--demo``.

``--demo`` runs the embedded default config (package data ``data/demo.toml``): a short
real GRPO run of SmolLM2-135M-Instruct on a reasoning-gym arithmetic task.
Exit codes: 0 done, 2 bad configuration (the message names the field and value).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Sequence

__all__ = ["main", "demo_config_path"]


def demo_config_path() -> Path:
    return Path(str(resources.files("rewardkit_trainer") / "data" / "demo.toml"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rewardkit-train", description="GRPO training with rewardkit rubrics.")
    p.add_argument("config", nargs="?", help="a .toml or .yaml GRPOConfig file")
    p.add_argument("--demo", action="store_true", help="run the embedded default config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    p.add_argument("--max-steps", type=int, help="override max_steps")
    p.add_argument("--output-dir", help="override output_dir")
    p.add_argument("--backend", choices=["rewardkit", "trl"], help="override backend")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.demo) == bool(args.config):
        _parser().error("give exactly one of CONFIG or --demo")
    from rewardkit.errors import InvalidArgument

    from .config import load_config
    from .launch import train

    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("output_dir", args.output_dir),
                                   ("backend", args.backend)) if v is not None}
    try:
        config = load_config(demo_config_path() if args.demo else args.config, **overrides)
    except InvalidArgument as exc:
        print(f"rewardkit-train: {exc}", file=sys.stderr)
        return 2
    result = train(config, resume=args.resume)
    print(f"rewardkit-train: done in {result.get('seconds', 0):.0f} s; outputs in {result.get('output_dir')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
