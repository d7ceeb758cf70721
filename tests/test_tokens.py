"""/tokens: pieces, ids, special and tokenizer-added marks for each family on tiny checkpoints."""

from __future__ import annotations

import pytest

from repl.app.commands.tokens import LEGEND, shown_piece

SHORT = {"mt0": {"max_new_tokens": 3}, "gpt2": {"max_new_tokens": 3}}


@pytest.fixture(scope="module")
def tokenizers(tiny_checkpoints):
    """Each checkpoint's tokenizer, loaded directly: what /tokens must agree with."""
    from transformers import AutoTokenizer

    return {family: AutoTokenizer.from_pretrained(str(path)) for family, path in tiny_checkpoints.items()}


def one_record(repl, line: str) -> dict:
    result = repl.handle(line)
    assert result.ok, result.error
    (record,) = result.records
    return record


def test_mt0_adds_a_closing_eos_and_starts_decoding_from_pad(builtin_repl, tokenizers):
    text = "Translate to English: Je t'aime."
    record = one_record(builtin_repl(json_mode=True), f"/tokens mt0 -- {text}")

    tokenizer = tokenizers["mt0"]
    assert [t["id"] for t in record["tokens"]] == tokenizer(text)["input_ids"]
    assert [t["piece"] for t in record["tokens"]] == tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    *typed, last = record["tokens"]
    assert last == {"id": tokenizer.eos_token_id, "piece": "</s>", "special": True, "added": True}
    assert not any(t["added"] or t["special"] for t in typed)
    assert record["decoder_start"] == {"id": tokenizer.pad_token_id, "piece": "<pad>"}
    assert record["max_length"] == 512
    assert set(record) == {"model", "checkpoint", "tokens", "decoder_start", "max_length"}


def test_gpt2_adds_nothing(builtin_repl, tokenizers):
    text = "Hello world! Once upon a time"
    record = one_record(builtin_repl(json_mode=True), f"/tokens gpt2 -- {text}")

    assert [t["id"] for t in record["tokens"]] == tokenizers["gpt2"](text)["input_ids"]
    assert not any(t["added"] or t["special"] for t in record["tokens"])
    assert record["decoder_start"] is None
    assert isinstance(record["max_length"], int) and record["max_length"] > len(record["tokens"])


def test_bert_wraps_the_line_in_cls_and_sep_and_keeps_a_typed_mask_unadded(builtin_repl, tokenizers):
    record = one_record(builtin_repl(json_mode=True), "/tokens bert -- the capital of france is [MASK] .")

    tokens = record["tokens"]
    assert (tokens[0]["piece"], tokens[0]["special"], tokens[0]["added"]) == ("[CLS]", True, True)
    assert (tokens[-1]["piece"], tokens[-1]["special"], tokens[-1]["added"]) == ("[SEP]", True, True)
    (mask,) = [t for t in tokens if t["piece"] == "[MASK]"]
    assert mask["special"] and not mask["added"] and mask["id"] == tokenizers["bert"].mask_token_id
    assert [t["id"] for t in tokens] == tokenizers["bert"]("the capital of france is [MASK] .")["input_ids"]
    assert record["decoder_start"] is None


def test_text_mode_marks_special_and_added_tokens(builtin_repl):
    repl = builtin_repl()
    result = repl.handle("/tokens mt0 gpt2 -- Hello world")

    assert result.ok
    mt0_part, gpt2_part = result.text.split("\n\n")
    assert mt0_part.startswith("mt0 (") and "tokens of at most 512" in mt0_part
    assert "«</s>» +" in mt0_part
    assert "decoder starts from: 0 «<pad>»" in mt0_part
    assert gpt2_part.startswith("gpt2 (")
    assert "«" not in gpt2_part.replace(LEGEND, "") and " +" not in gpt2_part.replace(LEGEND, "")
    assert result.text.endswith(LEGEND)


def test_a_model_the_line_does_not_suit_shows_why_while_others_answer(builtin_repl):
    repl = builtin_repl(gpt2={"max_new_tokens": 8})
    repl.handle("/load gpt2")
    repl.session.loaded["gpt2"].max_input_tokens = 8  # as if its positions were few: no room for any input
    result = repl.handle("/tokens mt0 gpt2 -- Hello world")
    assert result.ok
    assert "gpt2 (" in result.text and "error: max_new_tokens 8 leaves no room for input" in result.text
    assert "«</s>» +" in result.text
    only_gpt2 = repl.handle("/tokens gpt2 -- Hello world")
    assert only_gpt2.error.startswith("gpt2: max_new_tokens 8 leaves no room")


def test_without_names_the_active_model_is_shown(builtin_repl):
    repl = builtin_repl(active="gpt2", json_mode=True)
    assert one_record(repl, "/tokens Hello world")["model"] == "gpt2"
    assert "".join(t["piece"] for t in one_record(repl, "/tokens -- last")["tokens"]) == "last"


def test_tokens_last_shows_the_raw_reply_with_special_tokens(builtin_repl):
    repl = builtin_repl(active="mt0", json_mode=True, **SHORT)
    assert "no reply yet" in repl.handle("/tokens last").error
    turn = repl.handle("Translate to English: Je t'aime.").turns[0]

    record = one_record(repl, "/tokens last")
    assert record["ids"] == turn.raw_ids and record["ids"][0] == 0
    assert record["raw"] == turn.raw_output and record["raw"].startswith("<pad>")
    assert len(record["ids"]) == turn.stats.new_tokens + 1  # the decoder start is not a new token

    repl.handle("/use gpt2")
    gpt2_turn = repl.handle("Once upon a time").turns[0]
    assert one_record(repl, "/tokens last")["ids"] == gpt2_turn.raw_ids
    assert one_record(repl, "/tokens last mt0")["ids"] == turn.raw_ids


def test_tokens_last_in_text_mode(builtin_repl):
    repl = builtin_repl(active="mt0", **SHORT)
    turn = repl.handle("hello").turns[0]
    text = repl.handle("/tokens last").text
    assert f"ids ({len(turn.raw_ids)}): " + " ".join(map(str, turn.raw_ids)) in text
    assert 'raw: "<pad>' in text


def test_shown_piece_escapes_control_characters():
    assert shown_piece("a\nb\t", False, False) == "a\\nb\\t"
    assert shown_piece("[CLS]", True, True) == "«[CLS]» +"
    assert shown_piece("[MASK]", True, False) == "«[MASK]»"


def test_tokens_usage(builtin_repl):
    repl = builtin_repl()
    assert "usage" in repl.handle("/tokens").error
    assert "nothing to tokenize" in repl.handle("/tokens mt0 --").error
    assert "usage" in repl.handle("/tokens last mt0 gpt2").error
