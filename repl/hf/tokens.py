"""Tokens as modelrepl shows them: which ones the tokenizer added, cutting to fit, decoding."""

from __future__ import annotations

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


def encode_marking_added(tokenizer: Any, text: str) -> tuple[list[int], list[bool]]:
    """The ids the tokenizer makes of `text`, and which of them it added (BOS, `</s>`, `[CLS]`).

    A Rust-backed tokenizer tells by its offsets; a Python one (Marian's) has
    none, so its ids are compared with those of the bare text, which they hold.
    """
    # verbose=False: callers cut long lines themselves, and notice it; transformers would warn of "indexing errors".
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, return_offsets_mapping=True, verbose=False)
        return encoded["input_ids"], added_by_tokenizer(encoded, set(tokenizer.all_special_ids))
    ids = tokenizer(text, verbose=False)["input_ids"]
    bare = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    start = next((i for i in range(len(ids) - len(bare) + 1) if ids[i : i + len(bare)] == bare), 0)
    return ids, [not start <= i < start + len(bare) for i in range(len(ids))]


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
