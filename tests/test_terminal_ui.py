"""What a user meets at the prompt: toolbar, colour, width, feedback, command defaults, history, editor,
completion, clipboard and files, batch streams (issue 14's toolbar and rough edges)."""

import io
import json
import os
import stat
import sys
import threading
import time

import pexpect
import pytest
from prompt_toolkit.document import Document

from repl import cli
from repl.terminal.completion import ReplCompleter
from repl.terminal.renderer import Renderer, colour_wanted
from repl.terminal.spinner import ERASE_LINE, Working
from repl.terminal.toolbar import toolbar_text

TAUGHT_MT0 = "Translate to English: Je t'aime."
TAUGHT_GPT2 = "Say hi in Chinese:"


class TerminalLike(io.StringIO):
    def isatty(self):
        return True


def test_toolbar_keeps_model_device_and_the_last_reply_in_80_columns(taught_repl):
    repl = taught_repl(active="mt0", mt0={"max_new_tokens": 3})
    repl.handle(TAUGHT_MT0)
    facts = repl.toolbar_facts()

    narrow, wide = toolbar_text(facts, 80), toolbar_text(facts, 120)

    essential = "mt0 on cpu float32 | last: 3 tok, "
    for bar in (narrow, wide):
        assert bar.startswith(" " + essential) and " tok/s, max_new_tokens" in bar
    assert len(narrow) <= 80 and len(wide) <= 120
    assert "max_new_tokens=3" in wide and "do_sample=off" in wide  # settings follow while there is room
    assert len(wide) > len(narrow)
    assert all(part.count("=") <= 1 for part in narrow.split(" | "))  # settings are dropped whole, never cut


def test_colour_on_a_terminal_only_and_never_with_no_color():
    assert colour_wanted(TerminalLike(), {})
    assert not colour_wanted(TerminalLike(), {"NO_COLOR": "1"})
    assert not colour_wanted(io.StringIO(), {})

    coloured = Renderer(TerminalLike(), TerminalLike(), terminal=True, colour=True)
    coloured.problem("it broke")
    coloured.notice("by the way")
    err = coloured.err.getvalue()
    assert "\x1b[0;31merror: it broke" in err  # red
    assert "\x1b[0;90mnote: by the way" in err  # dim grey

    plain = Renderer(TerminalLike(), TerminalLike(), terminal=True, colour=False)
    plain.problem("it broke")
    assert plain.err.getvalue() == "error: it broke\n"


@pytest.fixture
def pty_repl(tiny_checkpoints, tmp_path):
    """modelrepl at a pseudo-terminal, 80 columns, on a tiny mt0 that can generate for a long time."""
    children = []

    def start(**extra_env):
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "PYTHONPATH": os.getcwd(),
            **extra_env,
        }
        child = pexpect.spawn(
            sys.executable,
            ["-m", "repl", "-m", f"mt0={tiny_checkpoints['mt0']}", "--no-log", "--set", "max_new_tokens=100000"],
            env=env,
            encoding="utf-8",
            timeout=120,
            dimensions=(30, 80),
        )
        children.append(child)
        child.expect("mt0")
        child.expect(">")
        return child

    yield start
    for child in children:
        if child.isalive():
            child.kill(9)


@pytest.mark.slow
def test_at_a_terminal_colour_shows_and_ctrl_c_leaves_no_echo_in_the_reply(pty_repl):
    child = pty_repl()
    assert "\x1b[" in child.before and "36" in child.before  # the prompt's model name in cyan
    child.sendline("/nonsense")
    child.expect("unknown command")
    assert "31m" in child.before  # the error in red
    child.expect(">")
    child.sendline("hello")
    child.expect("ra", timeout=120)  # the tiny random model streams this piece over and over
    child.sendintr()
    child.expect("cancelled", timeout=20)
    assert "^C" not in child.before
    child.expect(">")
    child.sendcontrol("d")
    child.expect(pexpect.EOF, timeout=20)


@pytest.mark.slow
def test_no_color_turns_colour_off_at_a_terminal(pty_repl):
    child = pty_repl(NO_COLOR="1")
    child.sendline("/nonsense")
    child.expect("unknown command")
    child.expect(">")
    child.sendcontrol("d")
    child.expect(pexpect.EOF, timeout=20)
    assert "31m" not in child.before
    for colour in ("[31m", ";31m", "[36m", ";36m"):
        assert colour not in child.before


def test_help_and_tables_wrap_to_the_width_without_cutting_words(builtin_repl, monkeypatch):
    repl = builtin_repl(active="gpt2")
    repl.renderer.terminal = True
    repl.evaluate("/load gpt2")
    for columns in (60, 80):
        monkeypatch.setenv("COLUMNS", str(columns))
        shown = repl.evaluate("/help").text
        assert max(len(line) for line in shown.splitlines()) <= columns
        words = shown.split()
        for found in repl.commands:
            assert all(word in words for word in found.help.split())  # every word whole
    monkeypatch.setenv("COLUMNS", "80")
    models = repl.evaluate("/models").text
    assert max(len(line) for line in models.splitlines()) <= 80
    assert "parameters," in models.split() and "not loaded" in models


def test_help_set_lists_the_settings_with_their_ranges(builtin_repl):
    shown = builtin_repl(active="gpt2").evaluate("/help set").text
    assert "settings of gpt2" in shown
    assert "max_new_tokens" in shown and "a whole number from 1" in shown and "100000" in shown
    assert "temperature" in shown and "stream" in shown and "on or off" in shown


def test_command_defaults_stats_show_retry(taught_repl, repl_driver):
    repl = taught_repl(active="mt0")
    drive = repl_driver(repl).lines("/stats", "/show gpt2", TAUGHT_MT0, "/use gpt2", "/retry")
    stats, show, _, _, retry = drive.results
    assert stats.text == "stats off" and not repl.show_stats
    assert show.text.startswith("gpt2 (causal") and "max_new_tokens" in show.text
    (turn,) = retry.turns
    assert (turn.model, turn.input) == ("mt0", TAUGHT_MT0)  # the same model as the last turn, not the active one
    assert turn.output == "I love you."


def test_broadcast_shows_in_the_prompt(builtin_repl, repl_driver):
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from repl.terminal.reader import TerminalReader

    repl = builtin_repl(active="gpt2")
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        reader = TerminalReader(repl, repl_driver(repl).history_path, 10)
        assert "".join(text for _, text in reader.prompt_text()) == "gpt2> "
        repl.evaluate("/compare gpt2 bert")
        assert "".join(text for _, text in reader.prompt_text()) == "gpt2+bert> "
        assert reader.prompt_text()[0][0] == "class:prompt.model"


def test_compare_does_not_send_the_quotes(taught_repl):
    repl = taught_repl(active="mt0", mt0={"max_new_tokens": 3})
    repl.evaluate(f'/compare mt0 gpt2 -- "{TAUGHT_MT0}"')
    assert [turn.input for turn in repl.session.turns] == [TAUGHT_MT0, TAUGHT_MT0]
    repl.evaluate('/compare mt0 gpt2 -- "Yes," she said.')
    assert repl.session.turns[-1].input == '"Yes," she said.'


def test_a_block_is_one_history_entry_recalled_whole(builtin_repl, repl_driver):
    driver = repl_driver(builtin_repl(active="gpt2"))
    typed = driver.keys('"""\r/help\rstats\r"""\r\x04')
    # Up-arrow in a new prompt (history loads in the background, so not in the one that stored it).
    recalled = driver.keys("\x1b[A\r\x04")
    assert typed.inputs == recalled.inputs == ["/help\nstats"]
    assert recalled.results[0].text.startswith("/stats")  # a newline ends a command's name as a space does
    entries = [json.loads(line) for line in driver.history_path.read_text(encoding="utf-8").splitlines()]
    assert entries == ['"""\n/help\nstats\n"""']


def test_ctrl_x_ctrl_e_edits_the_line_in_the_editor(builtin_repl, tmp_path, monkeypatch):
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from repl.terminal.reader import TerminalReader

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "/help %s" "$(cat "$1")" > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    repl = builtin_repl(active="gpt2")
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        keys.send_text("stats\x18\x05")  # the editor runs meanwhile: keys sent now would reach this prompt
        hung_up = threading.Timer(60, keys.close)  # a failing run must not wait forever
        hung_up.start()
        try:
            lines = TerminalReader(repl, tmp_path / "history", 10).lines()
            edited = next(lines)
            keys.send_text("\x04")
            assert list(lines) == []
        finally:
            hung_up.cancel()
    assert edited == "/help stats"
    assert repl.evaluate(edited).text.startswith("/stats")


def test_load_completes_the_checkpoint_path(builtin_repl, tmp_path):
    (tmp_path / "checkpoints" / "tiny-gpt2").mkdir(parents=True)
    repl = builtin_repl(active="gpt2")
    text = f"/load gpt2 {tmp_path}/checkpoints/ti"
    found = [c.text for c in ReplCompleter(repl).get_completions(Document(text), None)]
    assert found == ["ny-gpt2"]
    assert "gpt2" in [c.text for c in ReplCompleter(repl).get_completions(Document("/load gp"), None)]


def test_context_on_keeps_only_the_turns_from_then(taught_repl):
    repl = taught_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    repl.handle("before")
    repl.handle("/context on")
    repl.handle(TAUGHT_GPT2)
    assert [said for said, _ in repl.session.history("gpt2")] == [TAUGHT_GPT2]
    repl.handle("/context off")
    repl.handle("/context on")
    assert repl.session.history("gpt2") == []


def test_batch_mode_sends_confirmations_to_stderr(taught_checkpoints, capsys):
    status = cli.main(
        ["--no-log", "-m", f"gpt2={taught_checkpoints['gpt2']}", "-e", "/set max_new_tokens 20", "-e", TAUGHT_GPT2]
    )
    out, err = capsys.readouterr()
    assert status == 0
    assert out == " 我爱你 😀 🎉\n"
    assert "gpt2: max_new_tokens = 20" in err


def test_config_show_prints_the_values_in_force_without_a_file(capsys):
    assert cli.main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "no config file" in shown and "the defaults are in force" in shown
    assert 'default_model = "mt0"' in shown and 'device = "auto"' in shown and "history_size = 1000" in shown


def test_copy_puts_the_last_reply_on_the_clipboard(taught_repl, repl_driver):
    repl = taught_repl(active="mt0")
    drive = repl_driver(repl).keys(f"{TAUGHT_MT0}\r/copy\r\x19\r\x04")  # Ctrl-Y pastes the clipboard
    assert drive.inputs[-1] == "I love you."
    assert repl.clipboard.get_data().text == "I love you."

    terminal = Renderer(TerminalLike(), TerminalLike(), terminal=True)
    terminal.copy_to_terminal("I love you.")
    assert terminal.out.getvalue() == "\x1b]52;c;SSBsb3ZlIHlvdS4=\x07"  # OSC 52, base64


def test_save_writes_the_last_reply_privately_and_refuses_to_overwrite(taught_repl, tmp_path):
    repl = taught_repl(active="mt0")
    target = tmp_path / "reply.txt"
    assert "no reply yet" in repl.evaluate(f"/save {target}").error
    repl.evaluate(TAUGHT_MT0)
    assert repl.evaluate(f"/save {target}").ok
    assert target.read_text(encoding="utf-8") == "I love you.\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target.write_text("mine")
    assert "--force replaces it" in repl.evaluate(f"/save {target}").error
    assert target.read_text() == "mine"
    assert repl.evaluate(f"/save {target} --force").ok
    assert target.read_text(encoding="utf-8") == "I love you.\n"


def test_spinner_draws_on_a_terminal_then_erases_itself():
    screen = io.StringIO()
    with Working(screen, lambda: "loading gpt2"):
        time.sleep(0.5)
    shown = screen.getvalue()
    assert "loading gpt2" in shown and shown.endswith(ERASE_LINE)


def test_no_spinner_in_batch_or_json_output(taught_repl):
    for json_mode in (False, True):
        repl = taught_repl(active="bert", json_mode=json_mode)
        repl.handle("the capital of france is [MASK] .")
        assert "\r" not in repl.renderer.out.getvalue() + repl.renderer.err.getvalue()


def test_a_refused_load_prints_no_load_report_or_progress_bars(builtin_repl, tmp_path, capfd):
    from repl.testing import build_checkpoint

    headless = build_checkpoint("bert", tmp_path / "headless", head=False)
    capfd.readouterr()
    error = builtin_repl(active="bert").evaluate(f"/load bert {headless}").error
    assert "has no masked LM (encoder-only) head" in error
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in printed.err and "Loading weights" not in printed.err
    assert printed.out == ""
