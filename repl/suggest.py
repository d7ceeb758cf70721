"""'Did you mean …?' for misspelt commands, models and settings."""

import difflib
from typing import Iterable


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
