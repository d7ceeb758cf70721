"""The bottom toolbar: the active model and the last reply's numbers first, settings after.

What matters most (model, device, the last reply's tokens, tokens/s and stop
reason) fits in 80 columns; settings follow while there is room, and are
dropped whole rather than cut inside a word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repl.core import settings as settings_module
from repl.core.layout import cells
from repl.core.units import count, seconds

if TYPE_CHECKING:
    from repl.app.evaluator import Repl
    from repl.core.results import Stats

SEPARATOR = " | "


def last_reply(stats: Stats) -> str:
    if stats.stop_reason == "done":  # a model that generates no tokens
        return f"last: {seconds(stats.seconds)}, done"
    rate = "- tok/s" if stats.tokens_per_s is None else f"{stats.tokens_per_s:.1f} tok/s"
    thinking = f" ({stats.reasoning_tokens} thinking)" if stats.reasoning_tokens else ""
    return f"last: {count(stats.new_tokens)} tok{thinking}, {rate}, {stats.stop_reason}"


def toolbar_text(facts: dict[str, Any], width: int) -> str:
    """The toolbar for `facts` (see `Repl.toolbar_facts`) in at most `width` columns."""
    if not facts:
        return " no model "
    if "arena" in facts:
        return arena_text(facts, width)
    facts = dict(facts)
    model, device, last = facts.pop("model"), facts.pop("device"), facts.pop("last", None)
    loading = facts.pop("loading", False)
    where = f"{model} on {device}" if device else f"{model} ({'loading…' if loading else 'not loaded'})"
    text = " " + (where if cells(where) + 2 <= width else where[: max(width - 3, 1)] + "…")
    if last is not None:  # its figures while they fit, the first ones first: never a figure cut in two
        figures = last_reply(last).split(", ")
        while figures and cells(text + SEPARATOR + ", ".join(figures)) + 1 > width:
            figures.pop()
        if figures:
            text += SEPARATOR + ", ".join(figures)
    extras = [f"{key}={settings_module.format_value(value)}" for key, value in facts.items()]
    if last is not None and last.ttft is not None and last.stop_reason != "done":
        extras.append(f"ttft {last.ttft:.3f}s")
    if last is not None and last.reasoning_tokens and last.ttfa is not None:
        extras.append(f"ttfa {last.ttfa:.3f}s")
    for part in extras:
        if cells(text + SEPARATOR + part) + 1 > width:
            break
        text += SEPARATOR + part
    return text + " "


def arena_text(facts: dict[str, Any], width: int) -> str:
    """The arena's state, and never a model's name or figures."""
    parts = [f"arena: {facts['arena']} models", f"{facts['votes']} vote{'s' if facts['votes'] != 1 else ''}"]
    parts.append("vote: a, b, t (tie), n (both bad)" if facts["vote"] else "type a line: two models answer as A and B")
    text = " " + SEPARATOR.join(parts)
    while cells(text) + 1 > width and len(parts) > 1:
        parts.pop(1)
        text = " " + SEPARATOR.join(parts)
    return text + " "


def toolbar(repl: Repl):
    """The callable prompt_toolkit asks for the toolbar before each redraw."""
    from prompt_toolkit.application import get_app

    def render() -> str:
        return toolbar_text(repl.toolbar_facts(), get_app().output.get_size().columns)

    return render
