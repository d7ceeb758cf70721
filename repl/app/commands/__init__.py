"""The built-in `/` commands, one module per group; the registry is `repl.commands.registry`."""

from repl.app.commands import arena, chat, compare, general, models, probs, reply, score, sessions, tokens

# A command handler's results, importable from here as they were before `repl.api` existed.
from repl.core.results import CommandError, Result

BUILTIN_MODULES = (general, models, chat, compare, arena, tokens, probs, score, sessions, reply)

__all__ = ["BUILTIN_MODULES", "CommandError", "Result"]
