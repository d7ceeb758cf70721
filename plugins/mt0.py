"""mt0: an encoder-decoder that answers what it is given (T5, Flan-T5, mT5/mt0, BART, mBART, Marian).

"Translate to English: Je t'aime." -> "I love you." with the default mt0-small.
The encoder input is what the checkpoint's tokenizer makes of the line (T5:
text then `</s>`; BART: `<s>` text `</s>`; mBART: text `</s> en_XX`). Where
the decoder starts, and any token generation is forced to begin with, come from
the model's generation config: `<pad>` for T5 and Marian, `</s>` for BART and
mBART, then BART's `<s>` or mBART's target language. The raw output shows them.
"""

from repl.api import GENERATION_SETTINGS, SEQ2SEQ, Encoding, Reply, hookimpl, validate_generation

NAME = "mt0"
DEFAULT_CHECKPOINT = "bigscience/mt0-small"
# T5 and mT5 have relative positions and no hard limit, but were trained on inputs of at most 512 tokens.
TRAINED_INPUT_TOKENS = 512


@hookimpl
def register_models(register):
    register(
        NAME,
        family=SEQ2SEQ,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("mt0-small",),
        description="encoder-decoder (T5, BART, mBART, Marian...): 'Translate to English: Je t'aime.'",
        settings=GENERATION_SETTINGS,
        validate_settings=validate_generation,
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import decoder_start, forced_first_token, load, max_positions

    model = load(spec, checkpoint, options)
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer) or TRAINED_INPUT_TOKENS
    model.decoder_start = decoder_start(model.handle, model.tokenizer)
    model.forced_first_token = forced_first_token(model.handle, model.tokenizer)
    return model


@hookimpl
def tokenize(model, text):
    from repl.api import encode_cut_at_end

    # The instruction comes first, so a long line loses its end, never the special tokens around it.
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
    from repl.api import decode_text, eos_ids, stop_reason, token_probs

    sequence = output.sequences[0].tolist()
    starts_with_decoder_start = model.decoder_start is not None and sequence[:1] == [model.decoder_start.id]
    new_ids = sequence[1:] if starts_with_decoder_start else sequence
    eos = eos_ids(model.handle)
    end = next((position for position, token in enumerate(new_ids) if token in eos), None)
    if end is not None:  # beam search pads a finished beam after its end; a pad before it was generated
        new_ids = new_ids[: end + 1]
    limit = settings["max_new_tokens"]
    reason = stop_reason(new_ids, eos, limit)
    if len(new_ids) >= limit and model.handle.generation_config.forced_eos_token_id is not None:
        reason = "max_new_tokens"  # BART and mBART are forced to end with </s> when the limit is reached
    return Reply(
        text=decode_text(model.tokenizer, new_ids),
        new_ids=new_ids,
        raw_ids=sequence,
        raw_text=model.tokenizer.decode(sequence, skip_special_tokens=False),
        stop_reason=reason,
        logprobs=token_probs(model.tokenizer, output, new_ids, settings),
    )


@hookimpl
def score(model, text):
    from repl.api import score_seq2seq

    # "Translate to English: Je t'aime. => I love you.": the target scored as the output for the input.
    return score_seq2seq(model, text)
