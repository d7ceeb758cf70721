"""`modelrepl compare`: every prompt of a file on every model, as a table, JSON lines or CSV."""

from __future__ import annotations

import contextlib
import csv
import json
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from repl.api import ModelError
from repl.exit_status import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from repl.plugins import PluginError
from repl.render import rate, seconds
from repl.results import Stats, Turn
from repl.textlayout import table
from repl.turn import run_turn

if TYPE_CHECKING:
    import argparse

    from repl.session import Session

TIMINGS = ("seconds", "ttft", "tokens_per_s")
ROW_FIELDS = (
    "prompt_index",
    "prompt",
    "model",
    "checkpoint",
    "output",
    "error",
    "input_tokens",
    "new_tokens",
    "stop_reason",
    "runs",
) + tuple(f"{name}{suffix}" for name in TIMINGS for suffix in ("", "_min", "_max"))


def compare_cli(session: Session, args: argparse.Namespace) -> int:
    """Every prompt on every model: a table on stdout, rows to --jsonl/--csv; the exit status."""
    err = sys.stderr
    if args.repeat < 1:
        err.write(f"error: --repeat takes a whole number of at least 1, not {args.repeat}\n")
        return EXIT_USAGE
    names = list(dict.fromkeys(session.spec(name).name for name, _ in args.model))
    if not names:
        err.write("error: name the models to compare with -m NAME[=CHECKPOINT], once per model\n")
        return EXIT_USAGE
    try:
        prompts = read_prompts(args.prompts)
    except OSError as exc:
        err.write(f"error: cannot read prompts from {args.prompts}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    if not prompts:
        err.write("error: no prompts: give a file with one prompt per line, or pipe them on stdin\n")
        return EXIT_USAGE
    with contextlib.ExitStack() as files:
        try:
            writers = open_writers(files, args.jsonl, args.csv, ROW_FIELDS)
        except OSError as exc:
            err.write(f"error: cannot write {exc.filename}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        load_failures = load_models(session, names, err)
        records = []
        for index, prompt in enumerate(prompts, start=1):
            for name in names:
                runs = load_failures.get(name) or timed_runs(session, name, prompt, args.repeat)
                record = row_record(index, prompt, runs)
                for write in writers:
                    write(record)
                records.append(record)
    for problem in session.host.take_problems():
        err.write(f"note: {problem}\n")
    print(rows_table(records))
    return EXIT_FAILED if any(record["error"] for record in records) else EXIT_OK


def read_prompts(path: str | None) -> list[str]:
    """Non-blank lines of the file, or of stdin; `\"\"\"` blocks count as one prompt."""
    from repl.lines import batch_lines

    if path is None or path == "-":
        if sys.stdin.isatty():
            return []
        stream = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
        return [line for line in batch_lines(stream) if line.strip()]
    with open(path, encoding="utf-8", errors="replace") as stream:
        return [line for line in batch_lines(stream) if line.strip()]


def load_models(session: Session, names: list[str], err: IO[str]) -> dict[str, list[Turn]]:
    """Load each model once; one that fails gets a failed turn to report for every prompt."""
    failures: dict[str, list[Turn]] = {}
    for name in names:
        if name not in session.loaded:
            err.write(f"note: loading {name} from {session.checkpoint_of(name)} ...\n")
        try:
            session.model(name)
        except (ModelError, PluginError) as exc:
            failed = Turn(model=name, checkpoint=session.checkpoint_of(name), input="", error=str(exc))
            failed.stats = Stats(stop_reason="error")
            failures[name] = [failed]
            err.write(f"error: {name}: {exc}\n")
    return failures


def timed_runs(session: Session, name: str, prompt: str, repeat: int) -> list[Turn]:
    """`repeat` runs without streaming; more than one run is preceded by an untimed warm-up."""
    if repeat > 1:
        run_turn(session, name, prompt)
    return [run_turn(session, name, prompt) for _ in range(repeat)]


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
        "stop_reason": last.stats.stop_reason,
        "runs": len(runs),
    }
    answered = [run.stats for run in runs if run.ok]
    for name in TIMINGS:
        median, low, high = summarize(getattr(stats, name) for stats in answered)
        record.update({name: median, f"{name}_min": low, f"{name}_max": high})
    return record


def rows_table(records: list[dict[str, Any]]) -> str:
    headers = (
        "prompt",
        "model",
        "checkpoint",
        "input tokens",
        "new tokens",
        "ttft",
        "seconds",
        "tok/s",
        "stop reason",
        "output",
    )
    rows = []
    for record in records:
        failed = record["error"] is not None
        rows.append(
            (
                _clip(record["prompt"], 24),
                record["model"],
                record["checkpoint"],
                "-" if failed else record["input_tokens"],
                "-" if failed else record["new_tokens"],
                _timing(record, "ttft", seconds),
                _timing(record, "seconds", seconds),
                _timing(record, "tokens_per_s", rate),
                record["stop_reason"],
                _clip("error: " + record["error"] if failed else record["output"], 40),
            )
        )
    return table(headers, rows)


def _timing(record: dict[str, Any], name: str, show: Callable[[float | None], str]) -> str:
    median = record[name]
    if median is None or record["runs"] == 1:
        return show(median)
    return f"{show(median)} ({show(record[f'{name}_min'])}–{show(record[f'{name}_max'])})"


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def open_writers(
    files: contextlib.ExitStack, jsonl: str | None, csv_path: str | None, csv_fields: Sequence[str]
) -> list[Callable[[dict[str, Any]], None]]:
    """A writer of rows for each output asked for, each flushed per row; the files close with `files`."""
    writers = []
    if jsonl:
        writers.append(_jsonl_writer(files.enter_context(_open_output(jsonl))))
    if csv_path:
        writers.append(_csv_writer(files.enter_context(_open_output(csv_path)), csv_fields))
    return writers


def _open_output(path: str) -> IO[str]:
    return open(path, "w", encoding="utf-8", newline="")


def _jsonl_writer(stream: IO[str]) -> Callable[[dict[str, Any]], None]:
    def write(record: dict[str, Any]) -> None:
        stream.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        stream.flush()

    return write


def _csv_writer(stream: IO[str], fields: Sequence[str]) -> Callable[[dict[str, Any]], None]:
    writer = csv.DictWriter(stream, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()

    def write(record: dict[str, Any]) -> None:
        writer.writerow(record)
        stream.flush()

    return write
