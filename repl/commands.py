"""The `/` command registry and the built-in commands.

Each REPL owns its registry; built-ins are declared with the `@command`
decorator, which only marks a function, and are collected per registry, so no
state is shared between two REPLs in one process.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from repl import settings as settings_module
from repl.api import ModelError
from repl.plugins import PluginError
from repl.render import one_line
from repl.suggest import nearest

if TYPE_CHECKING:
    from repl.app import Repl
    from repl.session import Turn


class CommandError(Exception):
    """Bad use of a command: shown as one line."""


@dataclass
class Result:
    """What evaluating one line produced; commands and model turns render the same way."""

    text: str = ""
    turns: list[Turn] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    quit: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and all(t.ok for t in self.turns)


Handler = Callable[["Repl", str], "str | Result | None"]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    plugin: str | None = None

    @property
    def synopsis(self) -> str:
        return f"/{self.name} {self.usage}".rstrip()


def command(name: str, *, help: str, usage: str = "", aliases: tuple[str, ...] = ()):
    """Mark a function as a built-in command; `CommandRegistry.add_module` collects it."""

    def mark(function: Handler) -> Handler:
        function.command_info = dict(name=name, help=help, usage=usage, aliases=aliases)
        return function

    return mark


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, handler: Handler, *, help: str = "", usage: str = "", aliases=(), plugin=None) -> None:
        name = name.lstrip("/")
        for claimed in (name, *aliases):
            if claimed in self._commands or claimed in self._aliases:
                owner = self.find(claimed)
                raise ValueError(f"command /{claimed} is already taken by {owner.plugin or 'modelrepl'}")
        if not name or any(c.isspace() for c in name) or not callable(handler):
            raise ValueError(f"invalid command /{name}")
        self._commands[name] = Command(name, handler, help, usage, tuple(aliases), plugin)
        for alias in aliases:
            self._aliases[alias] = name

    def add_module(self, module: ModuleType) -> None:
        for value in vars(module).values():
            info = getattr(value, "command_info", None)
            if info is not None and callable(value):
                self.register(handler=value, **info)

    def find(self, name: str) -> Command | None:
        return self._commands.get(name) or self._commands.get(self._aliases.get(name, ""))

    def nearest(self, name: str) -> str | None:
        return nearest(name, list(self._commands) + list(self._aliases))

    def __iter__(self):
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def names(self) -> list[str]:
        return sorted(list(self._commands) + list(self._aliases))


def split_arguments(args: str, usage: str, least: int, most: int | None) -> list[str]:
    """Shell-like words of a command's arguments, with a usage message when their count is wrong."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise CommandError(f"cannot read the arguments ({exc}); usage: {usage}") from None
    if len(words) < least or (most is not None and len(words) > most):
        raise CommandError(f"usage: {usage}")
    return words


def on_off(word: str, usage: str) -> bool:
    lowered = word.lower()
    if lowered in ("on", "true", "yes"):
        return True
    if lowered in ("off", "false", "no"):
        return False
    raise CommandError(f"usage: {usage}")


# -- built-in commands ---------------------------------------------------------


@command("help", usage="[COMMAND]", help="list commands, or explain one")
def help_command(repl: Repl, args: str) -> str:
    words = split_arguments(args, "/help [COMMAND]", 0, 1)
    if words:
        found = repl.commands.find(words[0].lstrip("/"))
        if found is None:
            raise CommandError(repl.unknown_command_message(words[0].lstrip("/")))
        aliases = f" (also {', '.join('/' + a for a in found.aliases)})" if found.aliases else ""
        return f"{found.synopsis}{aliases}\n  {found.help}"
    width = max(len(c.synopsis) for c in repl.commands)
    lines = [f"{c.synopsis:<{width}}  {c.help}" for c in repl.commands]
    lines.append("")
    lines.append('Any other line goes to the active model. //text sends "/text". Esc-Enter or """ for several lines.')
    return "\n".join(lines)


@command("models", help="registered and loaded models")
def models_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/models", 0, 0)
    return repl.describe_models()


@command("use", usage="NAME", help="switch the active model")
def use_command(repl: Repl, args: str) -> str:
    (name,) = split_arguments(args, "/use NAME", 1, 1)
    spec = repl.session.spec(name)
    repl.session.active = spec.name
    repl.broadcast_to = None
    return f"active model: {spec.name} ({spec.family}, {repl.session.checkpoint_of(spec.name)})"


@command("load", usage="NAME [CHECKPOINT]", help="load a model now, optionally another checkpoint (hub id or directory)")
def load_command(repl: Repl, args: str) -> str:
    words = split_arguments(args, "/load NAME [CHECKPOINT]", 1, 2)
    session = repl.session
    spec = session.spec(words[0])
    wanted = words[1] if len(words) == 2 else session.checkpoint_of(spec.name)
    current = session.loaded.get(spec.name)
    if current is not None and current.checkpoint == wanted:
        return f"{spec.name} is already loaded from {wanted}"
    previous = session.checkpoints.get(spec.name)
    session.choose_checkpoint(spec.name, wanted if wanted != spec.checkpoint else None)
    if current is not None:
        session.unload(spec.name)
    try:
        loaded = repl.load(spec.name)
    except BaseException:
        session.choose_checkpoint(spec.name, previous)
        raise
    return f"loaded {spec.name} from {loaded.checkpoint}: {repl.describe_loaded(loaded)}"


@command("unload", usage="NAME", help="free a loaded model's memory")
def unload_command(repl: Repl, args: str) -> str:
    (name,) = split_arguments(args, "/unload NAME", 1, 1)
    spec = repl.session.spec(name)
    if not repl.session.unload(spec.name):
        raise CommandError(f"{spec.name} is not loaded")
    return f"unloaded {spec.name}"


@command("set", usage="KEY VALUE", help="change a setting of the active model")
def set_command(repl: Repl, args: str) -> str:
    words = split_arguments(args, "/set KEY VALUE", 2, 2)
    spec = repl.session.active_spec()
    try:
        warning = repl.session.set(spec.name, words[0], words[1])
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    value = repl.session.settings_of(spec.name)[words[0]]
    shown = f"{spec.name}: {words[0]} = {settings_module.format_value(value)}"
    return f"{shown}\nnote: {warning}" if warning else shown


@command("show", help="the active model's settings")
def show_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/show", 0, 0)
    spec = repl.session.active_spec()
    values = repl.session.settings_of(spec.name)
    lines = [f"{spec.name} ({spec.family}, {repl.session.checkpoint_of(spec.name)})"]
    for setting in settings_module.all_settings(spec):
        value = settings_module.format_value(values[setting.name])
        lines.append(f"  {setting.name:<22} {value:<8} {setting.help}")
    lines.append(f"  stats after each reply: {'on' if repl.show_stats else 'off'}")
    return "\n".join(lines)


@command("context", usage="on|off", help="keep earlier turns as the prompt (models that support it)")
def context_command(repl: Repl, args: str) -> str:
    (word,) = split_arguments(args, "/context on|off", 1, 1)
    spec = repl.session.active_spec()
    if spec.setting("context") is None:
        raise CommandError(f"{spec.name} keeps no conversation context; each line stands alone")
    repl.session.set(spec.name, "context", on_off(word, "/context on|off"))
    return f"{spec.name}: context {word.lower()}"


@command("stats", usage="on|off", help="show timings and token counts after each reply")
def stats_command(repl: Repl, args: str) -> str:
    (word,) = split_arguments(args, "/stats on|off", 1, 1)
    repl.show_stats = on_off(word, "/stats on|off")
    return f"stats {'on' if repl.show_stats else 'off'}"


@command("plugins", help="installed plugins and their status")
def plugins_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/plugins", 0, 0)
    from repl.render import plugins_table

    return plugins_table(repl.session.host)


@command("quit", help="leave modelrepl (Ctrl-D does too)", aliases=("exit", "q"))
def quit_command(repl: Repl, args: str) -> Result:
    split_arguments(args, "/quit", 0, 0)
    return Result(quit=True)


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, (CommandError, ModelError, PluginError)):  # their messages already say what failed
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")
