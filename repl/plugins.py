"""Finding, loading and calling plugins, with each plugin's failures kept to itself."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from repl import hookspecs
from repl.api import ModelError, ModelSpec, Setting

ENTRY_POINT_GROUP = "modelrepl"
ONLY_PLUGINS_VARIABLE = "MODELREPL_PLUGINS"
MODEL_HOOKS = ("load_model", "tokenize", "run", "decode")


class PluginError(Exception):
    """A plugin's hook raised or answered wrongly; the message names the plugin."""

    def __init__(self, plugin: str, hook: str, reason: str):
        super().__init__(f"plugin {plugin!r} failed in {hook}: {reason}")
        self.plugin = plugin
        self.hook = hook


@dataclass
class PluginStatus:
    name: str
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    broken: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.broken:
            return f"broken: {self.broken}"
        if self.problems:
            return "ok, with problems: " + "; ".join(self.problems)
        return "ok"


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
    """A plugin manager plus the bookkeeping that keeps faulty plugins isolated.

    Model hooks are routed to the plugin that registered the model; broadcast
    hooks are called one implementation at a time, so one raising plugin is
    reported and skipped while the others still run.
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.statuses: dict[str, PluginStatus] = {}
        self.unseen_problems: list[str] = []
        self._routed: dict[tuple[str, str], Any] = {}
        self._models: dict[str, ModelSpec] | None = None
        self._aliases: dict[str, str] = {}

    # -- registration -----------------------------------------------------------

    def add(self, plugin: Any, name: str, version: str = "") -> bool:
        """Register a plugin object; a plugin whose hooks do not match the specs is refused."""
        status = self.statuses.setdefault(name, PluginStatus(name, version))
        try:
            self.manager.register(plugin, name=name)
            self.manager.check_pending()
        except Exception as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            reason = describe_exception(exc)
            if isinstance(exc, pluggy.PluginValidationError):
                # Its first line names only the hook; the lines after it say what is wrong.
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            self._mark_broken(status, reason)
            return False
        status.hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or ())
        self._models = None
        return True

    def add_broken(self, name: str, version: str, reason: str) -> None:
        self._mark_broken(self.statuses.setdefault(name, PluginStatus(name, version)), reason)

    def load_entry_points(self, only: Iterable[str] | None = None) -> None:
        """Import each installed entry point on its own, so one bad import spoils nothing else."""
        wanted = set(only) if only is not None else None
        for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if wanted is not None and entry_point.name not in wanted:
                continue
            if entry_point.name in self.statuses:
                continue
            version = entry_point.dist.version if entry_point.dist else ""
            try:
                plugin = entry_point.load()
            except BaseException as exc:  # an import can raise anything, SystemExit included
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.add_broken(entry_point.name, version, describe_exception(exc))
                continue
            self.add(plugin, entry_point.name, version)

    def _mark_broken(self, status: PluginStatus, reason: str) -> None:
        status.broken = reason
        self.unseen_problems.append(f"plugin {status.name!r} is broken: {reason}")

    def report(self, plugin: str, problem: str) -> None:
        """Remember a plugin's problem once; the REPL shows each new one once."""
        status = self.statuses.setdefault(plugin, PluginStatus(plugin))
        if problem not in status.problems:
            status.problems.append(problem)
            self.unseen_problems.append(f"plugin {plugin!r}: {problem}")

    def take_problems(self) -> list[str]:
        problems, self.unseen_problems = self.unseen_problems, []
        return problems

    # -- calling ----------------------------------------------------------------

    def broadcast(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a broadcast hook, reporting and skipping failures."""
        return [
            (impl.plugin_name, self.broadcast_one(impl, hook, **kwargs))
            for impl in getattr(self.manager.hook, hook).get_hookimpls()
        ]

    def broadcast_one(self, impl: Any, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a broadcast hook; a failure is reported, not raised."""
        accepted = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            return impl.function(**accepted)
        except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the REPL
            self.report(impl.plugin_name, f"{hook} raised {describe_exception(exc)}")
            return None

    def call(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        """Call a model hook on one plugin only; failures become PluginError naming it."""
        key = (plugin, hook)
        caller = self._routed.get(key)
        if caller is None:
            others = [p for p in self.manager.get_plugins() if self.manager.get_name(p) != plugin]
            caller = self.manager.subset_hook_caller(hook, remove_plugins=others)
            self._routed[key] = caller
        try:
            return caller(**kwargs)
        except (KeyboardInterrupt, PluginError):
            raise
        except (Exception, SystemExit) as exc:
            if _is_user_error(exc):
                raise
            self.report(plugin, f"{hook} raised {describe_exception(exc)}")
            raise PluginError(plugin, hook, describe_exception(exc)) from exc

    def expect(self, plugin: str, hook: str, value: Any, kind: type) -> Any:
        """`value` if it is a `kind`; otherwise the plugin's problem is reported and PluginError raised."""
        if isinstance(value, kind):
            return value
        reason = f"returned {type(value).__name__}, expected {kind.__name__}"
        self.report(plugin, f"{hook} {reason}")
        raise PluginError(plugin, hook, reason)

    # -- models -----------------------------------------------------------------

    def models(self) -> dict[str, ModelSpec]:
        """Every registered model by name, gathered once and cached."""
        if self._models is None:
            self._collect_models()
        assert self._models is not None
        return self._models

    def resolve(self, name: str) -> ModelSpec | None:
        models = self.models()
        return models.get(name) or models.get(self._aliases.get(name, ""))

    def _collect_models(self) -> None:
        models: dict[str, ModelSpec] = {}
        aliases: dict[str, str] = {}
        for impl in self.manager.hook.register_models.get_hookimpls():
            plugin = impl.plugin_name
            self.broadcast_one(impl, "register_models", register=_model_registrar(self, plugin, models, aliases))
        self._models, self._aliases = models, aliases
        self._routed.clear()


def _model_registrar(host: PluginHost, plugin: str, models: dict[str, ModelSpec], alias_map: dict[str, str]):
    """The ``register`` callback handed to one plugin's ``register_models``."""

    def register(
        name: str,
        *,
        family: str,
        checkpoint: str,
        aliases: tuple[str, ...] = (),
        description: str = "",
        settings: tuple[Setting, ...] = (),
        validate_settings=None,
    ) -> None:
        taken = {n: s.plugin for n, s in models.items()} | {a: models[t].plugin for a, t in alias_map.items()}
        for claimed in (name, *aliases):
            if claimed in taken:
                host.report(
                    plugin, f"model name {claimed!r} is already taken by plugin {taken[claimed]!r}; not registered"
                )
                return
        if not isinstance(name, str) or not name or name.startswith("/") or any(c.isspace() for c in name):
            host.report(plugin, f"invalid model name {name!r}; not registered")
            return
        models[name] = ModelSpec(
            name=name,
            family=family,
            checkpoint=checkpoint,
            aliases=tuple(aliases),
            description=description,
            settings=tuple(settings),
            validate_settings=validate_settings,
            plugin=plugin,
        )
        for alias in aliases:
            alias_map[alias] = name

    return register


def _is_user_error(exc: Exception) -> bool:
    return isinstance(exc, ModelError)


def only_plugins_from_environment() -> list[str] | None:
    """MODELREPL_PLUGINS=a,b restricts which entry points load; set but empty loads none."""
    value = os.environ.get(ONLY_PLUGINS_VARIABLE)
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def create_host(plugins: Iterable[tuple[str, Any]] = (), entry_points: bool = True) -> PluginHost:
    """A fresh host: installed entry points (unless told not to) plus the given plugin objects."""
    host = PluginHost()
    for name, plugin in plugins:
        host.add(plugin, name)
    if entry_points:
        host.load_entry_points(only_plugins_from_environment())
    return host
