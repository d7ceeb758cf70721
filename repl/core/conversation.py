"""A conversation as chat messages, for models that take messages (chat templates, chat APIs).

The turns of a model since the last `/clear` are the conversation, and the
system prompt is the model's `system` setting: both are already saved with a
session, so a conversation needs no state of its own. Nothing here imports
torch or transformers.
"""

from __future__ import annotations

from typing import Any

from repl.core.records import Setting

SYSTEM = Setting("system", str, None, "system prompt (/system TEXT sets it, /system off removes it)", optional=True)


def messages(system: str | None, history: list[tuple[str, str]], text: str) -> list[dict[str, Any]]:
    """The messages a chat model is given for `text`: the system prompt, earlier turns, the new line."""
    said: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for user, assistant in history:
        said += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return said + [{"role": "user", "content": text}]
