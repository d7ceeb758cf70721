"""`/system`: the active model's system prompt, for every model that takes the `system` setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.commands.registry import command
from repl.core.conversation import SYSTEM
from repl.core.results import CommandError, Result
from repl.core.text import quoted

if TYPE_CHECKING:
    from repl.app.context import CommandContext

SYSTEM_USAGE = "/system [TEXT|off]"


@command(
    "system",
    usage="[TEXT|off]",
    help="the active model's system prompt: show it, set it to TEXT, or remove it",
    confirms=True,
)
def system_command(context: CommandContext, args: str) -> str | Result:
    session = context.session
    spec = session.active_spec()
    if spec.setting(SYSTEM.name) is None:
        raise CommandError(f"{spec.name} takes no system prompt; models that do: {_takers(context) or 'none'}")
    if not args:  # a question: answered on stdout, as asked-for output
        current = session.settings_of(spec.name)[SYSTEM.name]
        shown = f"{spec.name}: system prompt {quoted(current)}" if current else f"{spec.name}: no system prompt"
        return Result(text=shown)
    if args.lower() == "off":
        session.set(spec.name, SYSTEM.name, None)
        return f"{spec.name}: system prompt removed"
    # The text as typed, quotes and all: it is not parsed as words, nor "none" as no prompt.
    session.settings[spec.name] = {**session.settings_of(spec.name), SYSTEM.name: args}
    return f"{spec.name}: system prompt set to {quoted(args)}; it applies from the next line on"


def _takers(context: CommandContext) -> str:
    return ", ".join(name for name, spec in context.session.host.models().items() if spec.setting(SYSTEM.name))
