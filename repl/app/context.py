"""What a command handler receives: `CommandContext`, the part of a running REPL a command may use.

A handler gets the session's models and settings, and what it may do with
them: load a model, run a turn, tokenize a line, set a setting, say a note,
and the width its output is laid out in. What it returns (text, a `Result`)
is drawn by the front end; a handler never prints. Everything listed in
docs/plugins.md is stable; `evaluator` is for modelrepl's own commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repl.core.results import CommandError
from repl.core.turn import tokenize

if TYPE_CHECKING:
    from repl.app.evaluator import Repl
    from repl.core.records import Encoding, LoadedModel, ModelSpec
    from repl.core.results import Turn
    from repl.core.session import Session


class CommandContext:
    """The running REPL as a command handler sees it.

    ``session`` stays for handlers written against the first docs, which
    received the REPL itself and read ``repl.session``.
    """

    def __init__(self, evaluator: Repl):
        # modelrepl's own commands reach the REPL's state through it (broadcast mode, /stats, the registry).
        self.evaluator = evaluator

    @property
    def session(self) -> Session:
        """The session: ``model_names()``, ``spec(name)``, ``active_spec()``, ``settings_of(name)``,
        ``set(name, key, value)``, ``model(name)``, ``host``, as handlers of the first docs used them."""
        return self.evaluator.session

    # -- models -------------------------------------------------------------------

    @property
    def active(self) -> str | None:
        """The active model's name; None when no model is registered."""
        return self.session.active

    def model_names(self) -> list[str]:
        """Every model that can be named: the registered ones, then the NAME@TAG copies made so far."""
        return self.session.model_names()

    def spec(self, name: str | None = None) -> ModelSpec:
        """The `ModelSpec` of the model called `name` (an alias works too), else the active one.

        An unknown name raises `ModelError` naming the nearest model, which the user sees as one line.
        """
        return self.session.spec(name) if name is not None else self.session.active_spec()

    def loaded(self, name: str) -> LoadedModel | None:
        """The model as loaded, or None if it is not loaded (this never loads it)."""
        return self.session.loaded.get(self.spec(name).name)

    def load(self, name: str, checkpoint: str | None = None) -> LoadedModel:
        """The model, loaded now if it is not yet, with the REPL's "loading ..." note and progress line.

        With `checkpoint`, that checkpoint is loaded in its place, as ``/load NAME CHECKPOINT`` does.
        """
        return self.evaluator.load(name, checkpoint)

    @property
    def turns(self) -> list[Turn]:
        """The session's finished turns, oldest first (a copy: `/clear` empties the session's)."""
        return list(self.session.turns)

    def turn(self, name: str, text: str) -> Turn:
        """Send `text` to the model as a typed line is sent: streamed, recorded in the transcript and the
        session's turns, observed by ``turn_finished``. A failure is the turn's ``error``, not an exception."""
        return self.evaluator.turn(self.spec(name).name, text)

    def tokenize(self, name: str, text: str) -> Encoding:
        """What the model's ``tokenize`` hook makes of `text` (loading the model first), as ``/tokens`` shows."""
        model = self.load(name)
        return tokenize(self.session, model.spec.name, text)

    # -- settings -----------------------------------------------------------------

    def settings(self, name: str | None = None) -> dict[str, Any]:
        """A copy of a model's settings (default: the active model's), every `Setting` by name."""
        return dict(self.session.settings_of(self.spec(name).name))

    def set(self, name: str, key: str, value: Any) -> str | None:
        """Change one setting as ``/set`` does: `value` as typed (``"0.7"``, ``"on"``) or already typed.

        The model's `Setting` and its ``validate_settings`` judge it: a refused value raises
        `CommandError` with the reason (the settings stay as they were). Returns the warning
        ``validate_settings`` gave for a value that has no effect, or None.
        """
        try:
            return self.session.set(self.spec(name).name, key, value)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    # -- output -------------------------------------------------------------------

    def notice(self, message: str) -> None:
        """Show a one-line note now (dimmed on a terminal; on stderr in batch mode), before the result."""
        self.evaluator.renderer.notice(message)

    @property
    def width(self) -> int | None:
        """Columns the output is laid out in; None where lines stay whole (a file, a pipe)."""
        return self.evaluator.width()
