"""Rubric specs: the one way a name in a config or on a command line becomes a Rubric.

:func:`resolve_rubric` takes

- a registered name (``"math"``: ``rewardkit.get``; an unknown one raises
  :class:`InvalidArgument` carrying ``get``'s close matches),
- ``"module:attr"`` (dots inside ``attr`` walk attributes) naming a Rubric, a Component,
  a reward function or a factory of one of those (a class, or a function callable with
  no arguments that takes no ``completions``),
- a Rubric, a Component or a reward function itself,
- or a list of any of these: each becomes one part (named by its ``name``/``__name__``),
  weighted by ``weights``. Two parts with one name raise :class:`InvalidArgument`
  (rename one, e.g. with a Component's ``name=``); nothing is renamed silently.

Anything that is not a Rubric becomes a one-part Rubric. Used by ``rewardkit score`` and
by the trainer's ``reward`` setting. Limits: a registered name wins over an importable
module of the same spelling only when it has no ``:``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping, Sequence

from .errors import NotFound, invalid_argument
from .rubric import Rubric

__all__ = ["resolve_rubric"]


def resolve_rubric(spec: Any, options: Mapping[str, Any] | None = None, *,
                   weights: Sequence[float] | None = None, field: str = "rubric") -> Rubric:
    """A Rubric from ``spec`` (see the module docstring). ``options`` go to the factory;
    ``weights`` (one per entry) only apply to a list; ``field`` names the setting in errors."""
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise invalid_argument(field, spec, "must name at least one rubric or component")
        if weights is not None and len(weights) != len(spec):
            raise invalid_argument(f"{field}_weights" if field == "reward" else "weights", list(weights),
                                   f"must have one weight per {field} ({len(spec)})")
        objs = [_find(s, options, field)[0] for s in spec]
        ws = [float(w) for w in weights] if weights is not None else [1.0] * len(objs)
        return Rubric([(_part_name(obj, str(s)), obj, w) for obj, s, w in zip(objs, spec, ws)], name="rewards")
    obj, name = _find(spec, options, field)
    if isinstance(obj, Rubric):
        return obj
    return Rubric({_part_name(obj, name): (obj, 1.0)}, name=name)


def _find(spec: Any, options: Mapping[str, Any] | None, field: str) -> tuple[Any, str]:
    """``(object, name)`` for one spec; a factory is called (with ``options``)."""
    options = dict(options or {})
    if not isinstance(spec, str):
        obj, name = spec, getattr(spec, "__name__", type(spec).__name__)
    elif ":" in spec:
        obj = _import_attr(spec, field)
        if options or (callable(obj) and _is_factory(obj)):
            obj = obj(**options)
        name = spec.rsplit(":", 1)[1]
    else:
        from .plugins import get

        try:
            obj, name = get(spec, **options), spec
        except NotFound as exc:
            raise invalid_argument(field, spec, f"is not a registered rubric or component ({exc})") from exc
    if not isinstance(obj, Rubric) and not callable(obj):
        raise invalid_argument(field, spec, f"is a {type(obj).__name__}, not a rubric, component or reward function")
    return obj, name


def _part_name(obj: Any, fallback: str) -> str:
    return getattr(obj, "name", None) or getattr(obj, "__name__", None) or fallback


def _import_attr(spec: str, field: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise invalid_argument(field, spec, "expected NAME or module:attribute")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise invalid_argument(field, spec, f"cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise invalid_argument(field, spec, f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _is_factory(obj: Any) -> bool:
    """A class, or a function that can be called with no arguments and is not a TRL reward
    function (those take ``completions``)."""
    if inspect.isclass(obj):
        return True
    if not inspect.isfunction(obj):
        return False
    params = inspect.signature(obj).parameters.values()
    if any(p.name in ("completions", "completion") for p in params):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params)
