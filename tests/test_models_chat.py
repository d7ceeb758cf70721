"""The chat model: prompts through the checkpoint's chat template, end of turn, trimming, /system, sessions."""

import json
import shutil

import pytest

import plugins.chat as chat_plugin
from repl.testing import make_host, make_repl
from repl.testing.checkpoints import build_chat_checkpoint, teach_checkpoint

CHATML_PROMPT = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
LLAMA3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
TAUGHT_REPLY = "<think>Greet.</think>\n\nHello there!"


@pytest.fixture(scope="module")
def chat_checkpoints(tmp_path_factory):
    """The ChatML checkpoint taught one reply (with a reasoning block); the Llama 3 one as built."""
    root = tmp_path_factory.mktemp("chat")
    chatml = teach_checkpoint("chat", build_chat_checkpoint(root / "chatml", "chatml"), {"Hi": TAUGHT_REPLY}, steps=100)
    return {"chatml": chatml, "llama3": build_chat_checkpoint(root / "llama3", "llama3")}


@pytest.fixture
def chat_repl(chat_checkpoints, tiny_checkpoints):
    """A factory of REPLs with chat (on a chat checkpoint) and gpt2, chat active."""

    def build(style="chatml", json_mode=False, **settings):
        host = make_host(chat_plugin, "gpt2")
        checkpoints = {"chat": str(chat_checkpoints[style]), "gpt2": str(tiny_checkpoints["gpt2"])}
        values = {"chat": {"max_new_tokens": 20, **settings}}
        return make_repl(host, active="chat", checkpoints=checkpoints, json_mode=json_mode, settings=values)

    return build


def prompt_tokens(repl, text):
    """The tokens `/tokens chat -- TEXT` reports, as dicts."""
    result = repl.evaluate(f"/tokens chat -- {text}")
    assert result.ok, result.error
    (record,) = result.records
    return record


def decoded(repl, tokens):
    return repl.session.loaded["chat"].tokenizer.decode([t["id"] for t in tokens], skip_special_tokens=False)


@pytest.mark.parametrize(("style", "expected"), [("chatml", CHATML_PROMPT), ("llama3", LLAMA3_PROMPT)])
def test_the_prompt_is_the_template_rendering_with_every_template_token_marked_added(chat_repl, style, expected):
    repl = chat_repl(style, json_mode=True)
    assert repl.evaluate("/system S").ok
    tokens = prompt_tokens(repl, "Hi")["tokens"]
    assert decoded(repl, tokens) == expected
    assert decoded(repl, [t for t in tokens if not t["added"]]) == "SHi"
    markup = {"chatml": "<|im_start|>", "llama3": "<|start_header_id|>"}[style]
    assert any(t["piece"] == markup and t["special"] and t["added"] for t in tokens)


def test_no_system_prompt_unless_set_and_history_is_in_the_prompt(chat_repl):
    repl = chat_repl(json_mode=True)
    assert repl.evaluate("Hi").turns[0].output == "Hello there!"
    # Text that looks like markup is still the user's: only what the template wrote is marked added.
    tokens = prompt_tokens(repl, "user assistant")["tokens"]
    assert decoded(repl, tokens) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello there!<|im_end|>\n"
        "<|im_start|>user\nuser assistant<|im_end|>\n<|im_start|>assistant\n"
    )
    assert decoded(repl, [t for t in tokens if not t["added"]]) == "HiHello there!user assistant"


def test_generation_stops_at_the_end_of_turn_token_which_never_shows(chat_repl, repl_driver):
    repl = chat_repl(think="hide")
    drive = repl_driver(repl).lines("Hi", "/tokens last")
    (turn,) = drive.turns
    assert (turn.output, turn.stats.stop_reason, turn.data) == ("Hello there!", "eos", {"reasoning": "Greet."})
    shown, last = drive.stdout.split("\n", 1)
    assert turn.streamed and shown == "Hello there!"  # the stream: no reasoning, no end-of-turn token
    end_of_turn = repl.session.loaded["chat"].tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert turn.raw_ids[-1] == end_of_turn and turn.stats.new_tokens < 20
    assert turn.raw_output == TAUGHT_REPLY + "<|im_end|>" and json.dumps(turn.raw_output) in last


def test_the_llama3_end_of_turn_comes_from_the_template_not_the_config(chat_repl):
    repl = chat_repl("llama3")
    model = repl.load("chat")
    assert model.handle.generation_config.eos_token_id == model.tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    assert model.tokenizer.convert_tokens_to_ids("<|eot_id|>") in model.memo["stop_ids"]


def test_reasoning_is_shown_apart_from_the_answer(chat_repl, repl_driver):
    repl = chat_repl()
    drive = repl_driver(repl).lines("Hi")
    (turn,) = drive.turns
    assert (turn.output, turn.data) == ("Hello there!", {"reasoning": "Greet."})
    assert drive.stdout == "Hello there!\n"  # not a terminal: stdout carries the answer alone
    # Not streamed (as in /compare) the reasoning is shown from the turn's data; --json carries it apart.
    repl = chat_repl(stream=False, json_mode=True)
    record = json.loads(repl_driver(repl).lines("Hi").stdout.splitlines()[0])
    assert (record["output"], record["reasoning"]) == ("Hello there!", "Greet.")


def test_compare_shows_the_reasoning_in_the_block_unless_hidden(chat_repl):
    repl = chat_repl()
    repl.session.choose_checkpoint("chat@hidden", repl.session.checkpoint_of("chat"))
    for line in ("/use chat@hidden", "/set think hide", "/set max_new_tokens 20"):
        assert repl.evaluate(line).ok, line
    text = repl.evaluate("/compare chat chat@hidden -- Hi").text
    assert [text.count(shown) for shown in ("thinking…", "Greet.", "…done thinking", "Hello there!")] == [1, 1, 1, 2]
    assert text.count("(thought for ") == 1  # the hidden one: a mark in its place, and the table has the counts
    assert "thinking tokens" in text and "ttfa" in text


def test_the_oldest_turns_are_dropped_first_to_fit_and_the_system_prompt_stays(chat_repl):
    repl = chat_repl(json_mode=True, max_new_tokens=180)  # 256 positions: 76 left for the prompt
    assert repl.evaluate("/system Be brief.").ok
    for line in ("one", "two", "three"):
        assert repl.evaluate(line).ok
    record = prompt_tokens(repl, "four")
    text = decoded(repl, record["tokens"])
    assert len(record["tokens"]) <= 76
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>") and text.endswith(
        "four<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "\none<|im_end|>" not in text and "\nthree<|im_end|>" in text
    assert any("context trimmed" in notice and "oldest turn" in notice for notice in record["notices"])
    turn = repl.evaluate("four").turns[0]
    assert turn.ok and any("context trimmed" in notice for notice in turn.notices)
    # A system prompt and line that alone do not fit are refused, not cut.
    assert repl.evaluate("/system " + "very long " * 30).ok
    result = repl.evaluate("five")
    assert not result.ok and "more than the 76" in result.turns[0].error


def test_system_command_sets_shows_and_removes_and_clear_keeps_it(chat_repl):
    repl = chat_repl()
    assert repl.evaluate("/system").text == "chat: no system prompt"
    assert repl.evaluate('/system Say "hi" briefly.').ok
    assert repl.evaluate("/system").text == 'chat: system prompt "Say \\"hi\\" briefly."'
    assert repl.evaluate("Hi").ok
    assert repl.evaluate("/clear").ok
    assert repl.session.settings_of("chat")["system"] == 'Say "hi" briefly.'
    assert repl.evaluate("/system off").text == "chat: system prompt removed"
    assert repl.session.settings_of("chat")["system"] is None
    repl.evaluate("/use gpt2")
    refused = repl.evaluate("/system Be brief.")
    assert refused.error == "gpt2 takes no system prompt; models that do: chat"


def test_a_conversation_survives_a_session_round_trip_and_replays_turn_by_turn(chat_repl):
    repl = chat_repl(json_mode=True, think="hide")
    assert repl.evaluate("/system S").ok
    assert repl.evaluate("Hi").ok and repl.evaluate("again").ok
    before = prompt_tokens(repl, "Hi")["tokens"]
    assert repl.evaluate("/session save talk").ok
    reopened = chat_repl(json_mode=True)
    assert reopened.evaluate("/session open talk").ok
    assert reopened.session.settings_of("chat")["system"] == "S"
    assert prompt_tokens(reopened, "Hi")["tokens"] == before
    replayed = reopened.evaluate("/session replay talk")
    assert replayed.ok, replayed.error
    assert [record["same"] for record in replayed.records] == [True, True]


def test_a_checkpoint_without_a_chat_template_is_refused_with_a_pointer_to_gpt2(chat_repl, tiny_checkpoints):
    repl = chat_repl()
    result = repl.evaluate(f"/load chat {tiny_checkpoints['gpt2']}")
    assert not result.ok
    assert "has no chat template" in result.error and f"/load gpt2 {tiny_checkpoints['gpt2']}" in result.error


def test_a_template_that_fails_to_render_is_one_line_naming_the_checkpoint(chat_repl, chat_checkpoints, tmp_path):
    broken = shutil.copytree(chat_checkpoints["llama3"], tmp_path / "broken")
    (broken / "chat_template.jinja").write_text(
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    repl = chat_repl()
    assert repl.evaluate(f"/load chat {broken}").ok
    assert repl.evaluate("/system S").ok
    result = repl.evaluate("Hi")
    assert result.turns[0].error == f"the chat template of {str(broken)!r} failed to render: System role not supported"


def test_the_config_system_prompt_goes_to_every_model_that_takes_one_unless_its_table_says_otherwise(tmp_path):
    from repl.core.session import Session
    from repl.store import config

    path = tmp_path / "config.toml"
    path.write_text('system = "Be brief."\n[models.gpt2]\nmax_new_tokens = 9\n', encoding="utf-8")
    session = Session(make_host(chat_plugin, "gpt2"))
    config.apply_model_settings(config.load(path), session)
    assert session.settings_of("chat")["system"] == "Be brief."
    assert "system" not in session.settings_of("gpt2")
    path.write_text('system = "Be brief."\n[models.chat]\nsystem = "Be kind."\n', encoding="utf-8")
    config.apply_model_settings(config.load(path), session)
    assert session.settings_of("chat")["system"] == "Be kind."


def test_reasoning_parts_only_grow_as_a_reply_streams_in():
    from repl.hf import reasoning

    for reply, thinking in (("<think>\nHmm, so.\n</think>\n\nYes.", False), ("Hmm.</think>Yes.", True)):
        shown = ("", "")
        for end in range(len(reply) + 1):
            now = reasoning.split_reasoning(reply[:end], thinking)
            assert now[0].startswith(shown[0]) and now[1].startswith(shown[1]), reply[:end]
            shown = now
        assert reasoning.split_reasoning(reply, thinking, final=True) == (
            reply.split("</think>")[0].removeprefix("<think>").strip(),
            "Yes.",
        )
    assert reasoning.split_reasoning("No reasoning here.") == ("", "No reasoning here.")
    assert reasoning.reasoning_open_in_prompt("<|im_start|>assistant\n<think>\n")
    assert not reasoning.reasoning_open_in_prompt("<think>a</think> b<|im_start|>assistant\n")


def test_system_flag_sets_the_system_prompt_in_batch_mode(chat_checkpoints, capsys):
    from repl import cli

    status = cli.main(
        ["-m", f"chat={chat_checkpoints['chatml']}", "--system", "Be brief.", "--json"]
        + ["--set", "max_new_tokens=5", "--no-log", "-e", "/system", "-e", "Hi"]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    shown, turn = map(json.loads, out.splitlines())
    assert shown == {"output": 'chat: system prompt "Be brief."'}
    assert (turn["model"], turn["settings"]["system"], turn["error"]) == ("chat", "Be brief.", None)


@pytest.mark.hookspec("register_models", "load_model", "tokenize", "run", "decode")
def test_chat_passes_check_plugin(chat_checkpoints):
    from repl.testing import check_plugin

    report = check_plugin(chat_plugin, checkpoints={"chat": chat_checkpoints["chatml"]}, settings={"max_new_tokens": 3})
    assert report.ok
    assert "declares the tokens its tokenizer adds" in {finding.check for finding in report.findings}
