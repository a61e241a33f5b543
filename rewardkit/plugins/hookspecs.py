"""The hooks a rewardkit plugin may implement.

Each hook receives a ``register`` callback, ``register(name, factory, *, description="")``;
``factory(**options)`` must build a new component (or rubric) each time it is called.
``register_backends`` is the exception: its second argument is an import path
``"module:function"``, imported only when a job runs on that backend.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

__all__ = ["hookspec", "hookimpl", "Register"]

hookspec = pluggy.HookspecMarker("rewardkit")
hookimpl = pluggy.HookimplMarker("rewardkit")

#: ``register(name, factory, *, description="")``
Register = Callable[..., Any]


@hookspec
def register_verifiers(register: Register) -> None:
    """Register verifiers (components that decide correctness) by name."""


@hookspec
def register_scorers(register: Register) -> None:
    """Register scorers (components that grade form: format, length, closeness) by name."""


@hookspec
def register_rubrics(register: Register) -> None:
    """Register rubrics (weighted sets of verifiers and scorers) by name."""


@hookspec
def register_backends(register: Register) -> None:
    """Register trainer backends: ``register(name, "module:function", description=...)``.

    The function is called as ``function(config, *, options, resume, **prepared)`` with the
    trainer's config, the config's ``backend_options`` table and the prepared rows and rubric.
    """
