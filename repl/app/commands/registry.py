"""The `/` command registry.

Each REPL owns its registry; built-ins are declared with the `@command`
decorator, which only marks a function, and are collected per registry, so no
state is shared between two REPLs in one process. Command modules import this
module and `repl.commands.arguments`, nothing of the REPL that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from repl.core.suggest import nearest

if TYPE_CHECKING:
    from repl.app.context import CommandContext
    from repl.core.results import Result


Handler = Callable[["CommandContext", str], "str | Result | None"]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    plugin: str | None = None
    confirms: bool = False  # a text answer only confirms what was done (see Result.confirmation)
    # Touches neither torch nor transformers, so it runs at once while the warm start imports them.
    instant: bool = False

    @property
    def synopsis(self) -> str:
        return f"/{self.name} {self.usage}".rstrip()


def command(
    name: str,
    *,
    help: str,
    usage: str = "",
    aliases: tuple[str, ...] = (),
    confirms: bool = False,
    instant: bool = False,
):
    """Mark a function as a built-in command; `CommandRegistry.add_module` collects it."""

    def mark(function: Handler) -> Handler:
        info = dict(name=name, help=help, usage=usage, aliases=aliases, confirms=confirms, instant=instant)
        function.command_info = info  # type: ignore[attr-defined]
        return function

    return mark


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        help: str = "",
        usage: str = "",
        aliases=(),
        plugin=None,
        confirms=False,
        instant=False,
    ) -> None:
        name = name.lstrip("/")
        for claimed in (name, *aliases):
            if claimed in self._commands or claimed in self._aliases:
                owner = self.find(claimed)
                raise ValueError(f"command /{claimed} is already taken by {owner.plugin or 'modelrepl'}")
        if not name or any(c.isspace() for c in name) or not callable(handler):
            raise ValueError(f"invalid command /{name}")
        self._commands[name] = Command(name, handler, help, usage, tuple(aliases), plugin, confirms, instant)
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
