"""Reasoning blocks (`<think>…</think>`) told apart from the answer, as text streams in.

Reasoning models write their thoughts between `<think>` and `</think>` before
the answer; some chat templates open the block in the prompt already, so the
reply starts inside it. `split_reasoning` is written for streaming: called on every
longer prefix of a reply, each part it returns only ever grows, so what was
shown never has to be taken back (a half-written `</think>` and trailing
spaces are held until more text shows what they are).
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def reasoning_open_in_prompt(prompt: str) -> bool:
    """Whether the prompt ends inside a reasoning block, so the reply starts as reasoning."""
    return prompt.rfind(OPEN) > prompt.rfind(CLOSE)


def split_reasoning(text: str, thinking: bool = False, final: bool = False) -> tuple[str, str]:
    """(reasoning, answer) of a reply so far; `thinking`: the reply starts inside a block.

    Whitespace around the reasoning and before the answer is dropped. Until
    `final`, text that may be the start of a tag, and whitespace at the end of
    the reasoning, are held back.
    """
    if not thinking:
        stripped = text.lstrip()
        if stripped.startswith(OPEN):
            text, thinking = stripped[len(OPEN) :], True
        elif not final and stripped and OPEN.startswith(stripped):
            return "", ""  # might be the start of "<think>"
        else:
            return "", stripped
    reasoning, closed, answer = text.partition(CLOSE)
    if closed or final:
        return reasoning.strip(), answer.lstrip()
    return _without_partial_tag(reasoning, CLOSE).strip(), ""


def _without_partial_tag(text: str, tag: str) -> str:
    """`text` without an ending that could be the beginning of `tag`."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-length:]):
            return text[:-length]
    return text
