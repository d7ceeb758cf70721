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


# The special tokens' names, which apply_chat_template passes to a template as variables.
_SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
    "additional_special_tokens",
)
# What apply_chat_template passes to every template itself, and jinja's and transformers' own functions:
# none of these is the user's to set.
_PASSED = frozenset(
    {
        "messages",
        "add_generation_prompt",
        "continue_final_message",
        "tools",
        "documents",
        "raise_exception",
        "strftime_now",
    }
)


def render_prompt(
    tokenizer: Any, messages: list[dict[str, Any]], checkpoint: str, variables: dict[str, Any] | None = None
) -> str:
    """The prompt text for `messages`, ready for the assistant's turn; a failure is one line naming the checkpoint.

    `variables` are passed to the template (`enable_thinking`, `reasoning_effort`: `template_arguments`).
    """
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **(variables or {}))
    except Exception as exc:  # a template can raise anything: jinja errors, raise_exception(), type errors
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise TemplateError(f"the chat template of {checkpoint!r} failed to render: {message}") from None


def template_variables(source: Any) -> frozenset[str]:
    """The variables a chat template reads that a user may set (`enable_thinking`, `reasoning_effort`).

    `source` is a tokenizer (its `chat_template`, one or several) or a template's text.

    jinja's own analysis of the template (`meta.find_undeclared_variables`):
    every name it may read before assigning it, less what `apply_chat_template`
    passes itself (the messages, the special tokens, its functions) and jinja's
    globals. A name the template only sets on some branches (Qwen3's `content`)
    is its own, unless it asks whether the name is defined, as templates do
    for a variable with a default (gpt-oss's `reasoning_effort`). A checkpoint
    with several named templates contributes the names of all.
    """
    import jinja2
    from jinja2 import meta, nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        """transformers' `{% generation %}…{% endgeneration %}` block, read as its body."""

        tags = frozenset({"generation"})

        def parse(self, parser):
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    template = source if isinstance(source, str) else source.chat_template
    sources = list(template.values()) if isinstance(template, dict) else [template or ""]
    environment = ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", Generation])
    special = set(_SPECIAL_TOKEN_NAMES) | set(getattr(source, "special_tokens_map", {}))
    found: set[str] = set()
    for source in sources:
        try:
            tree = environment.parse(source)
        except jinja2.TemplateSyntaxError:
            continue  # rendering says what is wrong with it, in one line
        assigned = {name.name for name in tree.find_all(nodes.Name) if name.ctx in ("store", "param")}
        asked = {
            test.node.name
            for test in tree.find_all(nodes.Test)
            if test.name in ("defined", "undefined") and isinstance(test.node, nodes.Name)
        }
        found |= {name for name in meta.find_undeclared_variables(tree) if name not in assigned or name in asked}
    return frozenset(found - _PASSED - special - set(environment.globals))


def message_spans(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    prompt: str,
    checkpoint: str,
    variables: dict[str, Any] | None = None,
) -> list[range]:
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
        other = render_prompt(tokenizer, changed, checkpoint, variables)
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


def generation_prompt(tokenizer: Any) -> str:
    """What the template writes to open the assistant's turn (`<|im_start|>assistant\\n`, `<|start|>assistant`).

    The difference between a one-line conversation rendered with and without
    `add_generation_prompt`; empty where the template ignores it or fails.
    """
    said = [{"role": "user", "content": _PROBE_REPLY}]
    try:
        plain = tokenizer.apply_chat_template(said, tokenize=False)
        opened = tokenizer.apply_chat_template(said, tokenize=False, add_generation_prompt=True)
    except Exception:  # a template may render nothing useful for one line alone; the reply is then read whole
        return ""
    return opened[len(plain) :] if opened.startswith(plain) else ""


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
