"""What the evaluator needs from whatever shows its results: the output port.

The evaluator never draws: it hands streamed text, notes and finished results
to an `Output`, and asks it for the width to lay out in. `repl.terminal`'s
`Renderer` is the one implementation (text on a terminal or in a file, or
JSON lines); `repl.cli` wires it in.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from repl.core.results import Result, Turn


class Working(Protocol):
    def stop(self) -> None:
        """Take the progress line away: what comes next takes its place."""


class LiveTurn(Protocol):
    """A model turn as it happens: where its streamed text and early notices go."""

    def stream(self, text: str) -> None:
        """A piece of the reply being generated."""

    def aside(self, text: str) -> None:
        """A piece of text shown apart from the reply (a model's reasoning)."""

    # Whether streamed text is shown as it comes: not in JSON lines, nor where a plugin draws the reply whole.
    streaming: bool

    def notice(self, message: str) -> None:
        """A note about the input, shown ahead of the reply."""

    def done(self, turn: Turn) -> None:
        """The turn is over: `show` will not draw again what was shown live."""


class ColumnTurn(LiveTurn, Protocol):
    def done(self, turn: Turn, shared: bool = False) -> None:  # type: ignore[override]
        """The turn is over; `shared`: it ran at once with another model on its device (its figures say so)."""


class LiveColumns(Protocol):
    """Several turns of one comparison at once, one column each (`repl.app.comparison`).

    Entered by the thread that waits for the models, which calls `draw` now
    and then; the models' threads feed their `column`.
    """

    def __enter__(self) -> LiveColumns: ...

    def __exit__(self, *exc_info: Any) -> None: ...

    def column(self, index: int, render: str = "raw", drawn_by_plugin: bool = False) -> ColumnTurn:
        """Where model `index`'s turn goes; `render` and `drawn_by_plugin` as for `Output.live_turn`."""

    def draw(self) -> None:
        """Bring the columns on the screen up to date."""

    def not_run(self, index: int) -> None:
        """Model `index` never started (Ctrl-C came first)."""


class Output(Protocol):
    # Whether streamed text and progress are shown as they come; False for JSON lines, which hold only results.
    live: bool
    # The prompt's clipboard (a prompt_toolkit Clipboard where there is a prompt).
    clipboard: Any
    # Set by the evaluator: a finished reply as its model's plugin draws it (`render_reply`), or None.
    drawn_by_plugin: Callable[[Turn, int, bool], str | None] | None

    def width(self) -> int | None:
        """Columns to lay text out in; None where lines stay whole (a file, a pipe)."""

    def working(self, describe: Callable[[], str]) -> AbstractContextManager[Working]:
        """Progress shown while a model loads or computes; `describe` says what is being waited for."""

    def live_turn(
        self, describe: Callable[[], str], render: str = "raw", drawn_by_plugin: bool = False
    ) -> AbstractContextManager[LiveTurn]:
        """Progress until a turn's first text, then its text as it streams.

        `render` is the model's setting (markdown or raw); `drawn_by_plugin`
        says its plugin draws its finished replies (`render_reply`).
        """

    def columns(self, heads: list[tuple[str, str]], hidden: bool = False) -> LiveColumns | None:
        """Live columns for a comparison, titled by (name, detail) pairs; None where they cannot be drawn.

        `hidden` (the arena) keeps figures, notes and drawings out of them.
        """

    def notice(self, message: str) -> None:
        """A one-line note."""

    def show(self, result: Result, show_stats: bool = False) -> None:
        """A finished result: the renderer chooses text, tables or JSON."""

    def copy(self, text: str) -> None:
        """Offer `text` to the clipboards the front end has (the prompt's, the terminal's)."""
