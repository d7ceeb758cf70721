"""Saved sessions: /session save|open|list|replay, /history and /clear.

A session file is one JSON object marked ``"format": "modelrepl-session"``
with a version, so a foreign JSON file is recognised and refused. It holds the
active model, every model's checkpoint and settings, and every turn with the
settings it ran with, which is what lets ``/session replay`` re-run it.

Opening checks the whole file before touching the session: a missing,
damaged or foreign file leaves both the file and the current session as they
were. Models are not loaded on open; they load when first used.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repl import paths
from repl import settings as settings_module
from repl.api import ModelSpec
from repl.commands import CommandError, Result, command, split_arguments
from repl.render import table
from repl.session import Session, Stats, Turn
from repl.storage import StorageError, write_atomic
from repl.turn import run_turn

if TYPE_CHECKING:
    from repl.app import Repl

FORMAT = "modelrepl-session"
FORMAT_VERSION = 1
SUFFIX = ".json"
SESSION_USAGE = "/session save [NAME|PATH] | open NAME|PATH | list | replay NAME|PATH"
HISTORY_SHOWN = 10
SHOWN_CHARACTERS = 100


class SessionFileError(CommandError):
    """A session file that cannot be used; the file has not been changed."""


@dataclass
class SavedSession:
    """A session file's contents, checked: what `/session open` restores."""

    path: Path
    active: str | None
    checkpoints: dict[str, str]
    settings: dict[str, dict[str, Any]]
    turns: list[Turn]


# -- where session files live -----------------------------------------------------


def session_path(name_or_path: str) -> Path:
    """A NAME lives in the sessions directory; a value with a `/` or ending in .json is a path."""
    if "/" in name_or_path or (os.altsep and os.altsep in name_or_path) or name_or_path.endswith(SUFFIX):
        return Path(name_or_path).expanduser()
    if not name_or_path or name_or_path.startswith(".") or os.sep in name_or_path:
        raise CommandError(f"a session name cannot be empty, start with '.' or contain {os.sep!r}: {name_or_path!r}")
    return paths.sessions_dir() / (name_or_path + SUFFIX)


# -- writing ------------------------------------------------------------------------


def turn_record(turn: Turn) -> dict[str, Any]:
    """One turn as stored in session files and the transcript."""
    return {
        "model": turn.model,
        "checkpoint": turn.checkpoint,
        "input": turn.input,
        "output": turn.output,
        "error": turn.error,
        "settings": turn.settings,
        "stats": turn.stats.as_dict(),
        "notices": turn.notices,
        "data": turn.data,
        "finished_at": turn.finished_at,
    }


def session_document(session: Session) -> dict[str, Any]:
    """The whole session as the JSON object a session file holds.

    Every registered model's checkpoint and settings are written, not only the
    changed ones, so opening the file elsewhere restores exactly this state.
    """
    models = list(session.host.models())
    checkpoints = {name: session.checkpoint_of(name) for name in models}
    checkpoints.update({name: loaded.checkpoint for name, loaded in session.loaded.items()})
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "active": session.active,
        "checkpoints": checkpoints,
        "settings": {name: dict(session.settings_of(name)) for name in models},
        "turns": [turn_record(turn) for turn in session.turns],
    }


def save(session: Session, path: Path) -> None:
    """Write the session atomically; a file there that is not a modelrepl session is never replaced."""
    if path.is_dir():
        raise SessionFileError(f"{path} is a directory; give a file name")
    if path.exists():
        try:
            read(path)
        except SessionFileError as exc:
            raise SessionFileError(f"{exc}; not overwritten, choose another name") from None
    text = json.dumps(session_document(session), ensure_ascii=False, indent=1, default=str) + "\n"
    try:
        write_atomic(path, text)
    except StorageError as exc:
        raise SessionFileError(str(exc)) from None


# -- reading ------------------------------------------------------------------------


def read(path: Path) -> SavedSession:
    """Read and check a session file, or raise SessionFileError saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SessionFileError(f"no session file {path}; /session list shows the saved sessions") from None
    except UnicodeDecodeError:
        raise SessionFileError(f"{path} is not a modelrepl session: it is not text") from None
    except OSError as exc:
        raise SessionFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionFileError(
            f"{path} is damaged or not a modelrepl session: invalid JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SessionFileError(f'{path} is not a modelrepl session: it lacks "format": "{FORMAT}"')
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SessionFileError(f"{path} is damaged: its version is {version!r}, not a whole number")
    if version > FORMAT_VERSION:
        raise SessionFileError(
            f"{path} was saved by a newer modelrepl (session format {version}); this one reads format {FORMAT_VERSION}"
        )
    try:
        return _saved_session(path, document)
    except ValueError as exc:
        raise SessionFileError(f"{path} is damaged: {exc}") from None


def _saved_session(path: Path, document: dict[str, Any]) -> SavedSession:
    active = _typed(document, "active", (str, type(None)), None, "the active model")
    checkpoints = _typed(document, "checkpoints", dict, {}, "the checkpoints")
    settings = _typed(document, "settings", dict, {}, "the settings")
    turns = _typed(document, "turns", list, _REQUIRED, "the turns")
    for name, checkpoint in checkpoints.items():
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError(f"the checkpoint of {name} is {checkpoint!r}, not a hub id or directory")
    for name, values in settings.items():
        if not isinstance(values, dict):
            raise ValueError(f"the settings of {name} are {values!r}, not a table of settings")
    return SavedSession(path, active, checkpoints, settings, [_turn(record, number) for number, record in enumerate(turns, 1)])


_KIND_NAMES = {str: "text", dict: "a table", list: "a list", int: "a number", float: "a number", type(None): "null"}
_REQUIRED = object()


def _typed(record: dict[str, Any], key: str, kinds: type | tuple[type, ...], default: Any, what: str) -> Any:
    """`record[key]` if it has one of `kinds`; ValueError naming what is wrong otherwise."""
    value = record.get(key, default)
    if value is _REQUIRED:
        raise ValueError(f"{what} ({key!r}) is missing")
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(dict.fromkeys(_KIND_NAMES[kind] for kind in kinds))
        raise ValueError(f"{what} ({key!r}) is {_clipped(json.dumps(value, default=str))}, not {expected}")
    return value


def _turn(record: Any, number: int) -> Turn:
    if not isinstance(record, dict):
        raise ValueError(f"turn {number} is not an object")
    where = f"turn {number}: "
    return Turn(
        model=_typed(record, "model", str, _REQUIRED, where + "the model"),
        checkpoint=_typed(record, "checkpoint", str, "", where + "the checkpoint"),
        input=_typed(record, "input", str, _REQUIRED, where + "the input"),
        output=_typed(record, "output", str, "", where + "the output"),
        error=_typed(record, "error", (str, type(None)), None, where + "the error"),
        settings=_typed(record, "settings", dict, {}, where + "the settings"),
        stats=_stats(_typed(record, "stats", dict, {}, where + "the stats"), where),
        notices=[str(notice) for notice in _typed(record, "notices", list, [], where + "the notices")],
        data=_typed(record, "data", dict, {}, where + "the data"),
        finished_at=_typed(record, "finished_at", (int, float), 0.0, where + "the finish time"),
    )


def _stats(record: dict[str, Any], where: str) -> Stats:
    known = {f.name for f in fields(Stats)}
    values = {key: value for key, value in record.items() if key in known}
    for key, value in values.items():
        kinds = (str,) if key == "stop_reason" else (int, float, type(None))
        _typed(values, key, kinds, None, f"{where}stats")
    return Stats(**values)


# -- restoring ----------------------------------------------------------------------


def checked_settings(spec: ModelSpec, values: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A model's settings from a file: each value checked, the combination validated.

    A setting the model no longer has is skipped with a note; a value out of
    range is damage, raised as ValueError.
    """
    result = settings_module.defaults(spec)
    for key, value in values.items():
        setting = settings_module.find_setting(spec, key)
        if setting is None:
            notes.append(f"{spec.name} has no setting {key!r} any more; skipped")
            continue
        result[key] = setting.check(value)
    if spec.validate_settings is not None:
        spec.validate_settings(result)
    return result


@dataclass
class _Staged:
    """A saved session checked against the registered models, ready to apply."""

    active: str | None
    checkpoints: dict[str, str]
    settings: dict[str, dict[str, Any]]
    notes: list[str]


def _stage(session: Session, saved: SavedSession) -> _Staged:
    notes: list[str] = []
    staged = _Staged(session.active, {}, {}, notes)
    for name, values in saved.settings.items():
        spec = _registered(session, name, notes)
        if spec is not None:
            try:
                staged.settings[spec.name] = checked_settings(spec, values, notes)
            except ValueError as exc:
                raise SessionFileError(f"{saved.path} is damaged: settings of {name}: {exc}") from None
    for name, checkpoint in saved.checkpoints.items():
        spec = _registered(session, name, notes)
        if spec is not None:
            staged.checkpoints[spec.name] = checkpoint
    if saved.active is not None:
        spec = _registered(session, saved.active, notes)
        staged.active = spec.name if spec is not None else staged.active
    staged.notes = list(dict.fromkeys(notes))
    return staged


def restore(session: Session, saved: SavedSession) -> list[str]:
    """Replace the session's state with the saved one, all or nothing; returns notes for the user.

    Models are not loaded here. A loaded model whose checkpoint differs from the
    saved one is unloaded, so it reloads with the saved checkpoint when used.
    """
    staged = _stage(session, saved)
    session.settings.update(staged.settings)
    for name, checkpoint in staged.checkpoints.items():
        session.choose_checkpoint(name, None if checkpoint == session.spec(name).checkpoint else checkpoint)
        loaded = session.loaded.get(name)
        if loaded is not None and loaded.checkpoint != checkpoint:
            session.unload(name)
    session.turns[:] = saved.turns
    session.active = staged.active
    return staged.notes


def _registered(session: Session, name: str, notes: list[str]) -> ModelSpec | None:
    spec = session.host.resolve(name)
    if spec is None:
        notes.append(f"model {name!r} is not registered here; its checkpoint and settings were skipped")
    return spec


# -- replaying ----------------------------------------------------------------------


@dataclass
class Replayed:
    number: int
    saved: Turn
    now: Turn

    @property
    def same(self) -> bool:
        return (self.saved.output, self.saved.error) == (self.now.output, self.now.error)

    @property
    def unseeded(self) -> bool:
        return bool(self.saved.settings.get("do_sample")) and self.saved.settings.get("seed") is None


def replay(repl: Repl, saved: SavedSession) -> list[Replayed]:
    """Run every saved input again, with its turn's model, checkpoint and settings.

    Each turn sees the saved turns before it as context, as it did when it
    first ran, so a difference shows up at the turn that caused it.

    The replay runs in a scratch session, so the current one keeps its turns
    and settings; models it had loaded are reused, and models the replay loads
    are kept when the current session uses the same checkpoint.
    """
    session = repl.session
    _stage(session, saved)  # a file that could not be opened is not replayed either
    plans = []
    for number, turn in enumerate(saved.turns, 1):
        spec = session.host.resolve(turn.model)
        if spec is None:
            raise CommandError(f"cannot replay turn {number}: model {turn.model!r} is not registered here")
        try:
            plans.append((spec, checked_settings(spec, turn.settings, [])))
        except ValueError as exc:
            raise SessionFileError(f"{saved.path} is damaged: settings of turn {number}: {exc}") from None
    scratch = Session(session.host, session.options, active=session.active)
    scratch.loaded = dict(session.loaded)
    scratch.checkpoints = dict(session.checkpoints)
    results: list[Replayed] = []
    try:
        for number, (turn, (spec, settings)) in enumerate(zip(saved.turns, plans), 1):
            _use_checkpoint(scratch, spec, turn.checkpoint or scratch.checkpoint_of(spec.name))
            if spec.name not in scratch.loaded and not repl.renderer.json_mode:
                repl.renderer.notice(f"loading {spec.name} from {scratch.checkpoint_of(spec.name)} ...")
            scratch.settings[spec.name] = settings
            scratch.turns = list(saved.turns[: number - 1])
            now = run_turn(scratch, spec.name, turn.input)
            if now.stats.stop_reason == "cancelled":
                break
            results.append(Replayed(number, turn, now))
    finally:
        for name, loaded in scratch.loaded.items():
            if name not in session.loaded and session.checkpoint_of(name) == loaded.checkpoint:
                session.loaded[name] = loaded
    return results


def _use_checkpoint(scratch: Session, spec: ModelSpec, checkpoint: str) -> None:
    loaded = scratch.loaded.get(spec.name)
    if loaded is not None and loaded.checkpoint != checkpoint:
        # Only drop the reference: the current session may still be using this model.
        del scratch.loaded[spec.name]
    scratch.choose_checkpoint(spec.name, checkpoint)


def replay_result(saved: SavedSession, results: list[Replayed]) -> Result:
    lines = [f"replayed {len(results)} of {len(saved.turns)} turns from {saved.path}"]
    records = []
    for item in results:
        verdict = "same" if item.same else "DIFFERS"
        lines.append(f"  {item.number:>3} {item.saved.model:<8} {verdict:<7}  {_shown(item.saved.input)}")
        if not item.same:
            lines.append(f"        saved:    {_shown(_outcome(item.saved))}")
            lines.append(f"        replayed: {_shown(_outcome(item.now))}")
            if item.unseeded:
                lines.append("        (sampled without a seed: not expected to repeat; /set seed N makes it reproducible)")
            elif item.saved.stats.stop_reason == "cancelled":
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
    differing = [item.number for item in results if not item.same]
    error = None
    if len(results) < len(saved.turns):
        error = f"replay cancelled at turn {len(results) + 1} of {len(saved.turns)}"
    elif differing:
        error = f"{len(differing)} of {len(results)} replayed outputs differ (turns {', '.join(map(str, differing))})"
    else:
        lines.append("every output matches the saved session")
    return Result(text="\n".join(lines), records=records, error=error)


def _count_turns(count: int) -> str:
    return f"{count} turn" + ("" if count == 1 else "s")


def _outcome(turn: Turn) -> str:
    return f"error: {turn.error}" if turn.error is not None else turn.output


def _shown(text: str) -> str:
    """Text on one line, quoted, escapes visible, cut to a readable length."""
    return _clipped(repr(text))


def _clipped(text: str) -> str:
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


# -- listing ------------------------------------------------------------------------


def list_sessions(directory: Path) -> str:
    files = sorted(directory.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True) if directory.is_dir() else []
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
    return f"{directory}\n" + table(("name", "turns", "active", "saved", "models used"), rows)


# -- commands -----------------------------------------------------------------------


@command("session", usage="save|open|list|replay [NAME|PATH]", help="save, open, list or replay sessions (turns, settings, context)")
def session_command(repl: Repl, args: str) -> str | Result:
    words = split_arguments(args, SESSION_USAGE, 1, 2)
    action, target = words[0], (words[1] if len(words) == 2 else None)
    if action == "list":
        split_arguments(args, "/session list", 1, 1)
        return list_sessions(paths.sessions_dir())
    if action == "save":
        path = session_path(target or time.strftime("session-%Y%m%d-%H%M%S"))
        save(repl.session, path)
        return f"saved {_count_turns(len(repl.session.turns))} to {path}"
    if action not in ("open", "replay"):
        raise CommandError(f"unknown /session action {action!r}; usage: {SESSION_USAGE}")
    if target is None:
        raise CommandError(f"usage: /session {action} NAME|PATH")
    if action == "replay":
        saved = read(session_path(target))
        return replay_result(saved, replay(repl, saved))
    try:
        saved = read(session_path(target))
        notes = restore(repl.session, saved)
    except SessionFileError as exc:
        raise SessionFileError(f"{exc}; the current session is unchanged") from None
    lines = [f"opened {saved.path}: {_count_turns(len(saved.turns))}, active model {repl.session.active}"]
    return "\n".join(lines + [f"note: {note}" for note in notes])


@command("history", usage="[N]", help=f"the last N turns of this session (default {HISTORY_SHOWN})")
def history_command(repl: Repl, args: str) -> str | Result:
    words = split_arguments(args, "/history [N]", 0, 1)
    count = HISTORY_SHOWN
    if words:
        if not words[0].isdigit() or int(words[0]) < 1:
            raise CommandError(f"usage: /history [N], N a whole number of at least 1, not {words[0]!r}")
        count = int(words[0])
    turns = repl.session.turns
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


@command("clear", help="forget this session's turns, and with them the models' conversation context")
def clear_command(repl: Repl, args: str) -> str:
    split_arguments(args, "/clear", 0, 0)
    count = len(repl.session.turns)
    repl.session.clear()
    return f"cleared {_count_turns(count)}; the next turn starts without context"
