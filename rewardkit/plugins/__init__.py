"""Plugins: the registry behind :func:`rewardkit.get` and :func:`rewardkit.available`.

A plugin is a module (or any object) with functions marked ``@hookimpl`` that implement
the hooks in :mod:`rewardkit.plugins.hookspecs`; a distribution exposes it through the
``rewardkit`` entry-point group. rewardkit's own components are registered by
``rewardkit._builtins`` through the very same hooks.

Behaviour and limits:

- Entry points are read lazily, once, on the first :func:`get`, :func:`available` or
  :func:`list_plugins`; a plugin installed later in the same process needs :func:`reload`.
- ``REWARDKIT_PLUGINS`` (read at load time) is a comma-separated allowlist of distribution
  or entry-point names; set but empty, no third-party plugin loads. Built-ins always load.
- Loading is all or nothing and loud: a plugin that fails to import, implements an
  unknown hook, or registers a name that is already taken raises :class:`PluginError`
  naming the distribution(s) involved, and nothing is half-registered. Names are never
  renamed to dodge a clash: a rubric must mean the same thing on every machine.
- Plugin code (its import and its hooks) may raise anything: ``SystemExit`` from a
  ``sys.exit()`` at import and any other ``BaseException`` become a :class:`PluginError`
  too. ``KeyboardInterrupt`` is let through: a Ctrl-C from the user cannot be told apart
  from one raised by a plugin, and it must stop the program. ``os._exit()`` cannot be caught.
- ``list_plugins(include_broken=True)`` never raises for a broken plugin: it leaves each
  broken one out, loads the rest, and reports every one, with an ``error`` for the broken.
- Names are global across kinds (``get`` takes only a name).
- Trainer backends (kind ``"backend"``) are registered as a name and an import path
  ``"module:function"``; nothing is imported until :func:`load_backend` is called (by a
  trainer, when a job runs). ``get`` refuses a backend: it is not a component. The SDK
  ships no backend: the trainer distribution registers its own through this same hook.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as metadata
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from ..errors import NotFound, PluginError, invalid
from . import hookspecs
from .hookspecs import hookimpl

__all__ = [
    "hookimpl",
    "get",
    "available",
    "list_plugins",
    "add_plugin",
    "reload",
    "plugin_manager",
    "entry",
    "load_backend",
    "Entry",
    "Registry",
    "KINDS",
    "GROUP",
    "ENV_VAR",
]

PROJECT = "rewardkit"
GROUP = "rewardkit"  # entry-point group
ENV_VAR = "REWARDKIT_PLUGINS"
KINDS = ("verifier", "scorer", "rubric", "backend")
_HOOKS = {"verifier": "register_verifiers", "scorer": "register_scorers", "rubric": "register_rubrics",
          "backend": "register_backends"}
_BUILTINS = "rewardkit._builtins"
# ':' is reserved for the CLI's module:attr form, whitespace would not survive a shell
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")  # a backend's "module:function"


@dataclass(frozen=True)
class Entry:
    """One registered factory and where it came from."""

    name: str
    kind: str
    factory: Callable[..., Any] = field(repr=False)
    description: str
    distribution: str
    version: str
    target: str | None = None  # a backend's import path "module:function"

    def info(self) -> dict[str, str]:
        out = {
            "kind": self.kind,
            "description": self.description,
            "distribution": self.distribution,
            "version": self.version,
        }
        if self.target is not None:
            out["target"] = self.target
        return out


@dataclass
class _Plugin:
    key: str  # name inside the pluggy manager
    distribution: str
    version: str
    entry_point: str | None
    obj: Any = field(repr=False)
    registers: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str | None = None  # set only by a lenient load (list_plugins(include_broken=True))

    @property
    def label(self) -> str:
        return _label(self.distribution, self.entry_point)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "registers": {k: v for k, v in self.registers.items() if v},
        }


def _label(dist: str, entry_point: str | None) -> str:
    return f"{dist!r} (entry point {entry_point})" if entry_point else repr(dist)


def _normalize(name: str) -> str:
    # PEP 503: distribution names compare case-insensitively with -, _ and . alike
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _cause(exc: BaseException) -> str:
    """``Type: message`` on one line; a SystemExit says what the plugin called."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    text = _one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _rewardkit_version() -> str:
    try:
        return metadata.version("rewardkit")
    except metadata.PackageNotFoundError:  # running from a source tree
        from .. import __version__

        return __version__


class Registry:
    """Loads plugins once and maps names to factories. One default instance serves the
    module-level functions; tests may build their own."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._added: list[tuple[Any, str]] = []
        self._reset()

    def _reset(self) -> None:
        self._pm: pluggy.PluginManager | None = None
        self._plugins: list[_Plugin] = []
        self._entries: dict[str, Entry] | None = None

    # loading -------------------------------------------------------------------------
    def _ensure(self) -> dict[str, Entry]:
        entries = self._entries
        if entries is not None:
            return entries
        with self._lock:
            if self._entries is None:
                self._load()
            assert self._entries is not None
            return self._entries

    def _load(self) -> None:
        pm, plugins, entries = self._build(strict=True)
        self._pm, self._plugins, self._entries = pm, plugins, dict(sorted(entries.items()))

    def _build(self, *, strict: bool) -> tuple[pluggy.PluginManager, list[_Plugin], dict[str, Entry]]:
        """Load every plugin. Strict: the first failure raises PluginError. Lenient: a
        failing plugin is left out of the manager and kept with its ``error`` set."""
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        builtins = importlib.import_module(_BUILTINS)
        plugins = [self._add(pm, builtins, "rewardkit", _rewardkit_version(), f"builtins = {_BUILTINS}")]
        broken: list[_Plugin] = []

        def fail(plugin: _Plugin, exc: PluginError) -> None:
            if strict:
                raise exc
            if plugin.obj is not None and pm.get_plugin(plugin.key) is plugin.obj:
                pm.unregister(name=plugin.key)  # pluggy may have kept part of a failed register
            plugin.error = str(exc)
            plugin.registers = {k: [] for k in KINDS}
            broken.append(plugin)

        sources: list[tuple[Callable[[], Any], str, str, str | None]] = []
        for ep in _allowed(_entry_points()):
            dist = (ep.dist.name if ep.dist is not None else None) or ep.name
            version = ep.dist.version if ep.dist is not None else "unknown"
            sources.append((ep.load, dist, version, f"{ep.name} = {ep.value}"))
        sources += [((lambda obj=obj: obj), name, "unknown", None) for obj, name in self._added]
        for load, dist, version, ep_text in sources:
            obj = None
            try:
                obj = _import_plugin(load, dist, ep_text)
                plugins.append(self._add(pm, obj, dist, version, ep_text))
            except PluginError as exc:
                fail(_Plugin(_key(dist, ep_text), dist, version, ep_text, obj), exc)
        while True:  # strict: raises at the first plugin with an unknown hook
            try:
                _check_pending(pm, plugins)
                break
            except _PendingError as exc:
                plugins.remove(exc.plugin)
                fail(exc.plugin, exc)
        entries: dict[str, Entry] = {}
        for plugin in list(plugins):
            staged = dict(entries)  # a plugin that fails half-way registers nothing
            try:
                for kind, hook in _HOOKS.items():
                    _call_hook(pm, plugin, kind, hook, staged)
            except PluginError as exc:
                plugins.remove(plugin)
                fail(plugin, exc)
                continue
            entries = staged
        return pm, plugins + broken, entries

    @staticmethod
    def _add(pm: pluggy.PluginManager, obj: Any, dist: str, version: str, ep: str | None) -> _Plugin:
        key = _key(dist, ep)
        for hook in _HOOKS.values():
            fn = getattr(obj, hook, None)
            if callable(fn) and pm.parse_hookimpl_opts(obj, hook) is None:
                raise PluginError(f"plugin {dist!r} defines {hook}() but does not mark it with @hookimpl")
        try:
            pm.register(obj, name=key)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {dist!r} is invalid: {_one_line(exc)}") from exc
        except ValueError as exc:  # the same object registered twice
            raise PluginError(f"plugin {dist!r} could not be registered: {_one_line(exc)}") from exc
        return _Plugin(key, dist, version, ep, obj)

    # public --------------------------------------------------------------------------
    def get(self, name: str, /, **options: Any) -> Any:
        if not isinstance(name, str):
            raise invalid("name", name, "must be a string")
        entries = self._ensure()
        entry = entries.get(name)
        if entry is None:
            raise NotFound(_not_found_message(name, entries))
        if entry.kind == "backend":
            raise invalid("name", name, f"is a trainer backend (from {entry.distribution!r}), not a "
                                        "verifier, scorer or rubric; a trainer runs it (backend = ...)")
        return entry.factory(**options)

    def load_backend(self, name: str) -> Callable[..., Any]:
        if not isinstance(name, str):
            raise invalid("backend", name, "must be a string")
        entries = self._ensure()
        entry = entries.get(name)
        if entry is None or entry.kind != "backend":
            names = [n for n, e in entries.items() if e.kind == "backend"]
            raise invalid("backend", name, f"is not a registered trainer backend (registered: "
                                           f"{', '.join(names) or '(none)'}); see `rewardkit plugins`")
        return entry.factory()

    def available(self, kind: str | None = None) -> dict[str, dict[str, str]]:
        if kind is not None and kind not in KINDS:
            raise invalid("kind", kind, f"must be one of {', '.join(KINDS)} or None")
        return {n: e.info() for n, e in self._ensure().items() if kind is None or e.kind == kind}

    def entry(self, name: str) -> Entry:
        entries = self._ensure()
        if name not in entries:
            raise NotFound(_not_found_message(name, entries))
        return entries[name]

    def list_plugins(self, *, include_broken: bool = False) -> list[dict[str, Any]]:
        if not include_broken:
            self._ensure()
            return [p.info() for p in self._plugins]
        with self._lock:  # a separate lenient load: the registry itself stays all or nothing
            _, plugins, _ = self._build(strict=False)
        return [{**p.info(), "error": p.error} for p in plugins]

    def plugin_manager(self) -> pluggy.PluginManager:
        self._ensure()
        assert self._pm is not None
        return self._pm

    def add_plugin(self, obj: Any, *, name: str) -> None:
        """Register an in-process plugin (an object with ``@hookimpl`` functions) as if it
        were installed under distribution ``name``. Validated at once; kept until reload."""
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", name, "must be a non-empty string")
        with self._lock:
            self._added.append((obj, name))
            self._reset()
            try:
                self._ensure()
            except Exception:
                self._added.pop()
                self._reset()
                raise

    def reload(self) -> None:
        """Forget everything loaded (and every add_plugin); the next use reads entry points again."""
        with self._lock:
            self._added.clear()
            self._reset()
            importlib.invalidate_caches()


def _key(dist: str, ep: str | None) -> str:
    return f"{dist}:{ep.split(' = ')[0]}" if ep else dist


def _import_plugin(load: Callable[[], Any], dist: str, ep: str | None) -> Any:
    try:
        return load()
    except KeyboardInterrupt:  # the user's Ctrl-C, as far as anyone can tell: stop
        raise
    except BaseException as exc:  # SystemExit from sys.exit() at import, and the rest
        raise PluginError(
            f"plugin {_label(dist, ep)} failed to import: {_cause(exc)}; "
            f"fix or uninstall it, or leave it out with {ENV_VAR}"
        ) from exc


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in metadata.entry_points(group=GROUP):
        if ep.value.strip() == _BUILTINS:  # registered directly, installed or not
            continue
        key = (_normalize(ep.dist.name) if ep.dist is not None else "", ep.name)
        if key not in seen:  # one distribution found twice on sys.path
            seen.add(key)
            out.append(ep)
    return out


def _allowed(eps: list[metadata.EntryPoint]) -> list[metadata.EntryPoint]:
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return eps
    wanted = {_normalize(n) for n in raw.split(",") if n.strip()}
    return [
        ep
        for ep in eps
        if _normalize(ep.name) in wanted or (ep.dist is not None and _normalize(ep.dist.name) in wanted)
    ]


class _PendingError(PluginError):
    def __init__(self, message: str, plugin: _Plugin) -> None:
        super().__init__(message)
        self.plugin = plugin


def _check_pending(pm: pluggy.PluginManager, plugins: list[_Plugin]) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = next((p for p in plugins if p.obj is exc.plugin), None)
        label = plugin.label if plugin is not None else repr(exc.plugin)
        unknown = [
            name
            for name, caller in vars(pm.hook).items()
            if not caller.has_spec() and any(i.plugin is exc.plugin for i in caller.get_hookimpls())
        ]
        hook = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(hook, list(_HOOKS.values()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = (
            f"plugin {label} implements unknown hook {hook!r}{hint} "
            f"(rewardkit's hooks: {', '.join(_HOOKS.values())})"
        )
        if plugin is None:
            raise PluginError(message) from exc
        raise _PendingError(message, plugin) from exc


def _call_hook(pm: pluggy.PluginManager, plugin: _Plugin, kind: str, hook: str, entries: dict[str, Entry]) -> None:
    def register(name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"plugin {plugin.distribution!r} registered {kind} name {name!r}: "
                "a name must start with a letter or _ and hold only letters, digits, _ . -"
            )
        target = None
        if kind == "backend":
            if not isinstance(factory, str) or not _TARGET.match(factory.strip()):
                raise PluginError(f"plugin {plugin.distribution!r} registered backend {name!r} with {factory!r}: "
                                  "a backend is registered by its import path, 'module:function'")
            target = factory.strip()
            factory = _backend_loader(target, plugin.distribution, name)
        elif not callable(factory):
            raise PluginError(f"plugin {plugin.distribution!r} registered {kind} {name!r} with a non-callable factory {factory!r}")
        if not isinstance(description, str):
            raise PluginError(f"plugin {plugin.distribution!r} gave {kind} {name!r} a non-string description {description!r}")
        old = entries.get(name)
        if old is not None:
            raise PluginError(
                f"name {name!r} is registered twice: as a {old.kind} by distribution {old.distribution!r} "
                f"and as a {kind} by distribution {plugin.distribution!r}; uninstall one of them or "
                f"leave one out with {ENV_VAR}"
            )
        entries[name] = Entry(name, kind, factory, description.strip(), plugin.distribution, plugin.version, target)
        plugin.registers[kind].append(name)

    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin is not plugin.obj:
            continue
        if impl.hookwrapper or impl.wrapper:
            raise PluginError(f"plugin {plugin.distribution!r}: {hook} must not be a hook wrapper")
        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except (PluginError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit and the rest: see the module docstring
            raise PluginError(f"plugin {plugin.label} failed in {hook}: {_cause(exc)}") from exc


def _backend_loader(target: str, dist: str, name: str) -> Callable[[], Callable[..., Any]]:
    """A loader that imports ``target`` only when called (a backend's heavy imports wait
    until a job runs on it)."""

    def load() -> Callable[..., Any]:
        module_name, _, attr = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise PluginError(f"backend {name!r} of plugin {dist!r} could not be loaded from {target!r}: "
                              f"{_cause(exc)}") from exc
        if not callable(obj):
            raise PluginError(f"backend {name!r} of plugin {dist!r}: {target!r} is a {type(obj).__name__}, not a function")
        return obj

    load.__qualname__ = f"load_backend[{target}]"
    return load


def _not_found_message(name: str, entries: dict[str, Entry]) -> str:
    msg = f"no verifier, scorer or rubric is registered as {name!r}"
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.6)
    if close:
        msg += f"; did you mean {', '.join(map(repr, close))}?"
    else:
        msg += f"; registered: {', '.join(entries) or '(none)'}"
    raw = os.environ.get(ENV_VAR)
    if raw is not None:
        msg += f" (third-party plugins limited by {ENV_VAR}={raw!r})"
    return msg


_default = Registry()


def get(name: str, /, **options: Any) -> Any:
    """A new instance built by the factory registered as ``name``, called with ``options``.

    Unknown names raise :class:`rewardkit.NotFound` listing close matches.
    """
    return _default.get(name, **options)


def available(kind: str | None = None) -> dict[str, dict[str, str]]:
    """``{name: {"kind", "description", "distribution", "version"}}``, sorted by name (a
    backend also has its ``"target"``); ``kind`` ("verifier", "scorer", "rubric" or
    "backend") filters."""
    return _default.available(kind)


def list_plugins(*, include_broken: bool = False) -> list[dict[str, Any]]:
    """Every loaded plugin: name, distribution, version, entry point and what it registers.

    A broken plugin raises :class:`PluginError`, as ``get`` does. With ``include_broken``
    nothing raises: each plugin is loaded on its own, every record gains an ``error`` key
    (None, or the PluginError's message), and a broken plugin registers nothing.
    """
    return _default.list_plugins(include_broken=include_broken)


def add_plugin(obj: Any, *, name: str) -> None:
    """Register an in-process plugin object (handy in notebooks and tests); see Registry."""
    _default.add_plugin(obj, name=name)


def reload() -> None:
    """Forget loaded plugins; the next lookup reads entry points and the allowlist again."""
    _default.reload()


def plugin_manager() -> pluggy.PluginManager:
    """The loaded ``pluggy.PluginManager`` (hooks under ``.hook``)."""
    return _default.plugin_manager()


def load_backend(name: str) -> Callable[..., Any]:
    """The function of the trainer backend registered as ``name``, imported now (raises
    InvalidArgument for an unknown name, PluginError when its import fails)."""
    return _default.load_backend(name)


def entry(name: str) -> Entry:
    """The :class:`Entry` registered as ``name`` (raises NotFound)."""
    return _default.entry(name)
