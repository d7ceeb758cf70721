"""The transcript: every finished model turn, appended as one JSON line.

Each line is written and fsync'd as soon as its turn finishes, so a crash loses
at most the turn being generated. A transcript that cannot be written (full
disk, read-only directory) costs a one-line notice, never the REPL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from repl.core.results import Turn, turn_record
from repl.store.files import StorageError, append_line


class Transcript:
    """Appends turns to a JSON Lines file; `notify` gets one line when writing starts or stops failing."""

    def __init__(self, path: str | os.PathLike, notify: Callable[[str], None]):
        self.path = Path(path)
        self.notify = notify
        # Lines from several runs share one file; this tells them apart.
        self.run = uuid.uuid4().hex[:12]
        self.failing = False

    def record(self, turn: Turn) -> bool:
        """Append one turn; returns whether it reached the disk."""
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(turn.finished_at)), "run": self.run}
        line.update(turn_record(turn))
        try:
            append_line(self.path, json.dumps(line, ensure_ascii=False, allow_nan=False, default=str))
        except StorageError as exc:
            if not self.failing:
                self.notify(f"transcript: {exc}; turns are not being logged until it can be written")
            self.failing = True
            return False
        if self.failing:
            self.notify(f"transcript: writing to {self.path} again")
        self.failing = False
        return True
