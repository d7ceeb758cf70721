"""mt0: an instruction-following encoder-decoder (mT5 fine-tuned on xP3).

"Translate to English: Je t'aime." -> "I love you." The encoder input ends with
`</s>` and has no start token, as in training; the decoder starts from the pad
token (id 0), so the raw output begins with `<pad>`.
"""

from repl.api import GENERATION_SETTINGS, SEQ2SEQ, Encoding, Reply, hookimpl, validate_generation

NAME = "mt0"
DEFAULT_CHECKPOINT = "bigscience/mt0-small"
# mT5 has relative positions and no hard limit, but was trained on inputs of at most 512 tokens.
MAX_INPUT_TOKENS = 512


@hookimpl
def register_models(register):
    register(
        NAME,
        family=SEQ2SEQ,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("mt0-small",),
        description="follows instructions: 'Translate to English: Je t'aime.'",
        settings=GENERATION_SETTINGS,
        validate_settings=validate_generation,
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import decoder_start, load

    model = load(spec, checkpoint, options)
    model.max_input_tokens = min(MAX_INPUT_TOKENS, model.tokenizer.model_max_length)
    model.decoder_start = decoder_start(model.handle, model.tokenizer)
    return model


@hookimpl
def tokenize(model, text):
    from repl.api import encode_cut_at_end

    # The instruction comes first, so a long line loses its end, never the closing </s>.
    tokens, notices = encode_cut_at_end(model, text)
    return Encoding(text, tokens, notices)


@hookimpl
def run(model, encoding, settings, control):
    import torch

    from repl.api import generate

    input_ids = torch.tensor([encoding.input_ids])
    return generate(model, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}, settings, control)


@hookimpl
def decode(model, output, settings):
    from repl.api import decode_text, eos_ids, stop_reason

    sequence = output[0].tolist()
    starts_with_decoder_start = model.decoder_start is not None and sequence[:1] == [model.decoder_start.id]
    new_ids = sequence[1:] if starts_with_decoder_start else sequence
    pad = model.tokenizer.pad_token_id
    while new_ids and new_ids[-1] == pad:  # beam search pads finished beams
        new_ids.pop()
    return Reply(
        text=decode_text(model.tokenizer, new_ids),
        new_ids=new_ids,
        raw_ids=sequence,
        raw_text=model.tokenizer.decode(sequence, skip_special_tokens=False),
        stop_reason=stop_reason(new_ids, eos_ids(model.handle), settings["max_new_tokens"]),
    )
