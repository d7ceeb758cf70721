"""An import path of the first plugin docs, kept so that plugins written against them still work.

New code imports `tokenize` from `repl.testing` (tests) or uses the command context.
"""

from repl.core.turn import run_turn, tokenize

__all__ = ["run_turn", "tokenize"]
