"""Tab completion at the prompt: commands, model names, settings, their values, checkpoint paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from repl.core import settings as settings_module

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

MODEL_ARGUMENT_COMMANDS = {"use", "load", "unload", "retry", "compare", "tokens", "show", "arena"}
EXTRA_WORDS = {
    "compare": ["off", "--"],
    "tokens": ["last", "--"],
    "session": ["save", "open", "list", "replay"],
    "arena": ["off"],
    "vote": ["a", "b", "tie", "bad"],
}
ON_OFF_COMMANDS = {"context", "stats"}


class ReplCompleter(Completer):
    """Completes command names, model names, setting names and values, and `/load`'s checkpoint path."""

    def __init__(self, repl: Repl):
        self.repl = repl
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or "\n" in text:
            return
        words = text.split(" ")
        current = words[-1]
        command = self.repl.commands.find(words[0][1:]) if len(words) > 1 else None
        if command is not None and command.name == "load" and len(words) == 3:
            yield from self.paths.get_completions(Document(current), complete_event)
            return
        for word in self._candidates(words):
            if word.startswith(current) and word != current:
                yield Completion(word, start_position=-len(current))
        if len(words) == 1 and self.repl.commands.find(current[1:]) is not None:
            # A whole command name: Tab goes on to its first argument, the space put in for you.
            for word in self._candidates([current, ""]):
                yield Completion(f"{current} {word}", start_position=-len(current), display=word)

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
            compared = settings_module.COMPARE_SETTINGS
            if position == 1:
                return [s.name for s in (*settings_module.all_settings(spec), *compared)]
            setting = settings_module.find_setting(spec, words[1]) or settings_module.compare_setting(words[1])
            if position == 2 and setting is not None:
                return ["on", "off"] if setting.kind is bool else list(setting.choices)
            return []
        names: list[str] = []
        if command.name in MODEL_ARGUMENT_COMMANDS:
            for name in session.model_names():
                spec = session.spec(name)
                # An alias names the default checkpoint (gpt-2): offered only while the model has it.
                names += [name, *(spec.aliases if session.checkpoint_of(name) == spec.checkpoint else ())]
        return names + EXTRA_WORDS.get(command.name, [])
