"""Where two replies part ways: the first token they differ at, and how close each model's call was there.

Built from the probabilities the turns recorded (the `probs` setting), so it
costs no extra forward pass. Tokens are compared by their pieces, which is
exact for models that share a tokenizer; for others it shows where their
tokenizations first differ.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

from repl.core.records import TokenProbs
from repl.core.results import Turn


def divergences(turns: list[Turn]) -> list[dict[str, Any]]:
    """For each pair of generated replies with recorded probabilities: where they part, as a record."""
    recorded = [turn for turn in turns if _generated_with_probs(turn)]
    return [divergence(first, second) for first, second in combinations(recorded, 2)]


def missing_probs(turns: list[Turn]) -> list[str]:
    """Models whose generated reply kept no probabilities, so no divergence can be shown for them."""
    return [turn.model for turn in turns if turn.ok and turn.logprobs is None and turn.stats.new_tokens]


def divergence(first: Turn, second: Turn) -> dict[str, Any]:
    """The first position where the two replies' tokens differ, with each model's view of both tokens there."""
    a, b = first.logprobs or [], second.logprobs or []
    position = next((i for i, (x, y) in enumerate(zip(a, b)) if x.piece != y.piece), None)
    record: dict[str, Any] = {"models": [first.model, second.model], "position": position}
    if position is None:
        record["same_tokens"] = min(len(a), len(b))
        record["longer"] = None if len(a) == len(b) else (first.model if len(a) > len(b) else second.model)
        return record
    record["choices"] = [
        _choice(first.model, a[position], b[position]),
        _choice(second.model, b[position], a[position]),
    ]
    return record


def describe(record: dict[str, Any]) -> str:
    first, second = record["models"]
    if record["position"] is None:
        if record["longer"] is None:
            return f"{first} and {second} give the same {record['same_tokens']} tokens"
        same = record["same_tokens"]
        return f"{first} and {second} agree on the first {same} tokens, then only {record['longer']} goes on"
    views = "; ".join(
        f"{choice['model']} chose {choice['piece']!r} (p {choice['p']:.3f}), {_other(choice)}"
        for choice in record["choices"]
    )
    return f"{first} and {second} part at token {record['position']}: {views}"


def _choice(model: str, own: TokenProbs, other: TokenProbs) -> dict[str, Any]:
    """A model's probability for its own token and for the other model's, both from its raw distribution."""
    other_logprob = next((alt.logprob for alt in own.top if alt.piece == other.piece), None)
    return {
        "model": model,
        "piece": own.piece,
        "p": math.exp(own.logprob),
        "other_piece": other.piece,
        "other_p": None if other_logprob is None else math.exp(other_logprob),
        "other_below": min((math.exp(alt.logprob) for alt in own.top), default=None),
    }


def _other(choice: dict[str, Any]) -> str:
    if choice["other_p"] is not None:
        return f"{choice['other_piece']!r} p {choice['other_p']:.3f}"
    below = choice["other_below"]
    return f"{choice['other_piece']!r} not in its top alternatives (p < {below:.3f})"


def _generated_with_probs(turn: Turn) -> bool:
    return (
        turn.ok
        and turn.logprobs is not None
        and bool(turn.logprobs)
        and all(step.entropy is None for step in turn.logprobs)
    )
