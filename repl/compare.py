"""Comparing models: `/compare`, broadcast mode, `/retry`, and `modelrepl compare`.

Models answer one after another, each loaded once and kept: running them in
parallel would make their timings disturb each other. Inside a comparison
nothing streams, so the replies of several models never interleave; each gets
its own labelled block, then one table holds everyone's numbers.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import statistics
import sys
import unicodedata
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable

from repl.api import ModelError
from repl.commands import CommandError, Result, command
from repl.plugins import PluginError
from repl.render import seconds, table, turn_record
from repl.session import Stats, Turn
from repl.turn import run_turn

if TYPE_CHECKING:
    import argparse

    from repl.app import Repl
    from repl.session import Session

COMPARE_USAGE = "/compare [NAME ...] -- TEXT, /compare NAME NAME ... (broadcast), /compare off"
RETRY_USAGE = "/retry NAME [NAME ...]"
# Side by side only when every column still fits a short sentence per line.
MIN_COLUMN_WIDTH = 28
COLUMN_GAP = " | "
STATS_HEADERS = ("model", "checkpoint", "input tokens", "new tokens", "ttft", "seconds", "tok/s", "stop reason")
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
_SEPARATOR = re.compile(r"(?:^|\s)--(?:\s|$)")


# -- arguments -------------------------------------------------------------------


def split_at_separator(args: str) -> tuple[list[str], str | None]:
    """`NAME NAME -- TEXT` as (names, text); text is None when there is no `--`."""
    found = _SEPARATOR.search(args)
    if found is None:
        return args.split(), None
    return args[: found.start()].split(), args[found.end() :].strip()


def model_names(repl: Repl, words: list[str]) -> list[str]:
    """The models the words name (aliases resolved, each once), or every loaded model."""
    session = repl.session
    if not words:
        loaded = [name for name in session.host.models() if name in session.loaded]
        if not loaded:
            raise CommandError("no model is loaded yet: name the models, e.g. /compare mt0 gpt2 -- TEXT")
        return loaded
    names: list[str] = []
    for word in words:
        name = session.spec(word).name
        if name not in names:
            names.append(name)
    return names


# -- comparing in the REPL -------------------------------------------------------


def compare_result(repl: Repl, names: list[str], text: str) -> Result:
    """Send `text` to each model in turn; their blocks and one stats table, or JSON records."""
    turns: list[Turn] = []
    for name in names:
        turn = repl.turn(name, text, stream=False)
        turns.append(turn)
        if turn.stats.stop_reason == "cancelled":
            break
    not_run = names[len(turns) :]
    error = None
    if not_run:
        error = f"comparison cancelled: {', '.join(not_run)} not run"
    elif not any(turn.ok for turn in turns):
        error = "no model answered"
    if repl.renderer.json_mode:
        return Result(records=[turn_record(turn) for turn in turns], error=error)
    blocks = [(turn.model, block_body(turn)) for turn in turns]
    width = shutil.get_terminal_size().columns
    return Result(text=layout_blocks(blocks, width) + "\n\n" + stats_table(turns), error=error)


def block_body(turn: Turn) -> str:
    lines = [f"note: {notice}" for notice in turn.notices]
    if turn.error:
        lines.append(f"error: {turn.error}")
    else:
        lines.append(turn.output or "(empty reply)")
        if turn.stats.stop_reason == "cancelled":
            lines.append("(cancelled)")
    return "\n".join(lines)


def layout_blocks(blocks: list[tuple[str, str]], width: int) -> str:
    """Labelled blocks side by side when each column gets MIN_COLUMN_WIDTH, else one under another."""
    count = len(blocks)
    column = (width - len(COLUMN_GAP) * (count - 1)) // max(count, 1)
    if count > 1 and column >= MIN_COLUMN_WIDTH:
        columns = [_block_lines(label, body, column) for label, body in blocks]
        height = max(len(lines) for lines in columns)
        rows = [
            COLUMN_GAP.join(_pad(lines[row] if row < len(lines) else "", column) for lines in columns).rstrip()
            for row in range(height)
        ]
        return "\n".join(rows)
    return "\n\n".join("\n".join([_label(label, max(width, MIN_COLUMN_WIDTH)), body]) for label, body in blocks)


def _label(label: str, width: int) -> str:
    head = f"-- {label} "
    return head + "-" * max(width - len(head), 2)


def _block_lines(label: str, body: str, width: int) -> list[str]:
    lines = [_label(label, width)]
    for line in body.splitlines() or [""]:
        lines += _wrap(line.expandtabs(4), width)
    return lines


def _cells(text: str) -> int:
    """Terminal columns the text takes: CJK characters and most emoji take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _cells(text))


def _wrap(line: str, width: int) -> list[str]:
    """The line in pieces of at most `width` columns, broken at a space where there is one."""
    rows = []
    while _cells(line) > width:
        fits = 1
        while _cells(line[: fits + 1]) <= width:
            fits += 1
        space = line.rfind(" ", 0, fits + 1)
        cut = space if space > 0 else fits
        rows.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    rows.append(line)
    return rows


def stats_table(turns: list[Turn]) -> str:
    return table(STATS_HEADERS, [(turn.model, turn.checkpoint, *_stats_cells(turn)) for turn in turns])


def _stats_cells(turn: Turn) -> tuple[str, ...]:
    if turn.error:
        return ("-", "-", "-", "-", "-", turn.stats.stop_reason)
    stats = turn.stats
    return (
        str(stats.input_tokens),
        str(stats.new_tokens),
        seconds(stats.ttft),
        seconds(stats.seconds),
        _rate(stats.tokens_per_s),
        stats.stop_reason,
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@command(
    "compare",
    usage="[NAME ...] -- TEXT | NAME NAME ... | off",
    help="send a line to several models and compare; without TEXT, every line goes to them until /compare off",
)
def compare_command(repl: Repl, args: str) -> str | Result:
    if args.lower() == "off":
        was_on = repl.broadcast_to is not None
        repl.broadcast_to = None
        return "broadcast off" if was_on else "broadcast was not on"
    words, text = split_at_separator(args)
    try:
        names = model_names(repl, words)
    except ModelError as exc:
        hint = "; put -- before the text to send" if text is None else ""
        raise CommandError(f"{exc}{hint}") from None
    if text is None:
        if len(names) < 2:
            raise CommandError(f"broadcast needs two or more models; to talk to one, /use it (usage: {COMPARE_USAGE})")
        repl.broadcast_to = names
        return f"broadcast on: every line goes to {', '.join(names)}; /compare off ends it"
    if not text:
        raise CommandError(f"nothing to send after --; usage: {COMPARE_USAGE}")
    return compare_result(repl, names, text)


@command("retry", usage="NAME [NAME ...]", help="send the last input again, to another model (several: compare them)")
def retry_command(repl: Repl, args: str) -> Result:
    words = args.split()
    if not words:
        raise CommandError(f"usage: {RETRY_USAGE}")
    names = model_names(repl, words)
    if not repl.session.turns:
        raise CommandError("nothing to retry: no line has been sent to a model yet")
    text = repl.session.turns[-1].input
    if len(names) == 1:
        return Result(turns=[repl.turn(names[0], text)])
    return compare_result(repl, names, text)


# -- `modelrepl compare` ---------------------------------------------------------


def compare_cli(session: Session, args: argparse.Namespace) -> int:
    """Every prompt on every model: a table on stdout, rows to --jsonl/--csv; the exit status."""
    from repl.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE

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
        writers = []
        try:
            if args.jsonl:
                writers.append(_jsonl_writer(files.enter_context(_open_output(args.jsonl))))
            if args.csv:
                writers.append(_csv_writer(files.enter_context(_open_output(args.csv))))
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
    headers = ("prompt", "model", "checkpoint", "input tokens", "new tokens", "ttft", "seconds", "tok/s", "stop reason", "output")
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
                _timing(record, "tokens_per_s", _rate),
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


def _open_output(path: str) -> IO[str]:
    return open(path, "w", encoding="utf-8", newline="")


def _jsonl_writer(stream: IO[str]) -> Callable[[dict[str, Any]], None]:
    def write(record: dict[str, Any]) -> None:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        stream.flush()

    return write


def _csv_writer(stream: IO[str]) -> Callable[[dict[str, Any]], None]:
    writer = csv.DictWriter(stream, fieldnames=ROW_FIELDS)
    writer.writeheader()

    def write(record: dict[str, Any]) -> None:
        writer.writerow(record)
        stream.flush()

    return write
