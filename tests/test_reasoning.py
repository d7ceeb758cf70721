"""Reasoning models as their users drive them: think show|hide|off, template variables, a thinking budget, harmony.

The checkpoints carry the templates of real reasoning models (Qwen3, DeepSeek-R1,
Gemma 3, gpt-oss's harmony) on tiny models taught a few replies by heart, each
for the exact prompt its template writes: a test can tell from the reply which
prompt the model saw (with thinking switched off, with reasoning_effort low).
"""

import io
import json

import pyte
import pytest

import plugins.chat as chat_plugin
from repl.app.commands.tokens import token_record
from repl.app.evaluator import Repl
from repl.core.session import Session
from repl.hf import reasoning
from repl.terminal.renderer import Renderer
from repl.terminal.toolbar import toolbar_text
from repl.testing import make_host, make_repl
from repl.testing.checkpoints import ChatPrompt, build_chat_checkpoint, teach_checkpoint

QWEN3_HI = "<think>\nGreet them.\n</think>\n\nHello there!"
COUNTING = "<think>\none two three four five six seven eight nine ten\n</think>\n\nDone."
ANALYSIS, FINAL = "<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>"
HARMONY_HI = f"{ANALYSIS}Greet them.{FINAL}Hello there!"
HARMONY_LOW = f"{ANALYSIS}Be quick.{FINAL}Hi!"


@pytest.fixture(scope="module")
def thinkers(tmp_path_factory):
    """One taught checkpoint per template shape."""
    root = tmp_path_factory.mktemp("thinkers")
    taught = {
        "qwen3": {"Hi": QWEN3_HI, ChatPrompt.of("Hi", enable_thinking=False): "Hi!", "Count": COUNTING},
        "harmony": {"Hi": HARMONY_HI, ChatPrompt.of("Hi", reasoning_effort="low"): HARMONY_LOW},
        "deepseek": {"Hi": "Greet them.\n</think>\n\nHello there!"},
        "gemma": {"Hi": "Hello there!"},
    }
    return {
        style: teach_checkpoint("chat", build_chat_checkpoint(root / style, style), examples, steps=120)
        for style, examples in taught.items()
    }


def chat_repl(thinkers, style, json_mode=False, renderer=None, **settings):
    host = make_host(chat_plugin)
    repl = make_repl(
        host,
        active="chat",
        checkpoints={"chat": str(thinkers[style])},
        json_mode=json_mode,
        settings={"chat": {"max_new_tokens": 40, **settings}},
    )
    if renderer is not None:
        repl.renderer = renderer
    return repl


def only_turn(result):
    assert result.ok, result.error or [turn.error for turn in result.turns]
    (turn,) = result.turns
    return turn


def prompt_tokens(repl, line):
    """The tokens `/tokens chat -- LINE` shows, as its --json records them."""
    record = token_record(repl, "chat", line)
    assert "error" not in record, record
    return record["tokens"]


def prompt_text(repl, line):
    ids = [token["id"] for token in prompt_tokens(repl, line)]
    return repl.session.loaded["chat"].tokenizer.decode(ids)


# -- what the templates read ---------------------------------------------------------------------


def test_the_variables_a_template_reads_are_found_by_jinja(thinkers):
    for style, expected in (
        ("qwen3", {"enable_thinking"}),
        ("harmony", {"model_identity", "reasoning_effort"}),
        ("deepseek", set()),
        ("gemma", set()),
    ):
        repl = chat_repl(thinkers, style)
        assert repl.load("chat").template_variables == expected, style


def test_show_lists_the_template_variables_and_help_set_explains_the_settings(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    assert "template.NAME" in repl.evaluate("/show").text  # not loaded yet: the variables are not known
    repl.load("chat")
    shown = repl.evaluate("/show").text
    assert "template.enable_thinking" in shown and "(template's default)" in shown
    assert repl.evaluate("/set template.enable_thinking off").ok
    row = next(line for line in repl.evaluate("/show").text.splitlines() if "template.enable_thinking" in line)
    assert " off " in row
    help_rows = {line.split()[0]: line for line in repl.evaluate("/help set").text.splitlines() if line.strip()}
    assert "text (or none)" in help_rows["system"]  # it took text, but said "a number (or none)"
    assert {"think", "max_thinking_tokens", "reasoning_effort", "template.NAME"} <= set(help_rows)


# -- think off -----------------------------------------------------------------------------------


def test_think_off_tells_the_template_and_the_model_answers_the_prompt_it_saw(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data["reasoning"]) == ("Hello there!", "Greet them.")
    assert turn.stats.reasoning_tokens > 0 and turn.stats.ttfa > turn.stats.ttft
    assert repl.evaluate("/set think off").ok
    assert prompt_text(repl, "Hi").endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data, turn.stats.reasoning_tokens) == ("Hi!", {}, 0)
    # The same through the template variable itself, with think back at show.
    repl = chat_repl(thinkers, "qwen3", **{"template.enable_thinking": False})
    assert only_turn(repl.evaluate("Hi")).output == "Hi!"


def test_think_off_is_refused_at_the_door_where_the_template_has_no_switch(thinkers):
    repl = chat_repl(thinkers, "harmony")
    repl.load("chat")
    refused = repl.evaluate("/set think off")
    assert refused.error == (
        f"think off: the chat template of {str(thinkers['harmony'])!r} has no switch to turn thinking off; "
        "it takes reasoning_effort instead: /set reasoning_effort low"
    )
    assert repl.session.settings_of("chat")["think"] == "show"
    repl = chat_repl(thinkers, "deepseek")
    repl.load("chat")
    assert "/set max_thinking_tokens N caps the thinking instead" in repl.evaluate("/set think off").error
    # Set before the model was loaded (--set, the config): the line says the same, and the REPL goes on.
    repl = chat_repl(thinkers, "harmony", think="off")
    result = repl.evaluate("Hi")
    assert "has no switch to turn thinking off" in result.turns[0].error
    assert repl.evaluate("/set think show").ok and repl.evaluate("Hi").ok


def test_template_variables_and_reasoning_effort_are_checked_against_what_the_template_reads(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    repl.load("chat")
    assert repl.evaluate("/set template.nonsense 1").error == (
        f"template.nonsense: the chat template of {str(thinkers['qwen3'])!r} reads no variable 'nonsense'; "
        "it reads: enable_thinking"
    )
    assert "reads no reasoning_effort" in repl.evaluate("/set reasoning_effort low").error
    assert repl.evaluate("/set reasoning_effort extreme").error == (
        "reasoning_effort takes one of low, medium, high, not 'extreme'"
    )


def test_reasoning_effort_reaches_the_harmony_template(thinkers):
    repl = chat_repl(thinkers, "harmony")
    assert "Reasoning: medium" in prompt_text(repl, "Hi")
    assert repl.evaluate("/set reasoning_effort low").ok
    assert "Reasoning: low" in prompt_text(repl, "Hi")
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data["reasoning"]) == ("Hi!", "Be quick.")


# -- harmony --------------------------------------------------------------------------------------


def test_harmony_analysis_is_the_reasoning_and_final_the_reply_past_the_end_token(thinkers):
    repl = chat_repl(thinkers, "harmony")
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data["reasoning"], turn.stats.stop_reason) == ("Hello there!", "Greet them.", "eos")
    # Generation went on past <|end|> to <|return|>.
    assert turn.raw_output == HARMONY_HI + "<|return|>"
    # The earlier turn goes back as the template wants it: its answer in the final channel, the analysis dropped.
    prompt = prompt_text(repl, "Thanks")
    assert "<|start|>assistant<|channel|>final<|message|>Hello there!<|end|><|start|>user" in prompt
    assert "Greet them." not in prompt
    markup = [
        token
        for token in prompt_tokens(repl, "Thanks")
        if token["piece"] in ("<|channel|>", "<|message|>", "<|start|>")
    ]
    assert markup and all(token["special"] and token["added"] for token in markup)


def test_a_harmony_reply_is_read_channel_by_channel_as_it_streams(thinkers):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(thinkers["harmony"])
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True)["input_ids"]
    reply = (
        f"{ANALYSIS}Look it up.<|end|><|start|>assistant<|channel|>commentary<|message|>Searching the web."
        f"<|end|><|start|>assistant{ANALYSIS}Found it.{FINAL}It is Paris.<|return|>"
    )
    reader = reasoning.ReplyReader.for_tokenizer(tokenizer, reasoning.harmony_format(), prompt)
    shown = ("", "")
    for token_id in tokenizer(reply, add_special_tokens=False).input_ids:
        reader.feed([token_id])
        now = (reader.thinking, reader.answer)
        assert now[0].startswith(shown[0]) and now[1].startswith(shown[1])  # what was shown is never taken back
        shown = now
    reader.finish()
    assert (reader.thinking, reader.answer) == ("Look it up.\n\nFound it.", "It is Paris.")
    assert reader.notes == ["commentary: Searching the web."]
    # The markup spelled out in plain text by the model is text, not a channel.
    reader = reasoning.ReplyReader.for_tokenizer(tokenizer, reasoning.harmony_format(), prompt)
    reader.feed(tokenizer(f"{ANALYSIS}a", add_special_tokens=False).input_ids)
    reader.feed(tokenizer(f"{FINAL}b", add_special_tokens=False, split_special_tokens=True).input_ids)
    reader.finish()
    assert (reader.thinking, reader.answer) == (f"a{FINAL}b", "")


# -- a thinking budget ----------------------------------------------------------------------------


def test_the_thinking_budget_closes_the_thinking_and_the_model_answers(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    free = only_turn(repl.evaluate("Count"))
    assert free.data["reasoning"] == "one two three four five six seven eight nine ten"
    assert repl.evaluate("/set max_thinking_tokens 3").ok
    capped = only_turn(repl.evaluate("Count"))
    thought = capped.raw_output.split("</think>")[0]
    assert capped.raw_output.startswith("<think>") and "</think>" in capped.raw_output
    assert len(repl.session.loaded["chat"].tokenizer(thought.removeprefix("<think>")).input_ids) <= 3
    assert capped.stats.reasoning_tokens < free.stats.reasoning_tokens
    assert "five" not in capped.data.get("reasoning", "")
    refused = repl.evaluate("/set num_beams 2")
    assert "max_thinking_tokens follows one sequence" in refused.error


# -- showing, hiding, /reasoning ------------------------------------------------------------------


def test_show_sets_the_thinking_apart_by_labels_and_dims_it_only_with_colour(thinkers):
    out = io.StringIO()
    repl = chat_repl(thinkers, "qwen3", renderer=Renderer(out, io.StringIO(), terminal=True), render="raw")
    repl.handle("Hi")
    assert out.getvalue().endswith("thinking…\nGreet them.\n…done thinking\nHello there!\n")
    out = io.StringIO()
    renderer = Renderer(out, io.StringIO(), terminal=True, colour=True)
    repl = chat_repl(thinkers, "qwen3", renderer=renderer, render="raw")
    repl.handle("Hi")
    shown = out.getvalue()
    assert (
        shown.startswith("\x1b[2mthinking…\x1b[22m\n\x1b[2mGreet") and "\x1b[2m…done thinking\x1b[22m\nHello" in shown
    )
    assert (
        shown.replace("\x1b[2m", "").replace("\x1b[22m", "") == "thinking…\nGreet them.\n…done thinking\nHello there!\n"
    )


@pytest.mark.parametrize("stream", [True, False])
def test_thinking_rendered_as_markdown_keeps_its_lines(thinkers, stream):
    out = io.StringIO()
    repl = chat_repl(thinkers, "qwen3", renderer=Renderer(out, io.StringIO(), terminal=True), stream=stream)
    repl.handle("Hi")
    screen = pyte.Screen(80, 24)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(out.getvalue())
    lines = [line.rstrip() for line in screen.display if line.strip()]
    assert lines == ["thinking…", "Greet them.", "…done thinking", "Hello there!"]


def test_hide_shows_the_answer_and_a_mark_and_reasoning_shows_it_after(thinkers):
    out = io.StringIO()
    renderer = Renderer(out, io.StringIO(), terminal=True)
    repl = chat_repl(thinkers, "qwen3", renderer=renderer, think="hide", render="raw")
    turn = repl.handle("Hi").turns[0]
    shown = out.getvalue()
    assert "Greet them." not in shown
    assert shown.startswith(f"Hello there!\n(thought for {turn.stats.reasoning_tokens} tokens, ")
    assert shown.endswith(" s; /reasoning shows it)\n")
    assert turn.data["reasoning"] == "Greet them."  # kept for --json, the transcript and /reasoning
    assert repl.evaluate("/reasoning").text == "Greet them."
    assert repl.evaluate("/set think show").ok and repl.evaluate("Hi").ok
    assert repl.evaluate("/reasoning chat").text == "Greet them."
    assert repl.evaluate("/set think off").ok and repl.evaluate("Hi").ok
    assert repl.evaluate("/reasoning").error == "the last reply of chat came without reasoning"


def test_off_a_terminal_stdout_carries_the_answer_and_json_the_reasoning_and_stats(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    repl.handle("Hi")
    assert repl.renderer.out.getvalue() == "Hello there!\n"
    repl = chat_repl(thinkers, "qwen3", json_mode=True)
    repl.handle("Hi")
    record = json.loads(repl.renderer.out.getvalue())
    assert (record["output"], record["reasoning"]) == ("Hello there!", "Greet them.")
    stats = record["stats"]
    assert 0 < stats["reasoning_tokens"] < stats["new_tokens"] and stats["ttft"] <= stats["ttfa"] <= stats["seconds"]


def test_stats_and_the_toolbar_tell_thinking_from_answering(thinkers):
    repl = chat_repl(thinkers, "qwen3")
    assert repl.evaluate("/stats on").ok
    repl.show_stats = True
    repl.handle("Hi")
    line = repl.renderer.out.getvalue().splitlines()[-1]
    stats = repl.session.turns[-1].stats
    assert f"{stats.new_tokens} new ({stats.reasoning_tokens} thinking)" in line and "ttfa " in line
    toolbar = toolbar_text(repl.toolbar_facts(), 200)
    assert f"last: {stats.new_tokens} tok ({stats.reasoning_tokens} thinking)" in toolbar and "ttfa" in toolbar


# -- a conversation that stays valid --------------------------------------------------------------


def test_after_ctrl_c_or_a_failed_reply_a_strict_template_still_renders(thinkers):
    from repl.core.turn import run_turn

    repl = chat_repl(thinkers, "gemma")
    controls = []
    cancelled = run_turn(repl.session, "chat", "Hi", lambda text: controls[0].cancel(), watch=controls.append)
    assert cancelled.stats.stop_reason == "cancelled" and cancelled.ok
    assert "the cancelled exchange stays in the conversation with its partial reply; /clear forgets it" in (
        cancelled.notices
    )
    repl.session.settings["chat"].update(do_sample=True, temperature=0.0)  # generate refuses it: the reply fails
    failed = only_turn_error(repl.evaluate("Hi"))
    assert "the failed exchange is left out of the conversation" in failed.notices
    repl.session.settings["chat"].update(do_sample=False, temperature=1.0)
    turn = only_turn(repl.evaluate("Hi"))  # Gemma's template raised on two user turns in a row
    assert turn.output == "Hello there!" or turn.output
    prompt = prompt_text(repl, "Hi")
    assert prompt.count("<start_of_turn>user") == 3 and prompt.count("<start_of_turn>model") == 3


def only_turn_error(result):
    (turn,) = result.turns
    assert turn.error is not None
    return turn


def test_deepseek_writes_its_bos_once_and_opens_the_thinking_in_the_prompt(thinkers):
    repl = chat_repl(thinkers, "deepseek")
    assert [token["piece"] for token in prompt_tokens(repl, "Hi")].count("<｜begin▁of▁sentence｜>") == 1
    assert prompt_text(repl, "Hi").endswith("<｜Assistant｜><think>\n")
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data["reasoning"]) == ("Hello there!", "Greet them.")


# -- settings from the command line and the config -------------------------------------------------


def test_template_settings_come_from_the_config_and_the_command_line(thinkers, tmp_path):
    from repl import cli
    from repl.store import config

    path = tmp_path / "config.toml"
    path.write_text('[models.chat]\nthink = "hide"\n\n[models.chat.template]\nenable_thinking = false\n')
    session = Session(make_host(chat_plugin))
    config.apply_model_settings(config.load(path), session)
    assert session.settings_of("chat")["template.enable_thinking"] is False
    assert session.settings_of("chat")["think"] == "hide"
    assert cli._setting("chat.template.enable_thinking=false") == ("chat", "template.enable_thinking", "false")
    assert cli._setting("template.enable_thinking=false") == (None, "template.enable_thinking", "false")
    assert cli._setting("chat.max_thinking_tokens=5") == ("chat", "max_thinking_tokens", "5")
    repl = Repl(session, Renderer(io.StringIO(), io.StringIO()))
    session.choose_checkpoint("chat", str(thinkers["qwen3"]))
    session.set("chat", "max_new_tokens", 40)
    assert only_turn(repl.evaluate("Hi")).output == "Hi!"


def test_a_bpe_tokenizer_saved_with_clean_up_spaces_loads_without_its_decode_warning(tmp_path, capfd):
    checkpoint = build_chat_checkpoint(tmp_path / "chat", "chatml")
    config_file = checkpoint / "tokenizer_config.json"
    config_file.write_text(
        json.dumps({**json.loads(config_file.read_text()), "clean_up_tokenization_spaces": True}), encoding="utf-8"
    )
    repl = make_repl(make_host(chat_plugin), active="chat", checkpoints={"chat": str(checkpoint)})
    tokenizer = repl.load("chat").tokenizer
    # transformers ignores the setting for BPE at every decode, warning the first time (in the middle of a reply).
    assert tokenizer.clean_up_tokenization_spaces is False
    assert tokenizer.decode(tokenizer("Hello , world !").input_ids) == "Hello , world !"
    assert repl.evaluate("/set max_new_tokens 3").ok and repl.evaluate("Hi").ok
    assert "clean_up_tokenization_spaces" not in capfd.readouterr().err


def test_compare_in_columns_sets_the_thinking_apart_and_hides_it_where_think_says(thinkers, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "30")
    out = io.StringIO()
    repl = chat_repl(thinkers, "qwen3", renderer=Renderer(out, io.StringIO(), terminal=True), render="raw")
    repl.session.choose_checkpoint("chat@hidden", repl.session.checkpoint_of("chat"))
    for line in ("/use chat@hidden", "/set think hide", "/set render raw", "/set max_new_tokens 40"):
        assert repl.evaluate(line).ok, line
    repl.handle("/compare chat chat@hidden -- Hi")
    screen = pyte.Screen(120, 30)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(out.getvalue())
    rows = [line.rstrip() for line in screen.display if "│" in line]
    shown, hidden = [[row.split("│")[side].strip() for row in rows] for side in (0, 1)]
    assert shown[1:5] == ["thinking…", "Greet them.", "…done thinking", "Hello there!"]
    assert hidden[1] == "Hello there!" and hidden[2].startswith("(thought for 13 tokens")
    assert "Greet them." not in hidden
    assert any("13 thinking tok" in row for row in rows)


def test_a_checkpoint_that_ships_a_response_template_is_read_with_it(thinkers, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    checkpoint = shutil.copytree(thinkers["qwen3"], tmp_path / "own")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    # As transformers serve's fallback for Qwen3 names it: the reasoning is `reasoning_content`.
    tokenizer.response_template = {
        "start_anchor": "<|im_start|>assistant\n",
        "fields": {
            "reasoning_content": {"open": "<think>", "close": "</think>"},
            "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)"},
        },
    }
    tokenizer.save_pretrained(checkpoint)
    repl = chat_repl({"own": checkpoint}, "own")
    assert repl.load("chat").memo["format"].name == "the checkpoint's response template"
    turn = only_turn(repl.evaluate("Hi"))
    assert (turn.output, turn.data["reasoning"]) == ("Hello there!", "Greet them.")


def test_the_batch_rows_count_the_thinking_and_time_the_answer(thinkers):
    from repl.batch.compare import ROW_FIELDS, row_record, rows_table
    from repl.core.layout import lay_out

    repl = chat_repl(thinkers, "qwen3")
    turn = only_turn(repl.evaluate("Hi"))
    record = row_record(0, "Hi", [turn])
    assert set(ROW_FIELDS) <= set(record)
    assert record["reasoning_tokens"] == turn.stats.reasoning_tokens > 0 and record["ttfa"] == turn.stats.ttfa
    table = lay_out([rows_table([record])], None)
    assert "thinking tokens" in table and "ttfa" in table
