"""`/probs`: how sure the model was of each token of its last reply, and what it almost said instead.

The numbers are those the plugin recorded while generating (the `probs`
setting); a masked LM records each mask's whole candidate distribution.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from repl.app.commands.arguments import split_arguments
from repl.app.commands.registry import command
from repl.app.commands.tokens import shown_text
from repl.core.results import CommandError, Part, Result, Table, Turn, logprob_record
from repl.core.text import quoted
from repl.core.units import counted

if TYPE_CHECKING:
    from repl.app.context import CommandContext
    from repl.core.records import Alternative, TokenProbs

PROBS_USAGE = "/probs [NAME]"
DRAWN_LEGEND = (
    "p: probability in the distribution the token was drawn from (after repetition penalty, temperature, "
    "top-k and top-p); raw p: the model's own softmax"
)
# How sure a token was, by its p as drawn: the renderer shades rows by these roles where colour is on.
SHADES = ((0.8, "sure"), (0.5, "likely"), (0.2, "unsure"), (0.0, "unlikely"))
SHADE_LEGEND = "colour: green p >= 0.8, cyan >= 0.5, yellow >= 0.2, red below"


@command("probs", usage="[NAME]", help="the last reply token by token: probabilities and top alternatives")
def probs_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, PROBS_USAGE, 0, 1)
    name = context.spec(words[0]).name if words else None
    replies = [turn for turn in context.session.turns if turn.ok and (name is None or turn.model == name)]
    if not replies:
        raise CommandError(f"no reply yet{f' from {name}' if name else ''}: send a line first")
    turn = replies[-1]
    if turn.logprobs is None:
        raise CommandError(no_probs_message(context, turn))
    record = {"model": turn.model, "checkpoint": turn.checkpoint, "input": turn.input}
    record["logprobs"] = [logprob_record(step) for step in turn.logprobs]
    if any(step.entropy is not None for step in turn.logprobs):
        return Result(parts=describe_masks(turn), records=[record])
    return Result(parts=describe_reply(turn), records=[record])


def no_probs_message(context: CommandContext, turn: Turn) -> str:
    takes_probs = context.spec(turn.model).setting("probs") is not None
    if not takes_probs:
        return f"{turn.model} records no probabilities"
    if turn.settings.get("num_beams", 1) > 1:
        return f"{turn.model}'s last reply came from beam search, which keeps no per-token probabilities"
    return f"no probabilities were kept for {turn.model}'s last reply: /set probs on, then send the line again"


def shade(probability: float) -> str:
    return next(role for floor, role in SHADES if probability >= floor)


def describe_reply(turn: Turn) -> list[Part]:
    """One row per generated token: p as drawn, raw p, the raw top alternatives (and the drawn ones if they differ)."""
    steps = turn.logprobs or []
    reshaped = any(not _same(step.logprob, step.processed_logprob) for step in steps)
    headers = ["#", "token", "p", "raw p", "raw top"] + (["drawn-from top"] if reshaped else [])
    rows = []
    for position, step in enumerate(steps):
        piece = shown_text(step.piece)
        row = [position, piece, _p(drawn(step)), _p(step.logprob), _alternatives(step.top)]
        if reshaped:
            row.append(_alternatives(step.processed_top))
        rows.append(row)
    roles = tuple(shade(math.exp(drawn(step))) for step in steps)
    head = f"{turn.model} ({turn.checkpoint}): {counted(len(steps), 'token')} of the reply to {quoted(turn.input)}"
    return [head, DRAWN_LEGEND, Table(tuple(headers), tuple(map(tuple, rows)), row_roles=roles, legend=SHADE_LEGEND)]


def describe_masks(turn: Turn) -> list[Part]:
    """Each mask's candidates with their probabilities, and the entropy of its whole distribution."""
    steps = turn.logprobs or []
    parts: list[Part] = [f"{turn.model} ({turn.checkpoint}): {counted(len(steps), 'mask')} in {quoted(turn.input)}"]
    for number, step in enumerate(steps, start=1):
        parts.append(f"[MASK] {number}: entropy {step.entropy:.3f} nats over the vocabulary (special tokens excluded)")
        rows = tuple((shown_text(a.piece), a.id, _p(a.logprob), f"{a.logprob:.3f}") for a in step.top)
        parts.append(Table(("candidate", "id", "p", "logprob"), rows, indent=2))
    return parts


def drawn(step: TokenProbs) -> float:
    return step.logprob if step.processed_logprob is None else step.processed_logprob


def _same(a: float, b: float | None) -> bool:
    return b is None or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _p(logprob: float) -> str:
    """Three decimals, or one significant digit where that would show 0.000 (6e-05), as bert's reply shows it."""
    probability = math.exp(logprob)
    return f"{probability:.3f}" if probability >= 0.0005 else f"{probability:.0e}"


def _alternatives(top: list[Alternative]) -> str:
    return "  ".join(f"{shown_text(a.piece)} {_p(a.logprob)}" for a in top)
