"""gpt2 (causal): nothing added, EOS as pad, the reply is the continuation only."""

import pytest

from repl.api import ModelError
from repl.core.turn import tokenize


def test_nothing_is_added_to_the_input(builtin_repl):
    repl = builtin_repl(active="gpt2")
    line = "Hello world, 我爱你 😀"
    encoding = tokenize(repl.session, "gpt2", line)
    tokenizer = repl.session.loaded["gpt2"].tokenizer
    assert encoding.input_ids == tokenizer(line, add_special_tokens=False).input_ids
    assert not any(t.added for t in encoding.tokens)
    assert tokenizer.pad_token is None
    assert tokenizer.decode(encoding.input_ids) == line


def test_reply_is_decoded_from_new_ids_and_stops_at_endoftext(taught_repl):
    repl = taught_repl(active="gpt2")
    (turn,) = repl.evaluate("Say hi in Chinese:").turns
    assert turn.ok, turn.error
    assert turn.output == " 我爱你 😀 🎉"
    assert "\ufffd" not in turn.output
    tokenizer = repl.session.loaded["gpt2"].tokenizer
    assert turn.raw_ids[-1] == tokenizer.eos_token_id
    assert turn.raw_output.endswith("<|endoftext|>")
    assert turn.stats.stop_reason == "eos"
    assert turn.stats.input_tokens == len(tokenizer("Say hi in Chinese:").input_ids)


def test_long_input_keeps_the_start_as_every_family_does(builtin_repl):
    repl = builtin_repl(active="gpt2")
    repl.session.set("gpt2", "max_new_tokens", "8")
    line = " ".join(str(n) for n in range(200))
    encoding = tokenize(repl.session, "gpt2", line)
    tokenizer = repl.session.loaded["gpt2"].tokenizer
    full = tokenizer(line).input_ids
    room = 128 - 8
    assert encoding.input_ids == full[:room]
    (notice,) = encoding.notices
    assert notice == f"input truncated to {room} tokens: {len(full) - room} dropped from the end"


def test_max_new_tokens_that_leaves_no_room_is_refused(builtin_repl):
    import plugins.gpt2

    repl = builtin_repl(active="gpt2")
    repl.evaluate("/load gpt2")
    assert "leaves no room for input" in repl.evaluate("/set max_new_tokens 128").error  # once loaded: at /set
    model = repl.session.loaded["gpt2"]
    with pytest.raises(ModelError, match="leaves no room for input"):  # the hook's own check, for other callers
        plugins.gpt2.tokenize(model, "hello", {"max_new_tokens": 128}, [])


def test_context_keeps_earlier_turns_and_trims_the_oldest(builtin_repl):
    repl = builtin_repl(active="gpt2")
    repl.session.set("gpt2", "max_new_tokens", "4")
    assert repl.evaluate("/context on").text == "gpt2: context on"
    first = repl.evaluate("first line").turns[0]
    second_encoding = tokenize(repl.session, "gpt2", "second")
    tokenizer = repl.session.loaded["gpt2"].tokenizer
    assert tokenizer.decode(second_encoding.input_ids) == "first line" + first.output + "\nsecond"
    for number in range(12):
        repl.evaluate(f"turn number {number} with some more words")
    trimmed = tokenize(repl.session, "gpt2", "last")
    assert len(trimmed.input_ids) <= 128 - 4
    assert any(n.startswith("context trimmed:") for n in trimmed.notices)
    assert tokenizer.decode(trimmed.input_ids).endswith("\nlast")
    repl.evaluate("/context off")
    assert tokenize(repl.session, "gpt2", "last").input_ids == tokenizer("last").input_ids


def test_context_is_refused_for_models_without_it(builtin_repl):
    repl = builtin_repl(active="bert")
    assert "keeps no conversation context" in repl.evaluate("/context on").error


def test_same_seed_and_settings_give_the_same_sample(builtin_repl):
    repl = builtin_repl(active="gpt2")
    for line in ("/set do_sample on", "/set max_new_tokens 12", "/set seed 7"):
        assert repl.evaluate(line).error is None
    first = repl.evaluate("Once upon a time").turns[0].output
    again = repl.evaluate("Once upon a time").turns[0].output
    repl.evaluate("/set seed 8")
    other = repl.evaluate("Once upon a time").turns[0].output
    assert first == again
    assert other != first
