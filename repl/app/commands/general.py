"""General commands: /help, /stats, /plugins and /quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.commands.arguments import on_off, split_arguments
from repl.app.commands.registry import command
from repl.core import settings as settings_module
from repl.core.plugin_host import PluginHost
from repl.core.results import CommandError, Definitions, Part, Prose, Result, Table

if TYPE_CHECKING:
    from repl.app.context import CommandContext

HELP_FOOTER = (
    'Any other line goes to the active model. //text sends "/text". Esc-Enter or """ for several lines; '
    "Ctrl-X Ctrl-E edits the line in $EDITOR.",
    "A line longer than a model takes is cut from the end, keeping its start (the instruction); "
    "for bert, the part around the [MASK]s is kept. A note says what was cut.",
    "/help set lists the settings.",
)


@command(
    "help", usage="[COMMAND|set]", help="list commands, explain one, or list the settings (/help set)", instant=True
)
def help_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, "/help [COMMAND|set]", 0, 1)
    if words and words[0] == "set":
        return Result(parts=settings_help(context))
    if words:
        found = context.evaluator.commands.find(words[0].lstrip("/"))
        if found is None:
            raise CommandError(context.evaluator.unknown_command_message(words[0].lstrip("/")))
        aliases = f" (also {', '.join('/' + a for a in found.aliases)})" if found.aliases else ""
        return Result(parts=[f"{found.synopsis}{aliases}", Prose("  " + found.help, indent=2)])
    rows = tuple((found.synopsis, found.help) for found in context.evaluator.commands)
    return Result(parts=[Definitions(rows), "", *(Prose(paragraph) for paragraph in HELP_FOOTER)])


def settings_help(context: CommandContext) -> list[Part]:
    """The active model's settings, each with what it takes and what it does."""
    spec = context.spec()
    rows = tuple(
        (
            settings_module.shown_name(setting),
            setting.describe_range(),
            "-" if setting.prefix else settings_module.format_value(setting.default),
            setting.help,
        )
        for setting in settings_module.all_settings(spec)
    )
    head = f"settings of {spec.name} (/set KEY VALUE changes one, /show lists the values in force):"
    return [Prose(head), Table(("setting", "takes", "default", "meaning"), rows)]


@command(
    "stats",
    usage="[on|off]",
    help="show timings and token counts after each reply; alone, whether it does",
    confirms=True,
    instant=True,
)
def stats_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, "/stats [on|off]", 0, 1)
    if words:
        context.evaluator.show_stats = on_off(words[0], "/stats [on|off]")
    return Result(
        text=f"stats {'on' if context.evaluator.show_stats else 'off'}", confirmation=bool(words)
    )  # alone: a question


@command("plugins", help="installed plugins and their status", instant=True)
def plugins_command(context: CommandContext, args: str) -> Table | str:
    split_arguments(args, "/plugins", 0, 0)
    return plugins_table(context.session.host)


def plugins_table(host: PluginHost) -> Table | str:
    """Every installed plugin: version, the hooks it implements, and whether it works."""
    rows = tuple(
        (s.name, s.version or "-", ", ".join(s.hooks) or "-", s.state)
        for s in sorted(host.statuses.values(), key=lambda s: s.name)
    )
    if not rows:
        return "no plugins are installed"
    return Table(("plugin", "version", "hooks", "status"), rows)


@command("quit", help="leave modelrepl (Ctrl-D does too)", aliases=("exit", "q"), instant=True)
def quit_command(context: CommandContext, args: str) -> Result:
    split_arguments(args, "/quit", 0, 0)
    return Result(quit=True)
