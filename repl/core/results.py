"""What evaluating a line produces, and the one way a turn is written down.

Commands, model turns, rendering, transcripts and session files all share
these records, so this module depends on nothing else in modelrepl.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

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
    input_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    ttft: float | None = None
    tokens_per_s: float | None = None
    stop_reason: str = "eos"

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
    streamed: bool = False
    notices_shown: int = 0  # the first notices, printed ahead of a streamed reply
    finished_at: float = field(default_factory=time.time)
    logprobs: list[TokenProbs] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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


@dataclass
class Result:
    """What evaluating one line produced; commands and model turns render the same way."""

    text: str = ""
    turns: list[Turn] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    quit: bool = False
    # The text only confirms what a command did (`gpt2: max_new_tokens = 5`): batch mode writes
    # it to stderr, so that stdout holds only what was asked for.
    confirmation: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and all(t.ok for t in self.turns)
