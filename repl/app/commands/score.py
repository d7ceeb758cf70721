"""`/score`: how likely each model finds a text, token by token; several texts compared in one table.

The rows are built here (`score_record`, `texts_table`) for `/score` and
`modelrepl score` alike, so the REPL and batch mode report the same numbers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from repl.app.commands.arguments import named_or_current, split_at_separator
from repl.app.commands.registry import command
from repl.app.commands.tokens import shown_text
from repl.core.plugin_host import PluginError
from repl.core.records import ModelError, Score
from repl.core.results import CommandError, Part, Result, Table
from repl.core.text import one_line

if TYPE_CHECKING:
    from repl.app.context import CommandContext
    from repl.core.session import Session

SCORE_USAGE = '/score [NAME ... --] TEXT (a """ block: one text per line; seq2seq: INPUT => TARGET)'
LEAST_LIKELY_MARK = "<- least likely"


@command(
    "score",
    usage="[NAME ... --] TEXT",
    help="log-likelihood of TEXT under each model: total, per token, perplexity; several texts are compared in "
    'one table: /score NAME ... -- """, then one text per line, then """',
)
def score_command(context: CommandContext, args: str) -> Result:
    named, text = split_at_separator(args)
    if text is None:
        named, text = [], args
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise CommandError(f"nothing to score; usage: {SCORE_USAGE}")
    names = named_or_current(context, named)
    unable = [name for name in names if not can_score(context.session, name)]
    if unable == names:
        able = [name for name in context.model_names() if can_score(context.session, name)]
        plugins = ", ".join(sorted({repr(context.spec(name).plugin) for name in unable}))
        raise CommandError(
            f"{', '.join(unable)} cannot score text (no score hook in plugin {plugins})"
            + (f"; models that can: {', '.join(able)}" if able else "")
        )
    for name in names:
        if name not in unable:
            context.load(name)
    records = [score_record(context.session, name, line) for line in texts for name in names]
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


METHODS = {
    "causal": "each token given the ones before it",
    "seq2seq target": "each TARGET token as the output for INPUT, given the ones before it",
    "pseudo-log-likelihood": "pseudo-log-likelihood: each token masked in turn",
}


def can_score(session: Session, name: str) -> bool:
    """Whether the model's plugin implements the `score` hook (it may still decline a model by returning None)."""
    status = session.host.statuses.get(session.spec(name).plugin or "")
    return status is not None and "score" in status.hooks


def score_record(session: Session, name: str, text: str) -> dict[str, Any]:
    """One model's log-likelihood of `text` as the `--json` row; a failure is recorded as `error`."""
    spec = session.spec(name)
    record: dict[str, Any] = {"model": spec.name, "checkpoint": session.checkpoint_of(spec.name), "text": text}
    if not can_score(session, spec.name):
        return {**record, "error": f"cannot score text (plugin {spec.plugin!r} has no score hook)"}
    try:
        model = session.model(spec.name)
        record["checkpoint"] = model.checkpoint
        answer = session.host.call(
            spec.plugin, "score", model=model, text=text, settings=dict(session.settings_of(spec.name))
        )
        if answer is None:
            raise ModelError(f"cannot score text (plugin {spec.plugin!r} does not score it)")
        score = session.host.expect(spec.plugin, "score", answer, Score)
    except (ModelError, PluginError) as exc:
        return {**record, "error": one_line(str(exc))}
    scored = [token.logprob for token in score.tokens if token.logprob is not None]
    total = math.fsum(scored)
    record.update(
        logprob=total,
        perplexity=math.exp(-total / len(scored)) if scored else None,
        tokens=[{"id": t.id, "piece": t.piece, "logprob": t.logprob} for t in score.tokens],
        method=score.method,
        bos_prepended=score.bos_prepended,
    )
    if score.notices:
        record["notices"] = list(score.notices)
    return record


def least_likely(record: dict[str, Any]) -> set[int]:
    """Positions of the least likely scored tokens of a record: about a third of them, at most three."""
    scored = [(token["logprob"], index) for index, token in enumerate(record["tokens"]) if token["logprob"] is not None]
    return {index for _, index in sorted(scored)[: min(3, (len(scored) + 2) // 3)]}


def describe_method(record: dict[str, Any]) -> str:
    """How the tokens were scored, and whether a start token was put before them."""
    method = METHODS.get(record["method"], record["method"])
    bos = record.get("bos_prepended")
    if bos is True:
        method += "; the tokenizer prepended a BOS, which the first token is scored from"
    elif bos is False:
        method += "; no BOS prepended, so the first token has nothing to be scored from"
    return method


def texts_table(records: list[dict[str, Any]]) -> Table:
    """Every text under every model: total logprob, tokens, perplexity, and each model's ranking of the texts."""
    ranks = _ranks(records)
    rows = []
    for index, record in enumerate(records):
        if record.get("error"):
            rows.append((record["text"], record["model"], "-", "-", "-", "-", record["error"]))
            continue
        numbers = (f"{record['logprob']:.3f}", scored_count(record), perplexity_cell(record), ranks[index])
        rows.append((record["text"], record["model"], *numbers))
    headers = ("text", "model", "logprob", "tokens", "perplexity", "rank")
    return Table(headers + (("error",) if any(record.get("error") for record in records) else ()), tuple(rows))


def _ranks(records: list[dict[str, Any]]) -> dict[int, int]:
    """Each record's rank among the texts its model scored, most likely first."""
    by_model: dict[str, list[tuple[float, int]]] = {}
    for index, record in enumerate(records):
        if not record.get("error"):
            by_model.setdefault(record["model"], []).append((-record["logprob"], index))
    return {index: rank for scores in by_model.values() for rank, (_, index) in enumerate(sorted(scores), start=1)}


def perplexity_cell(record: dict[str, Any]) -> str:
    return "-" if record["perplexity"] is None else f"{record['perplexity']:.3f}"


def scored_count(record: dict[str, Any]) -> int:
    """How many tokens of a record were scored (a token with no context is not)."""
    return sum(token["logprob"] is not None for token in record["tokens"])
