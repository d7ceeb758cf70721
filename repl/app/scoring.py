"""How likely each model finds a text: the `score` hook's answer as one record per model and text.

`/score` and `modelrepl score` both build their rows here, so the REPL and
batch mode report the same numbers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from repl.core.plugin_host import PluginError
from repl.core.records import ModelError, Score
from repl.core.results import Table
from repl.core.text import one_line

if TYPE_CHECKING:
    from repl.core.session import Session

METHODS = {
    "causal": "each token given the ones before it",
    "seq2seq target": "each TARGET token as the output for INPUT, given the ones before it",
    "pseudo-log-likelihood": "pseudo-log-likelihood: each token masked in turn",
}


def score_record(session: Session, name: str, text: str) -> dict[str, Any]:
    """One model's log-likelihood of `text` as the `--json` row; a failure is recorded as `error`."""
    spec = session.spec(name)
    record: dict[str, Any] = {"model": spec.name, "checkpoint": session.checkpoint_of(spec.name), "text": text}
    try:
        model = session.model(spec.name)
        record["checkpoint"] = model.checkpoint
        answer = session.host.call(
            spec.plugin, "score", model=model, text=text, settings=dict(session.settings_of(spec.name))
        )
        if answer is None:
            raise ModelError(f"{spec.name} cannot score text (its plugin has no score hook)")
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
