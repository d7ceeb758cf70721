"""chat: an instruct model, fed each line through its own chat template.

The conversation is this model's turns since the last `/clear` plus the
`system` setting (`repl.conversation`), rendered by the checkpoint's template
with `apply_chat_template`: the prompt holds exactly the markup the model was
trained with, and every token of it that is not the messages' text is marked
added. The oldest turns are dropped first when the prompt outgrows the
context. Generation stops at the token the template ends a turn with (and at
the model's EOS).

A reasoning model's reply is read with transformers' response parsing
(`ReplyReader`): its thinking (`<think>…</think>`, or gpt-oss's `analysis`
channel) apart from the answer (after `</think>`, or the `final` channel, past
`<|end|>` until `<|return|>`). The reasoning settings (`think`,
`max_thinking_tokens`, `reasoning_effort`, `template.NAME`) reach the template
as the variables it reads.
"""

from __future__ import annotations

import dataclasses

from repl.api import (
    CAUSAL,
    GENERATION_SETTINGS,
    REASONING_SETTINGS,
    SYSTEM,
    Encoding,
    LoadedModel,
    ModelError,
    Reply,
    Token,
    hookimpl,
    messages,
    validate_generation,
)

NAME = "chat"
DEFAULT_CHECKPOINT = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Replies of instruct models run longer than continuations: a larger default budget.
SETTINGS = (
    tuple(dataclasses.replace(s, default=256) if s.name == "max_new_tokens" else s for s in GENERATION_SETTINGS)
    + (SYSTEM,)
    + REASONING_SETTINGS
)


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
    from repl.api import control_ids, end_of_turn_ids, eos_ids, load, max_positions, reply_format, template_variables

    model = load(spec, checkpoint, options)
    if not model.tokenizer.chat_template:
        raise ModelError(
            f"checkpoint {checkpoint!r} has no chat template, so chat cannot know how to wrap a line; "
            f"for plain text continuation use gpt2: /load gpt2 {checkpoint}"
        )
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer)
    model.template_variables = template_variables(model.tokenizer)
    stop_ids = eos_ids(model.handle) | end_of_turn_ids(model.tokenizer, checkpoint)
    model.memo["stop_ids"] = stop_ids
    model.memo["control_ids"] = control_ids(model.tokenizer)
    model.memo["format"] = reply_format(model.tokenizer, stop_ids)
    return model


@hookimpl
def tokenize(model, text, settings, history):
    from repl.api import added_by_template, message_spans, render_prompt, template_arguments

    tokenizer = model.tokenizer
    room = _room(model, settings["max_new_tokens"])
    variables = template_arguments(settings, model)
    kept = list(history)
    while True:
        said = messages(settings.get("system"), kept, text)
        prompt = render_prompt(tokenizer, said, model.checkpoint, variables)
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
        notices.append(
            f"context trimmed: {dropped} oldest {_turns(dropped)} dropped to fit {model.max_input_tokens} positions"
        )
    spans = message_spans(tokenizer, said, prompt, model.checkpoint, variables)
    added = added_by_template(encoded["offset_mapping"], spans)
    controls = model.memo["control_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    tokens = [Token(i, piece, i in controls, was_added) for i, piece, was_added in zip(ids, pieces, added)]
    return Encoding(text, tokens, notices, context={"prompt_length": len(ids)})


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

    from repl.api import ReplyReader, ThinkingBudget, generate

    form = model.memo["format"]
    prompt_ids = encoding.input_ids
    budget = settings["max_thinking_tokens"]
    if budget and form.budget_close is None:
        raise ModelError(
            f"max_thinking_tokens: {model.checkpoint!r} closes its thinking with a pattern, not fixed markup, "
            "so modelrepl cannot close it; set max_thinking_tokens 0"
        )
    input_ids = torch.tensor([prompt_ids])
    stop_ids = sorted(model.memo["stop_ids"])
    tokenizer = model.tokenizer
    return generate(
        model,
        {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)},
        settings,
        control,
        reader=ReplyReader.for_tokenizer(tokenizer, form, prompt_ids),
        processors=[ThinkingBudget(tokenizer, form, prompt_ids, budget)] if budget else [],
        eos_token_id=stop_ids or None,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids or [None])[0],
    )


@hookimpl
def decode(model, encoding, output, settings):
    from repl.api import ReplyReader, stop_reason, token_probs

    prompt_length = encoding.context["prompt_length"]
    new_ids = output.sequences[0, prompt_length:].tolist()
    # The same reading as the stream's: the end-of-turn token and other special tokens never reach the answer.
    reader = ReplyReader.for_tokenizer(model.tokenizer, model.memo["format"], encoding.input_ids)
    reader.feed(new_ids)
    reader.finish()
    return Reply(
        text=reader.answer,
        new_ids=new_ids,
        raw_text=model.tokenizer.decode(new_ids, skip_special_tokens=False),
        stop_reason=stop_reason(new_ids, model.memo["stop_ids"], settings["max_new_tokens"]),
        data={"reasoning": reader.thinking} if reader.thinking else {},
        notices=reader.notes,
        logprobs=token_probs(model.tokenizer, output, new_ids, settings),
        reasoning_tokens=reader.reasoning_tokens,
    )


@hookimpl
def score(model, text):
    from repl.api import score_causal

    # The text as it stands, without the chat template: each token given the ones before it.
    return score_causal(model, text)


def _turns(count: int) -> str:
    return "turn" if count == 1 else "turns"
