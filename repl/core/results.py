"""What evaluating a line produces, and the one way a turn is written down.

Commands, model turns, rendering, transcripts and session files all share
these records, so this module depends on nothing else in modelrepl.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from repl.core.layout import lay_out

if TYPE_CHECKING:
    from repl.core.records import TokenProbs

# The fields modelrepl writes for every turn, and those the transcript and `/history` add:
# a plugin's `Reply.data` may not use these names.
CORE_FIELDS = (
    "model",
    "checkpoint",
    "input",
    "output",
    "error",
    "stats",
    "notices",
    "settings",
    "finished_at",
)
# `logprobs` is written only for turns that recorded probabilities (the `probs` setting, a masked LM).
RESERVED_FIELDS = CORE_FIELDS + ("logprobs", "data", "time", "run", "turn")


class CommandError(Exception):
    """Bad use of a command: shown as one line."""


@dataclass
class Stats:
    # None where the count is not known: a server that sent no counts, for a reply cut short.
    input_tokens: int | None = 0
    new_tokens: int | None = 0
    seconds: float = 0.0
    ttft: float | None = None
    tokens_per_s: float | None = None
    stop_reason: str = "eos"
    # Of the new tokens, those a reasoning model spent before its answer; ttfa: the time to the first
    # token of the answer (ttft for a model that answers at once; None when no answer came).
    reasoning_tokens: int = 0
    ttfa: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Turn:
    """One line sent to one model, and what came of it."""

    model: str
    checkpoint: str
    input: str
    output: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    data: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    raw_ids: list[int] = field(default_factory=list)
    raw_output: str = ""
    display: str | None = None
    # Whether the reply's text went out as it was generated (the `stream` setting, and text to stream).
    streamed: bool = False
    finished_at: float = field(default_factory=time.time)
    logprobs: list[TokenProbs] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


EMPTY_REPLY = "(empty reply)"


def shown_reply(turn: Turn) -> str:
    """A reply as people read it, in a turn and in a comparison alike: the plugin's display, else its text."""
    return turn.display or turn.output or EMPTY_REPLY


def turn_record(turn: Turn) -> dict[str, Any]:
    """One turn as `--json`, the transcript and session files write it: core fields, then the plugin's data."""
    record: dict[str, Any] = {
        "model": turn.model,
        "checkpoint": turn.checkpoint,
        "input": turn.input,
        "output": turn.output,
        "error": turn.error,
        "stats": turn.stats.as_dict(),
        "notices": list(turn.notices),
        "settings": dict(turn.settings),
        "finished_at": turn.finished_at,
    }
    if turn.logprobs is not None:
        record["logprobs"] = [logprob_record(step) for step in turn.logprobs]
    record.update(turn.data)
    return record


def logprob_record(step: TokenProbs) -> dict[str, Any]:
    """One token's probabilities as `--json` writes them; `entropy` only where it was measured."""
    record = asdict(step)
    if step.entropy is None:
        del record["entropy"]
    return record


def plugin_data(record: dict[str, Any]) -> dict[str, Any]:
    """The plugin's data in a written turn: every field that is not a core one."""
    return {key: value for key, value in record.items() if key not in RESERVED_FIELDS}


@dataclass(frozen=True)
class Table:
    """Rows under headers, as data: the renderer fits them to the width it has (`repl.core.layout.table`).

    ``row_roles`` names, per row, how sure a row is ("sure", "likely", "unsure",
    "unlikely"): a terminal with colour shades the row, and then shows ``legend``.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    indent: int = 0
    row_roles: tuple[str, ...] = ()
    legend: str = ""


@dataclass(frozen=True)
class Prose:
    """Running text, wrapped at spaces to the width (to DEFAULT_WIDTH off a terminal); later lines indented."""

    text: str
    indent: int = 0


@dataclass(frozen=True)
class Definitions:
    """Terms and what they say, in two columns (/help's commands); a term too long for its column gets a line."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Blocks:
    """Labelled blocks: side by side where each fits, else one under another (/compare's replies)."""

    blocks: tuple[tuple[str, str], ...]


# What a command's answer is made of, in order; a plain string is lines kept as they are.
Part = str | Table | Prose | Definitions | Blocks


@dataclass
class Result:
    """What evaluating one line produced; commands and model turns render the same way.

    A command returns data: ``parts`` for people (the renderer lays them out at
    its width) and ``records`` for `--json`; the renderer alone chooses which.
    ``text`` is the parts laid out with no width (a file, a test), or plain
    text given as such.
    """

    text: str = ""
    turns: list[Turn] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    error: str | None = None
    quit: bool = False
    # The text only confirms what a command did (`gpt2: max_new_tokens = 5`): batch mode writes
    # it to stderr, so that stdout holds only what was asked for.
    confirmation: bool = False

    def __post_init__(self) -> None:
        if self.parts and not self.text:
            self.text = lay_out(self.parts, None)

    @property
    def ok(self) -> bool:
        return self.error is None and all(t.ok for t in self.turns)
