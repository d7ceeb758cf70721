"""Probabilities of a reply's tokens and scores of a text: causal, seq2seq and masked."""

from __future__ import annotations

from typing import Any

import torch

from repl.core.records import (
    Alternative,
    LoadedModel,
    ModelError,
    Score,
    ScoredToken,
    TokenProbs,
)
from repl.hf import placement
from repl.hf.tokens import added_by_tokenizer, token_texts

# Masked copies of a text scored in one forward pass: bounds memory for long texts.
MASKED_BATCH = 32


def token_probs(tokenizer: Any, output: Any, new_ids: list[int], settings: dict[str, Any]) -> list[TokenProbs] | None:
    """Each generated token's log-probability, raw and as drawn, with the top alternatives.

    `output.logits` are the model's raw logits at each step, `output.scores`
    the same after the logits processors (repetition penalty, temperature,
    top-k, top-p): the distribution the token was drawn from. None when
    `generate` kept no scores (probs off, or beam search).
    """
    if getattr(output, "logits", None) is None or getattr(output, "scores", None) is None:
        return None
    k = settings.get("top_logprobs", 5)
    measured = []
    for token_id, raw_logits, processed_logits in zip(new_ids, output.logits, output.scores):
        raw = raw_logits[0].float().log_softmax(-1)
        processed = processed_logits[0].float().log_softmax(-1)
        measured.append((token_id, raw[token_id].item(), processed[token_id].item(), _top(raw, k), _top(processed, k)))
    # Every token shown, decoded once for the whole reply rather than once per step.
    shown = {i for token_id, _, _, top, processed_top in measured for i in (token_id, *top, *processed_top)}
    text = dict(zip(shown, token_texts(tokenizer, list(shown))))
    return [
        TokenProbs(
            id=token_id,
            piece=text[token_id],
            logprob=logprob,
            processed_logprob=processed_logprob,
            top=[Alternative(i, text[i], value) for i, value in top.items()],
            processed_top=[Alternative(i, text[i], value) for i, value in processed_top.items()],
        )
        for token_id, logprob, processed_logprob, top, processed_top in measured
    ]


def top_alternatives(tokenizer: Any, logprobs: torch.Tensor, k: int) -> list[Alternative]:
    """The k most likely tokens of a log-probability vector, most likely first; impossible ones left out."""
    top = _top(logprobs, k)
    return [Alternative(i, text, value) for (i, value), text in zip(top.items(), token_texts(tokenizer, list(top)))]


def _top(logprobs: torch.Tensor, k: int) -> dict[int, float]:
    """{id: log-probability} of the k most likely tokens, most likely first; impossible ones left out."""
    values, ids = logprobs.topk(min(k, logprobs.shape[-1]))
    return {i: value for i, value in zip(ids.tolist(), values.tolist()) if value != float("-inf")}


def entropy(logprobs: torch.Tensor) -> float:
    """Entropy in nats of the distribution a log-probability vector describes (impossible tokens add nothing)."""
    probabilities = logprobs.exp()
    return -(probabilities * logprobs.masked_fill(probabilities == 0, 0.0)).sum().item()


def score_causal(model: LoadedModel, text: str) -> Score:
    """Each token of `text` scored given the ones before it, in one forward pass.

    Special tokens the tokenizer puts in front (a BOS) are context, not
    scored; without one, the first token has nothing to be predicted from and
    gets logprob None.
    """
    encoded = model.tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    added = added_by_tokenizer(encoded, set(model.tokenizer.all_special_ids))
    context = next((i for i, was_added in enumerate(added) if not was_added), len(ids))
    _check_scored_length(model, ids, context)
    logprobs = _forward_logprobs(model, input_ids=torch.tensor([ids]))[0]
    pieces = token_texts(model.tokenizer, ids)
    tokens = [
        ScoredToken(ids[i], pieces[i], logprobs[i - 1, ids[i]].item() if i > 0 else None)
        for i in range(context, len(ids))
    ]
    return Score(tokens, method="causal", bos_prepended=context > 0)


def score_seq2seq(model: LoadedModel, text: str) -> Score:
    """`INPUT => TARGET`: each token of TARGET scored as the decoder's output for INPUT, given the ones before it."""
    source, separator, target = text.partition("=>")
    if not separator or not source.strip() or not target.strip():
        raise ModelError(f"{model.spec.name} scores an output for an input: write INPUT => TARGET")
    input_ids = model.tokenizer(source.strip(), verbose=False)["input_ids"]
    target_ids = model.tokenizer(text_target=target.strip(), verbose=False)["input_ids"]
    _check_scored_length(model, input_ids, 0)
    logprobs = _forward_logprobs(model, input_ids=torch.tensor([input_ids]), labels=torch.tensor([target_ids]))[0]
    pieces = token_texts(model.tokenizer, target_ids)
    tokens = [ScoredToken(token_id, pieces[i], logprobs[i, token_id].item()) for i, token_id in enumerate(target_ids)]
    return Score(tokens, method="seq2seq target")


def score_masked(model: LoadedModel, text: str) -> Score:
    """Pseudo-log-likelihood (Salazar et al. 2020): each token of `text` masked in turn and scored.

    The tokens the tokenizer adds ([CLS], [SEP]) stay as context. The masked
    copies go through the model MASKED_BATCH at a time; each token's
    log-probability is read at its own, masked, position.
    """
    encoded = model.tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    scored = [
        i
        for i, was_added in enumerate(added_by_tokenizer(encoded, set(model.tokenizer.all_special_ids)))
        if not was_added
    ]
    _check_scored_length(model, ids, len(ids) - len(scored))
    tokens = []
    for start in range(0, len(scored), MASKED_BATCH):
        positions = scored[start : start + MASKED_BATCH]
        rows = torch.tensor([ids] * len(positions))
        rows[range(len(positions)), positions] = model.tokenizer.mask_token_id
        logprobs = _forward_logprobs(model, input_ids=rows)[range(len(positions)), positions]
        originals = [ids[position] for position in positions]
        pieces = token_texts(model.tokenizer, originals)
        tokens += [
            ScoredToken(token_id, pieces[row], logprobs[row, token_id].item()) for row, token_id in enumerate(originals)
        ]
    return Score(tokens, method="pseudo-log-likelihood")


def _forward_logprobs(model: LoadedModel, input_ids: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the vocabulary at every position, from one forward pass."""
    device = placement.input_device(model.handle)  # the first layer's device when spread over several
    with torch.inference_mode():
        logits = model.handle(
            input_ids=input_ids.to(device),
            attention_mask=torch.ones_like(input_ids).to(device),
            **{key: value.to(device) for key, value in extra.items()},
        ).logits
    return logits.float().log_softmax(-1).cpu()


def _check_scored_length(model: LoadedModel, ids: list[int], context: int) -> None:
    if len(ids) <= context:
        raise ModelError(f"nothing to score: {model.spec.name}'s tokenizer reads no text in it")
    if model.max_input_tokens is not None and len(ids) > model.max_input_tokens:
        raise ModelError(
            f"the text has {len(ids)} tokens, more than {model.spec.name}'s {model.max_input_tokens}; shorten it"
        )
