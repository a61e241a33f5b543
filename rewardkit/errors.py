"""Exceptions. Configuration errors raise at construction; model output never raises."""

from __future__ import annotations

__all__ = ["RewardkitError", "InvalidArgument", "PluginError", "NotFound", "invalid_argument"]


class RewardkitError(Exception):
    """Base class of every error rewardkit raises on purpose."""


class InvalidArgument(RewardkitError, ValueError):
    """Bad configuration. The message names the field and echoes its value."""


class PluginError(RewardkitError):
    """A plugin is broken: a duplicate name, an unknown hook, a failing import."""


class NotFound(RewardkitError, KeyError):
    """No component is registered under the name asked for."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def invalid_argument(field: str, value: object, requirement: str) -> InvalidArgument:
    """The one way rewardkit (and its plugins and trainer) reports a bad argument:
    ``raise invalid_argument("top_p", 1.5, "must be in (0, 1]")`` gives the message
    ``top_p=1.5 must be in (0, 1]``."""
    return InvalidArgument(f"{field}={value!r} {requirement}")


invalid = invalid_argument  # the name used before it was public; kept for old imports
