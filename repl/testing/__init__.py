"""modelrepl's test kit for plugin authors.

- ``repl.testing.fixtures``: pytest fixtures (``pytest_plugins = ["repl.testing.fixtures"]``).
- ``build_checkpoint(family, directory)``: tiny real checkpoints, built offline;
  ``replace_model`` puts another head (a classifier) on one; ``build_architecture``
  one of every architecture in ``ARCHITECTURES``; ``build_chat_checkpoint`` a chat
  model with its template (``CHAT_STYLES``); ``build_gguf`` a GGUF file of one, for llama.cpp.
- ``make_host``, ``make_repl``, ``ReplDriver``: REPLs holding only chosen plugins,
  and a driver that types into the real input loop and returns structured results.
- ``check_plugin(plugin, ...)``: a conformance check of a plugin against the hookspecs.
- ``tokenize(session, name, text)``: what a model's ``tokenize`` hook makes of a line, as ``/tokens`` shows it.
- ``repl.testing.serving.transformers_serve(checkpoint, logs)``: a real OpenAI-compatible server on a
  checkpoint (`transformers serve`, offline, on 127.0.0.1), for tests of models that talk to one.
"""

from repl.core.turn import tokenize
from repl.testing.checkpoints import (
    ARCHITECTURES,
    CHAT_STYLES,
    FAMILIES,
    build_architecture,
    build_chat_checkpoint,
    build_checkpoint,
    replace_model,
    teach_checkpoint,
)
from repl.testing.conformance import ConformanceError, ConformanceReport, Finding, check_plugin
from repl.testing.driver import DriveResult, ReplDriver, make_host, make_repl, run_lines
from repl.testing.gguf import build_gguf

__all__ = [
    "ARCHITECTURES",
    "CHAT_STYLES",
    "FAMILIES",
    "ConformanceError",
    "ConformanceReport",
    "DriveResult",
    "Finding",
    "ReplDriver",
    "build_architecture",
    "build_chat_checkpoint",
    "build_checkpoint",
    "build_gguf",
    "check_plugin",
    "make_host",
    "make_repl",
    "replace_model",
    "run_lines",
    "teach_checkpoint",
    "tokenize",
]
