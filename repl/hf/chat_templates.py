"""A chat model's prompt through its own chat template, and what the template put in.

`apply_chat_template` is the one source of truth for a chat prompt: nothing
here writes template markup by hand. What is worked out beside it is which
characters of the rendered prompt are the messages' own text (everything else
is the template's), and which tokens end an assistant turn. Both come from
rendering the template again with changed messages, so they hold for any
template. The tokenizer is passed in: nothing here imports torch or
transformers.
"""

from __future__ import annotations

from typing import Any

from repl.core.records import ModelError

# A reply no template would write by itself, to find what a template puts after an assistant turn.
_PROBE_REPLY = "modelrepl probe reply"


class TemplateError(ModelError):
    """The chat template could not render the conversation."""


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], checkpoint: str) -> str:
    """The prompt text for `messages`, ready for the assistant's turn; a failure is one line naming the checkpoint."""
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # a template can raise anything: jinja errors, raise_exception(), type errors
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise TemplateError(f"the chat template of {checkpoint!r} failed to render: {message}") from None


def message_spans(tokenizer: Any, messages: list[dict[str, Any]], prompt: str, checkpoint: str) -> list[range]:
    """Where each message's text lies in `prompt` (as rendered from `messages`).

    Each message is rendered once more with every character of its text
    changed; the characters where the two prompts differ are that message's
    own. This needs no marker strings, so it cannot be fooled by text that
    looks like markup (a user typing "user"), and it follows templates that
    trim or move a message (a system prompt folded into the first user turn).
    A message the template does not show yields an empty span.
    """
    spans = []
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, str) or not content:
            spans.append(range(0))
            continue
        changed = list(messages)
        changed[index] = {**message, "content": _every_character_changed(content)}
        other = render_prompt(tokenizer, changed, checkpoint)
        spans.append(_differing_span(prompt, other))
    return spans


def _every_character_changed(text: str) -> str:
    """`text` with each character replaced by another of the same kind, so a template's trim acts alike."""
    return "".join(_other_character(char) for char in text)


def _other_character(char: str) -> str:
    if char.isspace():
        return "\t" if char != "\t" else " "
    if char.isdigit():
        return "1" if char != "1" else "2"
    return "x" if char != "x" else "y"


def _differing_span(prompt: str, other: str) -> range:
    """The span of `prompt` where it differs from `other`: after their common prefix, before their common suffix."""
    start = 0
    limit = min(len(prompt), len(other))
    while start < limit and prompt[start] == other[start]:
        start += 1
    end = 0
    while end < limit - start and prompt[-1 - end] == other[-1 - end]:
        end += 1
    return range(start, len(prompt) - end)


def added_by_template(offsets: list[tuple[int, int]], spans: list[range]) -> list[bool]:
    """For each token (by its character offsets), whether the template put it in: it has none of the messages' text."""
    own = [False] * (max((span.stop for span in spans), default=0) + 1)
    for span in spans:
        for position in span:
            own[position] = True
    return [not any(own[position] for position in range(start, min(end, len(own)))) for start, end in offsets]


def control_ids(tokenizer: Any) -> set[int]:
    """The tokenizer's special tokens, with those only registered as special added tokens (`<|im_end|>`)."""
    added = {token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
    return set(tokenizer.all_special_ids) | added


def end_of_turn_ids(tokenizer: Any, checkpoint: str) -> set[int]:
    """The special token the template writes right after an assistant's reply (`<|im_end|>`, `<|eot_id|>`).

    Found by rendering a finished assistant turn and reading the first special
    token after its text; a template that ends turns with plain text yields none.
    """
    said = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": _PROBE_REPLY}]
    try:
        text = tokenizer.apply_chat_template(said, tokenize=False)
    except Exception:  # a template may refuse a conversation that ends with the assistant: the EOS ids remain
        return set()
    if _PROBE_REPLY not in text:
        return set()
    after = text[text.rindex(_PROBE_REPLY) + len(_PROBE_REPLY) :]
    controls = control_ids(tokenizer)
    for token_id in tokenizer(after, add_special_tokens=False)["input_ids"]:
        if token_id in controls:
            return {token_id}
    return set()
