"""Bad input, typed into the real REPL loop or piped to the CLI: one clear line each, and the REPL goes on.

Covered elsewhere: misspelt commands with a close match (test_repl.py), a
checkpoint of another family and a directory that is not a checkpoint
(test_loading.py), a BERT line with no mask or with 50 masks
(test_models_bert.py), and bad values given with --set at start-up (test_cli.py).
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from repl.store import paths


def paste(text):
    """Keys for pasting `text` and pressing Enter: a bracketed paste inserts control characters as they are."""
    return "\x1b[200~" + text + "\x1b[201~\r"


def drive_lines(repl_driver, repl, *lines):
    """Each line pasted and sent, then Ctrl-D; returns the drive."""
    return repl_driver(repl).keys("".join(paste(line) for line in lines) + "\x04")


def assert_one_line(message):
    assert message and "\n" not in message and "\x1b" not in message, repr(message)


@pytest.fixture
def gpt2_repl(builtin_repl):
    return builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2, "stream": False})


def test_empty_and_whitespace_lines_send_nothing_and_the_next_line_answers(gpt2_repl, repl_driver):
    drive = repl_driver(gpt2_repl).keys("\r" + "   \r" + paste("\t \t") + paste("\u3000\u2028 ") + "Hello\r\x04")

    blank, spaces, tabs, unicode_spaces, hello = drive.results
    for result in (blank, spaces, tabs, unicode_spaces):
        assert (result.text, result.turns, result.error) == ("", [], None)
    assert [turn.input for turn in gpt2_repl.session.turns] == ["Hello"]
    assert hello.turns[0].ok and hello.turns[0].stats.new_tokens == 2
    assert "error" not in drive.stderr


def test_control_characters_and_nul_reach_the_model_as_typed(gpt2_repl, repl_driver):
    typed = "a\x00b \x07bell \x1b[31mred\x1b[0m \x7f\x01"

    drive = drive_lines(repl_driver, gpt2_repl, typed, "Hello")

    sent, hello = drive.turns
    assert sent.input == typed and sent.ok and sent.stats.new_tokens == 2
    assert hello.ok


def test_control_characters_in_a_command_are_shown_escaped_on_one_line(gpt2_repl, repl_driver):
    drive = drive_lines(repl_driver, gpt2_repl, "/\x1b[2Jclear", "/use \x00", "/help \x1b]0;title\x07", "/show")

    cleared, use, explained, show = drive.results
    assert cleared.error == "unknown command /\\x1b[2Jclear; did you mean /clear?"
    assert use.error == "unknown model '\\x00'; known: bert, gpt2, mt0"
    assert explained.error == "unknown command /\\x1b]0;title\\x07; try /help"
    assert "\x1b" not in drive.stderr and "\x00" not in drive.stderr and "\x07" not in drive.stderr
    assert show.ok and show.text.startswith("gpt2 (causal,")


def test_a_command_name_ends_at_any_whitespace(gpt2_repl, repl_driver):
    drive = repl_driver(gpt2_repl).keys(paste("/set\tmax_new_tokens 3") + "/hel\x1b\rlo\r" + "\x04")

    tabbed, newline = drive.results
    assert tabbed.text == "gpt2: max_new_tokens = 3"
    assert newline.error == "unknown command /hel; did you mean /help?"


def test_unknown_and_misspelt_commands(gpt2_repl, repl_driver):
    typed = ["/HELP", "/Modles", "/xyzzy", "/", "/help sesion", "/help xyzzy", "/help"]
    drive = drive_lines(repl_driver, gpt2_repl, *typed)

    *refused, listing = drive.results
    assert [result.error for result in refused] == [
        "unknown command /HELP; did you mean /help?",
        "unknown command /Modles; did you mean /models?",
        "unknown command /xyzzy; try /help",
        "a command name must follow '/': try /help",
        "unknown command /sesion; did you mean /session?",
        "unknown command /xyzzy; try /help",
    ]
    assert listing.ok and "/quit" in listing.text


USAGES = {
    "/use": "usage: /use NAME",
    "/use gpt2 mt0": "usage: /use NAME",
    "/load": "usage: /load NAME [CHECKPOINT]",
    "/load gpt2 one two": "usage: /load NAME [CHECKPOINT]",
    "/unload": "usage: /unload NAME",
    "/set": "usage: /set KEY VALUE",
    "/set max_new_tokens": "usage: /set KEY VALUE",
    "/set max_new_tokens 3 4": "usage: /set KEY VALUE",
    '/set max_new_tokens "3': "cannot read the arguments (No closing quotation); usage: /set KEY VALUE",
    "/stats maybe": "usage: /stats [on|off]",
    "/context on off": "usage: /context [on|off]",
    "/context 1": "usage: /context [on|off]",
    "/models all": "usage: /models",
    "/show gpt2 mt0": "usage: /show [NAME]",
    "/plugins all": "usage: /plugins",
    "/help set use": "usage: /help [COMMAND|set]",
    "/quit now": "usage: /quit",
    "/tokens": "usage: /tokens",
    "/tokens gpt2 --": "usage: /tokens",
    "/session": "usage: /session",
    "/history x": "usage: /history",
}


def test_missing_extra_or_ill_typed_arguments_get_the_usage(gpt2_repl, repl_driver):
    drive = drive_lines(repl_driver, gpt2_repl, *USAGES, "Hello")

    *refused, hello = drive.results  # `/quit now` did not quit: every line got its answer
    for (line, usage), result in zip(USAGES.items(), refused):
        assert usage in result.error, line
        assert_one_line(result.error)
    assert hello.turns[0].ok


SETTING_REFUSALS = {
    "/set max_new_tokens 0": "max_new_tokens takes a whole number from 1 to 100000, not 0",
    "/set max_new_tokens 100001": "max_new_tokens takes a whole number from 1 to 100000, not 100001",
    "/set max_new_tokens ten": "max_new_tokens takes a whole number from 1 to 100000, not 'ten'",
    "/set max_new_tokens 2.5": "max_new_tokens takes a whole number from 1 to 100000, not '2.5'",
    "/set max_new_tokens 1e3": "max_new_tokens takes a whole number from 1 to 100000, not '1e3'",
    "/set temperature -1": "temperature takes a number from 0 to 100, not -1.0",
    "/set temperature nan": "temperature takes a number from 0 to 100, not nan",
    "/set temperature 1e999": "temperature takes a number from 0 to 100, not inf",
    "/set top_p 1.5": "top_p takes a number from 0 to 1, not 1.5",
    "/set num_beams 0": "num_beams takes a whole number from 1 to 64, not 0",
    "/set do_sample maybe": "do_sample takes on or off, not 'maybe'",
    "/set seed -1": "seed takes a whole number from 0 to 4294967295 (or none), not -1",
    "/set seed 4294967296": "seed takes a whole number from 0 to 4294967295 (or none), not 4294967296",
    "/set stream sometimes": "stream takes on or off, not 'sometimes'",
}


def test_set_refuses_out_of_range_and_wrong_type_values_and_changes_nothing(gpt2_repl, repl_driver):
    before = dict(gpt2_repl.session.settings_of("gpt2"))

    drive = drive_lines(repl_driver, gpt2_repl, *SETTING_REFUSALS, "/set max_new_tokns 3", "Hello")

    *refused, misspelt, hello = drive.results
    assert [result.error for result in refused] == list(SETTING_REFUSALS.values())
    assert misspelt.error == "gpt2 has no setting 'max_new_tokns'; did you mean max_new_tokens?"
    assert gpt2_repl.session.settings_of("gpt2") == before
    assert hello.turns[0].ok and hello.turns[0].stats.new_tokens == 2


def test_use_of_an_unknown_model_keeps_the_active_one(gpt2_repl, repl_driver):
    drive = drive_lines(repl_driver, gpt2_repl, "/use nope", "/use gtp2", "/use GPT2", "/load nope", "Hello")

    *refused, hello = drive.results
    assert [result.error for result in refused] == [
        "unknown model 'nope'; known: bert, gpt2, mt0",
        "unknown model 'gtp2'; did you mean 'gpt2'?",
        "unknown model 'GPT2'; did you mean 'gpt2'?",
        "unknown model 'nope'; known: bert, gpt2, mt0",
    ]
    assert hello.turns[0].model == "gpt2" and hello.turns[0].ok


def test_load_of_paths_that_are_not_usable_checkpoints(gpt2_repl, repl_driver, tiny_checkpoints, tmp_path):
    a_file = tmp_path / "weights.safetensors"
    a_file.write_bytes(b"\x00" * 16)
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(tiny_checkpoints["gpt2"] / "config.json", config_only)
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_checkpoints["gpt2"] / name, no_tokenizer)
    broken_config = tmp_path / "broken-config"
    broken_config.mkdir()
    (broken_config / "config.json").write_bytes(b"{\xff not json")

    drive = drive_lines(
        repl_driver,
        gpt2_repl,
        f"/load gpt2 {a_file}",
        f"/load gpt2 {config_only}",
        f"/load gpt2 {no_tokenizer}",
        f"/load gpt2 {broken_config}",
        "/load gpt2 ~no-such-user-here/model",
        "Hello",
    )

    *refused, hello = drive.results
    errors = [result.error for result in refused]
    assert errors[0] == f"'{a_file}' is a file; a checkpoint is a directory with config.json and weights"
    # The tokenizer is checked before the weights, while a model it would replace is still loaded.
    assert errors[1] == f"checkpoint '{config_only}' has no usable tokenizer: its vocabulary files are missing"
    assert errors[2] == f"checkpoint '{no_tokenizer}' has no usable tokenizer: its vocabulary files are missing"
    assert errors[3].startswith(f"cannot read checkpoint '{broken_config}': ")
    assert errors[4] == "checkpoint directory '~no-such-user-here/model' does not exist"
    for error in errors:
        assert_one_line(error)
    assert gpt2_repl.session.host.statuses["gpt2"].problems == []  # the user's mistakes, not the plugin's
    assert hello.turns[0].ok and hello.turns[0].checkpoint == str(tiny_checkpoints["gpt2"])


def test_a_line_that_tokenizes_to_no_tokens(builtin_repl, repl_driver):
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2, "stream": False})

    drive = drive_lines(repl_driver, repl, "\u200b\ufeff", "\x01\x02", "Bonjour")

    zero_width, control, bonjour = drive.turns
    assert zero_width.error == control.error == "the line has no text mt0's tokenizer can read"
    assert bonjour.ok


# -- piped to the CLI -------------------------------------------------------------------

LONG_LINE = ("The quick brown fox jumps over the lazy dog. " * 4445)[:200_000]


@pytest.mark.slow
def test_stdin_with_invalid_utf8_nul_control_characters_and_a_200000_character_line(tiny_checkpoints):
    """One modelrepl process reads all of it; each bad line gets a one-line answer and the last line is answered."""
    stdin = b"\n".join(
        [
            b"caf\xe9 \xff\xfe ok",
            b"nul\x00byte \x07\x1b[31mred",
            b"",
            b" \t ",
            LONG_LINE.encode(),
            b"windows line\r",
            b"/hepl",
            b"/use \xff",
            b"/\x1b[2J",
            b"/set max_new_tokens \xff",
            b"Hello",
        ]
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELREPL_PLUGINS": "gpt2"}  # XDG dirs: the test's own

    gpt2 = ["-m", f"gpt2={tiny_checkpoints['gpt2']}", "--set", "max_new_tokens=2", "--no-stream"]

    done = subprocess.run(
        [sys.executable, "-m", "repl", *gpt2],
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=300,
    )

    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 1  # some lines failed; none stopped the run
    assert "Traceback" not in stderr and "\x1b" not in stderr
    assert "indexing errors" not in stderr  # transformers' warning about the long line; the cut is noticed instead
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: unknown command /hepl; did you mean /help?",
        "error: unknown model '\ufffd'; known: gpt2",
        "error: unknown command /\\x1b[2J; try /help",
        "error: max_new_tokens takes a whole number from 1 to 100000, not '\ufffd'",
    ]
    assert "note: input truncated to 126 tokens:" in stderr
    transcript = paths.transcript_file().read_text(encoding="utf-8")
    turns = [json.loads(line) for line in transcript.splitlines()]
    assert [turn["input"] for turn in turns] == [
        "caf\ufffd \ufffd\ufffd ok",
        "nul\x00byte \x07\x1b[31mred",
        LONG_LINE,
        "windows line",
        "Hello",
    ]
    assert all(turn["error"] is None and turn["stats"]["new_tokens"] == 2 for turn in turns)
    assert turns[2]["stats"]["input_tokens"] == 126


@pytest.mark.slow
def test_invalid_utf8_in_execute_arguments_is_replaced_as_on_stdin(tiny_checkpoints):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELREPL_PLUGINS": "gpt2"}
    arguments = [b"-m", f"gpt2={tiny_checkpoints['gpt2']}".encode(), b"--set", b"max_new_tokens=2", b"--no-stream"]

    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"repl", *arguments, b"-e", b"caf\xe9", b"-e", b"/use \xff"],
        capture_output=True,
        env=environment,
        timeout=300,
    )

    stderr = done.stderr.decode("utf-8")
    assert "Traceback" not in stderr and "internal error" not in stderr and "plugin 'gpt2'" not in stderr
    assert "error: unknown model '\ufffd'; known: gpt2" in stderr.splitlines()
    (turn,) = [json.loads(line) for line in paths.transcript_file().read_text(encoding="utf-8").splitlines()]
    assert turn["input"] == "caf\ufffd" and turn["error"] is None


def test_invalid_utf8_typed_at_the_terminal_becomes_replacement_characters(gpt2_repl, tmp_path):
    """A Latin-1 terminal sends é as the single byte E9; prompt_toolkit passes such bytes on as lone surrogates."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from repl.terminal.reader import TerminalReader

    history = tmp_path / "history"
    results = []
    with create_pipe_input() as keyboard, create_app_session(input=keyboard, output=DummyOutput()):
        keyboard.send_bytes(b"caf\xe9 au lait\r/use \xff\r\x04")
        hung_up = threading.Timer(60, keyboard.close)  # a prompt_toolkit crash waits for Enter: end a failing run
        hung_up.start()
        try:
            for line in TerminalReader(gpt2_repl, history, 100).lines():
                results.append(gpt2_repl.handle(line))
        finally:
            hung_up.cancel()

    typed, use = results
    assert typed.turns[0].input == "caf\ufffd au lait" and typed.turns[0].ok
    assert use.error == "unknown model '\ufffd'; known: bert, gpt2, mt0"
    assert history.read_text(encoding="utf-8").splitlines() == ['"caf\ufffd au lait"', '"/use \ufffd"']
