"""`modelrepl score`: the log-likelihood of every text of a file under every model, as a table, JSON lines or CSV.

It shares reading texts, loading models and writing rows with `modelrepl
compare` (`repl.batch`), and builds each row as `/score` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repl.app.commands.score import score_record, scored_count, texts_table
from repl.batch.runner import run_batch

if TYPE_CHECKING:
    import argparse

    from repl.app.evaluator import Repl
    from repl.core.results import Turn

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


def score_cli(repl: Repl, args: argparse.Namespace) -> int:
    """Every text on every model: a table on stdout, rows to --jsonl/--csv; the exit status."""
    session = repl.session

    def make_row(index: int, text: str, name: str, failed: list[Turn] | None) -> dict[str, Any]:
        if failed is None:
            record = score_record(session, name, text)
        else:
            record = {"model": name, "checkpoint": session.checkpoint_of(name), "text": text, "error": failed[0].error}
        row = {"text_index": index, **record, "error": record.get("error")}
        if row["error"] is None:
            row["scored_tokens"] = scored_count(row)
        return row

    return run_batch(
        repl,
        args,
        verb="score",
        noun="text",
        source=args.texts,
        csv_fields=CSV_FIELDS,
        make_row=make_row,
        table=texts_table,
    )
