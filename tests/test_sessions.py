"""/session save|open|list|replay, /history and /clear on the built-in models."""

import json
import os
from pathlib import Path

import pytest

from repl.core.results import CommandError
from repl.store import paths
from repl.store import session_files as sessions

SEEDED_GPT2 = {"max_new_tokens": 4, "do_sample": True, "temperature": 1.5, "seed": 7, "context": True}


def seeded_session(builtin_repl):
    """A gpt2 session sampling with a seed and keeping context, plus a greedy mt0 turn."""
    repl = builtin_repl(active="gpt2", gpt2=SEEDED_GPT2, mt0={"max_new_tokens": 3, "num_beams": 2})
    for line in ("Once upon a time", "The capital", "/use mt0", "Translate to English: Je t'aime.", "/use gpt2"):
        assert repl.handle(line).ok, line
    return repl


def state(session):
    """What a failed open must leave untouched."""
    return (
        session.active,
        json.dumps(session.settings, sort_keys=True),
        dict(session.checkpoints),
        [(t.model, t.input, t.output) for t in session.turns],
    )


def test_names_live_in_the_sessions_directory_and_paths_are_paths(tmp_path):
    assert sessions.session_path("story") == paths.sessions_dir() / "story.json"
    assert sessions.session_path("story.json") == Path("story.json")
    assert sessions.session_path(f"{tmp_path}/a") == tmp_path / "a"
    assert sessions.session_path("~/s.json") == Path.home() / "s.json"
    for bad in (".hidden", ""):
        with pytest.raises(CommandError, match=r"cannot be empty, start with '.'"):
            sessions.session_path(bad)


def test_save_writes_a_private_marked_file_with_every_turn_and_setting(builtin_repl):
    repl = seeded_session(builtin_repl)
    result = repl.handle("/session save story")
    path = paths.sessions_dir() / "story.json"
    assert result.text == f"saved 3 turns to {path}"
    assert os.stat(path).st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert (document["format"], document["version"], document["active"]) == ("modelrepl-session", 2, "gpt2")
    assert document["settings"]["gpt2"]["seed"] == 7 and document["settings"]["mt0"]["num_beams"] == 2
    assert set(document["checkpoints"]) == {"mt0", "gpt2", "bert"}
    turn = document["turns"][0]
    assert (turn["model"], turn["input"], turn["settings"]["seed"]) == ("gpt2", "Once upon a time", 7)
    assert turn["output"] == repl.session.turns[0].output and turn["stats"]["new_tokens"] == 4


def test_open_restores_settings_history_and_gpt2_context_and_loads_lazily(builtin_repl, repl_driver):
    original = seeded_session(builtin_repl)
    original.handle("/session save story")
    continued = original.handle("Hello").turns[0]

    reopened = builtin_repl()  # mt0 active, default settings
    drive = repl_driver(reopened).lines("/session open story", "/history 2")
    assert drive.results[0].text.startswith(f"opened {paths.sessions_dir() / 'story.json'}: 3 turns, active model gpt2")
    session = reopened.session
    assert session.loaded == {}
    assert session.active == "gpt2"
    assert session.settings_of("gpt2") == original.session.settings_of("gpt2")
    assert session.settings_of("mt0")["num_beams"] == 2
    assert [(t.model, t.input, t.output) for t in session.turns] == [
        (t.model, t.input, t.output) for t in original.session.turns[:3]
    ]
    assert "The capital" in drive.results[1].text and "Once upon" not in drive.results[1].text

    again = reopened.handle("Hello").turns[0]
    assert (again.output, again.stats.input_tokens) == (continued.output, continued.stats.input_tokens)
    reopened.handle("/clear")
    alone = reopened.handle("Hello").turns[0]
    assert alone.stats.input_tokens < again.stats.input_tokens  # the context went with the turns


def test_history_and_clear(builtin_repl):
    repl = seeded_session(builtin_repl)
    shown = repl.handle("/history 2")
    assert shown.text.splitlines()[0].startswith('   2 gpt2> "The capital"')
    assert [r["turn"] for r in shown.records] == [2, 3]
    assert len(repl.handle("/history").records) == 3
    assert repl.handle("/history 0").error.startswith("usage: /history [N]")
    assert repl.handle("/clear").text == "cleared 3 turns (gpt2 2, mt0 1); the next turn starts without context"
    assert repl.session.turns == [] and repl.handle("/history").text == "no turns yet"


def test_history_in_json_mode_prints_one_record_per_turn(builtin_repl):
    repl = builtin_repl(active="gpt2", json_mode=True, gpt2={"max_new_tokens": 2})
    repl.handle("Hello")
    repl.renderer.out.truncate(0)
    repl.renderer.out.seek(0)
    repl.handle("/history")
    (record,) = [json.loads(line) for line in repl.renderer.out.getvalue().splitlines()]
    assert (record["turn"], record["model"], record["input"]) == (1, "gpt2", "Hello")


DAMAGED = {
    "not json": "this is not JSON",
    "torn": '{"format": "modelrepl-session", "version": 1, "turns": [{"model": "gp',
    "foreign": '{"name": "something else", "turns": []}',
    "a list": "[1, 2, 3]",
    "newer": '{"format": "modelrepl-session", "version": 99, "turns": []}',
    "turn without input": '{"format": "modelrepl-session", "version": 1, "turns": [{"model": "gpt2"}]}',
    "bad stats": '{"format": "modelrepl-session", "version": 1, "turns": [{"model": "gpt2", "input": "x", "stats": {"ttft": "soon"}}]}',
    "bad setting": '{"format": "modelrepl-session", "version": 1, "active": "mt0", "turns": [],'
    ' "settings": {"mt0": {"num_beams": 3}, "gpt2": {"max_new_tokens": 0}}}',
}
EXPECTED = {
    "not json": "is damaged or not a modelrepl session: invalid JSON at line 1 column 1",
    "torn": "is damaged or not a modelrepl session: invalid JSON",
    "foreign": 'is not a modelrepl session: it lacks "format": "modelrepl-session"',
    "a list": "is not a modelrepl session",
    "newer": "was saved by a newer modelrepl (session format 99)",
    "turn without input": "is damaged: turn 1: the input ('input') is missing",
    "bad stats": "is damaged: turn 1: stats ('ttft') is \"soon\", not a number or null",
    "bad setting": "is damaged: settings of gpt2: max_new_tokens takes a whole number from 1 to 100000, not 0",
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_a_damaged_or_foreign_file_is_refused_and_nothing_changes(builtin_repl, tmp_path, kind):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    repl.handle("Hello")
    before = state(repl.session)
    path = tmp_path / "session.json"
    path.write_text(DAMAGED[kind])
    result = repl.handle(f"/session open {path}")
    assert result.error.startswith(f"{path} {EXPECTED[kind]}"), result.error
    assert result.error.endswith("; the current session is unchanged") and "\n" not in result.error
    assert state(repl.session) == before
    assert path.read_text() == DAMAGED[kind]
    assert repl.handle(f"/session replay {path}").error.startswith(f"{path} ")


def test_a_missing_session_gets_a_clear_message(builtin_repl):
    repl = builtin_repl()
    error = repl.handle("/session open nowhere").error
    assert error.startswith(f"no session file {paths.sessions_dir() / 'nowhere.json'}; /session list shows")


def test_save_never_overwrites_a_file_that_is_not_a_session(builtin_repl, tmp_path):
    repl = seeded_session(builtin_repl)
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    result = repl.handle(f"/session save {foreign}")
    assert "not overwritten, choose another name" in result.error
    assert foreign.read_text() == '{"mine": true}'
    own = tmp_path / "own.json"
    assert repl.handle(f"/session save {own}").ok
    repl.handle("Hello")
    assert repl.handle(f"/session save {own} --force").ok
    assert len(json.loads(own.read_text())["turns"]) == 4


def test_list_shows_saved_sessions_and_marks_unreadable_ones(builtin_repl):
    repl = seeded_session(builtin_repl)
    assert repl.handle("/session list").text == f"no saved sessions in {paths.sessions_dir()}"
    repl.handle("/session save story")
    (paths.sessions_dir() / "junk.json").write_text("{")
    listing = repl.handle("/session list").text.splitlines()
    story = next(line for line in listing if line.startswith("story"))
    assert story.split()[1:3] == ["3", "gpt2"] and story.rstrip().endswith("gpt2, mt0")
    assert any(line.startswith("junk") and "not a readable modelrepl session" in line for line in listing)


def test_open_skips_unknown_models_with_a_note_and_reloads_a_changed_checkpoint(
    builtin_repl, tiny_checkpoints, tmp_path
):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    repl.handle("Hello")
    assert "gpt2" in repl.session.loaded
    other_spelling = str(tiny_checkpoints["gpt2"]) + "/"
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "format": "modelrepl-session",
                "version": 1,
                "active": "llama",
                "checkpoints": {"gpt2": other_spelling, "llama": "meta/llama"},
                "settings": {"gpt2": {"max_new_tokens": 5, "retired_setting": 1}, "llama": {"x": 1}},
                "turns": [{"model": "gpt2", "input": "Hi", "output": " there"}],
            }
        )
    )
    result = repl.handle(f"/session open {path}")
    assert result.ok
    assert "note: model 'llama' is not registered here; its checkpoint and settings were skipped" in result.text
    assert "note: gpt2 has no setting 'retired_setting' any more; skipped" in result.text
    assert repl.session.active == "gpt2"
    assert repl.session.settings_of("gpt2")["max_new_tokens"] == 5
    assert "gpt2" not in repl.session.loaded and repl.session.checkpoint_of("gpt2") == other_spelling
    assert repl.session.history("gpt2") == [("Hi", " there")]


def test_replay_reproduces_a_seeded_session_exactly(builtin_repl):
    original = seeded_session(builtin_repl)
    original.handle("/session save story")

    fresh = builtin_repl()
    result = fresh.handle("/session replay story")
    assert result.ok, result.error
    assert [(r["replay"], r["same"]) for r in result.records] == [(1, True), (2, True), (3, True)]
    assert [r["replayed"] for r in result.records] == [t.output for t in original.session.turns]
    assert result.text.endswith("every output matches the saved session")
    assert fresh.session.turns == [] and fresh.session.active == "mt0"  # the replay ran aside


def test_replay_reports_the_turns_whose_output_differs(builtin_repl):
    original = seeded_session(builtin_repl)
    original.handle("/session save story")
    path = paths.sessions_dir() / "story.json"
    document = json.loads(path.read_text())
    document["turns"][1]["settings"]["seed"] = 8
    path.write_text(json.dumps(document))

    result = original.handle("/session replay story")
    assert [(r["replay"], r["same"]) for r in result.records] == [(1, True), (2, False), (3, True)]
    assert result.error == "1 of 3 replayed outputs differ (turns 2)"
    lines = result.text.splitlines()
    assert lines[2].split()[:3] == ["2", "gpt2", "DIFFERS"]
    assert lines[3].strip() == f"saved:    {json.dumps(original.session.turns[1].output, ensure_ascii=False)}"
    assert lines[4].strip().startswith("replayed: ")
    assert len(original.session.turns) == 3  # the current session is untouched


def test_replay_of_a_turn_with_an_impossible_setting_is_refused(builtin_repl, tmp_path):
    path = tmp_path / "s.json"
    turn = {"model": "gpt2", "input": "Hi", "output": "", "settings": {"top_p": 7}}
    path.write_text(json.dumps({"format": "modelrepl-session", "version": 1, "turns": [turn]}))
    error = builtin_repl().handle(f"/session replay {path}").error
    assert error.startswith(f"{path} is damaged: settings of turn 1: top_p takes a number from 0 to 1")


def test_session_usage_errors(builtin_repl):
    repl = builtin_repl()
    assert repl.handle("/session").error.startswith("usage: /session save [NAME|PATH] [--force] | open")
    assert repl.handle("/session open").error == "usage: /session open NAME|PATH"
    assert repl.handle("/session frob").error.startswith("unknown /session action 'frob'")
    assert repl.handle("/session list extra").error == "usage: /session list"
