"""bert: an encoder-only masked LM that fills in `[MASK]`, answering with candidates.

The input is wrapped as `[CLS] ... [SEP]`; `<mask>` and `[mask]` are accepted
as spellings of the tokenizer's own mask token. Each mask gets its top-k
candidates and the sentence is shown with the best ones filled in.
"""

import re

from repl.api import MASKED, Encoding, ModelError, Reply, Setting, hookimpl

NAME = "bert"
DEFAULT_CHECKPOINT = "google-bert/bert-base-uncased"
MOST_MASKS = 20
TOP_K = Setting("top_k", int, 5, "candidates shown for each mask", minimum=1, maximum=100)
_MASK_SPELLINGS = re.compile(r"<mask>|\[mask\]", re.IGNORECASE)
HOW_TO = "bert fills in masked words: put [MASK] where a word is missing, e.g. 'Paris is the [MASK] of France.'"


@hookimpl
def register_models(register):
    register(
        NAME,
        family=MASKED,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("bert-base",),
        description="fills in [MASK]: 'Paris is the [MASK] of France.'",
        settings=(TOP_K,),
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import load

    model = load(spec, checkpoint, options)
    model.max_input_tokens = min(model.handle.config.max_position_embeddings, model.tokenizer.model_max_length)
    return model


@hookimpl
def tokenize(model, text):
    from repl.api import encode_cut_at_end

    tokenizer = model.tokenizer
    masks_in_text = len(_MASK_SPELLINGS.findall(text))
    if masks_in_text == 0:
        raise ModelError(HOW_TO)
    if masks_in_text > MOST_MASKS:
        raise ModelError(f"{masks_in_text} masks in one line; {NAME} fills at most {MOST_MASKS} at once")
    tokens, notices = encode_cut_at_end(model, _MASK_SPELLINGS.sub(tokenizer.mask_token, text), tokenizer.mask_token_id)
    masks = [position for position, token in enumerate(tokens) if token.id == tokenizer.mask_token_id]
    return Encoding(text, tokens, notices, context={"masks": masks})


@hookimpl
def run(model, encoding, control):
    import torch

    input_ids = torch.tensor([encoding.input_ids], device=model.handle.device)
    with torch.inference_mode():
        logits = model.handle(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    control.step()
    return logits[0, encoding.context["masks"]].float().cpu()


@hookimpl
def decode(model, encoding, output, settings):
    tokenizer = model.tokenizer
    # A special token ([SEP], [PAD]) is never a word that fills a gap.
    output[:, tokenizer.all_special_ids] = float("-inf")
    probabilities = output.softmax(dim=-1)
    scores, ids = probabilities.topk(min(settings["top_k"], probabilities.shape[-1]), dim=-1)
    candidates = [
        [
            {"token": token, "score": round(score, 6)}
            for token, score in zip(tokenizer.convert_ids_to_tokens(row_ids), row_scores)
        ]
        for row_ids, row_scores in zip(ids.tolist(), scores.tolist())
    ]
    filled_ids = list(encoding.input_ids)
    for position, best in zip(encoding.context["masks"], ids[:, 0].tolist()):
        filled_ids[position] = best
    filled = tokenizer.decode(filled_ids, skip_special_tokens=True)
    lines = [filled] + [
        f"  [MASK] {number}: " + "  ".join(f"{c['token']} {c['score']:.3f}" for c in row)
        for number, row in enumerate(candidates, start=1)
    ]
    return Reply(
        text=filled, display="\n".join(lines), data={"candidates": candidates}, raw_text=filled, stop_reason="done"
    )
