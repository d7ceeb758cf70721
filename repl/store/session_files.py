"""Session files: saving, checking and restoring a whole session (`repl.app.replay` replays one).

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

from repl.core import settings as settings_module
from repl.core.records import Alternative, ModelSpec, TokenProbs
from repl.core.results import CommandError, Stats, Turn, plugin_data, turn_record
from repl.core.session import Session
from repl.core.units import counted
from repl.store import paths
from repl.store.files import StorageError, write_atomic

if TYPE_CHECKING:
    pass

FORMAT = "modelrepl-session"
# Version 2 writes a plugin's data beside the core fields, as --json does; version 1 nested it under "data".
FORMAT_VERSION = 2
SUFFIX = ".json"
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


def save(session: Session, path: Path, overwrite: bool = False) -> None:
    """Write the session atomically.

    A saved session there is replaced only with `overwrite`; a file that is not
    a modelrepl session, never.
    """
    if path.is_dir():
        raise SessionFileError(f"{path} is a directory; give a file name")
    if path.exists():
        try:
            saved = read(path)
        except SessionFileError as exc:
            raise SessionFileError(f"{exc}; not overwritten, choose another name") from None
        if not overwrite:
            raise SessionFileError(
                f"{path} already holds a saved session ({counted(len(saved.turns), 'turn')}); not overwritten: "
                "choose another name, or add --force to replace it"
            )
    text = json.dumps(session_document(session), ensure_ascii=False, allow_nan=False, indent=1, default=str) + "\n"
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
    return SavedSession(
        path, active, checkpoints, settings, [_turn(record, number) for number, record in enumerate(turns, 1)]
    )


_KIND_NAMES = {str: "text", dict: "a table", list: "a list", int: "a number", float: "a number", type(None): "null"}
_REQUIRED = object()


def _clipped(text: str) -> str:
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


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
        data=_typed(record, "data", dict, {}, where + "the data") if "data" in record else plugin_data(record),
        finished_at=_typed(record, "finished_at", (int, float), 0.0, where + "the finish time"),
        logprobs=_logprobs(_typed(record, "logprobs", (list, type(None)), None, where + "the logprobs"), where),
    )


def _logprobs(steps: list[Any] | None, where: str) -> list[TokenProbs] | None:
    """The per-token probabilities a turn recorded, so /probs shows them after /session open."""
    if steps is None:
        return None
    what = where + "a logprob"
    number = (int, float)
    restored = []
    for step in steps:
        if not isinstance(step, dict):
            raise ValueError(f"{what} is not an object")
        restored.append(
            TokenProbs(
                id=_typed(step, "id", int, _REQUIRED, what),
                piece=_typed(step, "piece", str, _REQUIRED, what),
                logprob=_typed(step, "logprob", number, _REQUIRED, what),
                processed_logprob=_typed(step, "processed_logprob", (*number, type(None)), None, what),
                top=_alternatives(_typed(step, "top", list, [], what), what),
                processed_top=_alternatives(_typed(step, "processed_top", list, [], what), what),
                entropy=_typed(step, "entropy", (*number, type(None)), None, what),
            )
        )
    return restored


def _alternatives(values: list[Any], what: str) -> list[Alternative]:
    if not all(isinstance(value, dict) for value in values):
        raise ValueError(f"{what}'s alternatives are not objects")
    return [
        Alternative(
            _typed(value, "id", int, _REQUIRED, what),
            _typed(value, "piece", str, _REQUIRED, what),
            _typed(value, "logprob", (int, float), _REQUIRED, what),
        )
        for value in values
    ]


def _stats(record: dict[str, Any], where: str) -> Stats:
    known = {f.name for f in fields(Stats)}
    values = {key: value for key, value in record.items() if key in known}
    for key in values:
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


def stage(session: Session, saved: SavedSession) -> _Staged:
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
    staged = stage(session, saved)
    session.settings.update(staged.settings)
    for name, checkpoint in staged.checkpoints.items():
        session.choose_checkpoint(name, None if checkpoint == session.spec(name).checkpoint else checkpoint)
        loaded = session.loaded.get(name)
        if loaded is not None and loaded.checkpoint != checkpoint:
            session.unload(name)
    session.turns[:] = saved.turns
    session.context_from.clear()  # a restored conversation starts at its first turn
    session.active = staged.active
    return staged.notes


def _registered(session: Session, name: str, notes: list[str]) -> ModelSpec | None:
    spec = session.host.resolve(name)
    if spec is None:
        notes.append(f"model {name!r} is not registered here; its checkpoint and settings were skipped")
    return spec
