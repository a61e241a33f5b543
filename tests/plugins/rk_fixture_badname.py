"""Registers a name with a space."""

from rewardkit.plugins import hookimpl


@hookimpl
def register_scorers(register):
    register("two words", lambda **options: None)
