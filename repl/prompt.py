"""Reading input at a terminal: prompt_toolkit history, completion, key bindings, toolbar."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.patch_stdout import patch_stdout

from repl import settings as settings_module
from repl.lines import join_blocks, replace_undecodable
from repl.render import seconds
from repl.storage import StorageError, write_atomic

if TYPE_CHECKING:
    from repl.app import Repl

MODEL_ARGUMENT_COMMANDS = {"use", "load", "unload", "retry", "compare", "tokens"}
EXTRA_WORDS = {"compare": ["off", "--"], "tokens": ["last", "--"], "session": ["save", "open", "list", "replay"]}
ON_OFF_COMMANDS = {"context", "stats"}


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


class ReplCompleter(Completer):
    """Completes command names, model names, setting names and their values."""

    def __init__(self, repl: Repl):
        self.repl = repl

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or "\n" in text:
            return
        words = text.split(" ")
        current = words[-1]
        for word in self._candidates(words):
            if word.startswith(current) and word != current:
                yield Completion(word, start_position=-len(current))

    def _candidates(self, words: list[str]) -> list[str]:
        if len(words) == 1:
            return ["/" + name for name in self.repl.commands.names()]
        command = self.repl.commands.find(words[0][1:])
        if command is None:
            return []
        position = len(words) - 1
        session = self.repl.session
        if command.name == "help":
            return self.repl.commands.names() if position == 1 else []
        if command.name in ON_OFF_COMMANDS:
            return ["on", "off"] if position == 1 else []
        if command.name == "set" and session.active is not None:
            spec = session.active_spec()
            if position == 1:
                return [s.name for s in settings_module.all_settings(spec)]
            setting = settings_module.find_setting(spec, words[1])
            if position == 2 and setting is not None:
                return ["on", "off"] if setting.kind is bool else list(setting.choices)
            return []
        names: list[str] = []
        if command.name in MODEL_ARGUMENT_COMMANDS:
            for spec in session.host.models().values():
                names += [spec.name, *spec.aliases]
        return names + EXTRA_WORDS.get(command.name, [])


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event):
        """Esc-Enter starts a new line instead of sending."""
        event.current_buffer.insert_text("\n")

    return bindings


def _toolbar(repl: Repl) -> Callable[[], str]:
    def render() -> str:
        facts = repl.toolbar_facts()
        if not facts:
            return " no model "
        last = facts.pop("last", None)
        parts = [f"{facts.pop('model')} on {facts.pop('device')}"]
        parts += [f"{key}={settings_module.format_value(value)}" for key, value in facts.items()]
        if last is not None:
            rate = "-" if last.tokens_per_s is None else f"{last.tokens_per_s:.1f} tok/s"
            parts.append(f"last: {last.new_tokens} tok, ttft {seconds(last.ttft)}, {rate}, {last.stop_reason}")
        return " " + " | ".join(parts) + " "

    return render


class TerminalReader:
    """Reads lines from the terminal with history, suggestions, completion and a toolbar."""

    def __init__(self, repl: Repl, history_path: Path, history_size: int):
        self.repl = repl
        self.prompt_session = PromptSession(
            history=AtomicFileHistory(history_path, history_size, repl.renderer.notice),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ReplCompleter(repl),
            complete_while_typing=False,
            key_bindings=_key_bindings(),
            bottom_toolbar=_toolbar(repl),
        )

    def when_shown(self, callback: Callable[[], None]) -> None:
        """Run `callback` once, right after the first prompt is drawn (where the warm start begins)."""

        def once(_app) -> None:
            self.prompt_session.app.after_render -= once
            callback()

        self.prompt_session.app.after_render += once

    def _read(self, continued: bool) -> str:
        prompt = "... " if continued else f"{self.repl.session.active or 'modelrepl'}> "
        with patch_stdout(raw=True):
            return replace_undecodable(self.prompt_session.prompt(prompt))

    def lines(self) -> Iterator[str]:
        """Yields inputs; Ctrl-C at the prompt clears the line, Ctrl-D ends."""
        while True:
            try:
                yield from join_blocks(self._read)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return


def interact(repl: Repl, reader: TerminalReader) -> None:
    for line in reader.lines():
        try:
            if repl.handle(line).quit:
                return
        except KeyboardInterrupt:  # a Ctrl-C that lands between evaluation and the next prompt
            continue
