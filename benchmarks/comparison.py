"""`/compare` of the three models against the same line sent to each model in turn."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

from benchmarks.repl_side import COMPARE_PROMPT, BenchmarkError, checked_turns, make_repl, set_streaming
from benchmarks.timing import Summary, Workload, alternate, timed


def measure(checkpoints: dict[str, Path], workload: Workload, sink: IO[str]) -> dict[str, Any]:
    repl = make_repl(checkpoints, workload.new_tokens, sink)
    set_streaming(repl, False)  # a comparison never streams, so the single runs do not either
    names = list(checkpoints)
    for name in names:
        repl.load(name)

    def singles() -> float:
        total = 0.0
        for name in names:
            repl.session.active = name
            total += timed(lambda: checked_turns(repl, COMPARE_PROMPT, workload.new_tokens))
        return total

    def compare() -> float:
        started = time.perf_counter()
        turns = checked_turns(repl, f"/compare {' '.join(names)} -- {COMPARE_PROMPT}", workload.new_tokens)
        seconds = time.perf_counter() - started
        if sorted(turn.model for turn in turns) != sorted(names):
            raise BenchmarkError(f"/compare answered for {[turn.model for turn in turns]}, not {names}")
        return seconds

    runs = alternate({"singles": singles, "compare": compare}, workload)
    singles_seconds, compare_seconds = Summary.of(runs["singles"]), Summary.of(runs["compare"])
    return {
        "models": names,
        "singles_sum": singles_seconds.as_dict(),
        "compare": compare_seconds.as_dict(),
        "ratio": compare_seconds.median / singles_seconds.median,
    }
