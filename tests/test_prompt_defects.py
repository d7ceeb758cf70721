"""Defects a user met at the prompt, second pass (issue 25): each test is named after what it keeps fixed.

The items about the screen run modelrepl at a pseudo-terminal (`screen`) at 60, 80 and 100 columns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

import plugins.chat as chat_plugin
from repl import hookimpl
from repl.api import SEQ2SEQ, Setting
from repl.testing import make_host, make_repl
from repl.testing.checkpoints import build_chat_checkpoint


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory):
    return build_chat_checkpoint(tmp_path_factory.mktemp("chat") / "chatml", "chatml")


@pytest.fixture
def chat_repl(chat_checkpoint, tiny_checkpoints):
    """chat (active) and gpt2 on tiny checkpoints, short replies."""

    def build(json_mode=False):
        checkpoints = {"chat": str(chat_checkpoint), "gpt2": str(tiny_checkpoints["gpt2"])}
        settings = {"chat": {"max_new_tokens": 4}, "gpt2": {"max_new_tokens": 4}}
        host = make_host(chat_plugin, "gpt2")
        return make_repl(host, active="chat", checkpoints=checkpoints, json_mode=json_mode, settings=settings)

    return build


def prompt_text(repl, text: str) -> str:
    """The whole prompt chat is given for `text` (its conversation included), as `/tokens chat` shows it."""
    (record,) = repl.evaluate(f"/tokens chat -- {text}").records
    return repl.session.loaded["chat"].tokenizer.decode([t["id"] for t in record["tokens"]])


# -- 1, 2: /retry answers the last line again, in place of the last answer -----------------------------------------


def test_retry_on_a_chat_model_regenerates_from_the_same_context(chat_repl, repl_driver):
    repl = chat_repl(json_mode=True)
    drive = repl_driver(repl).lines("Hi", "/retry", "/retry")
    first, second, third = drive.turns
    assert first.stats.input_tokens == second.stats.input_tokens == third.stats.input_tokens
    assert [turn for turn in repl.session.turns] == [third]  # each answer replaced the one before
    assert prompt_text(repl, "X").count("Hi") == 1
    assert repl.session.history("chat") == [("Hi", third.output)]


def test_retry_on_another_model_keeps_the_first_models_answer(chat_repl, repl_driver):
    repl = chat_repl(json_mode=True)
    drive = repl_driver(repl).lines("Hi", "/retry gpt2")
    assert [turn.model for turn in repl.session.turns] == ["chat", "gpt2"] == [t.model for t in drive.turns]
    assert repl.session.history("chat") == [("Hi", drive.turns[0].output)]


def test_a_retry_that_fails_keeps_the_answer_it_would_have_replaced(chat_repl, repl_driver):
    repl = chat_repl(json_mode=True)
    drive = repl_driver(repl).lines("Hi", "/set max_new_tokens 1", "/retry")
    repl.session.loaded["chat"].max_input_tokens = 1  # no room left: the retry fails
    drive = repl_driver(repl).lines("/retry")
    assert not drive.turns[0].ok
    assert [turn.input for turn in repl.session.turns if turn.ok] == ["Hi"]
    assert len(repl.session.history("chat")) == 1


def test_retry_in_broadcast_mode_reruns_the_broadcast(chat_repl, repl_driver, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    repl = chat_repl()
    drive = repl_driver(repl).lines("/compare chat gpt2", "Hi", "/retry")
    broadcast, retried = drive.results[1:]
    for result in (broadcast, retried):
        assert "-- chat " in result.text and "-- gpt2 " in result.text and "stop reason" in result.text
    assert [turn.model for turn in repl.session.turns] == ["chat", "gpt2"]
    assert repl.session.history("chat")[0][0] == "Hi" and len(repl.session.history("chat")) == 1


def test_retry_after_a_comparison_reruns_it_and_after_use_only_the_last_model(chat_repl, repl_driver):
    repl = chat_repl(json_mode=True)
    drive = repl_driver(repl).lines("/compare chat gpt2 -- Hi", "/retry")
    assert [record["model"] for record in drive.results[1].records] == ["chat", "gpt2"]
    drive = repl_driver(repl).lines("Hello", "/use gpt2", "Hello", "/retry")
    assert [turn.model for turn in drive.results[-1].turns] == ["gpt2"]


# -- 28: tests do not depend on the caller's offline variables, and the message names the one set ------------------


def without_offline_variables(**extra: str) -> dict[str, str]:
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return {**{key: value for key, value in os.environ.items() if key not in offline}, **extra}


@pytest.mark.slow
def test_an_uncached_checkpoint_names_the_offline_variable_actually_set(tmp_path):
    for variable in ("TRANSFORMERS_OFFLINE", "HF_HUB_OFFLINE"):
        completed = subprocess.run(
            [sys.executable, "-m", "repl", "-m", "gpt2=tiny/uncached", "--no-log", "-e", "Hello"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=without_offline_variables(**{variable: "1", "HF_HOME": str(tmp_path / "hf")}),
            timeout=300,
        )
        assert f"the hub is off ({variable} is set)" in completed.stderr


@pytest.mark.slow
def test_the_no_network_test_passes_with_transformers_offline_set():
    test = "tests/test_prompt_regressions.py::test_without_network_the_hub_cache_answers_at_once_and_an_uncached_id_fails_fast"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        env={**os.environ, "TRANSFORMERS_OFFLINE": "1"},
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]


# -- 3: a fence after a command's `--` opens a block of texts -------------------------------------------------------


def test_score_with_a_block_after_the_separator_scores_each_line(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", json_mode=True)
    typed = '/score gpt2 bert -- """\rThe cat sat.\rA dog ran.\r"""\r'
    drive = repl_driver(repl).keys(typed + "\x04")
    assert drive.inputs == ["/score gpt2 bert -- The cat sat.\nA dog ran."]
    (result,) = drive.results
    assert [(r["model"], r["text"]) for r in result.records] == [
        ("gpt2", "The cat sat."),
        ("bert", "The cat sat."),
        ("gpt2", "A dog ran."),
        ("bert", "A dog ran."),
    ]
    assert '"""' in repl.evaluate("/help score").text


def test_a_command_block_in_piped_input_is_one_input():
    from repl.core.lines import batch_lines

    piped = ['/score gpt2 -- """', "one", "two", '"""', "after", '/system """', "Be brief.", 'Be kind."""']
    assert list(batch_lines(piped)) == ["/score gpt2 -- one\ntwo", "after", "/system Be brief.\nBe kind."]
    assert list(batch_lines(['//not a command """', "x"])) == ['//not a command """', "x"]


# -- 4: a setting that takes text takes the rest of the line ---------------------------------------------------------


class Templated:
    """A plugin model with a text setting of its own."""

    @hookimpl
    def register_models(self, register):
        register("tmpl", family=SEQ2SEQ, checkpoint="none", settings=(Setting("template", str, "{}", "a template"),))


def test_text_settings_take_the_rest_of_the_line_quoted_or_not(chat_repl):
    repl = chat_repl()
    for typed, value in [
        ("Answer very briefly.", "Answer very briefly."),
        ('"Be brief, and kind."', "Be brief, and kind."),
        ("'Quoted' words inside", "'Quoted' words inside"),
    ]:
        result = repl.evaluate(f"/set system {typed}")
        assert result.ok, result.error
        assert repl.session.settings_of("chat")["system"] == value
    assert repl.evaluate("/set max_new_tokens 5 6").error == "usage: /set KEY VALUE"  # other settings: one word

    templated = make_repl(make_host(("templated", Templated())), active="tmpl")
    assert templated.evaluate("/set template Q: {} A:").ok
    assert templated.session.settings_of("tmpl")["template"] == "Q: {} A:"


# -- 5: no accepted setting makes every later line fail --------------------------------------------------------------


def test_a_reply_budget_with_no_room_for_input_is_refused_at_set_with_the_limit(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("/load gpt2", "/set max_new_tokens 2000", "Hello world")
    positions = repl.session.loaded["gpt2"].max_input_tokens
    refusal = drive.results[1].error
    assert refusal.startswith(f"max_new_tokens 2000 leaves no room for input in gpt2's {positions} positions")
    assert refusal.endswith(f"at most {positions - 1}")
    assert repl.session.settings_of("gpt2")["max_new_tokens"] == 2
    assert drive.turns[0].ok


def test_a_reply_budget_set_before_the_load_is_lowered_with_a_note(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2000})
    drive = repl_driver(repl).lines("Hello world", "Hello world")
    first, second = drive.turns
    positions = repl.session.loaded["gpt2"].max_input_tokens
    assert first.ok and second.ok, (first.error, second.error)
    assert first.notices[0].endswith(f"lowered to {positions // 2}") and not second.notices
    assert first.settings["max_new_tokens"] == positions // 2
    assert f"note: max_new_tokens 2000 leaves no room for input in gpt2's {positions}" in drive.stderr

    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2000})
    assert "lowered to" in repl.evaluate("/load gpt2").text


# -- 8: another checkpoint starts a fresh conversation ----------------------------------------------------------------


def test_loading_another_chat_checkpoint_starts_a_fresh_conversation(chat_repl, repl_driver, tmp_path):
    other = build_chat_checkpoint(tmp_path / "other", "chatml", seed=1)
    repl = chat_repl(json_mode=True)
    drive = repl_driver(repl).lines("/system Be brief.", "Hi", f"/load chat {other}")
    note = drive.results[-1].text.splitlines()[-1]
    assert note == (
        f"note: chat starts a fresh conversation on {other}: the 1 earlier turn stays in /history but is not "
        "given to it; the system prompt is kept"
    )
    prompt = prompt_text(repl, "X")
    assert "Hi" not in prompt and "Be brief." in prompt
    assert len(repl.session.turns) == 1  # /history still has it
    drive = repl_driver(repl).lines("Hello", f"/load chat {other}")
    assert "fresh" not in drive.results[-1].text  # the same checkpoint again: nothing changes


# -- 9 to 26: the low ones --------------------------------------------------------------------------------------------


def modelrepl(capsys, *args: str) -> tuple[int, str, str]:
    """`modelrepl ARGS` in this process: (exit status, stdout, stderr)."""
    from repl import cli

    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_a_quantized_copy_named_with_m_is_in_models_before_it_loads(tiny_checkpoints, capsys):
    gpt2 = f"gpt2={tiny_checkpoints['gpt2']}"
    status, out, _ = modelrepl(capsys, "-m", gpt2, "-m", "gpt2@int8", "--no-log", "-e", "/models")
    assert status == 0
    row = next(line for line in out.splitlines() if "gpt2@int8" in line)
    assert "not loaded" in row and str(tiny_checkpoints["gpt2"]) in row


def test_a_bert_line_without_a_mask_is_one_error_and_no_note(builtin_repl, repl_driver):
    drive = repl_driver(builtin_repl(active="bert")).lines("Hello world")
    assert drive.stderr.splitlines()[-1].startswith("error: bert fills in masked words: put [MASK]")
    assert "note: no" not in drive.stderr and drive.turns[0].notices == []


def test_a_misspelt_setting_gets_a_did_you_mean(builtin_repl):
    repl = builtin_repl(active="gpt2")
    assert repl.evaluate("/set temprature 0.5").error == "gpt2 has no setting 'temprature'; did you mean temperature?"
    assert repl.evaluate("/set top_k 3").ok
    remote_like = repl.evaluate("/use bert").ok and repl.evaluate("/set temperature 1").error
    assert remote_like.startswith("'temperature' does not apply to bert (masked); it takes:")  # another model's


def test_on_off_commands_alone_report_their_state_on_stdout(builtin_repl, repl_driver, capsys, monkeypatch):
    monkeypatch.setenv("MODELREPL_PLUGINS", "gpt2")  # stderr holds only what the commands said
    drive = repl_driver(builtin_repl(active="gpt2")).lines("/context", "/context on", "/context", "/stats")
    assert [result.text for result in drive.results] == [
        "gpt2: context off",
        "gpt2: context on",
        "gpt2: context on",
        "stats off",
    ]
    status, out, err = modelrepl(capsys, "-m", "gpt2", "--no-log", "-e", "/stats", "-e", "/context", "-e", "/stats on")
    assert (status, out, err) == (0, "stats off\ngpt2: context off\n", "stats on\n")


def test_remote_tokens_show_no_legend(tiny_checkpoints):
    class Unseen:
        @hookimpl
        def register_models(self, register):
            register("far", family="remote", checkpoint="x")

        @hookimpl
        def load_model(self, spec, checkpoint):
            from repl.api import LoadedModel

            return LoadedModel(spec=spec, checkpoint=checkpoint)

        @hookimpl
        def tokenize(self, text):
            from repl.api import Encoding

            return Encoding(text, [], unseen="the tokens are the server's and not visible")

    repl = make_repl(make_host(("unseen", Unseen())), active="far")
    shown = repl.evaluate("/tokens Hello").text
    assert shown == "far (x): the tokens are the server's and not visible"


def test_setting_probs_does_not_repeat_a_warning_about_another_setting(builtin_repl):
    repl = builtin_repl(active="gpt2")
    warned = repl.evaluate("/set temperature 5").text
    assert warned == "gpt2: temperature = 5\nnote: temperature 5 takes effect only when sampling: /set do_sample on"
    assert repl.evaluate("/set probs on").text == "gpt2: probs = on"
    assert "top_p 0.5 take effect only when sampling" in repl.evaluate("/set top_p 0.5").text


def test_help_names_every_family_and_counts_are_in_words(builtin_repl, repl_driver, capsys):
    from repl.cli import build_parser

    description = build_parser().description
    assert "chat" in description and "remote" in description
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("Hello", "/session save one", "/session save one", "/session replay one")
    assert "(1 turn);" in drive.results[2].error
    assert drive.results[3].text.startswith("replayed 1 of 1 turn from")


def test_compare_without_names_says_which_models_it_compares(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("Hello", "/compare -- Hello")
    assert "note: no models named: comparing the loaded ones, gpt2 (/compare NAME ... -- TEXT)" in drive.stderr


def test_tab_after_a_whole_command_offers_its_arguments_and_aliases_only_of_default_checkpoints(builtin_repl):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from repl.terminal.completion import ReplCompleter

    repl = builtin_repl(active="gpt2")  # the fixture gives every model a tiny checkpoint, not its default

    def completed(text):
        return [c.text for c in ReplCompleter(repl).get_completions(Document(text), CompleteEvent())]

    assert "/use gpt2" in completed("/use") and "/use bert" in completed("/use")
    assert "gpt-2" not in completed("/use ") and "bert-base" not in completed("/use ")
    repl.session.choose_checkpoint("bert", repl.session.spec("bert").checkpoint)
    assert "bert-base" in completed("/use ")


def test_copy_says_where_the_reply_went(builtin_repl, repl_driver):
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("Hello", "/copy")
    said = drive.results[1].text
    assert "Ctrl-Y pastes it" in said and "copied" not in said


def test_replay_with_only_expected_differences_is_no_error(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 6, "do_sample": True})
    drive = repl_driver(repl).lines("Once upon a time", "/session save unseeded")
    path = drive.results[1].text.rsplit(" ", 1)[-1]
    document = json.loads(open(path).read())
    document["turns"][0]["output"] = "something else"
    open(path, "w").write(json.dumps(document))
    result = repl.handle("/session replay unseeded")
    assert result.ok, result.error
    assert "not expected to repeat" in result.text
    assert result.text.endswith("the difference above was expected")


def test_clear_and_history_say_whose_turns_in_plain_quotes(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2}, mt0={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("It's", "/use mt0", "Hi", "/history", "/clear", "/clear")
    history, cleared, again = drive.results[3:]
    assert history.text.splitlines()[0] == '   1 gpt2> "It\'s"'
    assert cleared.text == "cleared 2 turns (gpt2 1, mt0 1); the next turn starts without context"
    assert again.text == "no turns to clear"


def test_loading_a_directory_that_does_not_exist_says_only_that(builtin_repl, repl_driver, tmp_path):
    drive = repl_driver(builtin_repl(active="gpt2")).lines(f"/load gpt2 {tmp_path}/nope")
    assert drive.stderr == f"error: checkpoint directory '{tmp_path}/nope' does not exist\n"


# -- at a terminal: what the screen shows ------------------------------------------------------------------------------

WIDTHS = [60, 80, 100]
LONG_LINE = (
    "Springfield is the capital of Illinois, while Chicago, on the shore of Lake Michigan, is its largest city "
    "and one of the busiest transport hubs of the whole United States of America, famous for its architecture"
)


class Terminal:
    """modelrepl at a pseudo-terminal `width` columns wide, read back by a terminal emulator (pyte).

    The emulator answers prompt_toolkit's questions about the cursor (without
    an answer it never draws the toolbar). It is `spare` columns wider than
    the pseudo-terminal, so that a line modelrepl wrote too long shows as one,
    instead of being wrapped as a terminal would.
    """

    def __init__(self, width: int, args: list[str], home, spare: int = 0, height: int = 40):
        import pexpect
        import pyte

        environment = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "PYTHONPATH": os.getcwd(),
            "NO_COLOR": "1",
        }
        environment.pop("PROMPT_TOOLKIT_NO_CPR", None)
        self.width = width + spare
        self.emulator = pyte.HistoryScreen(self.width, height, history=100_000)
        self.stream = pyte.Stream(self.emulator)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "repl", *args],
            env=environment,
            encoding="utf-8",
            timeout=120,
            dimensions=(height, width),
        )

    def pump(self, quiet: float = 1.5, until: str | None = None, most: float = 120) -> None:
        """Read what modelrepl writes until it has been quiet for `quiet` seconds (or the screen shows `until`)."""
        import pexpect

        end = time.monotonic() + most
        while time.monotonic() < end:
            try:
                written = self.child.read_nonblocking(65536, timeout=quiet)
            except pexpect.TIMEOUT:
                if until is None:
                    return
                continue
            except pexpect.EOF:
                return
            self.stream.feed(written)
            if "\x1b[6n" in written:  # where is the cursor?
                self.child.send(f"\x1b[{self.emulator.cursor.y + 1};{self.emulator.cursor.x + 1}R")
            if until is not None and until in "\n".join(self.emulator.display):
                return
        raise AssertionError(f"the screen never showed {until!r}:\n" + "\n".join(self.emulator.display))

    def type(self, line: str) -> None:
        self.child.send(line + "\r")
        self.pump()

    def lines(self) -> list[str]:
        """Every line on the screen and above it, scrollback first."""
        top = ["".join(line[x].data for x in range(self.width)) for line in self.emulator.history.top]
        return [row.rstrip() for row in top + list(self.emulator.display)]

    def close(self) -> None:
        self.child.kill(9)


def screen(width: int, args: list[str], lines: list[str], home) -> list[str]:
    """Every line modelrepl left on a terminal `width` columns wide, after typing `lines`."""
    terminal = Terminal(width, [*args, "--no-log", "--no-preload"], home, spare=100)
    try:
        terminal.pump()
        for line in lines:
            terminal.type(line)
        return terminal.lines()
    finally:
        terminal.close()


def too_wide(shown: list[str], width: int) -> list[str]:
    from repl.core.layout import cells

    return [line for line in shown if cells(line) > width]


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_tables_and_replies_fit_the_terminal_and_words_stay_whole(width, tiny_checkpoints, tmp_path):
    models = [f"{name}={tiny_checkpoints[name]}" for name in ("gpt2", "mt0", "bert")]
    args = [part for model in models for part in ("-m", model)] + ["-m", "echo", "--set", "max_new_tokens=12"]
    args += ["--set", "echo.max_new_tokens=100"]
    lines = [
        "/set probs on",
        "Hello world",
        "/probs",
        "/compare gpt2 mt0 bert -- Hello [MASK] world",
        "/models",
        "/show",
        "/set an_unknown_setting_with_a_long_name 1",
        "/use echo",
        LONG_LINE,
        "/set stream off",
        LONG_LINE,
    ]
    shown = screen(width, args, lines, tmp_path)
    assert not too_wide(shown, width), "\n".join(too_wide(shown, width))
    words = {word for line in shown for word in line.split()}
    assert set(LONG_LINE.split()) <= words  # streamed or not, every word of the reply is whole on one line
    models_table = shown[next(i for i, line in enumerate(shown) if line.endswith("> /models")) :]
    assert any("…" in line and "gpt2" in line for line in models_table)  # a path shortened from the left


STATS = ("model", "checkpoint", "input tokens", "new tokens", "ttft", "seconds", "tok/s", "stop reason")
STATS_ROWS = [
    (
        "gpt2",
        "/tmp/pytest-of-root/pytest-12/tiny-checkpoints0/gpt2",
        "12",
        "64",
        "0.012s",
        "0.345s",
        "185.5",
        "max_new_tokens",
    ),
    ("remote", "http://127.0.0.1:8000/v1#/tmp/x/tiny-chat", "15", "3", "0.102s", "0.205s", "14.6", "eos"),
]


@pytest.mark.parametrize("width", [30, 60, 80, 100, 160])
def test_a_table_fits_any_width_shortening_paths_from_the_left(width):
    from repl.core.layout import cells, table

    shown = table(STATS, STATS_ROWS, width).splitlines()
    assert max(cells(line) for line in shown) <= width
    if width >= 60:  # every column still there; a path too long is shortened from the left, never cut in pieces
        assert all(header.split()[0] in "\n".join(shown) for header in STATS)
        checkpoint = next(line for line in shown if line.startswith("gpt2")).split()[1]
        assert checkpoint == STATS_ROWS[0][1] or (
            checkpoint.startswith("…") and STATS_ROWS[0][1].endswith(checkpoint[1:])
        )
    else:
        assert "(too narrow to show: " in " ".join(shown)


def test_a_reply_streamed_in_pieces_breaks_at_spaces_as_a_whole_one_does():
    from repl.core.layout import Wrapper, cells

    text = "Springfield, Illinois is the capital.\n  An indented line of words\nsupercalifragilisticexpialidocious end"
    whole = Wrapper(20)
    at_once = whole.feed(text) + whole.finish()
    pieces = Wrapper(20)
    streamed = "".join(pieces.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + pieces.finish()
    assert streamed == at_once
    assert at_once.split("\n") == [
        "Springfield,",
        "Illinois is the",
        "capital.",
        "  An indented line",
        "of words",
        "supercalifragilistic",
        "expialidocious end",
    ]
    assert all(cells(line) <= 20 for line in at_once.split("\n"))
    assert Wrapper(None).feed(text) == text


# -- 7, 11, 12, 17, 27: the toolbar and the stats line tell the truth ---------------------------------------------------


class Served:
    """A model whose tokens stay on a server that sent no counts, as a remote stream cut short does."""

    @hookimpl
    def register_models(self, register):
        register("far", family="remote", checkpoint="http://server/v1")

    @hookimpl
    def load_model(self, spec, checkpoint):
        from repl.api import LoadedModel

        return LoadedModel(spec=spec, checkpoint=checkpoint, device="server host:8000")

    @hookimpl
    def tokenize(self, text):
        from repl.api import Encoding

        return Encoding(text, [], unseen="the tokens are the server's and not visible")

    @hookimpl
    def run(self, encoding, control):
        control.step()
        return "Hello there"

    @hookimpl
    def decode(self, output):
        from repl.api import Reply

        return Reply(text=output, raw_text=output, stop_reason="cancelled")


def test_counts_nobody_sent_are_unknown_not_zero(repl_driver):
    from repl.core.results import turn_record

    repl = make_repl(make_host(("served", Served())), active="far")
    drive = repl_driver(repl).lines("/stats on", "Hi")
    (turn,) = drive.turns
    assert (turn.stats.input_tokens, turn.stats.new_tokens) == (None, None)
    assert "[? in, ? new, ttft " in drive.stdout
    record = turn_record(turn)["stats"]
    assert (record["input_tokens"], record["new_tokens"]) == (None, None)


def test_the_toolbar_of_a_served_model_has_no_stray_dash(repl_driver):
    from repl.terminal.toolbar import toolbar_text

    repl = make_repl(make_host(("served", Served())), active="far")
    repl_driver(repl).lines("Hi")
    assert toolbar_text(repl.toolbar_facts(), 100).startswith(" far on server host:8000 | last: ? tok, ")


def test_the_toolbar_shows_the_active_models_last_reply_and_its_quantization(builtin_repl, repl_driver):
    from repl.api import LoadOptions
    from repl.terminal.toolbar import toolbar_text

    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 3}, mt0={"max_new_tokens": 5})
    repl_driver(repl).lines("Hello", "/compare gpt2 mt0 -- Hello", "/retry mt0 bert")
    assert toolbar_text(repl.toolbar_facts(), 100).startswith(" gpt2 on cpu float32 | last: 3 tok, ")

    repl.session.options = LoadOptions(device="cpu", quantize="int8")
    repl.session.unload("gpt2")
    repl_driver(repl).lines("/load gpt2")
    assert toolbar_text(repl.toolbar_facts(), 100).startswith(" gpt2 on cpu int8 | ")


def test_the_stats_line_labels_the_total_and_leaves_out_what_a_model_did_not_do(builtin_repl, repl_driver):
    repl = builtin_repl(active="bert", gpt2={"max_new_tokens": 3, "stream": False})
    drive = repl_driver(repl).lines("/stats on", "Paris is the [MASK] of France.", "/use gpt2", "Hello")
    bert_line, gpt2_line = [line for line in drive.stdout.splitlines() if line.startswith("[")]
    assert re.fullmatch(r"\[\d+ in, \d\.\d{3}s total, done\]", bert_line)
    assert re.fullmatch(r"\[\d+ in, 3 new, \d\.\d{3}s total, [\d.]+ tok/s, max_new_tokens\]", gpt2_line)  # no ttft


def test_probs_shows_a_small_probability_as_the_reply_does():
    import math

    from repl.app.commands.probs import _p

    assert (_p(math.log(6e-5)), _p(math.log(0.25))) == ("6e-05", "0.250")


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_the_toolbar_says_loading_during_the_warm_start_and_shows_int8(width, tiny_checkpoints, tmp_path):
    args = ["-m", f"gpt2={tiny_checkpoints['gpt2']}", "--quantize", "int8", "--no-log"]
    terminal = Terminal(width, args, tmp_path, height=20)
    try:
        terminal.pump(until="gpt2 (loading…)", quiet=0.2)
        terminal.pump(until="gpt2 on cpu int8", quiet=0.2)  # drawn again when the load is done, nothing typed
        assert terminal.emulator.display[-1].startswith(" gpt2 on cpu int8 | max_new_tokens=64")
    finally:
        terminal.close()


# -- 10: a Ctrl-C that comes with the Enter cancels the line ----------------------------------------------------------


def test_a_ctrl_c_read_with_the_enter_cancels_the_line_and_leaves_the_next_prompt_alone(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    drive = repl_driver(repl).keys("Hello\r\x03/stats\r\x04")  # one read: the Ctrl-C came with the Enter
    assert drive.inputs == ["/stats"] and repl.session.turns == []
    assert "note: cancelled: Ctrl-C came with the Enter that sent the line; it was not sent" in drive.stderr


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_at_a_terminal_ctrl_c_with_enter_cancels_at_once(width, tiny_checkpoints, tmp_path):
    args = ["-m", f"mt0={tiny_checkpoints['mt0']}", "--set", "max_new_tokens=2000", "--no-log", "--no-preload"]
    terminal = Terminal(width, args, tmp_path, height=20)
    try:
        terminal.pump()
        terminal.child.send("Hello\r\x03")
        terminal.pump(until="Ctrl-C came with the Enter", quiet=0.2, most=30)
        terminal.type("/stats")
        assert "stats off" in terminal.lines()
    finally:
        terminal.close()


# -- found driving the REPL ---------------------------------------------------------------------------------------------


def test_a_narrow_toolbar_drops_whole_figures_never_cuts_one():
    from repl.core.results import Stats
    from repl.terminal.toolbar import toolbar_text

    facts = {"model": "mt0", "device": "cpu float32", "last": Stats(12, 64, 1.9, 0.02, 32.3, "max_new_tokens")}
    assert toolbar_text(facts, 60) == " mt0 on cpu float32 | last: 64 tok, 32.3 tok/s "
    assert toolbar_text(facts, 30) == " mt0 on cpu float32 "
    assert len(toolbar_text(facts, 12)) <= 12


def test_probs_counts_in_words_and_quotes_the_line_as_history_does(builtin_repl):
    repl = builtin_repl(active="bert")
    repl.evaluate("Paris is the [MASK] of France.")
    assert repl.evaluate("/probs").text.startswith(f'bert ({repl.session.checkpoint_of("bert")}): 1 mask in "Paris')


def test_a_reply_at_a_terminal_shows_control_characters_as_escapes():
    from repl.core.layout import Wrapper

    wrapper = Wrapper(80)
    assert wrapper.feed("clear\x1b[2J \x02now\n") + wrapper.finish() == "clear\\x1b[2J \\x02now\n"
    assert Wrapper(None).feed("\x1b[2J") == "\x1b[2J"  # a file or a pipe gets the reply as it is


def test_an_address_is_shortened_after_its_double_slash():
    from repl.core.layout import shorten_path

    assert shorten_path("http://127.0.0.1:8000/v1", 20) == "…/127.0.0.1:8000/v1"
