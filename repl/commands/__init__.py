"""The built-in `/` commands, one module per group; the registry is `repl.commands.registry`."""

from repl.commands import compare, general, models, sessions, tokens

BUILTIN_MODULES = (general, models, compare, tokens, sessions)
