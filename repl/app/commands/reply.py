"""The last reply, taken out of the REPL: /copy, /save and /reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from repl.app.commands.arguments import split_arguments
from repl.app.commands.registry import command
from repl.core.results import CommandError
from repl.store.files import StorageError, write_atomic

if TYPE_CHECKING:
    from repl.app.context import CommandContext

SAVE_USAGE = "/save FILE [--force]"


def last_reply(context: CommandContext) -> str:
    """The text of the latest turn that answered."""
    for turn in reversed(context.session.turns):
        if turn.ok and turn.output:
            return turn.output
    raise CommandError("no reply yet: send a line to a model first")


@command(
    "copy",
    help="put the last reply on modelrepl's clipboard (Ctrl-Y pastes it at the prompt) and offer it to the "
    "terminal's (OSC 52)",
    confirms=True,
)
def copy_command(context: CommandContext, args: str) -> str:
    split_arguments(args, "/copy", 0, 0)
    text = last_reply(context)
    context.evaluator.renderer.copy(text)
    kept = f"the last reply ({len(text)} characters) is on modelrepl's clipboard: Ctrl-Y pastes it at the prompt"
    if context.width is not None:  # at a terminal OSC 52 was sent; whether the terminal takes it cannot be known
        kept += "; it was also offered to the terminal's clipboard (OSC 52), which some terminals ignore"
    return kept


@command(
    "save",
    usage="FILE [--force]",
    help="write the last reply to FILE (readable by you only); --force replaces an existing file",
    confirms=True,
)
def save_command(context: CommandContext, args: str) -> str:
    words = split_arguments(args, SAVE_USAGE, 1, 2)
    force = "--force" in words
    paths = [word for word in words if word != "--force"]
    if len(paths) != 1:
        raise CommandError(f"usage: {SAVE_USAGE}")
    path = Path(paths[0]).expanduser()
    text = last_reply(context)
    if path.is_dir():
        raise CommandError(f"{path} is a directory; name a file")
    if path.exists() and not force:
        raise CommandError(f"{path} exists; /save {paths[0]} --force replaces it")
    try:
        write_atomic(path, text if text.endswith("\n") else text + "\n")
    except StorageError as exc:
        raise CommandError(str(exc)) from None
    return f"saved the last reply to {path}"


@command(
    "reasoning",
    usage="[NAME]",
    help="the thinking behind the last reply (of NAME), shown or hidden as it was (think show or hide)",
)
def reasoning_command(context: CommandContext, args: str) -> str:
    words = split_arguments(args, "/reasoning [NAME]", 0, 1)
    name = context.spec(words[0]).name if words else None
    replies = [turn for turn in context.turns if turn.ok and (name is None or turn.model == name)]
    if not replies:
        raise CommandError(f"no reply yet{f' from {name}' if name else ''}: send a line first")
    turn = replies[-1]
    reasoning = turn.data.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning:
        raise CommandError(f"the last reply of {turn.model} came without reasoning")
    return reasoning
