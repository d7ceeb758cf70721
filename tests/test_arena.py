"""The blind arena: battles drawn at random, votes counted per entrant, the leaderboard's filters."""

import random
from datetime import date

from repl.app.arena import battles, chosen, draw_pair, standings, verdict_of
from repl.app.ratings import Battle
from repl.store.arena_file import vote_record


def vote(a, b, verdict, checkpoints=("c", "c"), when=None):
    sides = [{"model": name, "checkpoint": checkpoint} for name, checkpoint in zip((a, b), checkpoints)]
    return vote_record("hi", verdict, sides[0], sides[1], when=when)


def test_pairs_are_two_different_entrants_in_both_orders():
    rng = random.Random(5)
    drawn = [draw_pair(["gpt2", "mt0", "gpt2@hot"], rng) for _ in range(200)]
    assert all(a != b for a, b in drawn)
    assert ("gpt2", "mt0") in drawn and ("mt0", "gpt2") in drawn
    assert {name for pair in drawn for name in pair} == {"gpt2", "mt0", "gpt2@hot"}


def test_vote_keys_and_words():
    assert [verdict_of(word) for word in ("a", "B", "t", "tie", "n", "bad", " a ")] == [
        "a",
        "b",
        "tie",
        "tie",
        "bad",
        "bad",
        "a",
    ]
    assert verdict_of("x") is None and verdict_of("") is None


def test_settings_copies_are_entrants_and_checkpoints_split_a_name_only_when_it_had_several():
    records = [vote("gpt2", "gpt2@hot", "a"), vote("mt0", "gpt2", "b")]
    assert battles(records) == [Battle("gpt2", "gpt2@hot", "a"), Battle("mt0", "gpt2", "b")]
    records.append(vote("mt0", "gpt2", "tie", checkpoints=("c", "other")))
    assert battles(records)[2] == Battle("mt0", "gpt2 [other]", "tie")
    assert battles(records)[1] == Battle("mt0", "gpt2 [c]", "b")


def test_filters_by_day_and_by_models():
    records = [
        vote("gpt2", "mt0", "a", when=1767268800),  # 2026-01-01 12:00 UTC
        vote("gpt2", "bert", "b"),
    ]
    assert chosen(records, since=date(2026, 6, 1)) == records[1:]
    assert chosen(records, models=["gpt2", "mt0"]) == records[:1]
    assert chosen(records) == records


def test_standings_as_records():
    rows, regularized = standings([vote("x", "y", "a"), vote("x", "y", "a"), vote("y", "x", "a")])
    assert [row["entrant"] for row in rows] == ["x", "y"] and not regularized
    assert rows[0] | {"rating": 0, "lower": 0, "upper": 0} == {
        "rank": 1,
        "entrant": "x",
        "rating": 0,
        "lower": 0,
        "upper": 0,
        "battles": 3,
        "wins": 2,
        "ties": 0,
        "losses": 1,
    }
    assert rows[0]["lower"] <= rows[0]["rating"] <= rows[0]["upper"]
