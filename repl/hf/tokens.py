"""Tokens as modelrepl shows them: which ones the tokenizer added, cutting to fit, decoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repl.core.records import (
    LoadedModel,
    ModelError,
    Token,
)


def describe(tokenizer: Any, ids: list[int], added: list[bool]) -> list[Token]:
    special_ids = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    return [Token(i, piece, i in special_ids, was_added) for i, piece, was_added in zip(ids, pieces, added)]


def added_by_tokenizer(encoding: Any, special_ids: set[int]) -> list[bool]:
    """Which tokens the tokenizer's post-processor put in, not the user.

    Those have an empty span in the text; a special token the user typed
    (a `[MASK]`) covers characters.
    """
    return [
        token_id in special_ids and start == end
        for token_id, (start, end) in zip(encoding["input_ids"], encoding["offset_mapping"])
    ]


def encode_marking_added(tokenizer: Any, text: str, pair: str | None = None) -> tuple[list[int], list[bool]]:
    """The ids the tokenizer makes of `text`, and which of them it added (BOS, `</s>`, `[CLS]`).

    With `pair`, the ids of the text pair as the tokenizer joins two texts
    (`[CLS] text [SEP] pair [SEP]`, `<s> text </s></s> pair </s>`), the
    separators marked added. However long the text, transformers' warning of
    "indexing errors" is not printed: callers cut long lines themselves, and say so.
    """
    encoded = _encode(tokenizer, text, pair)
    return encoded.ids, encoded.added


def count_tokens(tokenizer: Any, text: str, pair: str | None = None) -> int:
    """How many tokens the model is fed for `text` (or the pair), special ones included, however long it is.

    Measuring with the tokenizer itself prints transformers' "Token indices
    sequence length is longer than the specified maximum" warning on a long
    text; this does not.
    """
    arguments = (text,) if pair is None else (text, pair)
    return len(tokenizer(*arguments, verbose=False)["input_ids"])


@dataclass
class _Encoded:
    ids: list[int]
    added: list[bool]
    texts: list[int | None]  # which text each token comes from: 0, 1 (a pair's second), None (added)
    token_type_ids: list[int] | None


def _encode(tokenizer: Any, text: str, pair: str | None) -> _Encoded:
    """A text or a pair as the tokenizer encodes it, each token's origin marked.

    A Rust-backed tokenizer tells by its offsets; a Python one (Marian's) has
    none, so its ids are searched for those of each bare text, in order.
    """
    arguments = (text,) if pair is None else (text, pair)
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(*arguments, return_offsets_mapping=True, return_token_type_ids=True, verbose=False)
        added = added_by_tokenizer(encoded, set(tokenizer.all_special_ids))
        texts = [None if was_added else which for was_added, which in zip(added, encoded.sequence_ids())]
        return _Encoded(encoded["input_ids"], added, texts, encoded.get("token_type_ids"))
    encoded = tokenizer(*arguments, return_token_type_ids=True, verbose=False)
    ids = encoded["input_ids"]
    texts = [None] * len(ids)
    position = 0
    for which, part in enumerate(arguments):
        bare = tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"]
        found = (i for i in range(position, len(ids) - len(bare) + 1) if ids[i : i + len(bare)] == bare)
        start = next(found, position)
        end = min(start + len(bare), len(ids))
        texts[start:end] = [which] * (end - start)
        position = end
    return _Encoded(ids, [which is None for which in texts], texts, encoded.get("token_type_ids"))


def encode_cut_at_end(model: LoadedModel, text: str, keep_id: int | None = None) -> tuple[list[Token], list[str]]:
    """The tokens the model sees for `text`, and notices.

    A line longer than the model takes is cut by the rule every family follows
    (`cut_to_fit`), keeping the special tokens the tokenizer put around it; a
    line with no readable text is refused.
    """
    tokenizer = model.tokenizer
    ids, added = encode_marking_added(tokenizer, text)
    if all(added):
        raise ModelError(f"the line has no text {model.spec.name}'s tokenizer can read")
    notices = []
    limit = model.max_input_tokens
    if limit is not None and len(ids) > limit:
        lead, body, tail = split_added_ends(ids, added)
        keep_name = tokenizer.convert_ids_to_tokens(keep_id) if keep_id is not None else ""
        kept, notice = cut_to_fit(body, max(limit - lead - tail, 1), keep_id, keep_name, limit)
        ids = ids[:lead] + body[kept] + ids[len(ids) - tail :]
        added = added[:lead] + [False] * len(body[kept]) + added[len(added) - tail :]
        notices.append(notice)
    return describe(tokenizer, ids, added), notices


def encode_pair_cut_first(
    model: LoadedModel, text: str, pair: str, keep_id: int | None = None
) -> tuple[list[Token], list[str], list[int] | None]:
    """The tokens the model sees for a text pair, notices, and the pair's `token_type_ids`.

    When the pair is longer than the model takes, the first text is cut by
    `cut_to_fit` and the second is kept whole (transformers' `only_first`):
    a premise cut, its hypothesis kept. `ModelError` when the second text alone
    leaves no room for the first. The `token_type_ids` are the tokenizer's
    (BERT's segment ids), cut in step with the tokens; None for a model that
    takes none (`token_type_ids` not in `tokenizer.model_input_names`).
    """
    tokenizer = model.tokenizer
    encoded = _encode(tokenizer, text, pair)
    ids, added, type_ids = encoded.ids, encoded.added, encoded.token_type_ids
    first = [position for position, which in enumerate(encoded.texts) if which == 0]
    if not first:
        raise ModelError(f"the first text has nothing {model.spec.name}'s tokenizer can read")
    notices = []
    limit = model.max_input_tokens
    if limit is not None and len(ids) > limit:
        others = len(ids) - len(first)
        if others >= limit:
            raise ModelError(
                f"the second text takes {others} of {model.spec.name}'s {limit} tokens (special ones included), "
                "leaving no room for the first; shorten it"
            )
        start, end = first[0], first[-1] + 1
        keep_name = tokenizer.convert_ids_to_tokens(keep_id) if keep_id is not None else ""
        kept, notice = cut_to_fit(ids[start:end], limit - others, keep_id, keep_name, limit)
        positions = [*range(start), *range(start, end)[kept], *range(end, len(ids))]
        ids, added = [ids[i] for i in positions], [added[i] for i in positions]
        type_ids = None if type_ids is None else [type_ids[i] for i in positions]
        notices.append(f"{notice} of the first text; the second is kept whole")
    if "token_type_ids" not in getattr(tokenizer, "model_input_names", ()):
        type_ids = None
    return describe(tokenizer, ids, added), notices, type_ids


def split_added_ends(ids: list[int], added: list[bool]) -> tuple[int, list[int], int]:
    """How many tokens the tokenizer put before the text, the text's ids, and how many after."""
    lead = next((i for i, was_added in enumerate(added) if not was_added), len(added))
    tail = next((i for i, was_added in enumerate(reversed(added)) if not was_added), 0)
    return lead, ids[lead : len(ids) - tail], tail


def cut_to_fit(
    ids: list[int], room: int, keep_id: int | None = None, keep_name: str = "", limit: int | None = None
) -> tuple[slice, str]:
    """Which of a long line's tokens to keep, and the notice that says what was cut.

    One rule for every family: the start of the line (where the instruction is)
    is kept and the end is cut; a model that needs certain tokens (BERT's
    `[MASK]`, `keep_id`) keeps the stretch centred on them instead when the
    end would drop one. ModelError when they lie further apart than `room`.
    The notice names `limit`, the model's whole input with its special tokens
    (default: `room`).
    """
    cut, limit = len(ids) - room, limit or room
    wanted = [position for position, token in enumerate(ids) if token == keep_id] if keep_id is not None else []
    if not wanted or wanted[-1] < room:
        return slice(0, room), f"input truncated to {limit} tokens: {cut} dropped from the end"
    if wanted[-1] - wanted[0] >= room:
        raise ModelError(
            f"the {keep_name}s are {wanted[-1] - wanted[0] + 1} tokens apart, more than fit in {room}; shorten the line"
        )
    centred = (wanted[0] + wanted[-1] - room) // 2
    start = min(max(centred, wanted[-1] - room + 1, 0), wanted[0], len(ids) - room)
    return (
        slice(start, start + room),
        f"input truncated to {limit} tokens around the {keep_name}: {start} dropped from the start, "
        f"{cut - start} from the end",
    )


def decoder_start(model: Any, tokenizer: Any) -> Token | None:
    """The token the decoder starts from, as the model's generation config (else its config) says."""
    return _generation_token(model, tokenizer, "decoder_start_token_id")


def forced_first_token(model: Any, tokenizer: Any) -> Token | None:
    """The token generation is forced to begin with (BART's `<s>`, mBART's target language), if any."""
    return _generation_token(model, tokenizer, "forced_bos_token_id")


def _generation_token(model: Any, tokenizer: Any, key: str) -> Token | None:
    token_id = getattr(model.generation_config, key, None)
    if token_id is None:
        token_id = getattr(model.config, key, None)
    if token_id is None:
        return None
    return Token(token_id, tokenizer.convert_ids_to_tokens(token_id), token_id in set(tokenizer.all_special_ids), True)


def decode_text(tokenizer: Any, ids: list[int]) -> str:
    """The reply as shown: special tokens removed, spaces exactly as the tokenizer decodes them.

    Streaming and the final reply both use this, so they cannot disagree.
    """
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """The text each token adds after another one (`Ġthe`, `▁the` are " the", `##s` is "s").

    A token decoded alone loses what its decoder strips at the start of a text
    (SentencePiece's leading space), so each is decoded after the tokenizer's
    token for "a" and that prefix is cut off. A token that is no text alone
    (part of a character) shows the bytes it holds as escapes where the
    tokenizer is byte-level (`ĠGrÃ` is " Gr\\xc3"), else its piece.
    """
    pieces = tokenizer.convert_ids_to_tokens(ids)
    lead = tokenizer("a", add_special_tokens=False)["input_ids"][-1:]
    prefix = tokenizer.decode(lead, clean_up_tokenization_spaces=False)
    decoded = tokenizer.batch_decode([lead + [i] for i in ids], clean_up_tokenization_spaces=False)
    return [
        text[len(prefix) :] if text.startswith(prefix) and "\ufffd" not in text else _bytes_shown(tokenizer, piece)
        for text, piece in zip(decoded, pieces)
    ]


def _bytes_shown(tokenizer: Any, piece: str) -> str:
    """A byte-level piece as text with the bytes that are no whole character escaped; other pieces as they are."""
    from tokenizers.decoders import ByteLevel
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.decoder, ByteLevel):
        return piece
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    if not all(char in byte_of for char in piece):
        return piece
    return bytes(byte_of[char] for char in piece).decode("utf-8", errors="backslashreplace")
