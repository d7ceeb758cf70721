"""The blind arena: each line goes to two entrants drawn at random, shown as A and B; the vote reveals them.

Until the vote nothing on the screen may tell the two apart: no name, no
checkpoint, no figures (speed would give a model away), no notices; the
prompt and the toolbar show only the arena's state. The vote is appended
to the arena file (`repl.store.arena_file`) before the names are shown.

An entrant is a model as the session names it: a settings copy (`gpt2@hot`)
is its own entrant. A name that was voted on with several checkpoints (after
`/load`) becomes one entrant per checkpoint, labelled `name [checkpoint]`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from repl.app.comparison import run_comparison, stats_table
from repl.app.ratings import Battle, leaderboard
from repl.core.results import Blocks, CommandError, Part, Prose, Result, Turn, shown_reply
from repl.store.arena_file import append_vote, vote_record
from repl.store.files import StorageError

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

# Single keys at the vote prompt, and the words /vote takes, to the verdict the file keeps.
VOTE_WORDS = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "n": "bad", "bad": "bad"}
VOTE_HELP = "a (A is better), b (B is better), t (a tie) or n (both are bad)"


@dataclass
class Bout:
    """One line sent to two entrants: the turns of A and B, whose names the vote reveals."""

    prompt: str
    turns: tuple[Turn, Turn]


@dataclass
class Arena:
    entrants: list[str]
    rng: random.Random = field(default_factory=random.Random)
    waiting: Bout | None = None  # answered, not yet voted on
    votes: int = 0  # cast in this arena


def side(turn: Turn) -> dict[str, Any]:
    """One side of a vote as the arena file keeps it."""
    return {
        "model": turn.model,
        "checkpoint": turn.checkpoint,
        "settings": dict(turn.settings),
        "reply": turn.output,
        "stats": turn.stats.as_dict(),
    }


def draw_pair(entrants: Sequence[str], rng: random.Random) -> tuple[str, str]:
    """Two different entrants in random order: the first is shown as A."""
    first, second = rng.sample(list(entrants), 2)
    return first, second


def verdict_of(word: str) -> str | None:
    """The verdict a vote word or key stands for; None for anything else."""
    return VOTE_WORDS.get(word.strip().lower())


def battles(records: Iterable[dict[str, Any]]) -> list[Battle]:
    """Votes as rating battles between entrants."""
    records = list(records)
    checkpoints: dict[str, set[str]] = {}
    for record in records:
        for side in "ab":
            checkpoints.setdefault(record[side]["model"], set()).add(str(record[side].get("checkpoint", "")))

    def entrant(side: dict[str, Any]) -> str:
        name = side["model"]
        return f"{name} [{side.get('checkpoint', '')}]" if len(checkpoints[name]) > 1 else name

    return [Battle(entrant(r["a"]), entrant(r["b"]), r["verdict"]) for r in records if r["a"] != r["b"]]


def chosen(records: Iterable[dict[str, Any]], since: date | None = None, models: Sequence[str] = ()) -> list[dict]:
    """The votes cast on or after `since`, between two of `models` (all models when none are named)."""
    wanted = set(models)
    kept = []
    for record in records:
        if since is not None and _day(record["time"]) < since:
            continue
        if wanted and not {record["a"]["model"], record["b"]["model"]} <= wanted:
            continue
        kept.append(record)
    return kept


def _day(stamp: str) -> date:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").date()
    except ValueError:
        return date.min  # a time edited by hand: kept only without --since


def standings(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The leaderboard as records, best first, and whether the weak prior was needed."""
    board = leaderboard(battles(records))
    rows = [
        {
            "rank": number,
            "entrant": s.entrant,
            "rating": round(s.rating, 1),
            "lower": round(s.lower, 1),
            "upper": round(s.upper, 1),
            "battles": s.battles,
            "wins": s.wins,
            "ties": s.ties,
            "losses": s.losses,
        }
        for number, s in enumerate(board.standings, 1)
    ]
    return rows, board.regularized


def start(repl: Repl, names: list[str]) -> Arena:
    """An arena of the named models, every one loaded now: loading during a battle would name it."""
    if len(names) < 2:
        raise CommandError("the arena needs two or more models: /arena NAME NAME ..., or an `arena` list in the config")
    for name in names:
        repl.load(name)
    return Arena(names)


def battle(repl: Repl, arena: Arena, text: str) -> Result:
    """Send a line to two entrants drawn at random, shown as A and B; the vote comes next."""
    if arena.waiting is not None:
        raise CommandError(f"vote on the last line first: {VOTE_HELP}; or /arena off")
    names = list(draw_pair(arena.entrants, arena.rng))
    turns, shown_live = run_comparison(repl, names, text, heads=[("A", ""), ("B", "")], hidden=True)
    first, second = turns
    if first is None or second is None or not first.ok or not second.ok:
        done = [turn for turn in turns if turn is not None]
        why = "cancelled" if len(done) < 2 else "a model failed"
        return Result(parts=[Prose(f"no vote on this line ({why}): {reveal(names, done)}")], error=_errors(done))
    arena.waiting = Bout(text, (first, second))
    parts: list[Part] = []
    if not shown_live:
        parts += [Blocks((("A", _hidden_body(first)), ("B", _hidden_body(second)))), ""]
    records = [{"arena": side_name, "output": turn.output} for side_name, turn in zip("AB", turns)]
    return Result(parts=[*parts, Prose(f"vote: {VOTE_HELP}")], records=records)


def vote(repl: Repl, arena: Arena, verdict: str) -> Result:
    """Keep the vote in the arena file, then say who was who."""
    bout = arena.waiting
    if bout is None:
        raise CommandError("nothing to vote on: send a line first, and vote once both have answered")
    first, second = bout.turns
    try:
        append_vote(vote_record(bout.prompt, verdict, side(first), side(second)))
    except StorageError as exc:
        raise CommandError(f"the vote was not kept: {exc}; vote again, or /arena off") from None
    arena.waiting = None
    arena.votes += 1
    said = {"a": "A is better", "b": "B is better", "tie": "a tie", "bad": "both are bad"}[verdict]
    text = f"your vote: {said}. {reveal([first.model, second.model], [first, second])}"
    record = {"vote": verdict, "a": first.model, "b": second.model}
    return Result(parts=[Prose(text), stats_table([first, second])], records=[record])


def reveal(names: list[str], turns: list[Turn]) -> str:
    checkpoints = {turn.model: turn.checkpoint for turn in turns}
    return ", ".join(
        f"{side_name} was {name}" + (f" ({checkpoints[name]})" if name in checkpoints else "")
        for side_name, name in zip("AB", names)
    )


def _errors(turns: list[Turn]) -> str | None:
    errors = [f"{turn.model}: {turn.error}" for turn in turns if turn.error]
    return "; ".join(errors) or None


def _hidden_body(turn: Turn) -> str:
    """A side's block: its reply and nothing that would tell the model (notices, figures)."""
    reasoning = turn.data.get("reasoning")
    lines = [f"(thinking) {reasoning}"] if isinstance(reasoning, str) and reasoning else []
    return "\n".join(lines + [shown_reply(turn)])
