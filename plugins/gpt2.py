"""gpt2: a decoder-only causal LM that continues the text it is given.

Any causal LM checkpoint: GPT-2, GPT-Neo/NeoX/Pythia, OPT, Llama, Mistral,
Qwen2/Qwen3, Phi, Gemma, SmolLM. The input is what the checkpoint's tokenizer
makes of the line: GPT-2 adds nothing, Llama's tokenizer puts `<s>` first (kept,
and marked as added). Without a pad token, generation passes EOS as pad with an
attention mask; the output sequence repeats the prompt, so the reply is decoded
from the new ids only. With `/context on`, earlier turns are kept as the prompt
prefix (after any BOS), oldest dropped first to fit.
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
        description="continues text, any causal LM (GPT-2, Llama, Qwen...): 'Once upon a time'",
        settings=GENERATION_SETTINGS + (CONTEXT,),
        validate_settings=validate_generation,
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import load, max_positions

    model = load(spec, checkpoint, options)
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer)
    return model


@hookimpl
def tokenize(model, text, settings, history):
    from repl.api import cut_to_fit, describe, encode_marking_added, split_added_ends

    tokenizer = model.tokenizer
    room = None if model.max_input_tokens is None else model.max_input_tokens - settings["max_new_tokens"]
    if room is not None and room < 1:
        raise ModelError(
            f"max_new_tokens {settings['max_new_tokens']} leaves no room for input in "
            f"{NAME}'s {model.max_input_tokens} positions; lower it with /set max_new_tokens"
        )
    encoded, added = encode_marking_added(tokenizer, text)
    if all(added):
        raise ModelError(f"the line has no text {NAME}'s tokenizer can read")
    # What the tokenizer puts around the text (Llama's <s>) stays at the ends; the text between is cut.
    lead, ids, tail = split_added_ends(encoded, added)
    lead_ids, tail_ids = encoded[:lead], encoded[len(added) - tail :]
    room = None if room is None else max(room - lead - tail, 1)
    notices = []
    if room is not None and len(ids) > room:
        kept, notice = cut_to_fit(ids, room)
        notices.append(notice)
        ids = ids[kept]
    if settings.get("context"):
        prefix, dropped = _context_prefix(model, history, None if room is None else room - len(ids))
        if dropped:
            notices.append(
                f"context trimmed: {dropped} oldest {_turns(dropped)} dropped to fit {model.max_input_tokens} positions"
            )
        ids = prefix + ids
    all_ids = lead_ids + ids + tail_ids
    all_added = [True] * lead + [False] * len(ids) + [True] * tail
    return Encoding(text, describe(tokenizer, all_ids, all_added), notices, context={"prompt_length": len(all_ids)})


def _context_prefix(model, history, room):
    """Earlier turns as one prompt prefix, newest kept first; returns (ids, turns dropped).

    Each earlier turn is tokenized once, without the tokenizer's BOS (the line
    carries that), and its ids kept with the model, so a long conversation is
    not tokenized again at every line; only the turns still in the history are
    kept, so /clear lets them go. A `room` of None is no limit.
    """
    known = model.memo.get("turn_ids", {})
    texts = [said + answered + "\n" for said, answered in history]
    known = model.memo["turn_ids"] = {
        text: known.get(text) or model.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts
    }
    kept: list[list[int]] = []
    for index, text in enumerate(reversed(texts)):
        ids = known[text]
        if room is not None and len(ids) > room:
            return [i for turn in reversed(kept) for i in turn], len(history) - index
        kept.append(ids)
        if room is not None:
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
        **_pad(model),
    )


def _pad(model):
    """Most causal LMs have no pad token: EOS stands in, as transformers' own pipelines do."""
    if model.handle.generation_config.pad_token_id is not None:
        return {}
    tokenizer = model.tokenizer
    return {"pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id}


@hookimpl
def decode(model, encoding, output, settings):
    from repl.api import decode_text, eos_ids, stop_reason, token_probs

    new_ids = output.sequences[0, encoding.context["prompt_length"] :].tolist()
    return Reply(
        text=decode_text(model.tokenizer, new_ids),
        new_ids=new_ids,
        raw_text=model.tokenizer.decode(new_ids, skip_special_tokens=False),
        stop_reason=stop_reason(new_ids, eos_ids(model.handle), settings["max_new_tokens"]),
        logprobs=token_probs(model.tokenizer, output, new_ids, settings),
    )


@hookimpl
def score(model, text):
    from repl.api import score_causal

    return score_causal(model, text)


def _turns(count: int) -> str:
    return "turn" if count == 1 else "turns"
