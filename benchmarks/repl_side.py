"""The modelrepl side of each comparison: a REPL in this process, or the `modelrepl` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from repl.api import LoadOptions
from repl.app.evaluator import Repl
from repl.core.plugin_host import create_host
from repl.core.session import Session
from repl.terminal.renderer import Renderer
from repl.testing.checkpoints import FAMILIES

# One line per family that each model answers as intended: bert needs a mask.
PROMPTS = {
    "gpt2": "Once upon a time, there was a little model that could generate text.",
    "mt0": "Translate to English: Je t'aime. Bonjour le monde, comment ça va ?",
    "bert": "The capital of France is [MASK].",
}
COMPARE_PROMPT = "The capital of France is [MASK]."


class BenchmarkError(Exception):
    """A side did not do the work it was asked to, so its timing would mean nothing."""


def make_repl(checkpoints: dict[str, Path], new_tokens: int, out: IO[str]) -> Repl:
    """A REPL with the built-in plugins on `checkpoints`, printing to `out` as it would to a terminal."""
    host = create_host(entry_points=False)
    host.load_entry_points(only=FAMILIES)
    session = Session(host, LoadOptions(device="cpu"))
    for family, path in checkpoints.items():
        session.choose_checkpoint(family, str(path))
    session.set_everywhere("max_new_tokens", new_tokens)
    return Repl(session, Renderer(out, out))


def set_streaming(repl: Repl, on: bool) -> None:
    repl.session.set_everywhere("stream", on)


def checked_turns(repl: Repl, line: str, new_tokens: int) -> list:
    """Evaluate and render one line; its turns, after checking each model did the expected work.

    The turns are taken from the session, because `/compare` renders its
    turns as text rather than returning them.
    """
    first = len(repl.session.turns)
    result = repl.handle(line)
    turns = repl.session.turns[first:]
    if not result.ok or not turns:
        raise BenchmarkError(f"{line!r} failed: {result.error or 'no model turn'}")
    for turn in turns:
        expected = 0 if turn.model == "bert" else new_tokens
        if not turn.ok or turn.stats.new_tokens != expected:
            raise BenchmarkError(f"{turn.model} made {turn.stats.new_tokens} tokens, not {expected}: {turn.error}")
    return turns


def modelrepl_command() -> list[str]:
    """The installed `modelrepl` script beside this interpreter, as a user would run it."""
    script = Path(sys.executable).with_name("modelrepl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "repl"]


def isolated_environment(home: Path) -> dict[str, str]:
    """Environment for subprocesses: no user config, history or transcript, and no network."""
    environment = dict(os.environ)
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        environment[variable] = str(home / variable.lower())
    environment["HF_HUB_OFFLINE"] = "1"
    environment.pop("MODELREPL_PLUGINS", None)
    # An installed program runs from cached bytecode (pip compiles it at install, or
    # Python on first import); where PYTHONDONTWRITEBYTECODE is set, as on some CI
    # machines, every start would compile modelrepl's sources again, a cost that a
    # one-file plain script barely has.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment
