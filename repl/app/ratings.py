"""Arena ratings: a Bradley-Terry fit on the Elo scale, as Chatbot Arena reports them.

Each battle is two entrants and a verdict: "a" or "b" won, a "tie", or
"bad" (both bad, which Chatbot Arena also counts as a tie). A tie counts as
half a win for each side. The fit is choix's maximum-likelihood estimate
from the matrix of wins; its log-strengths become ratings with
``INITIAL + SCALE * log10(e) * strength``, so that a rating 400 points above
another means ten to one odds, and the ratings average INITIAL. The 95%
interval of each rating comes from refitting on battles drawn again with
replacement (a bootstrap), with a fixed seed so the same file always gives
the same table.

An entrant that never lost (or never won) has no finite maximum-likelihood
rating; then, and only then, a weak prior keeps every rating finite, and
the standings say so (`regularized`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SCALE = 400
BASE = 10
INITIAL = 1000
BOOTSTRAP_ROUNDS = 200
SEED = 0
# choix's rate added to every pair when the plain estimate does not exist (see the module's docstring).
REGULARIZATION = 0.1
VERDICTS = ("a", "b", "tie", "bad")
# What side a scores in each verdict.
SCORES = {"a": 1.0, "b": 0.0, "tie": 0.5, "bad": 0.5}


@dataclass(frozen=True)
class Battle:
    a: str
    b: str
    verdict: str  # one of VERDICTS


@dataclass(frozen=True)
class Standing:
    entrant: str
    rating: float
    lower: float  # the 95% bootstrap interval
    upper: float
    battles: int
    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class Leaderboard:
    standings: list[Standing]  # best first
    battles: int
    regularized: bool  # the plain estimate did not exist, so the weak prior was used


def leaderboard(battles: Sequence[Battle], rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> Leaderboard:
    """Ratings with intervals and tallies for every entrant that fought at least one battle."""
    for battle in battles:
        if battle.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {battle.verdict!r}: expected one of {', '.join(VERDICTS)}")
        if battle.a == battle.b:
            raise ValueError(f"{battle.a} cannot battle itself")
    entrants = sorted({name for battle in battles for name in (battle.a, battle.b)})
    if not entrants:
        return Leaderboard([], 0, False)
    index = {name: i for i, name in enumerate(entrants)}
    a = [index[battle.a] for battle in battles]
    b = [index[battle.b] for battle in battles]
    score = [SCORES[battle.verdict] for battle in battles]
    ratings, regularized = fit(a, b, score, len(entrants))
    lower, upper = _bootstrap(a, b, score, len(entrants), rounds, seed)
    tallies = _tallies(battles)
    standings = [Standing(name, ratings[i], lower[i], upper[i], *tallies[name]) for name, i in index.items()]
    standings.sort(key=lambda s: (-s.rating, s.entrant))
    return Leaderboard(standings, len(battles), regularized)


def fit(a: Sequence[int], b: Sequence[int], score: Sequence[float], count: int) -> tuple[list[float], bool]:
    """Elo-scale ratings of `count` entrants from battles a[i] against b[i], where a scored score[i].

    Also says whether the weak prior was needed.
    """
    import choix
    import numpy as np

    scores = np.asarray(score, dtype=float)
    wins = np.zeros((count, count))  # wins[i, j]: how often i beat j, a tie being half a win each
    np.add.at(wins, (np.asarray(a, dtype=int), np.asarray(b, dtype=int)), scores)
    np.add.at(wins, (np.asarray(b, dtype=int), np.asarray(a, dtype=int)), 1.0 - scores)
    regularized = not _strongly_connected(wins)
    strengths = choix.ilsr_pairwise_dense(wins, alpha=REGULARIZATION if regularized else 0.0)
    per_strength = SCALE / math.log(BASE)
    return [INITIAL + per_strength * float(s) for s in strengths], regularized


def _strongly_connected(wins) -> bool:
    """Whether every entrant can be reached from every other through wins: the plain estimate's condition."""
    from scipy.sparse.csgraph import connected_components

    components, _ = connected_components(wins > 0, directed=True, connection="strong")
    return components == 1


def _bootstrap(
    a: Sequence[int], b: Sequence[int], score: Sequence[float], count: int, rounds: int, seed: int
) -> tuple[list[float], list[float]]:
    """The 2.5th and 97.5th percentiles of each rating over refits on resampled battles."""
    import numpy as np

    if rounds < 1:
        return [math.nan] * count, [math.nan] * count
    a_, b_, score_ = np.asarray(a), np.asarray(b), np.asarray(score, dtype=float)
    generator = np.random.default_rng(seed)
    samples = []
    for _ in range(rounds):
        drawn = generator.integers(0, len(a_), len(a_))
        samples.append(fit(a_[drawn], b_[drawn], score_[drawn], count)[0])
    lower, upper = np.percentile(np.array(samples), [2.5, 97.5], axis=0)
    return [float(x) for x in lower], [float(x) for x in upper]


def _tallies(battles: Sequence[Battle]) -> dict[str, tuple[int, int, int, int]]:
    """Battles, wins, ties (both-bad included) and losses per entrant."""
    counts: dict[str, list[int]] = {}
    for battle in battles:
        for side, name in (("a", battle.a), ("b", battle.b)):
            tally = counts.setdefault(name, [0, 0, 0, 0])
            tally[0] += 1
            if battle.verdict in ("tie", "bad"):
                tally[2] += 1
            elif battle.verdict == side:
                tally[1] += 1
            else:
                tally[3] += 1
    return {name: (t[0], t[1], t[2], t[3]) for name, t in counts.items()}
