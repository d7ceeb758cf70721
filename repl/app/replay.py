"""Replaying a saved session: every saved input again, with its turn's model, checkpoint and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from repl.core.records import ModelSpec
from repl.core.results import CommandError, Turn
from repl.core.session import Session
from repl.core.turn import run_turn
from repl.store.session_files import SavedSession, SessionFileError, checked_settings, stage

if TYPE_CHECKING:
    from repl.app.evaluator import Repl


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
    stage(session, saved)  # a file that could not be opened is not replayed either
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
            if spec.name not in scratch.loaded and repl.renderer.live:
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
