"""Arena ratings: the Bradley-Terry fit on the Elo scale, against hand-computed values and choix's own fit."""

import math

import pytest

from repl.app.ratings import INITIAL, Battle, fit, leaderboard


def ratings_of(battles, **kwargs):
    return {s.entrant: s for s in leaderboard(battles, **kwargs).standings}


def test_three_wins_to_one_are_three_to_one_odds():
    # The maximum-likelihood odds are the win ratio, 3:1, so the gap is 400·log10(3) ≈ 190.85 points.
    board = ratings_of([Battle("x", "y", "a")] * 3 + [Battle("x", "y", "b")])
    assert board["x"].rating - board["y"].rating == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert (board["x"].rating + board["y"].rating) / 2 == pytest.approx(INITIAL)


def test_a_tie_is_half_a_win_for_each_side_and_both_bad_is_a_tie():
    # x: one win and two ties = 2 wins' worth; y: two ties = 1. Odds 2:1.
    for tie in ("tie", "bad"):
        board = ratings_of([Battle("x", "y", "a"), Battle("x", "y", tie), Battle("y", "x", tie)])
        assert board["x"].rating - board["y"].rating == pytest.approx(400 * math.log10(2), abs=1e-6)
        assert (board["x"].ties, board["y"].ties) == (2, 2)


def test_equal_records_give_equal_ratings():
    board = ratings_of([Battle("x", "y", "a"), Battle("y", "z", "a"), Battle("z", "x", "a")])
    assert [round(s.rating, 6) for s in board.values()] == [INITIAL] * 3


def test_sides_and_names_do_not_matter():
    battles = [
        Battle("x", "y", "a"),
        Battle("x", "y", "a"),
        Battle("y", "z", "b"),
        Battle("z", "x", "a"),
        Battle("x", "z", "tie"),
        Battle("y", "x", "a"),
    ]
    swapped = [Battle(b.b, b.a, {"a": "b", "b": "a"}.get(b.verdict, b.verdict)) for b in battles]
    renamed = [Battle(b.a.upper(), b.b.upper(), b.verdict) for b in battles]
    plain, by_sides, by_name = ratings_of(battles), ratings_of(swapped), ratings_of(renamed)
    for name, standing in plain.items():
        assert by_sides[name].rating == pytest.approx(standing.rating, abs=1e-6)
        assert by_name[name.upper()].rating == pytest.approx(standing.rating, abs=1e-6)


def test_same_as_choix_optimizer_on_chatbot_arenas_doubled_battles():
    """Chatbot Arena counts a win twice and a tie once each way; choix's scipy fit of that must agree."""
    import choix

    battles = [(0, 1, "a")] * 5 + [(0, 1, "b")] * 2 + [(1, 2, "a")] * 4 + [(2, 1, "a")] * 3
    battles += [(0, 2, "tie")] * 3 + [(2, 0, "a")] * 2 + [(0, 3, "a")] * 2 + [(3, 1, "a"), (3, 2, "bad")]
    data = []
    for a, b, verdict in battles:
        if verdict == "a":
            data += [(a, b), (a, b)]
        elif verdict == "b":
            data += [(b, a), (b, a)]
        else:
            data += [(a, b), (b, a)]
    expected = choix.opt_pairwise(4, data, alpha=0, tol=1e-10)
    ratings, regularized = fit(
        [a for a, _, _ in battles], [b for _, b, _ in battles], [{"a": 1, "b": 0}.get(v, 0.5) for *_, v in battles], 4
    )
    assert not regularized
    expected_ratings = [INITIAL + 400 / math.log(10) * (s - expected.mean()) for s in expected]
    assert ratings == pytest.approx(expected_ratings, abs=1e-3)


def test_tallies_and_intervals():
    battles = [Battle("x", "y", "a")] * 6 + [Battle("y", "x", "a")] * 3 + [Battle("x", "y", "bad")]
    board = ratings_of(battles)
    assert (board["x"].battles, board["x"].wins, board["x"].ties, board["x"].losses) == (10, 6, 1, 3)
    assert (board["y"].battles, board["y"].wins, board["y"].ties, board["y"].losses) == (10, 3, 1, 6)
    for standing in board.values():
        assert standing.lower < standing.rating < standing.upper
    assert ratings_of(battles) == board  # the bootstrap's seed is fixed: the same votes, the same table


def test_an_unbeaten_entrant_gets_a_finite_rating_and_the_board_says_why():
    result = leaderboard([Battle("x", "y", "a")] * 4)
    assert result.regularized
    assert all(math.isfinite(s.rating) for s in result.standings)
    assert [s.entrant for s in result.standings] == ["x", "y"]
    assert not leaderboard([Battle("x", "y", "a"), Battle("x", "y", "b")]).regularized


def test_bad_battles_are_refused():
    with pytest.raises(ValueError, match="unknown verdict"):
        leaderboard([Battle("x", "y", "maybe")])
    with pytest.raises(ValueError, match="itself"):
        leaderboard([Battle("x", "x", "a")])
    assert leaderboard([]).standings == []
