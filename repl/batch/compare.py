"""`modelrepl compare`: every prompt of a file on every model, as a table, JSON lines or CSV."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from repl.app.comparison import run_comparison, stats_headers
from repl.batch.runner import run_batch
from repl.core.exit_status import EXIT_USAGE
from repl.core.results import Table, Turn
from repl.core.units import count, rate, seconds

if TYPE_CHECKING:
    import argparse

    from repl.app.evaluator import Repl

TIMINGS = ("seconds", "ttft", "ttfa", "tokens_per_s")
ROW_FIELDS = (
    "prompt_index",
    "prompt",
    "model",
    "checkpoint",
    "output",
    "error",
    "input_tokens",
    "new_tokens",
    "reasoning_tokens",
    "stop_reason",
    "runs",
) + tuple(f"{name}{suffix}" for name in TIMINGS for suffix in ("", "_min", "_max"))


def compare_cli(repl: Repl, args: argparse.Namespace) -> int:
    """Every prompt on every model: a table on stdout, rows to --jsonl/--csv; the exit status."""
    if args.repeat < 1:
        sys.stderr.write(f"error: --repeat takes a whole number of at least 1, not {args.repeat}\n")
        return EXIT_USAGE

    names = list(dict.fromkeys(repl.session.spec(name).name for name, _ in args.model))
    shown: dict[tuple[int, str], Turn] = {}

    def make_row(index: int, prompt: str, name: str, failed: list[Turn] | None) -> dict[str, Any]:
        if failed:
            return row_record(index, prompt, failed)
        if args.layout == "columns" and name == names[0]:
            shown.update(((index, turn.model), turn) for turn in show_in_columns(repl, prompt))
        streamed = shown.pop((index, name), None)
        if streamed is not None and args.repeat == 1:
            return row_record(index, prompt, [streamed])
        return row_record(index, prompt, timed_runs(repl, name, prompt, args.repeat))

    return run_batch(
        repl,
        args,
        verb="compare",
        noun="prompt",
        source=args.prompts,
        csv_fields=ROW_FIELDS,
        make_row=make_row,
        table=rows_table,
    )


def show_in_columns(repl: Repl, prompt: str) -> list[Turn]:
    """One prompt on every loaded model, streamed side by side (one model after another, for honest timings).

    Only where the output draws columns (a terminal wide enough); elsewhere no turn is run here.
    """
    names = [name for name in repl.session.loaded]
    if len(names) < 2 or repl.renderer.columns([(name, "") for name in names]) is None:
        return []
    repl.session.compare.update(compare_run="sequential", compare_layout="columns")
    repl.renderer.notice(prompt)
    turns, _ = run_comparison(repl, names, prompt)
    if any(turn is None for turn in turns):
        raise KeyboardInterrupt  # Ctrl-C stopped the comparison: the batch stops as it does between rows
    return [turn for turn in turns if turn is not None]


def timed_runs(repl: Repl, name: str, prompt: str, repeat: int) -> list[Turn]:
    """`repeat` runs without streaming; more than one run is preceded by an untimed warm-up."""
    if repeat > 1:
        repl.turn(name, prompt, stream=False)
    return [repl.turn(name, prompt, stream=False) for _ in range(repeat)]


def summarize(values: Iterable[float | None]) -> tuple[float | None, float | None, float | None]:
    """(median, min, max) of the values that exist."""
    present = [value for value in values if value is not None]
    if not present:
        return None, None, None
    return statistics.median(present), min(present), max(present)


def row_record(index: int, prompt: str, runs: list[Turn]) -> dict[str, Any]:
    """One row per prompt and model: the last run's output and counts, timings over all runs."""
    last = runs[-1]
    failed = next((run for run in runs if run.error), None)
    record: dict[str, Any] = {
        "prompt_index": index,
        "prompt": prompt,
        "model": last.model,
        "checkpoint": last.checkpoint,
        "output": last.output,
        "error": failed.error if failed else None,
        "input_tokens": last.stats.input_tokens,
        "new_tokens": last.stats.new_tokens,
        "reasoning_tokens": last.stats.reasoning_tokens,
        "stop_reason": last.stats.stop_reason,
        "runs": len(runs),
    }
    answered = [run.stats for run in runs if run.ok]
    for name in TIMINGS:
        median, low, high = summarize(getattr(stats, name) for stats in answered)
        record.update({name: median, f"{name}_min": low, f"{name}_max": high})
    return record


def rows_table(records: list[dict[str, Any]]) -> Table:
    """/compare's stats table with the prompt before and the output after; timings over --repeat runs."""
    thought = any(record["reasoning_tokens"] for record in records)
    headers = ("prompt", *stats_headers(thought), "output")
    rows = []
    for record in records:
        failed = record["error"] is not None
        rows.append(
            (
                _clip(record["prompt"], 24),
                record["model"],
                record["checkpoint"],
                "-" if failed else count(record["input_tokens"]),
                "-" if failed else count(record["new_tokens"]),
                *(("-" if failed else record["reasoning_tokens"],) if thought else ()),
                _timing(record, "ttft", seconds),
                *((_timing(record, "ttfa", seconds),) if thought else ()),
                _timing(record, "seconds", seconds),
                _timing(record, "tokens_per_s", rate),
                record["stop_reason"],
                _clip("error: " + record["error"] if failed else record["output"], 40),
            )
        )
    return Table(headers, tuple(rows))


def _timing(record: dict[str, Any], name: str, show: Callable[[float | None], str]) -> str:
    median = record[name]
    if median is None or record["runs"] == 1:
        return show(median)
    return f"{show(median)} ({show(record[f'{name}_min'])}–{show(record[f'{name}_max'])})"


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
