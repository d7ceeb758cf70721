"""Reading input at a terminal: the PromptSession with history, completion, keys, toolbar and colour.

The pieces live beside it: `repl.completion`, `repl.keys`, `repl.toolbar`;
the colours are `repl.render`'s style.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import History
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.patch_stdout import patch_stdout

from repl.core.lines import replace_undecodable, unwrap_block
from repl.store.files import StorageError, write_atomic
from repl.terminal.completion import ReplCompleter
from repl.terminal.keys import key_bindings
from repl.terminal.renderer import style
from repl.terminal.spinner import keys_not_echoed
from repl.terminal.toolbar import toolbar

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

CONTINUATION = "... "


class AtomicFileHistory(History):
    """Input history as one JSON string per line, rewritten atomically and kept to a size."""

    def __init__(self, path: Path, size: int, on_error: Callable[[str], None]):
        super().__init__()
        self.path = path
        self.size = size
        self.on_error = on_error
        self._entries: list[str] = []

    def load_history_strings(self) -> Iterable[str]:
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            self.on_error(f"cannot read history {self.path}: {exc.strerror or exc}")
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, str):
                self._entries.append(entry)
        return list(reversed(self._entries))

    def store_string(self, string: str) -> None:
        if self.size <= 0:
            return
        self._entries = (self._entries + [replace_undecodable(string)])[-self.size :]
        try:
            write_atomic(self.path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self._entries))
        except StorageError as exc:
            self.on_error(str(exc))


class TerminalReader:
    """Reads inputs from the terminal with history, suggestions, completion and a toolbar."""

    def __init__(self, repl: Repl, history_path: Path, history_size: int):
        self.repl = repl
        colour = repl.renderer.colour
        self.prompt_session = PromptSession(
            history=AtomicFileHistory(history_path, history_size, repl.renderer.notice),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ReplCompleter(repl),
            complete_while_typing=False,
            key_bindings=key_bindings(lambda: repl.arena is not None and repl.arena.waiting is not None),
            bottom_toolbar=toolbar(repl),
            prompt_continuation=CONTINUATION,
            enable_open_in_editor=True,
            clipboard=repl.clipboard,
            style=style() if colour else None,
            color_depth=None if colour else ColorDepth.MONOCHROME,
        )

    def when_shown(self, callback: Callable[[], None]) -> None:
        """Run `callback` once, right after the first prompt is drawn (where the warm start begins)."""

        def once(_app) -> None:
            self.prompt_session.app.after_render -= once
            callback()

        self.prompt_session.app.after_render += once

    def redraw(self) -> None:
        """Draw the prompt and toolbar again (from any thread): what they show has changed."""
        self.prompt_session.app.invalidate()

    def prompt_text(self) -> FormattedText:
        """`gpt2> `, or `gpt2+bert> ` while every line goes to several models."""
        arena = self.repl.arena
        if arena is not None:  # never a model's name, which would tell A from B
            return FormattedText([("class:prompt.model", "vote a/b/t/n" if arena.waiting else "arena"), ("", "> ")])
        names = self.repl.broadcast_to or [self.repl.session.active or "modelrepl"]
        return FormattedText([("class:prompt.model", "+".join(names)), ("", "> ")])

    def _read(self) -> str:
        with patch_stdout(raw=True):
            return replace_undecodable(self.prompt_session.prompt(self.prompt_text()))

    def lines(self) -> Iterator[str]:
        """Yields inputs (a `\"\"\"` block whole); Ctrl-C at the prompt clears the line, Ctrl-D ends.

        A Ctrl-C read with the Enter that sent a line cancels that line: it is not sent.
        """
        while True:
            try:
                line = unwrap_block(self._read())
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if self._ctrl_c_came_with_enter():
                self.repl.renderer.notice("cancelled: Ctrl-C came with the Enter that sent the line; it was not sent")
                continue
            yield line

    def _ctrl_c_came_with_enter(self) -> bool:
        """Whether the keys read after Enter hold a Ctrl-C; the rest stay for the next prompt.

        Keys read in one go with the Enter stay with prompt_toolkit for the next
        prompt, where a Ctrl-C would only clear it, after the whole reply.
        """
        from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
        from prompt_toolkit.keys import Keys

        source = self.prompt_session.input
        pending = get_typeahead(source)
        kept = [key for key in pending if key.key != Keys.ControlC]
        store_typeahead(source, kept)
        return len(kept) < len(pending)


def interact(repl: Repl, reader: TerminalReader) -> None:
    for line in reader.lines():
        try:
            with keys_not_echoed():
                if repl.handle(line).quit:
                    return
        except KeyboardInterrupt:  # a Ctrl-C that lands between evaluation and the next prompt
            continue
