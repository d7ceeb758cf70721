"""Comparing models at the prompt: /compare (one line, or broadcast mode) and /retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.commands.arguments import model_names, split_at_separator
from repl.app.commands.registry import command
from repl.app.comparison import compare_result
from repl.core.records import ModelError
from repl.core.results import CommandError, Result

if TYPE_CHECKING:
    from repl.app.context import CommandContext

COMPARE_USAGE = "/compare [NAME ...] -- TEXT, /compare NAME NAME ... (broadcast), /compare off"


@command(
    "compare",
    usage="[NAME ...] -- TEXT | NAME NAME ... | off",
    help="send a line to several models and compare; without TEXT, every line goes to them until /compare off",
)
def compare_command(context: CommandContext, args: str) -> str | Result:
    if args.lower() == "off":
        was_on = context.evaluator.broadcast_to is not None
        context.evaluator.broadcast_to = None
        return "broadcast off" if was_on else "broadcast was not on"
    words, text = split_at_separator(args)
    try:
        names = model_names(context.session, words)
    except ModelError as exc:
        hint = "; put -- before the text to send" if text is None else ""
        raise CommandError(f"{exc}{hint}") from None
    if text is None:
        if len(names) < 2:
            raise CommandError(f"broadcast needs two or more models; to talk to one, /use it (usage: {COMPARE_USAGE})")
        context.evaluator.broadcast_to = names
        return f"broadcast on: every line goes to {', '.join(names)}; /compare off ends it"
    if not text:
        raise CommandError(f"nothing to send after --; usage: {COMPARE_USAGE}")
    if not words:
        context.notice(f"no models named: comparing the loaded ones, {', '.join(names)} (/compare NAME ... -- TEXT)")
    return compare_result(context.evaluator, names, text)


@command(
    "retry",
    usage="[NAME ...]",
    help="answer the last line again, in place of the last answer: on the models it went to (in broadcast mode, "
    "the broadcast's), or on the models named, compared when several",
)
def retry_command(context: CommandContext, args: str) -> Result:
    if context.evaluator.arena is not None:  # it would name the models behind A and B
        raise CommandError("not in the arena: send the line again for a new battle, or /arena off first")
    session = context.session
    line = session.latest_line()
    if not line:
        raise CommandError("nothing to retry: no line has been sent to a model yet")
    text = line[-1].input
    named = args.split()
    names = (
        model_names(session, named)
        if named
        else context.evaluator.broadcast_to or list(dict.fromkeys(t.model for t in line))
    )
    with session.regenerating([turn for turn in line if turn.model in names]):
        return context.evaluator.send_to(names, text)
