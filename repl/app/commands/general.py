"""General commands: /help, /stats, /plugins and /quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.commands.arguments import on_off, split_arguments
from repl.app.commands.registry import command
from repl.core import settings as settings_module
from repl.core.results import CommandError, Result
from repl.terminal.layout import table, wrap_paragraph
from repl.terminal.renderer import DEFAULT_WIDTH, plugins_table

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

# The synopsis column of /help takes at most this share of the width; longer ones get a line of their own.
SYNOPSIS_SHARE = 0.3
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
def help_command(repl: Repl, args: str) -> str:
    words = split_arguments(args, "/help [COMMAND|set]", 0, 1)
    width = repl.width() or DEFAULT_WIDTH  # prose wraps even in a file; tables only at a terminal
    if words and words[0] == "set":
        return settings_help(repl, width, repl.width())
    if words:
        found = repl.commands.find(words[0].lstrip("/"))
        if found is None:
            raise CommandError(repl.unknown_command_message(words[0].lstrip("/")))
        aliases = f" (also {', '.join('/' + a for a in found.aliases)})" if found.aliases else ""
        return f"{found.synopsis}{aliases}\n  {wrap_paragraph(found.help, width, indent=2)}"
    widest = int(width * SYNOPSIS_SHARE)
    column = max([len(c.synopsis) for c in repl.commands if len(c.synopsis) <= widest] or [widest])
    lines = []
    for found in repl.commands:
        explained = wrap_paragraph(found.help, width, indent=column + 2)
        if len(found.synopsis) > column:
            lines += [wrap_paragraph(found.synopsis, width, indent=2), " " * (column + 2) + explained]
        else:
            lines.append(f"{found.synopsis:<{column}}  {explained}")
    lines.append("")
    lines += [wrap_paragraph(paragraph, width) for paragraph in HELP_FOOTER]
    return "\n".join(lines)


def settings_help(repl: Repl, width: int, table_width: int | None) -> str:
    """The active model's settings, each with what it takes and what it does."""
    spec = repl.session.active_spec()
    rows = [
        (setting.name, setting.describe_range(), settings_module.format_value(setting.default), setting.help)
        for setting in settings_module.all_settings(spec)
    ]
    head = f"settings of {spec.name} (/set KEY VALUE changes one, /show lists the values in force):"
    return wrap_paragraph(head, width) + "\n" + table(("setting", "takes", "default", "meaning"), rows, table_width)


@command(
    "stats",
    usage="[on|off]",
    help="show timings and token counts after each reply; alone, whether it does",
    confirms=True,
)
def stats_command(repl: Repl, args: str) -> str:
    words = split_arguments(args, "/stats [on|off]", 0, 1)
    if words:
        repl.show_stats = on_off(words[0], "/stats [on|off]")
    return f"stats {'on' if repl.show_stats else 'off'}"


@command("plugins", help="installed plugins and their status", instant=True)
def plugins_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/plugins", 0, 0)
    return plugins_table(repl.session.host, repl.width())


@command("quit", help="leave modelrepl (Ctrl-D does too)", aliases=("exit", "q"), instant=True)
def quit_command(repl: Repl, args: str) -> Result:
    split_arguments(args, "/quit", 0, 0)
    return Result(quit=True)
