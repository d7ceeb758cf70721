"""chat: an instruct model, fed each line through its own chat template.

The conversation is this model's turns since the last `/clear` plus the
`system` setting (`repl.conversation`), rendered by the checkpoint's template
with `apply_chat_template`: the prompt holds exactly the markup the model was
trained with, and every token of it that is not the messages' text is marked
added. The oldest turns are dropped first when the prompt outgrows the
context. Generation stops at the token the template ends a turn with (and at
the model's EOS); a reasoning block (`<think>…</think>`) is kept apart from
the answer, shown dimmed or hidden (`think` setting).
"""

from __future__ import annotations

import dataclasses
from functools import partial

from repl.api import (
    CAUSAL,
    GENERATION_SETTINGS,
    SYSTEM,
    Encoding,
    LoadedModel,
    ModelError,
    Reply,
    Setting,
    Token,
    hookimpl,
    messages,
    validate_generation,
)

NAME = "chat"
DEFAULT_CHECKPOINT = "HuggingFaceTB/SmolLM2-135M-Instruct"
THINK = Setting(
    "think", str, "show", "reasoning (<think>…</think>): show it dimmed, or hide it", choices=("show", "hide")
)
# Replies of instruct models run longer than continuations: a larger default budget.
SETTINGS = tuple(
    dataclasses.replace(s, default=256) if s.name == "max_new_tokens" else s for s in GENERATION_SETTINGS
) + (SYSTEM, THINK)


@hookimpl
def register_models(register):
    register(
        NAME,
        family=CAUSAL,
        checkpoint=DEFAULT_CHECKPOINT,
        description="talks: instruct checkpoints through their chat template",
        settings=SETTINGS,
        validate_settings=validate_generation,
        markdown=True,
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import control_ids, end_of_turn_ids, eos_ids, load, max_positions

    model = load(spec, checkpoint, options)
    if not model.tokenizer.chat_template:
        raise ModelError(
            f"checkpoint {checkpoint!r} has no chat template, so chat cannot know how to wrap a line; "
            f"for plain text continuation use gpt2: /load gpt2 {checkpoint}"
        )
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer)
    model.memo["stop_ids"] = eos_ids(model.handle) | end_of_turn_ids(model.tokenizer, checkpoint)
    model.memo["control_ids"] = control_ids(model.tokenizer)
    return model


@hookimpl
def tokenize(model, text, settings, history):
    from repl.api import added_by_template, message_spans, reasoning_open_in_prompt, render_prompt

    tokenizer = model.tokenizer
    room = _room(model, settings["max_new_tokens"])
    kept = list(history)
    while True:
        said = messages(settings.get("system"), kept, text)
        prompt = render_prompt(tokenizer, said, model.checkpoint)
        encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids = encoded["input_ids"]
        if room is None or len(ids) <= room or not kept:
            break
        kept = kept[1:]  # the oldest turn goes first; the system prompt and the new line stay
    if room is not None and len(ids) > room:
        raise ModelError(
            f"the prompt takes {len(ids)} tokens with no earlier turn, more than the {room} {NAME} has room for "
            f"({model.max_input_tokens} positions less max_new_tokens {settings['max_new_tokens']}); "
            "shorten the line or the system prompt, or lower max_new_tokens"
        )
    notices = []
    if len(kept) < len(history):
        dropped = len(history) - len(kept)
        notices.append(f"context trimmed: {dropped} oldest turn(s) dropped to fit {model.max_input_tokens} positions")
    spans = message_spans(tokenizer, said, prompt, model.checkpoint)
    added = added_by_template(encoded["offset_mapping"], spans)
    controls = model.memo["control_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    tokens = [Token(i, piece, i in controls, was_added) for i, piece, was_added in zip(ids, pieces, added)]
    context = {"prompt_length": len(ids), "thinking": reasoning_open_in_prompt(prompt)}
    return Encoding(text, tokens, notices, context=context)


def _room(model: LoadedModel, max_new_tokens: int) -> int | None:
    """Positions left for the prompt once the reply has its own; None when the model has no known limit."""
    if model.max_input_tokens is None:
        return None
    room = model.max_input_tokens - max_new_tokens
    if room < 1:
        raise ModelError(
            f"max_new_tokens {max_new_tokens} leaves no room for input in "
            f"{NAME}'s {model.max_input_tokens} positions; lower it with /set max_new_tokens"
        )
    return room


@hookimpl
def run(model, encoding, settings, control):
    import torch

    from repl.api import generate

    input_ids = torch.tensor([encoding.input_ids])
    stop_ids = sorted(model.memo["stop_ids"])
    tokenizer = model.tokenizer
    return generate(
        model,
        {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)},
        settings,
        control,
        split=partial(_split, encoding.context["thinking"], settings["think"]),
        eos_token_id=stop_ids or None,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids or [None])[0],
    )


def _split(thinking: bool, think: str, text: str, final: bool) -> tuple[str, str]:
    """(reasoning as shown, answer) of the reply so far: the reasoning is empty when hidden."""
    from repl.api import split_reasoning

    thoughts, answer = split_reasoning(text, thinking, final)
    return (thoughts if think == "show" else ""), answer


@hookimpl
def decode(model, encoding, output, settings):
    from repl.api import decode_text, stop_reason, token_probs

    new_ids = output.sequences[0, encoding.context["prompt_length"] :].tolist()
    stop_ids = model.memo["stop_ids"]
    # The end-of-turn token is a control token: it is dropped from the text like every special token.
    thoughts, answer = _split(
        encoding.context["thinking"], settings["think"], decode_text(model.tokenizer, new_ids), True
    )
    return Reply(
        text=answer,
        new_ids=new_ids,
        raw_text=model.tokenizer.decode(new_ids, skip_special_tokens=False),
        stop_reason=stop_reason(new_ids, stop_ids, settings["max_new_tokens"]),
        data={"reasoning": thoughts} if thoughts else {},
        logprobs=token_probs(model.tokenizer, output, new_ids, settings),
    )


@hookimpl
def score(model, text):
    from repl.api import score_causal

    # The text as it stands, without the chat template: each token given the ones before it.
    return score_causal(model, text)
