"""The arena file: every blind vote, appended as one JSON line.

Each line is written and fsync'd before the vote is confirmed (`append_line`),
so a crash or a kill loses at most the vote being written, never an earlier
one. A process killed mid-line leaves a torn fragment: reading skips it (and
any other line that is not a vote) and says how many it skipped, and the next
append starts on a line of its own.

A line::

    {"time": "2026-11-02T14:03:51+0100", "prompt": "...", "verdict": "a",
     "a": {"model": "gpt2", "checkpoint": "...", "settings": {...}, "reply": "...", "stats": {...}},
     "b": {...}}

`verdict` is "a" or "b" (that side won), "tie", or "bad" (both bad).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repl.store.files import append_line
from repl.store.paths import data_dir

FILE_NAME = "arena.jsonl"
VERDICTS = ("a", "b", "tie", "bad")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def arena_file() -> Path:
    return data_dir() / FILE_NAME


@dataclass
class Votes:
    records: list[dict[str, Any]]
    skipped: int  # lines that were not votes: a torn last line, or one edited by hand


def vote_record(prompt: str, verdict: str, a: dict[str, Any], b: dict[str, Any], when: float | None = None) -> dict:
    """One vote as the file holds it; `a` and `b` are the two sides (model, checkpoint, settings, reply, stats)."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
    stamp = time.strftime(TIME_FORMAT, time.localtime(time.time() if when is None else when))
    return {"time": stamp, "prompt": prompt, "verdict": verdict, "a": dict(a), "b": dict(b)}


def append_vote(record: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Append one vote durably; raises StorageError (with a message that says why) if it cannot."""
    append_line(path or arena_file(), json.dumps(record, ensure_ascii=False, allow_nan=False, default=str))


def read_votes(path: str | os.PathLike | None = None) -> Votes:
    """Every vote in the file, oldest first; a missing file holds none."""
    try:
        data = Path(path or arena_file()).read_bytes()
    except FileNotFoundError:
        return Votes([], 0)
    records, skipped = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            skipped += 1
            continue
        if _is_vote(record):
            records.append(record)
        else:
            skipped += 1
    return Votes(records, skipped)


def _is_vote(record: object) -> bool:
    return (
        isinstance(record, dict)
        and record.get("verdict") in VERDICTS
        and isinstance(record.get("time"), str)
        and all(isinstance(record.get(side), dict) and isinstance(record[side].get("model"), str) for side in "ab")
    )
