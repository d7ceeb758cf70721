"""`modelrepl score`: the log-likelihood of every text of a file under every model, as a table, JSON lines or CSV.

It shares reading texts, loading models and writing rows with `modelrepl
compare`, and builds each row as `/score` does.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from repl.batch_compare import load_models, open_writers, read_prompts
from repl.exit_status import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from repl.scoring import score_record, scored_count, texts_table

if TYPE_CHECKING:
    import argparse

    from repl.session import Session

# A CSV row cannot hold the token list: it has the count of scored tokens instead.
CSV_FIELDS = (
    "text_index",
    "text",
    "model",
    "checkpoint",
    "logprob",
    "perplexity",
    "scored_tokens",
    "method",
    "bos_prepended",
    "error",
)


def score_cli(session: Session, args: argparse.Namespace) -> int:
    """Every text on every model: a table on stdout, rows to --jsonl/--csv; the exit status."""
    err = sys.stderr
    names = list(dict.fromkeys(session.spec(name).name for name, _ in args.model))
    if not names:
        err.write("error: name the models to score with -m NAME[=CHECKPOINT], once per model\n")
        return EXIT_USAGE
    try:
        texts = read_prompts(args.texts)
    except OSError as exc:
        err.write(f"error: cannot read texts from {args.texts}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    if not texts:
        err.write("error: no texts: give a file with one text per line, or pipe them on stdin\n")
        return EXIT_USAGE
    with contextlib.ExitStack() as files:
        try:
            writers = open_writers(files, args.jsonl, args.csv, CSV_FIELDS)
        except OSError as exc:
            err.write(f"error: cannot write {exc.filename}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        load_failures = load_models(session, names, err)
        records = []
        for index, text in enumerate(texts, start=1):
            for name in names:
                failed = load_failures.get(name)
                record = score_record(session, name, text) if failed is None else _failed(session, name, text, failed)
                row = {"text_index": index, **record, "error": record.get("error")}
                if row["error"] is None:
                    row["scored_tokens"] = scored_count(row)
                for write in writers:
                    write(row)
                records.append(record)
    for problem in session.host.take_problems():
        err.write(f"note: {problem}\n")
    print(texts_table(records))
    return EXIT_FAILED if any("error" in record for record in records) else EXIT_OK


def _failed(session: Session, name: str, text: str, turns) -> dict:
    return {"model": name, "checkpoint": session.checkpoint_of(name), "text": text, "error": turns[0].error}
