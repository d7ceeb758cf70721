"""mt0 (seq2seq): exactly what the encoder sees, where the decoder starts, what is shown."""

from repl.core.turn import tokenize


def test_encoder_input_ends_with_eos_and_has_no_start_token(builtin_repl):
    repl = builtin_repl(active="mt0")
    line = "Translate to English: Je t'aime."
    encoding = tokenize(repl.session, "mt0", line)
    tokenizer = repl.session.loaded["mt0"].tokenizer
    assert encoding.input_ids == tokenizer(line, add_special_tokens=False).input_ids + [1]
    assert tokenizer.convert_ids_to_tokens(1) == "</s>"
    assert [t.added for t in encoding.tokens] == [False] * (len(encoding.tokens) - 1) + [True]
    assert encoding.tokens[-1].special and encoding.tokens[-1].piece == "</s>"


def test_decoder_starts_from_pad_and_the_shown_reply_has_no_special_tokens(taught_repl):
    repl = taught_repl(active="mt0")
    (turn,) = repl.evaluate("Translate to English: Je t'aime.").turns
    assert turn.ok, turn.error
    assert repl.session.loaded["mt0"].decoder_start.id == 0
    assert repl.session.loaded["mt0"].decoder_start.piece == "<pad>"
    assert turn.raw_ids[0] == 0 and turn.raw_ids[-1] == 1
    assert turn.raw_output.startswith("<pad>") and turn.raw_output.endswith("</s>")
    assert turn.output == "I love you."
    assert turn.stats.stop_reason == "eos"
    assert turn.stats.new_tokens == len(turn.raw_ids) - 1


def test_long_input_is_truncated_to_512_tokens_keeping_eos(builtin_repl):
    repl = builtin_repl(active="mt0")
    encoding = tokenize(repl.session, "mt0", "hello " * 700)
    assert len(encoding.input_ids) == 512
    assert encoding.input_ids[-1] == 1
    (notice,) = encoding.notices
    assert notice.startswith("input truncated to 512 tokens:") and "dropped from the end" in notice


def test_truncation_notice_reaches_the_user(builtin_repl):
    repl = builtin_repl(active="mt0")
    repl.session.set("mt0", "max_new_tokens", "2")
    result = repl.handle("hello " * 700)
    assert result.ok
    assert "note: input truncated to 512 tokens" in repl.renderer.err.getvalue()


def test_max_new_tokens_is_the_stop_reason_when_reached(builtin_repl):
    repl = builtin_repl(active="mt0")
    repl.session.set("mt0", "max_new_tokens", "3")
    (turn,) = repl.evaluate("hello").turns
    assert turn.stats.new_tokens <= 3
    if turn.stats.new_tokens == 3 and turn.raw_ids[-1] != 1:
        assert turn.stats.stop_reason == "max_new_tokens"
