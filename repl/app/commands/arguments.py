"""Reading a command's arguments: words, on/off, model names, `NAMES -- TEXT`."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from repl.core.results import CommandError

if TYPE_CHECKING:
    from repl.app.context import CommandContext
    from repl.core.session import Session

_SEPARATOR = re.compile(r"(?:^|\s)--(?:\s|$)")


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


def split_at_separator(args: str) -> tuple[list[str], str | None]:
    """`NAME NAME -- TEXT` as (names, text); text is None when there is no `--`."""
    found = _SEPARATOR.search(args)
    if found is None:
        return args.split(), None
    return args[: found.start()].split(), unquoted(args[found.end() :].strip())


def unquoted(text: str) -> str:
    """The text without the quotes around it, when it is one quoted string (`"Hello world"`).

    Text that merely starts or ends with a quote (`"Yes," she said.`) is kept as typed.
    """
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        return text
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    return words[0] if len(words) == 1 else text


def model_names(session: Session, words: list[str]) -> list[str]:
    """The models the words name (aliases resolved, each once), or every loaded model."""
    if not words:
        loaded = [name for name in session.model_names() if name in session.loaded]
        if not loaded:
            raise CommandError("no model is loaded yet: name the models, e.g. /compare mt0 gpt2 -- TEXT")
        return loaded
    names: list[str] = []
    for word in words:
        name = session.spec(word).name
        if name not in names:
            names.append(name)
    return names


def named_or_current(context: CommandContext, words: list[str]) -> list[str]:
    """The models the words name; with none, those broadcast mode sends lines to, else the active one."""
    if words:
        return model_names(context.session, words)
    return context.evaluator.broadcast_to or [context.spec().name]
