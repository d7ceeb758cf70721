"""The blind arena's bookkeeping: drawing battles, turning votes into battles, the leaderboard's records.

An entrant is a model as the session names it: a settings copy (`gpt2@hot`)
is its own entrant. A name that was voted on with several checkpoints (after
`/load`) becomes one entrant per checkpoint, labelled `name [checkpoint]`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from repl.app.ratings import Battle, leaderboard

# Single keys at the vote prompt, and the words /vote takes, to the verdict the file keeps.
VOTE_WORDS = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "n": "bad", "bad": "bad"}
VOTE_HELP = "a (A is better), b (B is better), t (a tie) or n (both are bad)"


@dataclass
class Bout:
    """One line sent to two entrants: which model is A and which is B, until the vote reveals them."""

    prompt: str
    sides: tuple[str, str]  # the model names behind A and B
    turns: list[Any] = field(default_factory=list)  # the two turns, A's first, once they have answered


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
