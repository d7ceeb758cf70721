from repl.api import RunControl
from repl.testing import check_plugin, tokenize


def test_echo_keeps_the_plugin_contract():
    check_plugin("echo")


def test_echo_and_shout_answer_in_the_repl(plugin_repl, repl_driver):
    drive = repl_driver(plugin_repl("echo", active="echo")).lines("hello  world", "/use shout", "hello world")

    assert [turn.output for turn in drive.turns] == ["hello world", "HELLO WORLD"]
    assert drive.stdout.splitlines()[-1] == "HELLO WORLD"


def test_the_checkpoint_chooses_the_transformation(plugin_repl):
    repl = plugin_repl("echo", active="echo")

    assert repl.evaluate("/load echo reverse").ok
    assert repl.evaluate("hello world").turns[0].output == "olleh dlrow"
    refused = repl.evaluate("/load echo sideways")
    assert refused.error == "echo has no checkpoint 'sideways'; it knows plain, upper, reverse"


def test_the_tokenizer_adds_the_end_token_and_a_typed_one_is_not_added(plugin_repl):
    repl = plugin_repl("echo", active="echo")

    tokens = tokenize(repl.session, "echo", "stop </e> here").tokens

    assert [(t.piece, t.special, t.added) for t in tokens] == [
        ("stop", False, False),
        ("</e>", True, False),
        ("here", False, False),
        ("</e>", True, True),
    ]


def test_max_new_tokens_cuts_the_reply_short(plugin_repl):
    repl = plugin_repl("echo", active="echo", settings={"echo": {"max_new_tokens": 2}})

    (turn,) = repl.evaluate("one two three").turns

    assert turn.output == "one two"
    assert turn.stats.stop_reason == "max_new_tokens"


def test_ctrl_c_stops_the_reply_between_two_words(plugin_repl):
    repl = plugin_repl("echo", active="echo")
    call = repl.session.host.call
    model = repl.load("echo")
    encoding = tokenize(repl.session, "echo", "one two three")
    control = RunControl(stream=lambda text: control.cancel())  # Ctrl-C as soon as the first word shows

    output = call("echo", "run", model=model, encoding=encoding, settings={"max_new_tokens": 64}, control=control)
    reply = call("echo", "decode", model=model, encoding=encoding, output=output, settings={})

    assert control.streamed == ["one"]
    assert (reply.text, reply.stop_reason) == ("one", "max_new_tokens")


def test_vocab_lists_the_words_seen(plugin_repl):
    repl = plugin_repl("echo", active="shout")
    repl.evaluate("hi there")

    assert repl.evaluate("/vocab").text == "shout: 5 words: 0:</e> 1:hi 2:there 3:HI 4:THERE"
    assert repl.evaluate("/vocab nobody").error.startswith("unknown model 'nobody'")
