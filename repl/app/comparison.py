"""One line to several models: their turns, shown in live columns or as blocks, and one table of numbers.

Every model is loaded first, in the main thread (two threads loading, so
importing transformers at once, break its imports); then they answer as
`compare_run` says (`repl.app.running`): at once where they share no device,
in turn where they do. Where the output can draw columns (a terminal wide
enough) and `compare_layout` is columns, each reply streams into its own
column from its first token; elsewhere nothing streams, so replies never
interleave, and the finished replies are laid out as blocks.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from repl.app.divergence import describe as describe_divergence
from repl.app.divergence import divergences, missing_probs
from repl.app.running import devices_of, plan, run_groups
from repl.core.reasoning_settings import THINKING_CLOSES, THINKING_OPENS, hidden_mark
from repl.core.records import ModelError
from repl.core.results import Blocks, Part, Prose, Result, Table, Turn, shown_reply, turn_record
from repl.core.turn import run_turn
from repl.core.units import count, rate, seconds

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

STATS_HEADERS = ("model", "checkpoint", "input tokens", "new tokens", "ttft", "seconds", "tok/s", "stop reason")
SHARED_NOTICE = "timed while sharing {device} with {others} (compare_run parallel): its figures include their work"


def compare_result(repl: Repl, names: list[str], text: str) -> Result:
    """Send `text` to each model; live columns or blocks, one stats table, and JSON records."""
    turns, shown_live = run_comparison(repl, names, text)
    done = [turn for turn in turns if turn is not None]
    repl.session.last_line = done
    not_run = [name for name, turn in zip(names, turns) if turn is None]
    error = None
    if not_run:
        error = f"comparison cancelled: {', '.join(not_run)} not run"
    elif not any(turn.ok for turn in done):
        error = "no model answered"
    parted = divergences(done)
    records = [turn_record(turn) for turn in done] + ([{"divergence": parted}] if parted else [])
    parting = divergence_lines(done, parted)
    wrapped: list[Part] = [Prose(line) for line in parting]
    if shown_live:  # the replies and their figures are on the screen already
        return Result(parts=wrapped, records=records, error=error)
    parts: list[Part] = [Blocks(tuple((turn.model, block_body(turn)) for turn in done)), "", stats_table(done)]
    if parting:
        parts += ["", *wrapped]
    return Result(parts=parts, records=records, error=error)


def run_comparison(
    repl: Repl, names: list[str], text: str, heads: list[tuple[str, str]] | None = None, hidden: bool = False
) -> tuple[list[Turn | None], bool]:
    """Each model's turn (None for one that Ctrl-C kept from starting), and whether columns showed them live.

    `heads` are the columns' titles (default: name and checkpoint); `hidden`
    keeps figures and notes out of the columns (the arena).
    """
    session = repl.session
    names = [session.spec(name).name for name in names]
    failed = []
    for index, name in enumerate(names):
        try:
            repl.load(name)
        except ModelError:  # its turn says why, in the main thread before the others start; they still answer
            failed.append(index)
    if heads is None:
        heads = [(name, session.checkpoint_of(name)) for name in names]
    devices = [devices_of(session.loaded[name]) if name in session.loaded else set() for name in names]
    ready = [index for index in range(len(names)) if index not in failed]
    groups, shared = plan(session.compare["compare_run"], [devices[index] for index in ready])
    groups = [[ready[position] for position in group] for group in groups]
    shared = {ready[position] for position in shared}
    columns = repl.renderer.columns(heads, hidden) if session.compare["compare_layout"] == "columns" else None
    turns: list[Turn | None] = [None] * len(names)
    cancel = threading.Event()

    def work(index: int) -> None:
        name = names[index]
        shown = None
        if columns is not None:
            render = session.settings_of(name).get("render", "raw")
            shown = columns.column(index, render, session.draws_own_replies(name))
        turn = run_turn(
            session,
            name,
            text,
            shown.stream if shown else None,
            shown.aside if shown and session.settings_of(name).get("think") != "hide" else None,
            shown.notice if shown else None,
            cancel=cancel,
        )
        if index in shared:
            turn.notices.append(_shared_notice(names, devices, index))
        if shown is not None:
            shown.done(turn, shared=index in shared)
        turns[index] = turn

    if columns is None:
        with repl.renderer.working(lambda: _waiting_for(names, turns, hidden)):
            for index in failed:
                work(index)
            run_groups(groups, work, cancel)
    else:
        with columns:
            for index in failed:
                work(index)
            run_groups(groups, work, cancel, idle=columns.draw)
            for index, turn in enumerate(turns):
                if turn is None:
                    columns.not_run(index)
    _in_order(session.turns, [turn for turn in turns if turn is not None])
    if repl.transcript is not None:
        for turn in turns:
            if turn is not None:
                repl.transcript.record(turn)
    return turns, columns is not None


def _waiting_for(names: list[str], turns: list[Turn | None], hidden: bool) -> str:
    waiting = [name for name, turn in zip(names, turns) if turn is None]
    if hidden:
        return f"{len(waiting)} of {len(names)} answering"
    return f"{', '.join(waiting)} answering" if waiting else "comparing"


def _shared_notice(names: list[str], devices: list[set[str]], index: int) -> str:
    others = [i for i in range(len(names)) if i != index and devices[i] & devices[index]]
    device = ", ".join(sorted(devices[index] & set().union(*(devices[i] for i in others))))
    return SHARED_NOTICE.format(device=device, others=", ".join(names[i] for i in others))


def _in_order(history: list[Turn], turns: list[Turn]) -> None:
    """Put the comparison's turns, appended as each model finished, back in the order the models were named."""
    count = len(turns)
    if count and history[-count:] != turns and sorted(map(id, history[-count:])) == sorted(map(id, turns)):
        history[-count:] = turns


def divergence_lines(turns: list[Turn], parted: list[dict]) -> list[str]:
    """Where the generated replies part ways, or how to see it when their probabilities were not kept."""
    lines = [describe_divergence(record) for record in parted]
    unrecorded = missing_probs(turns)
    generated = {turn.output for turn in turns if turn.ok and turn.stats.new_tokens != 0}  # None: not counted
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
        hidden = turn.settings.get("think") == "hide"
        if isinstance(reasoning, str) and reasoning and not hidden:
            lines.append(f"{THINKING_OPENS}\n{reasoning}\n{THINKING_CLOSES}")
        lines.append(shown_reply(turn))
        if isinstance(reasoning, str) and reasoning and hidden:
            lines.append(hidden_mark(turn))
        if turn.stats.stop_reason == "cancelled":
            lines.append("(cancelled)")
    return "\n".join(lines)


def stats_headers(thought: bool) -> tuple[str, ...]:
    """The stats table's headers; where a model thought, its thinking tokens and the time to its answer too."""
    if not thought:
        return STATS_HEADERS
    return (*STATS_HEADERS[:4], "thinking tokens", STATS_HEADERS[4], "ttfa", *STATS_HEADERS[5:])


def stats_table(turns: list[Turn]) -> Table:
    """One row of numbers per turn: what /compare and `modelrepl compare` both show."""
    thought = any(turn.stats.reasoning_tokens for turn in turns)
    rows = tuple((turn.model, turn.checkpoint, *_stats_cells(turn, thought)) for turn in turns)
    return Table(stats_headers(thought), rows)


def _stats_cells(turn: Turn, thought: bool) -> tuple[str, ...]:
    if turn.error:
        return ("-",) * (7 if thought else 5) + (turn.stats.stop_reason,)
    stats = turn.stats
    if stats.stop_reason == "done":  # a model that generates no tokens: no new ones, first one or rate
        unmeasured = ("-",) * (4 if thought else 2)
        return (count(stats.input_tokens), *unmeasured, seconds(stats.seconds), "-", stats.stop_reason)
    return (
        count(stats.input_tokens),
        count(stats.new_tokens),
        *((str(stats.reasoning_tokens),) if thought else ()),
        seconds(stats.ttft),
        *((seconds(stats.ttfa),) if thought else ()),
        seconds(stats.seconds),
        rate(stats.tokens_per_s),
        stats.stop_reason,
    )
