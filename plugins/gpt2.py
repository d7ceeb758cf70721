"""gpt2: a decoder-only causal LM that continues the text it is given.

Nothing is added to the input (no BOS/EOS); there is no pad token, so generation
passes EOS as pad with an attention mask; the output sequence repeats the
prompt, so the reply is decoded from the new ids only. With `/context on`,
earlier turns are kept as the prompt prefix, oldest dropped first to fit.
"""

from repl.api import CAUSAL, GENERATION_SETTINGS, Encoding, ModelError, Reply, Setting, hookimpl, validate_generation

NAME = "gpt2"
DEFAULT_CHECKPOINT = "openai-community/gpt2"
CONTEXT = Setting("context", bool, False, "keep earlier turns as the prompt prefix")


@hookimpl
def register_models(register):
    register(
        NAME,
        family=CAUSAL,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("gpt-2",),
        description="continues text: 'Once upon a time'",
        settings=GENERATION_SETTINGS + (CONTEXT,),
        validate_settings=validate_generation,
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import load

    model = load(spec, checkpoint, options)
    model.max_input_tokens = min(model.handle.config.n_positions, model.tokenizer.model_max_length)
    return model


@hookimpl
def tokenize(model, text, settings, history):
    from repl.api import added_by_tokenizer, describe

    tokenizer = model.tokenizer
    room = model.max_input_tokens - settings["max_new_tokens"]
    if room < 1:
        raise ModelError(
            f"max_new_tokens {settings['max_new_tokens']} leaves no room for input in "
            f"{NAME}'s {model.max_input_tokens} positions; lower it with /set max_new_tokens"
        )
    # verbose=False: truncation is done below and noticed; transformers would warn of "indexing errors".
    encoded = tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    if not ids:
        raise ModelError("the line has no text gpt2's tokenizer can read")
    added = added_by_tokenizer(encoded, set(tokenizer.all_special_ids))
    notices = []
    if len(ids) > room:
        notices.append(f"input truncated to the last {room} tokens: {len(ids) - room} dropped from the start")
        ids, added = ids[-room:], added[-room:]
    if settings.get("context"):
        prefix, dropped = _context_prefix(model, history, room - len(ids))
        if dropped:
            notices.append(
                f"context trimmed: {dropped} oldest turn(s) dropped to fit {model.max_input_tokens} positions"
            )
        ids, added = prefix + ids, [False] * len(prefix) + added
    return Encoding(text, describe(tokenizer, ids, added), notices, context={"prompt_length": len(ids)})


def _context_prefix(model, history, room):
    """Earlier turns as one prompt prefix, newest kept first; returns (ids, turns dropped).

    Each earlier turn is tokenized once and its ids kept with the model, so a
    long conversation is not tokenized again at every line; only the turns
    still in the history are kept, so /clear lets them go.
    """
    known = model.memo.get("turn_ids", {})
    texts = [said + answered + "\n" for said, answered in history]
    known = model.memo["turn_ids"] = {text: known.get(text) or model.tokenizer(text)["input_ids"] for text in texts}
    kept: list[list[int]] = []
    for index, text in enumerate(reversed(texts)):
        ids = known[text]
        if len(ids) > room:
            return [i for turn in reversed(kept) for i in turn], len(history) - index
        kept.append(ids)
        room -= len(ids)
    return [i for turn in reversed(kept) for i in turn], 0


@hookimpl
def run(model, encoding, settings, control):
    import torch

    from repl.api import generate

    input_ids = torch.tensor([encoding.input_ids])
    return generate(
        model,
        {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)},
        settings,
        control,
        pad_token_id=model.tokenizer.eos_token_id,
    )


@hookimpl
def decode(model, encoding, output, settings):
    from repl.api import decode_text, eos_ids, stop_reason

    new_ids = output[0, encoding.context["prompt_length"] :].tolist()
    return Reply(
        text=decode_text(model.tokenizer, new_ids),
        new_ids=new_ids,
        raw_text=model.tokenizer.decode(new_ids, skip_special_tokens=False),
        stop_reason=stop_reason(new_ids, eos_ids(model.handle), settings["max_new_tokens"]),
    )
