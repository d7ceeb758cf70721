"""What `modelrepl compare` and `modelrepl score` share: reading lines, loading models once, writing rows.

Each command brings its own row (what one line on one model gives) and its
own table; `run_batch` checks the arguments, loads every model before the
first line, writes each row to --jsonl/--csv as soon as it exists (flushed,
so an interrupted run keeps what it finished) and prints the table last.
Models load and answer through the REPL's evaluator (`repl.app.evaluator.Repl`),
so a batch turn is loaded, run and transcribed as a typed line's is.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from repl.core.exit_status import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from repl.core.plugin_host import PluginError
from repl.core.records import ModelError
from repl.core.results import Result, Stats, Table, Turn

if TYPE_CHECKING:
    import argparse

    from repl.app.evaluator import Repl

# (line number, the line, model name, the failed turn if the model did not load) -> the row written out
MakeRow = Callable[[int, str, str, "list[Turn] | None"], dict[str, Any]]


def run_batch(
    repl: Repl,
    args: argparse.Namespace,
    *,
    verb: str,
    noun: str,
    source: str | None,
    csv_fields: Sequence[str],
    make_row: MakeRow,
    table: Callable[[list[dict[str, Any]]], Table],
) -> int:
    """Every line of `source` on every model named with -m: rows out as they come, then the table; the exit status."""
    err, session = sys.stderr, repl.session
    names = list(dict.fromkeys(session.spec(name).name for name, _ in args.model))
    if not names:
        err.write(f"error: name the models to {verb} with -m NAME[=CHECKPOINT], once per model\n")
        return EXIT_USAGE
    try:
        lines = read_lines(source)
    except OSError as exc:
        err.write(f"error: cannot read {noun}s from {source}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    if not lines:
        err.write(f"error: no {noun}s: give a file with one {noun} per line, or pipe them on stdin\n")
        return EXIT_USAGE
    with contextlib.ExitStack() as files:
        try:
            writers = open_writers(files, args.jsonl, args.csv, csv_fields)
        except OSError as exc:
            err.write(f"error: cannot write {exc.filename}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        load_failures = load_models(repl, names, err)
        rows = []
        for index, line in enumerate(lines, start=1):
            for name in names:
                row = make_row(index, line, name, load_failures.get(name))
                for write in writers:
                    write(row)
                rows.append(row)
    for problem in session.host.take_problems():
        repl.renderer.notice(problem)
    repl.renderer.show(Result(parts=[table(rows)]))
    return EXIT_FAILED if any(row.get("error") for row in rows) else EXIT_OK


def read_lines(path: str | None) -> list[str]:
    """Non-blank lines of the file, or of stdin; `\"\"\"` blocks count as one line."""
    from repl.core.lines import batch_lines

    if path is None or path == "-":
        if sys.stdin.isatty():
            return []
        stream = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
        return [line for line in batch_lines(stream) if line.strip()]
    with open(path, encoding="utf-8", errors="replace") as stream:
        return [line for line in batch_lines(stream) if line.strip()]


def load_models(repl: Repl, names: list[str], err: IO[str]) -> dict[str, list[Turn]]:
    """Load each model once; one that fails gets a failed turn to report for every line."""
    failures: dict[str, list[Turn]] = {}
    session = repl.session
    for name in names:
        try:
            repl.load(name)
        except (ModelError, PluginError) as exc:
            failed = Turn(model=name, checkpoint=session.checkpoint_of(name), input="", error=str(exc))
            failed.stats = Stats(stop_reason="error")
            failures[name] = [failed]
            err.write(f"error: {name}: {exc}\n")
    return failures


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
