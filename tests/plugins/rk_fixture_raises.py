"""Its hook raises."""

from rewardkit.plugins import hookimpl


@hookimpl
def register_verifiers(register):
    raise RuntimeError("database unreachable")
