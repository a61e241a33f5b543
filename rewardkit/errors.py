"""Exceptions. Configuration errors raise at construction; model output never raises."""

from __future__ import annotations

__all__ = ["RewardkitError", "InvalidArgument", "PluginError", "NotFound"]


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


def invalid(field: str, value: object, requirement: str) -> InvalidArgument:
    """Build the standard message: ``field=value must <requirement>``."""
    return InvalidArgument(f"{field}={value!r} {requirement}")
