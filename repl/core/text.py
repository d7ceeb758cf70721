"""Messages made safe to show on one line."""

import json


def one_line(message: str) -> str:
    """A message as one line with nothing a terminal would act on.

    Messages quote what the user typed or what a plugin said, which may hold a
    newline or an escape sequence; these are shown as escapes instead.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def quoted(text: str) -> str:
    """What the user typed, in double quotes, escapes visible: `"It's"`, as JSON writes it."""
    return json.dumps(text, ensure_ascii=False)
