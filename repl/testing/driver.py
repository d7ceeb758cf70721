"""Building REPLs from chosen plugins and driving their real input loop in tests."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from repl.api import LoadOptions
from repl.app.evaluator import Repl
from repl.core.plugin_host import PluginHost, create_host
from repl.core.results import Result
from repl.core.session import Session
from repl.terminal.renderer import Renderer


def make_host(*plugins: str | ModuleType | tuple[str, Any], entry_points: bool = False) -> PluginHost:
    """A fresh plugin host holding only the given plugins.

    Each is a module, a ``(name, object)`` pair, or the name of an installed
    ``modelrepl`` entry point, loaded the way modelrepl loads it.
    """
    installed = [p for p in plugins if isinstance(p, str)]
    objects = [p for p in plugins if not isinstance(p, str)]
    named = [p if isinstance(p, tuple) else (p.__name__.rsplit(".", 1)[-1], p) for p in objects]
    host = create_host(named, entry_points=entry_points)
    if installed:
        host.load_entry_points(only=installed)
        unknown = [name for name in installed if name not in host.statuses]
        if unknown:
            raise ValueError(f"no modelrepl entry point named {', '.join(map(repr, unknown))}")
    return host


def make_repl(
    host: PluginHost,
    *,
    active: str | None = None,
    checkpoints: dict[str, str] | None = None,
    json_mode: bool = False,
    options: LoadOptions | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
) -> Repl:
    """A REPL whose output is captured: read it from `repl.renderer.out.getvalue()`."""
    session = Session(host, options or LoadOptions(device="cpu"), active=active)
    for name, checkpoint in (checkpoints or {}).items():
        session.choose_checkpoint(name, checkpoint)
    for name, values in (settings or {}).items():
        for key, value in values.items():
            session.set(name, key, value)
    return Repl(session, Renderer(io.StringIO(), io.StringIO(), json_mode=json_mode))


@dataclass
class DriveResult:
    """What feeding keystrokes to the REPL produced."""

    results: list[Result] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""

    @property
    def turns(self):
        return [turn for result in self.results for turn in result.turns]


class ReplDriver:
    """Types into the real prompt_toolkit loop (pipe input, dummy output) and collects results.

    `keys` are sent as typed: "\\r" is Enter, "\\x1b\\r" Esc-Enter, "\\x03"
    Ctrl-C, "\\x04" Ctrl-D. `lines()` appends Enter to each line and Ctrl-D at the end.
    """

    def __init__(self, repl: Repl, history_path: Path | None = None, history_size: int = 100):
        self.repl = repl
        self.history_path = history_path or Path(tempfile.mkdtemp(prefix="modelrepl-history-")) / "history"
        self.history_size = history_size

    def lines(self, *lines: str) -> DriveResult:
        return self.keys("".join(line + "\r" for line in lines) + "\x04")

    def keys(self, keys: str) -> DriveResult:
        from prompt_toolkit.application import create_app_session
        from prompt_toolkit.input import create_pipe_input
        from prompt_toolkit.output import DummyOutput

        from repl.terminal.reader import TerminalReader

        drive = DriveResult()
        with create_pipe_input() as pipe_input, create_app_session(input=pipe_input, output=DummyOutput()):
            pipe_input.send_text(keys)
            reader = TerminalReader(self.repl, self.history_path, self.history_size)
            for text in reader.lines():
                drive.inputs.append(text)
                result = self.repl.handle(text)
                drive.results.append(result)
                if result.quit:
                    break
        drive.stdout = _drain(self.repl.renderer.out)
        drive.stderr = _drain(self.repl.renderer.err)
        return drive


def _drain(stream: Any) -> str:
    if not isinstance(stream, io.StringIO):
        return ""
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return text


def run_lines(repl: Repl, lines: Iterable[str]) -> list[Result]:
    """Evaluate lines the way batch mode does, returning each result."""
    return [repl.handle(line) for line in lines]
