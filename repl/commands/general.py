"""General commands: /help, /stats, /plugins and /quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.commands.arguments import on_off, split_arguments
from repl.commands.registry import command
from repl.render import plugins_table
from repl.results import CommandError, Result

if TYPE_CHECKING:
    from repl.app import Repl


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


@command("stats", usage="on|off", help="show timings and token counts after each reply")
def stats_command(repl: Repl, args: str) -> str:
    (word,) = split_arguments(args, "/stats on|off", 1, 1)
    repl.show_stats = on_off(word, "/stats on|off")
    return f"stats {'on' if repl.show_stats else 'off'}"


@command("plugins", help="installed plugins and their status")
def plugins_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/plugins", 0, 0)
    return plugins_table(repl.session.host)


@command("quit", help="leave modelrepl (Ctrl-D does too)", aliases=("exit", "q"))
def quit_command(repl: Repl, args: str) -> Result:
    split_arguments(args, "/quit", 0, 0)
    return Result(quit=True)
