"""Streaming: whole characters only, in order, adding up to the reply; stats per turn."""

import json

import pytest

from repl import cli
from repl.api import RunControl
from repl.core.turn import run_turn
from repl.terminal.toolbar import toolbar_text


def test_streamed_chunks_add_up_to_the_reply_without_broken_characters(taught_repl):
    repl = taught_repl(active="gpt2")
    chunks = []
    turn = run_turn(repl.session, "gpt2", "Say hi in Chinese:", chunks.append)
    assert turn.streamed
    assert "".join(chunks) == turn.output == " 我爱你 😀 🎉"
    assert len(chunks) > 1
    assert not any("\ufffd" in chunk for chunk in chunks)


def _stream(streamer_class, tokenizer, ids):
    """Feed `ids` one by one through a streamer, as generate() does; the chunks it emitted."""
    import torch

    control = RunControl(stream=lambda _: None)
    streamer = streamer_class(tokenizer, control)
    streamer.put(torch.tensor([[1, 2]]))  # the prompt, which is never streamed
    for token_id in ids:
        streamer.put(torch.tensor([token_id]))
    streamer.end()
    return control.streamed


@pytest.mark.parametrize("streamer_name", ["WholeCharacterStreamer", "IncrementalStreamer"])
def test_streamer_holds_back_partial_utf8_until_the_character_is_complete(builtin_repl, streamer_name):
    from repl import hf

    repl = builtin_repl(active="gpt2")
    tokenizer = repl.session.model("gpt2").tokenizer
    text = "我爱你 😀🎉 ok"
    ids = tokenizer(text).input_ids
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids), "the test needs tokens that split characters"
    chunks = _stream(getattr(hf, streamer_name), tokenizer, ids)
    assert "".join(chunks) == text
    assert not any("\ufffd" in chunk for chunk in chunks)


def _byte_fallback_tokenizer():
    """A Llama-style SentencePiece BPE: '▁' for spaces, unknown characters as <0xNN> bytes."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{byte:02X}>" for byte in range(256)]
    pieces += ["▁", "▁h", "▁hello", "ello", "▁wor", "ld", "!", "h", "e", "l", "o", "w", "r", "d"]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    merges = [("▁", "h"), ("e", "l"), ("l", "o"), ("▁h", "ello")]
    backend = Tokenizer(models.BPE(vocab, [m for m in merges if "".join(m) in vocab], byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_incremental_streaming_equals_the_final_reply_for_every_kind_of_tokenizer(builtin_repl):
    """Byte-level BPE (gpt2), SentencePiece unigram spaces (mt0), byte fallback (Llama), specials, lone bytes."""
    from repl import hf

    repl = builtin_repl(active="gpt2")
    gpt2 = repl.session.model("gpt2").tokenizer
    mt0 = repl.session.model("mt0").tokenizer
    llama = _byte_fallback_tokenizer()
    cases = [
        (gpt2, gpt2(" 我爱你 😀🎉 ok\n  two  spaces").input_ids + [gpt2.eos_token_id]),
        (gpt2, gpt2("é").input_ids[:1]),  # a reply cut in the middle of a character
        (mt0, mt0("Hello world. I love  you.").input_ids),  # ends with </s>, skipped
        (llama, llama("hello wor😀ld! é").input_ids),
        (llama, llama("hello").input_ids + llama("😀").input_ids[1:3]),  # 2 of the emoji's 4 bytes
    ]
    for tokenizer, ids in cases:
        final = hf.decode_text(tokenizer, ids)
        assert isinstance(hf.streamer_for(tokenizer, RunControl()), hf.IncrementalStreamer)
        chunks = _stream(hf.IncrementalStreamer, tokenizer, ids)
        assert "".join(chunks) == final, (tokenizer.convert_ids_to_tokens(ids), chunks)
        assert "".join(_stream(hf.WholeCharacterStreamer, tokenizer, ids)) == final
        assert not any("\ufffd" in chunk for chunk in chunks[:-1])


def test_mt0_streams_without_its_decoder_start_token(taught_repl):
    repl = taught_repl(active="mt0")
    chunks = []
    turn = run_turn(repl.session, "mt0", "Translate to English: Je t'aime.", chunks.append)
    assert "".join(chunks) == turn.output == "I love you."


def test_stream_off_prints_the_reply_when_done(taught_repl):
    repl = taught_repl(active="gpt2")
    assert repl.evaluate("/set stream off").error is None
    chunks = []
    turn = run_turn(repl.session, "gpt2", "Say hi in Chinese:", chunks.append)
    assert chunks == [] and not turn.streamed
    repl.handle("Say hi in Chinese:")
    assert repl.renderer.out.getvalue().endswith(" 我爱你 😀 🎉\n")


def test_bert_shows_its_result_when_done(taught_repl):
    repl = taught_repl(active="bert")
    chunks = []
    turn = run_turn(repl.session, "bert", "the capital of france is [MASK] .", chunks.append)
    assert chunks == [] and turn.output == "the capital of france is paris."


def test_every_turn_records_its_stats_and_the_toolbar_shows_the_last(taught_repl):
    repl = taught_repl(active="mt0")
    repl.handle("/stats on")
    (turn,) = repl.handle("Translate to English: Je t'aime.").turns
    stats = turn.stats
    assert stats.input_tokens == 22 and stats.new_tokens == 6
    assert 0 < stats.ttft <= stats.seconds
    assert stats.tokens_per_s == stats.new_tokens / stats.seconds
    assert stats.stop_reason == "eos"
    assert "[22 in, 6 new, ttft" in repl.renderer.out.getvalue()
    toolbar = toolbar_text(repl.toolbar_facts(), 80)
    assert "mt0 on cpu float32" in toolbar and "last: 6 tok" in toolbar and "eos" in toolbar


def test_batch_text_mode_streams_the_reply(taught_checkpoints, capsys):
    status = cli.main(["-m", f"gpt2={taught_checkpoints['gpt2']}", "--no-log", "-e", "Say hi in Chinese:"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out == " 我爱你 😀 🎉\n"


def test_json_stats_carry_every_field(taught_checkpoints, capsys):
    status = cli.main(
        ["-m", f"mt0={taught_checkpoints['mt0']}", "--json", "--no-log", "-e", "Translate to English: Je t'aime."]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["output"] == "I love you."
    assert set(record["stats"]) == {
        "ttft",
        "ttfa",
        "seconds",
        "input_tokens",
        "new_tokens",
        "reasoning_tokens",
        "tokens_per_s",
        "stop_reason",
    }
    assert record["stats"]["stop_reason"] == "eos"
    # A model that answers at once: no thinking, and its first token is its answer's.
    assert record["stats"]["reasoning_tokens"] == 0 and record["stats"]["ttfa"] == record["stats"]["ttft"]
