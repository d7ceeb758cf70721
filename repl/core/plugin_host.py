"""Finding, loading and calling plugins, with each plugin's failures kept to itself."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from repl import hookspecs
from repl.core.claims import Claim, settle
from repl.core.records import ModelError, ModelSpec, Setting

ENTRY_POINT_GROUP = "modelrepl"
DISTRIBUTION = "modelrepl"  # the plugins of this distribution are the built-in ones
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
    builtin: bool = False  # shipped with modelrepl: it keeps its names when another plugin claims them

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

    def add(self, plugin: Any, name: str, version: str = "", builtin: bool = False) -> bool:
        """Register a plugin object; a plugin whose hooks do not match the specs is refused."""
        status = self.statuses.setdefault(name, PluginStatus(name, version, builtin=builtin))
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
            builtin = entry_point.dist is not None and entry_point.dist.name == DISTRIBUTION
            try:
                plugin = entry_point.load()
            except BaseException as exc:  # an import can raise anything, SystemExit included
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.add_broken(entry_point.name, version, describe_exception(exc))
                continue
            self.add(plugin, entry_point.name, version, builtin)

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

    def _caller(self, plugin: str, hook: str) -> Any:
        """The hook's caller limited to one plugin's implementation."""
        key = (plugin, hook)
        caller = self._routed.get(key)
        if caller is None:
            others = [p for p in self.manager.get_plugins() if self.manager.get_name(p) != plugin]
            caller = self.manager.subset_hook_caller(hook, remove_plugins=others)
            self._routed[key] = caller
        return caller

    def implements(self, plugin: str, hook: str) -> bool:
        return any(impl.plugin_name == plugin for impl in getattr(self.manager.hook, hook).get_hookimpls())

    def offer(self, plugin: str, hook: str, kind: type, **kwargs: Any) -> Any:
        """Call a hook on one plugin only, for a result it may give: a `kind`, or None when it declines.

        A plugin that raises or returns something else is reported (once per
        hook, however often it fails) and None returned, so the caller does
        without it.
        """
        try:
            value = self._caller(plugin, hook)(**kwargs)
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:
            self._report_once(plugin, hook, f"raised {describe_exception(exc)}")
            return None
        if value is None or isinstance(value, kind):
            return value
        self._report_once(plugin, hook, f"returned {type(value).__name__}, expected {kind.__name__} or None")
        return None

    def _report_once(self, plugin: str, hook: str, problem: str) -> None:
        status = self.statuses.setdefault(plugin, PluginStatus(plugin))
        if not any(known.startswith(f"{hook} ") for known in status.problems):
            self.report(plugin, f"{hook} {problem}; modelrepl did without it")

    def call(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        """Call a model hook on one plugin only; failures become PluginError naming it."""
        try:
            return self._caller(plugin, hook)(**kwargs)
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
        registrations: list[tuple[Claim, dict[str, Any]]] = []
        for impl in self.manager.hook.register_models.get_hookimpls():
            register = _model_registrar(self, impl.plugin_name, registrations)
            self.broadcast_one(impl, "register_models", register=register)
        claims = [claim for claim, _ in registrations]
        settlement = settle(claims, what=lambda name: f"model name {name!r}", how_to_keep=self.how_to_keep)
        for plugin, problem in settlement.problems:
            self.report(plugin, problem)
        details = {id(claim): fields for claim, fields in registrations}
        models: dict[str, ModelSpec] = {}
        aliases: dict[str, str] = {}
        for claim, (name, *kept_aliases) in settlement.granted:
            models[name] = ModelSpec(name=name, aliases=tuple(kept_aliases), plugin=claim.plugin, **details[id(claim)])
            aliases.update(dict.fromkeys(kept_aliases, name))
        self._models, self._aliases = models, aliases
        self._routed.clear()

    def is_builtin(self, plugin: str | None) -> bool:
        status = self.statuses.get(plugin or "")
        return status is not None and status.builtin

    def how_to_keep(self, plugin: str, rivals: list[str]) -> str:
        """How a user gives a name that several plugins claim to one of them."""
        keep = sorted(name for name, status in self.statuses.items() if not status.broken and name not in rivals)
        return f"uninstall {' and '.join(map(repr, rivals))} or set {ONLY_PLUGINS_VARIABLE}={','.join(keep)}"


def _model_registrar(host: PluginHost, plugin: str, registrations: list[tuple[Claim, dict[str, Any]]]):
    """The ``register`` callback handed to one plugin's ``register_models``: it records the claim."""

    def register(
        name: str,
        *,
        family: str,
        checkpoint: str,
        aliases: tuple[str, ...] = (),
        description: str = "",
        settings: tuple[Setting, ...] = (),
        validate_settings=None,
        markdown: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name or name.startswith("/") or any(c.isspace() for c in name):
            host.report(plugin, f"invalid model name {name!r}; not registered")
            return
        fields = dict(
            family=family,
            checkpoint=checkpoint,
            description=description,
            settings=tuple(settings),
            validate_settings=validate_settings,
            markdown=bool(markdown),
        )
        registrations.append((Claim(plugin, (name, *aliases), host.is_builtin(plugin)), fields))

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
