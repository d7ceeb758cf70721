"""The built-in `/` commands, one module per group; the registry is `repl.app.commands.registry`.

Each handler receives a `repl.app.context.CommandContext`, as a plugin's command does.
"""

from repl.app.commands import arena, chat, compare, general, models, probs, reply, score, sessions, tokens

BUILTIN_MODULES = (general, models, chat, compare, arena, tokens, probs, score, sessions, reply)

__all__ = ["BUILTIN_MODULES"]
