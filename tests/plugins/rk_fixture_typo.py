"""Implements a misspelt hook."""

from rewardkit.plugins import hookimpl


@hookimpl
def register_scorer(register):  # should be register_scorers
    register("never", lambda **options: None)
