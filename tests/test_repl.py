"""The interactive REPL through its real prompt_toolkit loop."""

from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.document import Document

from repl.terminal.completion import ReplCompleter
from repl.terminal.reader import TerminalReader


def completions(repl, text):
    return [c.text for c in ReplCompleter(repl).get_completions(Document(text), None)]


def test_completes_commands_models_settings_and_values(builtin_repl):
    repl = builtin_repl(active="gpt2")
    assert {"/use", "/unload"} <= set(completions(repl, "/u"))
    assert completions(repl, "/use g") == ["gpt2"]  # not gpt-2: it names the default checkpoint, not this one
    assert completions(repl, "/set max") == ["max_new_tokens"]
    assert completions(repl, "/set do_sample ") == ["on", "off"]
    assert completions(repl, "/stats o") == ["on", "off"]
    assert completions(repl, "hello /u") == []


def test_multi_line_input_with_esc_enter_and_triple_quotes(builtin_repl, repl_driver):
    driver = repl_driver(builtin_repl(active="gpt2"))
    drive = driver.keys('first\x1b\rsecond\r"""\rthird\rfourth\r"""\r\x04')
    assert drive.inputs == ["first\nsecond", "third\nfourth"]


def test_ctrl_c_clears_the_line_and_ctrl_d_ends(builtin_repl, repl_driver):
    driver = repl_driver(builtin_repl())
    drive = driver.keys("/mod\x03/models\r\x04")
    assert drive.inputs == ["/models"]
    assert "bigscience/mt0-small" not in drive.stderr


def test_history_persists_between_sessions_and_is_suggested(builtin_repl, repl_driver, tmp_path):
    repl = builtin_repl()
    repl_driver(repl).lines("/show", "/models")
    history = (tmp_path / "history").read_text(encoding="utf-8").splitlines()
    assert history == ['"/show"', '"/models"']
    driver = repl_driver(builtin_repl())
    drive = driver.keys("\x1b[A\r\x04")  # the up arrow recalls the last entry of the earlier session
    assert drive.inputs == ["/models"]
    reader = TerminalReader(driver.repl, tmp_path / "history", 100)
    entries = list(reader.prompt_session.history.load_history_strings())
    assert entries == ["/models", "/show"]  # newest first; a repeat of the last entry is not stored twice
    assert isinstance(reader.prompt_session.auto_suggest, AutoSuggestFromHistory)


def test_unknown_command_suggests_the_nearest(builtin_repl, repl_driver):
    drive = repl_driver(builtin_repl()).lines("/hlep", "/modls")
    assert "error: unknown command /hlep; did you mean /help?" in drive.stderr
    assert "error: unknown command /modls; did you mean /models?" in drive.stderr


def test_help_lists_every_command_and_explains_one(builtin_repl):
    repl = builtin_repl()
    listing = repl.evaluate("/help").text
    for name in ("help", "models", "use", "load", "unload", "set", "show", "plugins", "quit"):
        assert f"/{name}" in listing
    assert repl.evaluate("/help quit").text == "/quit (also /exit, /q)\n  leave modelrepl (Ctrl-D does too)"


def test_models_shows_checkpoint_device_dtype_parameters_and_memory(builtin_repl, tiny_checkpoints):
    repl = builtin_repl(active="mt0")
    repl.evaluate("/load mt0")
    listing = repl.evaluate("/models").text
    (row,) = [line for line in listing.splitlines() if line.startswith("* mt0")]
    assert str(tiny_checkpoints["mt0"]) in row and "cpu, float32" in row and "parameters" in row and "KiB" in row


def test_use_switches_the_model_and_slash_slash_reaches_the_model(builtin_repl):
    repl = builtin_repl()
    assert repl.session.active == "mt0"
    assert repl.evaluate("/use bert-base").text.startswith("active model: bert (masked")
    (turn,) = repl.evaluate("//[MASK] is a path").turns
    assert turn.input == "/[MASK] is a path" and turn.ok


def test_quit_ends_the_loop(builtin_repl, repl_driver):
    drive = repl_driver(builtin_repl()).lines("/show", "/quit", "/models")
    assert drive.inputs == ["/show", "/quit"]


def test_plugin_commands_are_added_to_each_repl_only(builtin_repl):
    from repl import hookimpl
    from repl.testing import make_host, make_repl

    class Shout:
        @hookimpl
        def register_commands(self, register):
            register("shout", lambda repl, args: args.upper(), help="shout it")

    with_plugin = make_repl(make_host(("shout", Shout())))
    assert with_plugin.evaluate("/shout hey").text == "HEY"
    assert builtin_repl().evaluate("/shout hey").error.startswith("unknown command /shout;")
