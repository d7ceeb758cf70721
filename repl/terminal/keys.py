"""Key bindings at the prompt, beyond prompt_toolkit's Emacs defaults.

Ctrl-X Ctrl-E (edit the input in $EDITOR) is prompt_toolkit's own, switched on
with `enable_open_in_editor`.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.application import get_app
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings

from repl.core.lines import block_is_open


@Condition
def _inside_block() -> bool:
    return block_is_open(get_app().current_buffer.text)


# At the arena's vote prompt, one key votes: a, b, t (a tie) or n (both bad).
VOTE_KEYS = {"a": "a", "b": "b", "t": "tie", "n": "bad"}


def key_bindings(voting: Callable[[], bool] = lambda: False) -> KeyBindings:
    """The prompt's keys; `voting` says whether the arena waits for a vote (then a, b, t and n vote at once)."""
    bindings = KeyBindings()
    awaiting_vote = Condition(lambda: voting() and not get_app().current_buffer.text)

    for key, verdict in VOTE_KEYS.items():

        @bindings.add(key, filter=awaiting_vote)
        def _vote(event, verdict=verdict):
            """One key votes, as `/vote` would."""
            event.current_buffer.text = f"/vote {verdict}"
            event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event):
        """Esc-Enter starts a new line instead of sending."""
        event.current_buffer.insert_text("\n")

    @bindings.add("enter", filter=_inside_block)
    def _block_line(event):
        """Inside a `\"\"\"` block Enter starts a new line: the block is sent, and kept in history, as one input."""
        event.current_buffer.insert_text("\n")

    return bindings
