"""The arena's leaderboard, for /leaderboard and `modelrepl leaderboard`: ratings from the arena file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from repl.app.arena import chosen, standings
from repl.app.ratings import BOOTSTRAP_ROUNDS
from repl.core.results import CommandError, Prose, Result, Table
from repl.store.arena_file import arena_file, read_votes

HEADERS = ("rank", "entrant", "rating", "95% interval", "battles", "wins", "ties", "losses")


def parse_since(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since takes a date as YYYY-MM-DD, not {text!r}") from None


def leaderboard_result(since: date | None, models: Sequence[str]) -> Result:
    """The standings as a table (records in JSON), best first, with how they were counted."""
    votes = read_votes()
    records = chosen(votes.records, since, models)
    where = f"{len(records)} vote{'s' if len(records) != 1 else ''} from {arena_file()}"
    skipped = ""
    if votes.skipped:  # a line torn by a crash, or edited by hand
        skipped = f"; {votes.skipped} line{'s' if votes.skipped != 1 else ''} that are not votes skipped"
    if not votes.records:
        return Result(parts=[Prose(f"no votes yet ({where}{skipped}): /arena NAME NAME ... starts a blind comparison")])
    if not records:
        return Result(parts=[Prose(f"no votes match ({len(votes.records)} in {arena_file()}{skipped})")])
    rows, regularized = standings(records)
    shown = tuple(
        (
            row["rank"],
            row["entrant"],
            f"{row['rating']:.0f}",
            f"{row['lower'] - row['rating']:+.0f}/{row['upper'] - row['rating']:+.0f}",
            row["battles"],
            row["wins"],
            row["ties"],
            row["losses"],
        )
        for row in rows
    )
    notes = [
        f"{where}{skipped}. Bradley-Terry ratings on the Elo scale (400 points: 10 to 1 odds; the average is 1000), "
        f"intervals from {BOOTSTRAP_ROUNDS} resamplings of the votes; a tie or 'both bad' is half a win each."
    ]
    if regularized:
        notes.append(
            "An entrant has never lost (or never won) against the rest, so its exact rating would be infinite: "
            "a weak prior keeps every rating finite until more votes come."
        )
    return Result(parts=[Table(HEADERS, shown), *(Prose(note) for note in notes)], records=rows)
