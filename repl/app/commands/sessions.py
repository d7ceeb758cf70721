"""Sessions at the prompt: /session save|open|list|replay, /history and /clear."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from repl.app.commands.arguments import split_arguments
from repl.app.commands.registry import command
from repl.app.replay import replay
from repl.core.results import CommandError, Result, Table, Turn, turn_record
from repl.core.text import quoted
from repl.core.units import counted
from repl.store import paths
from repl.store.session_files import SUFFIX, SavedSession, SessionFileError, read, restore, save, session_path

if TYPE_CHECKING:
    from repl.app.context import CommandContext
    from repl.app.replay import Replayed

HISTORY_SHOWN = 10
SHOWN_CHARACTERS = 100
SESSION_USAGE = "/session save [NAME|PATH] [--force] | open NAME|PATH | list | replay NAME|PATH"


def replay_result(saved: SavedSession, results: list[Replayed]) -> Result:
    lines = [f"replayed {len(results)} of {counted(len(saved.turns), 'turn')} from {saved.path}"]
    records = []
    for item in results:
        verdict = "same" if item.same else "DIFFERS"
        lines.append(f"  {item.number:>3} {item.saved.model:<8} {verdict:<7}  {_shown(item.saved.input)}")
        if not item.same:
            lines.append(f"        saved:    {_shown(_outcome(item.saved))}")
            lines.append(f"        replayed: {_shown(_outcome(item.now))}")
            if item.unseeded:
                lines.append(
                    "        (sampled without a seed: not expected to repeat; /set seed N makes it reproducible)"
                )
            elif _was_cancelled(item):
                lines.append("        (the saved turn was cancelled with Ctrl-C)")
        records.append(
            {
                "replay": item.number,
                "model": item.saved.model,
                "input": item.saved.input,
                "same": item.same,
                "saved": _outcome(item.saved),
                "replayed": _outcome(item.now),
            }
        )
    differing = [item for item in results if not item.same]
    unexpected = [item.number for item in differing if not _expected_to_differ(item)]
    error = None
    if len(results) < len(saved.turns):
        error = f"replay cancelled at turn {len(results) + 1} of {len(saved.turns)}"
    elif unexpected:
        error = f"{len(unexpected)} of {len(results)} replayed outputs differ (turns {', '.join(map(str, unexpected))})"
    elif differing:
        expected = "the difference above was" if len(differing) == 1 else "the differences above were"
        lines.append(f"every other output matches the saved session; {expected} expected")
    else:
        lines.append("every output matches the saved session")
    return Result(text="\n".join(lines), records=records, error=error)


def _was_cancelled(item: Replayed) -> bool:
    return item.saved.stats.stop_reason == "cancelled"


def _expected_to_differ(item: Replayed) -> bool:
    """Sampled without a seed, or cut short by Ctrl-C: a replay is not expected to repeat it."""
    return item.unseeded or _was_cancelled(item)


def _outcome(turn: Turn) -> str:
    return f"error: {turn.error}" if turn.error is not None else turn.output


def _shown(text: str) -> str:
    """Text on one line, in double quotes, escapes visible, cut to a readable length."""
    return _clipped(quoted(text))


def _clipped(text: str) -> str:
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


# -- listing ------------------------------------------------------------------------


def list_sessions(directory: Path) -> Result | str:
    files = (
        sorted(directory.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True)
        if directory.is_dir()
        else []
    )
    if not files:
        return f"no saved sessions in {directory}"
    rows = []
    for file in files:
        saved_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(file.stat().st_mtime))
        try:
            saved = read(file)
        except SessionFileError:
            rows.append((file.stem, "-", "-", saved_at, "not a readable modelrepl session"))
            continue
        models = sorted({turn.model for turn in saved.turns})
        rows.append((file.stem, len(saved.turns), saved.active or "-", saved_at, ", ".join(models) or "-"))
    return Result(parts=[str(directory), Table(("name", "turns", "active", "saved", "models used"), tuple(rows))])


# -- commands -----------------------------------------------------------------------


@command(
    "session",
    usage="save [NAME|PATH] [--force] | open|replay NAME|PATH | list",
    help="save, open, list or replay sessions (turns, settings, context); save never replaces a saved "
    "session unless --force is given",
)
def session_command(context: CommandContext, args: str) -> str | Result:
    words = split_arguments(args, SESSION_USAGE, 1, 3)
    action = words[0]
    if action == "save":
        return save_session(context, words[1:])
    if len(words) > 2:
        raise CommandError(f"usage: {SESSION_USAGE}")
    target = words[1] if len(words) == 2 else None
    if action == "list":
        split_arguments(args, "/session list", 1, 1)
        return list_sessions(paths.sessions_dir())
    if action not in ("open", "replay"):
        raise CommandError(f"unknown /session action {action!r}; usage: {SESSION_USAGE}")
    if target is None:
        raise CommandError(f"usage: /session {action} NAME|PATH")
    if action == "replay":
        saved = read(session_path(target))
        return replay_result(saved, replay(context.evaluator, saved))
    try:
        saved = read(session_path(target))
        notes = restore(context.session, saved)
    except SessionFileError as exc:
        raise SessionFileError(f"{exc}; the current session is unchanged") from None
    lines = [f"opened {saved.path}: {counted(len(saved.turns), 'turn')}, active model {context.session.active}"]
    return "\n".join(lines + [f"note: {note}" for note in notes])


def save_session(context: CommandContext, words: list[str]) -> str:
    force = "--force" in words
    names = [word for word in words if word != "--force"]
    if len(names) > 1 or len(words) - len(names) > 1:
        raise CommandError("usage: /session save [NAME|PATH] [--force]")
    path = session_path(names[0] if names else time.strftime("session-%Y%m%d-%H%M%S"))
    save(context.session, path, overwrite=force)
    return f"saved {counted(len(context.session.turns), 'turn')} to {path}"


@command("history", usage="[N]", help=f"the last N turns of this session (default {HISTORY_SHOWN})", instant=True)
def history_command(context: CommandContext, args: str) -> str | Result:
    words = split_arguments(args, "/history [N]", 0, 1)
    count = HISTORY_SHOWN
    if words:
        if not words[0].isdigit() or int(words[0]) < 1:
            raise CommandError(f"usage: /history [N], N a whole number of at least 1, not {words[0]!r}")
        count = int(words[0])
    turns = context.session.turns
    if not turns:
        return "no turns yet"
    first = max(len(turns) - count, 0)
    shown = list(enumerate(turns[first:], first + 1))
    lines = []
    for number, turn in shown:
        lines.append(f"{number:>4} {turn.model}> {_shown(turn.input)}")
        lines.append(f"     {_shown(_outcome(turn))}")
    records = [{"turn": number, **turn_record(turn)} for number, turn in shown]
    return Result(text="\n".join(lines), records=records)


@command("clear", help="forget this session's turns, and with them the models' conversation context", confirms=True)
def clear_command(context: CommandContext, args: str) -> str:
    split_arguments(args, "/clear", 0, 0)
    turns = context.session.turns
    if not turns:
        return "no turns to clear"
    per_model = Counter(turn.model for turn in turns)  # the turns of every model go, not only the active one's
    if len(per_model) == 1:
        whose = f" of {turns[0].model}"
    else:
        whose = " (" + ", ".join(f"{model} {count}" for model, count in per_model.items()) + ")"
    cleared = counted(len(turns), "turn")
    context.session.clear()
    return f"cleared {cleared}{whose}; the next turn starts without context"
