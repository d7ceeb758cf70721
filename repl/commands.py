"""An import path of the first plugin docs, kept so that plugins written against them still work: use `repl.api`."""

from repl.core.results import CommandError, Result

__all__ = ["CommandError", "Result"]
