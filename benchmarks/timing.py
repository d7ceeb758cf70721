"""Repeated measurements: warm-up, alternation of the two sides, median with min and max."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    """How much to measure: full runs on real-size checkpoints, or a quick smoke run on tiny ones.

    `process_families` are the families measured one process per run (end to
    end, load and memory) and `process_stream_modes` the streaming modes end to
    end; the quick run keeps to one of each, since every process imports torch
    and transformers again.
    """

    quick: bool
    runs: int
    warmup: int
    new_tokens: int
    process_families: tuple[str, ...] = ("mt0", "gpt2", "bert")
    process_stream_modes: tuple[str, ...] = ("stream", "no_stream")

    @classmethod
    def full(cls) -> Workload:
        return cls(quick=False, runs=5, warmup=1, new_tokens=32)

    @classmethod
    def smoke(cls) -> Workload:
        return cls(
            quick=True, runs=1, warmup=0, new_tokens=4, process_families=("gpt2",), process_stream_modes=("stream",)
        )


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": self.runs}


def alternate(sides: dict[str, Callable[[], T]], workload: Workload) -> dict[str, list[T]]:
    """Measure every side once per round, rotating which goes first; warm-up rounds are dropped.

    Each callable returns what it measured (seconds, or a record of figures).
    Interleaving the sides spreads slow drifts of the machine (heat, page
    cache, other load) over all of them instead of biasing the one measured last.
    """
    names = list(sides)
    values: dict[str, list[T]] = {name: [] for name in names}
    for round_number in range(workload.warmup + workload.runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            value = sides[name]()
            if round_number >= workload.warmup:
                values[name].append(value)
    return values


def summarise(records: list[dict[str, float]], key: str) -> Summary:
    return Summary.of([record[key] for record in records])


def timed(function: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def timed_with_cpu(function: Callable[[], object]) -> dict[str, float]:
    """Wall seconds and this process's CPU seconds (all threads) of one call.

    CPU time barely grows while other programs hold the cores, so on a shared
    machine it separates this code's cost from time spent waiting for a core.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}
