"""`/tokens`: exactly what each model's tokenizer feeds it, and what the last reply was made of.

The pieces come from the plugin's own `tokenize` hook, the one a turn uses, so
what is shown is what the model would see: special tokens the tokenizer adds,
gpt2's kept context, truncation.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from repl.app.commands.arguments import named_or_current, split_at_separator
from repl.app.commands.registry import command
from repl.core.plugin_host import PluginError
from repl.core.records import ModelError
from repl.core.results import CommandError, Part, Result, Table
from repl.core.turn import tokenize

if TYPE_CHECKING:
    from repl.app.context import CommandContext

TOKENS_USAGE = "/tokens [NAME ... --] TEXT, or /tokens last [NAME]"
LEGEND = "«…» special token, + added by the tokenizer or chat template (not typed)"


@command(
    "tokens",
    usage="[NAME ... --] TEXT | last [NAME]",
    help="the tokens and ids each model sees for TEXT; `last`: the previous reply's ids and raw text",
)
def tokens_command(context: CommandContext, args: str) -> Result:
    words = args.split()
    if not words:
        raise CommandError(f"usage: {TOKENS_USAGE}")
    if words[0] == "last":
        return last_reply(context, words[1:])
    named, text = split_at_separator(args)
    if text is None:
        named, text = [], args
    if not text:
        raise CommandError(f"nothing to tokenize after --; usage: {TOKENS_USAGE}")
    names = named_or_current(context, named)
    records = [token_record(context, name, text) for name in names]
    if all("error" in record for record in records):
        return Result(error="; ".join(f"{record['model']}: {record['error']}" for record in records))
    parts: list[Part] = []
    for record in records:
        parts += [*describe_tokens(record), ""]
    if any(record.get("tokens") and "unseen" not in record for record in records):  # a legend for what is shown
        return Result(parts=parts[:-1] + [LEGEND], records=records)
    return Result(parts=parts[:-1], records=records)


def token_record(context: CommandContext, name: str, text: str) -> dict[str, Any]:
    """What one model's tokenizer makes of `text`, as the `--json` object; a failure is recorded."""
    session = context.session
    try:
        model = context.load(name)
        encoding = tokenize(session, name, text)
    except (ModelError, PluginError) as exc:
        return {"model": name, "checkpoint": session.checkpoint_of(name), "error": str(exc)}
    start = model.decoder_start
    record: dict[str, Any] = {
        "model": name,
        "checkpoint": model.checkpoint,
        "tokens": [asdict(token) for token in encoding.tokens],
        "decoder_start": None if start is None else {"id": start.id, "piece": start.piece},
        "max_length": model.max_input_tokens,
    }
    forced = model.forced_first_token
    if forced is not None:
        record["forced_first_token"] = {"id": forced.id, "piece": forced.piece}
    if model.quantization is not None:
        record["quantization"] = model.quantization
    if encoding.notices:
        record["notices"] = list(encoding.notices)
    if encoding.unseen:
        record["unseen"] = encoding.unseen
    return record


def describe_tokens(record: dict[str, Any]) -> list[Part]:
    if "error" in record:
        return [f"{record['model']} ({record['checkpoint']})\n  error: {record['error']}"]
    if "unseen" in record:
        return [f"{record['model']} ({record['checkpoint']}): {record['unseen']}"]
    tokens = record["tokens"]
    limit = record["max_length"]
    count = f"{len(tokens)} tokens" + (f" of at most {limit}" if limit is not None else ", no known maximum")
    weights = f", {record['quantization']}" if "quantization" in record else ""
    lines = [f"{record['model']} ({record['checkpoint']}{weights}): {count}"]
    lines += [f"  note: {notice}" for notice in record.get("notices", ())]
    rows = tuple(
        (position, token["id"], shown_piece(token["piece"], token["special"], token["added"]))
        for position, token in enumerate(tokens)
    )
    after = []
    start = record["decoder_start"]
    if start is not None:
        after.append(f"  decoder starts from: {start['id']} {shown_piece(start['piece'], True, False)}")
    forced = record.get("forced_first_token")
    if forced is not None:
        after.append(f"  first token forced to: {forced['id']} {shown_piece(forced['piece'], True, False)}")
    return ["\n".join(lines), Table(("#", "id", "piece"), rows, indent=2), *after]


def shown_piece(piece: str, special: bool, added: bool) -> str:
    """A piece as text: control characters escaped, special ones in «», added ones with +."""
    visible = "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in piece)
    if special:
        visible = f"«{visible}»"
    return visible + (" +" if added else "")


def shown_text(text: str) -> str:
    """A token's text in a table: spaces as ␣ so a leading one shows, control characters escaped."""
    return shown_piece(text, False, False).replace(" ", "\u2423")


def last_reply(context: CommandContext, words: list[str]) -> Result:
    """The previous reply's generated ids and its decoding with special tokens kept."""
    if len(words) > 1:
        raise CommandError(f"usage: {TOKENS_USAGE}")
    name = context.spec(words[0]).name if words else None
    replies = [turn for turn in context.session.turns if turn.ok and (name is None or turn.model == name)]
    if not replies:
        raise CommandError(f"no reply yet{f' from {name}' if name else ''}: send a line first")
    turn = replies[-1]
    record = {
        "model": turn.model,
        "checkpoint": turn.checkpoint,
        "input": turn.input,
        "ids": list(turn.raw_ids),
        "raw": turn.raw_output,
    }
    if turn.raw_ids:
        ids = " ".join(map(str, turn.raw_ids))
    elif turn.stats.new_tokens:
        ids = f"not visible ({turn.model} counted {turn.stats.new_tokens} on its side)"
    else:
        ids = f"none ({turn.model} generates no tokens)"
    return Result(
        text=(
            f"{turn.model} ({turn.checkpoint}), reply to {json.dumps(turn.input, ensure_ascii=False)}\n"
            f"  ids ({len(turn.raw_ids)}): {ids}\n"
            f"  raw: {json.dumps(turn.raw_output, ensure_ascii=False)}"
        ),
        records=[record],
    )
