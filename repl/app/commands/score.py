"""`/score`: how likely each model finds a text, token by token; several texts compared in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repl.app.commands.arguments import model_names, split_at_separator
from repl.app.commands.registry import command
from repl.app.commands.tokens import shown_text
from repl.app.scoring import describe_method, least_likely, perplexity_cell, score_record, scored_count, texts_table
from repl.core.results import CommandError, Part, Result, Table

if TYPE_CHECKING:
    from repl.app.evaluator import Repl

SCORE_USAGE = '/score [NAME ... --] TEXT (a """ block: one text per line; seq2seq: INPUT => TARGET)'
LEAST_LIKELY_MARK = "<- least likely"


@command(
    "score",
    usage="[NAME ... --] TEXT",
    help="log-likelihood of TEXT under each model: total, per token, perplexity; several texts are compared in "
    'one table: /score NAME ... -- """, then one text per line, then """',
)
def score_command(repl: Repl, args: str) -> Result:
    named, text = split_at_separator(args)
    if text is None:
        named, text = [], args
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise CommandError(f"nothing to score; usage: {SCORE_USAGE}")
    names = model_names(repl.session, named) if named else repl.broadcast_to or [repl.session.active_spec().name]
    for name in names:
        repl.load(name)
    records = [score_record(repl.session, name, line) for line in texts for name in names]
    error = None
    if all("error" in record for record in records):
        error = "; ".join(dict.fromkeys(f"{record['model']}: {record['error']}" for record in records))
    if error:
        return Result(records=records, error=error)
    if len(texts) > 1:
        return Result(parts=[texts_table(records)], records=records)
    parts: list[Part] = []
    for record in records:
        parts += describe_score(record) + [""]
    if len(records) > 1:
        parts.append(texts_table(records))
    return Result(parts=parts[:-1] if parts[-1] == "" else parts, records=records)


def describe_score(record: dict[str, Any]) -> list[Part]:
    """One model's score of one text: the total, perplexity and every token, the least likely marked."""
    if "error" in record:
        return [f"{record['model']} ({record['checkpoint']})\n  error: {record['error']}"]
    total = f"logprob {record['logprob']:.3f} over {scored_count(record)} scored tokens"
    lines = [
        f"{record['model']} ({record['checkpoint']}): {total}, perplexity {perplexity_cell(record)}",
        f"  {describe_method(record)}",
    ]
    lines += [f"  note: {notice}" for notice in record.get("notices", ())]
    marked = least_likely(record)
    rows = tuple(
        (
            position,
            token["id"],
            shown_text(token["piece"]),
            "-" if token["logprob"] is None else f"{token['logprob']:.3f}",
            LEAST_LIKELY_MARK if position in marked else "",
        )
        for position, token in enumerate(record["tokens"])
    )
    return ["\n".join(lines), Table(("#", "id", "token", "logprob", ""), rows, indent=2)]
