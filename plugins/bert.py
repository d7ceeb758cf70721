"""bert: an encoder-only masked LM that fills in `[MASK]`, answering with candidates.

Any masked LM checkpoint: BERT, DistilBERT, RoBERTa, XLM-R, ALBERT, ModernBERT.
The input is wrapped as the tokenizer does (`[CLS] ... [SEP]`, `<s> ... </s>`);
`[MASK]`, `[mask]` and `<mask>` all stand for the tokenizer's own mask token.
Each mask gets its top-k candidates, shown as the words they decode to (a
WordPiece continuation keeps its `##`), and the sentence is shown with the best
ones filled in. Special tokens and reserved `[unused…]` entries are never candidates.
"""

import re

from repl.api import MASKED, Alternative, Encoding, ModelError, Reply, Setting, TokenProbs, hookimpl

NAME = "bert"
DEFAULT_CHECKPOINT = "google-bert/bert-base-uncased"
MOST_MASKS = 20
TOP_K = Setting("top_k", int, 5, "candidates shown for each mask", minimum=1, maximum=100)
_MASK_SPELLINGS = re.compile(r"<mask>|\[mask\]", re.IGNORECASE)
# Vocabulary entries kept free for later use, never words: BERT's [unused0], Gemma's <unused0>.
_RESERVED_PIECES = re.compile(r"\[unused\d+\]|<unused\d+>")
HOW_TO = "bert fills in masked words: put [MASK] where a word is missing, e.g. 'Paris is the [MASK] of France.'"


@hookimpl
def register_models(register):
    register(
        NAME,
        family=MASKED,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("bert-base",),
        description="fills in [MASK], any masked LM (BERT, RoBERTa...): 'Paris is the [MASK] of France.'",
        settings=(TOP_K,),
    )


@hookimpl
def load_model(spec, checkpoint, options):
    from repl.api import load, max_positions

    model = load(spec, checkpoint, options)
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer)
    return model


@hookimpl
def tokenize(model, text):
    from repl.api import encode_cut_at_end

    tokenizer = model.tokenizer
    tokens, notices = encode_cut_at_end(model, _MASK_SPELLINGS.sub(tokenizer.mask_token, text), tokenizer.mask_token_id)
    # Any text has tokens (`/tokens`); only a turn needs a mask to fill, and `run` says so.
    masks = [position for position, token in enumerate(tokens) if token.id == tokenizer.mask_token_id]
    return Encoding(text, tokens, notices, context={"masks": masks})


@hookimpl
def run(model, encoding, control):
    import torch

    masks = encoding.context["masks"]
    if not masks:
        raise ModelError(HOW_TO)
    if len(masks) > MOST_MASKS:
        raise ModelError(f"{len(masks)} masks in one line; {NAME} fills at most {MOST_MASKS} at once")
    input_ids = torch.tensor([encoding.input_ids], device=model.handle.device)
    with torch.inference_mode():
        logits = model.handle(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    control.step()
    return logits[0, masks].float().cpu()


@hookimpl
def decode(model, encoding, output, settings):
    tokenizer = model.tokenizer
    output[:, _never_candidates(model)] = float("-inf")
    probabilities = output.softmax(dim=-1)
    candidates = [_candidates(tokenizer, row, settings["top_k"]) for row in probabilities]
    filled_ids = list(encoding.input_ids)
    for position, row in zip(encoding.context["masks"], candidates):
        if row:
            filled_ids[position] = row[0]["id"]
    filled = tokenizer.decode(filled_ids, skip_special_tokens=True)
    lines = [filled] + [
        f"  [MASK] {number}: " + "  ".join(f"{c['token']} {_probability(c['score'])}" for c in row)
        for number, row in enumerate(candidates, start=1)
    ]
    shown = [[{"token": c["token"], "score": c["score"]} for c in row] for row in candidates]
    return Reply(
        text=filled,
        display="\n".join(lines),
        data={"candidates": shown},
        raw_text=filled,
        stop_reason="done",
        logprobs=[_mask_probs(tokenizer, row, scores) for row, scores in zip(candidates, output.log_softmax(dim=-1))],
    )


def _never_candidates(model):
    """Ids that never fill a gap: special tokens ([SEP], [PAD], language codes) and reserved entries."""
    if "never_candidates" not in model.memo:
        tokenizer = model.tokenizer
        special = {token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        reserved = {token_id for token_id, piece in enumerate(pieces) if piece and _RESERVED_PIECES.fullmatch(piece)}
        model.memo["never_candidates"] = sorted(special | reserved | set(tokenizer.all_special_ids))
    return model.memo["never_candidates"]


def _candidates(tokenizer, probabilities, top_k):
    """The `top_k` most likely ids that decode to a word, as {"id", "token", "score"}, best first.

    A byte-level piece that is only part of a character or a control byte, or
    SentencePiece's bare word boundary, decodes to no word and is passed over.
    """
    found: list[dict] = []
    for token_id in probabilities.argsort(descending=True).tolist():
        if len(found) == top_k or probabilities[token_id] == 0:
            break
        word = _word(tokenizer, token_id)
        if word:
            found.append({"id": token_id, "token": word, "score": float(f"{probabilities[token_id].item():.4g}")})
    return found


def _word(tokenizer, token_id):
    """The text a single piece stands for: `Ġparis` and `▁paris` are "paris", a WordPiece `##s` stays `##s`."""
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if piece.startswith("##"):
        return piece
    word = tokenizer.decode([token_id], clean_up_tokenization_spaces=False).strip()
    # A piece of a character decodes to U+FFFD; a control byte is no word either.
    return word if word.isprintable() and "\ufffd" not in word else ""


def _probability(score):
    """Three decimals, or one significant digit when that would show 0.000: 6e-05."""
    return f"{score:.3f}" if score >= 0.0005 else f"{score:.0e}"


def _mask_probs(tokenizer, candidates, logprobs):
    """One mask's whole distribution, for /probs: its candidates and the entropy over every word it could be."""
    from repl.api import entropy, top_alternatives

    top = [Alternative(c["id"], c["token"], logprobs[c["id"]].item()) for c in candidates]
    best = (top or top_alternatives(tokenizer, logprobs, 1))[0]
    return TokenProbs(
        id=best.id,
        piece=best.piece,
        logprob=best.logprob,
        processed_logprob=best.logprob,
        top=top,
        processed_top=top,
        entropy=entropy(logprobs),
    )


@hookimpl
def score(model, text):
    from repl.api import score_masked

    return score_masked(model, text)
