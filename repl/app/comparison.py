"""One line to several models: their turns, a block each and one table of numbers.

Models answer one after another, each loaded once and kept: running them in
parallel would make their timings disturb each other. Inside a comparison
nothing streams, so the replies of several models never interleave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.divergence import describe as describe_divergence
from repl.app.divergence import divergences, missing_probs
from repl.core.results import Blocks, Part, Result, Table, Turn, shown_reply, turn_record
from repl.core.units import rate, seconds

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

STATS_HEADERS = ("model", "checkpoint", "input tokens", "new tokens", "ttft", "seconds", "tok/s", "stop reason")


def compare_result(repl: Repl, names: list[str], text: str) -> Result:
    """Send `text` to each model in turn; their blocks and one stats table, or JSON records."""
    turns: list[Turn] = []
    for name in names:
        turn = repl.turn(name, text, stream=False)
        turns.append(turn)
        if turn.stats.stop_reason == "cancelled":
            break
    repl.session.last_line = turns
    not_run = names[len(turns) :]
    error = None
    if not_run:
        error = f"comparison cancelled: {', '.join(not_run)} not run"
    elif not any(turn.ok for turn in turns):
        error = "no model answered"
    parted = divergences(turns)
    records = [turn_record(turn) for turn in turns] + ([{"divergence": parted}] if parted else [])
    parts: list[Part] = [Blocks(tuple((turn.model, block_body(turn)) for turn in turns)), "", stats_table(turns)]
    parting = divergence_lines(turns, parted)
    if parting:
        parts += ["", "\n".join(parting)]
    return Result(parts=parts, records=records, error=error)


def divergence_lines(turns: list[Turn], parted: list[dict]) -> list[str]:
    """Where the generated replies part ways, or how to see it when their probabilities were not kept."""
    lines = [describe_divergence(record) for record in parted]
    unrecorded = missing_probs(turns)
    generated = {turn.output for turn in turns if turn.ok and turn.stats.new_tokens > 0}
    if unrecorded and len(generated) > 1:  # only when there is a parting to show
        lines.append(f"/set probs on for {', '.join(unrecorded)} to see where the replies part ways")
    return lines


def block_body(turn: Turn) -> str:
    """A model's block: its notices, then its reasoning (a chat model's, unless hidden) and its reply, or its error."""
    lines = [f"note: {notice}" for notice in turn.notices]
    reasoning = turn.data.get("reasoning")
    if turn.error:
        lines.append(f"error: {turn.error}")
    else:
        if isinstance(reasoning, str) and reasoning:
            lines.append(f"(thinking) {reasoning}")
        lines.append(shown_reply(turn))
        if turn.stats.stop_reason == "cancelled":
            lines.append("(cancelled)")
    return "\n".join(lines)


def stats_table(turns: list[Turn]) -> Table:
    """One row of numbers per turn: what /compare and `modelrepl compare` both show."""
    return Table(STATS_HEADERS, tuple((turn.model, turn.checkpoint, *_stats_cells(turn)) for turn in turns))


def _stats_cells(turn: Turn) -> tuple[str, ...]:
    if turn.error:
        return ("-", "-", "-", "-", "-", turn.stats.stop_reason)
    stats = turn.stats
    return (
        str(stats.input_tokens),
        str(stats.new_tokens),
        seconds(stats.ttft),
        seconds(stats.seconds),
        rate(stats.tokens_per_s),
        stats.stop_reason,
    )
