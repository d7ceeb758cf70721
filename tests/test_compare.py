"""/compare, broadcast mode, /retry and `modelrepl compare` on tiny real checkpoints."""

from __future__ import annotations

import csv
import json
import unicodedata

from repl import cli
from repl.batch.compare import ROW_FIELDS, compare_cli, summarize
from repl.cli import build_evaluator, build_parser, build_session
from repl.core.layout import layout_blocks
from repl.store import config as config_module

SHORT = {"mt0": {"max_new_tokens": 3}, "gpt2": {"max_new_tokens": 3}}


def table_rows(text: str) -> dict[str, list[str]]:
    """The stats table's rows by model name (the table follows its `model  checkpoint` header, up to a blank line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model  checkpoint"))
    rows = lines[start + 2 :] + [""]
    return {line.split()[0]: line.split() for line in rows[: rows.index("")]}


def test_compare_gives_every_model_a_block_and_a_stats_row(builtin_repl, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    repl = builtin_repl(**SHORT)
    result = repl.handle("/compare mt0 gpt2 bert -- Hello world")

    assert result.ok  # bert cannot answer a line without a mask, the others still do
    header = result.text.splitlines()[0]
    assert "-- mt0 " in header and "-- gpt2 " in header and "-- bert " in header  # side by side
    assert "error: bert fills in masked words" in result.text
    rows = table_rows(result.text)
    assert set(rows) == {"mt0", "gpt2", "bert"}
    assert rows["bert"][-1] == "error"
    for name in ("mt0", "gpt2"):
        assert rows[name][-1] in ("eos", "max_new_tokens")
        assert 1 <= int(rows[name][3]) <= 3  # new tokens, capped by max_new_tokens
    turns = repl.session.turns[-3:]
    assert [turn.model for turn in turns] == ["mt0", "gpt2", "bert"]
    for turn in turns[:2]:
        assert all(word[:20] in result.text for word in turn.output.split())
    # Streaming is on by default, yet nothing was streamed: stdout holds only the comparison.
    assert not any(turn.streamed for turn in turns)
    assert repl.renderer.out.getvalue() == result.text.rstrip("\n") + "\n"


def test_compare_stacks_blocks_on_a_narrow_terminal(builtin_repl, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    repl = builtin_repl(**SHORT)
    result = repl.handle("/compare mt0 gpt2 -- Hello world")

    labels = [line for line in result.text.splitlines() if line.startswith("-- ")]
    assert len(labels) == 2
    assert labels[0].startswith("-- mt0 ") and "gpt2" not in labels[0]
    assert labels[1].startswith("-- gpt2 ")
    assert set(table_rows(result.text)) == {"mt0", "gpt2"}


def test_layout_wraps_each_column_to_its_width():
    long = "word " * 40
    side_by_side = layout_blocks([("a", long), ("b", "short")], 80)
    lines = side_by_side.splitlines()
    assert lines[0].startswith("-- a ") and " | -- b " in lines[0]
    assert len(lines) > 3 and all(len(line) <= 80 for line in lines)
    assert lines[1].endswith(" | short")
    stacked = layout_blocks([("a", long), ("b", "short")], 50)
    assert stacked.splitlines()[0].startswith("-- a ") and "-- b" not in stacked.splitlines()[0]
    assert "\n-- b " in stacked and stacked.endswith("short")


def test_layout_counts_wide_characters_as_two_columns():
    def _cells(text):
        return sum(2 if unicodedata.east_asian_width(char) == "W" else 1 for char in text)

    lines = layout_blocks([("zh", "我爱你。" * 30), ("en", "I love you. " * 10)], 80).splitlines()
    assert len(lines) > 3
    for line in lines[:4]:  # both columns present: the separator sits at the same column
        left, _, _ = line.partition(" | ")
        assert _cells(left) == (80 - 3) // 2
    assert all(_cells(line) <= 80 for line in lines)


def test_a_failing_model_does_not_stop_the_others(builtin_repl, tmp_path):
    repl = builtin_repl(json_mode=True, **SHORT)
    repl.session.choose_checkpoint("gpt2", str(tmp_path / "missing"))
    result = repl.handle("/compare mt0 gpt2 bert -- Paris is the [MASK] of France.")

    assert [record["model"] for record in result.records] == ["mt0", "gpt2", "bert"]
    by_model = {record["model"]: record for record in result.records}
    assert "does not exist" in by_model["gpt2"]["error"]
    assert by_model["gpt2"]["stats"]["stop_reason"] == "error"
    for name in ("mt0", "bert"):
        assert by_model[name]["error"] is None
        assert by_model[name]["stats"]["input_tokens"] > 0
    assert "candidates" in by_model["bert"]
    assert result.error is None


def test_every_model_failing_is_an_error(builtin_repl):
    repl = builtin_repl(json_mode=True)
    result = repl.handle("/compare bert bert-base -- no mask here")
    assert len(result.records) == 1  # an alias names the same model once
    assert result.error == "no model answered"


def test_broadcast_on_and_off(builtin_repl, repl_driver):
    repl = builtin_repl(json_mode=True, **SHORT)
    drive = repl_driver(repl).lines("/compare mt0 gpt2", "hello there", "/compare off", "hello again")

    on, broadcast, off, single = drive.results
    assert "broadcast on" in on.text and repl.broadcast_to is None
    assert [record["model"] for record in broadcast.records] == ["mt0", "gpt2"]
    assert all(record["input"] == "hello there" for record in broadcast.records)
    assert off.text == "broadcast off"
    assert [turn.model for turn in single.turns] == ["mt0"]


def test_broadcast_needs_two_models_and_off_says_when_it_was_not_on(builtin_repl):
    repl = builtin_repl()
    assert "two or more models" in repl.handle("/compare mt0").error
    assert repl.broadcast_to is None
    assert repl.handle("/compare off").text == "broadcast was not on"
    repl.handle("/compare mt0 gpt2")
    repl.handle("/use mt0")
    assert repl.broadcast_to is None


def test_compare_without_names_uses_the_loaded_models(builtin_repl):
    repl = builtin_repl(json_mode=True, **SHORT)
    assert "no model is loaded" in repl.handle("/compare -- hello").error
    repl.handle("/load mt0")
    repl.handle("/load gpt2")
    result = repl.handle("/compare -- hello")
    assert sorted(record["model"] for record in result.records) == ["gpt2", "mt0"]


def test_models_are_loaded_once_and_reused(builtin_repl):
    repl = builtin_repl(**SHORT)
    repl.handle("/compare mt0 gpt2 -- hello")
    loaded = dict(repl.session.loaded)
    assert repl.renderer.err.getvalue().count("loading") == 2
    repl.handle("/compare mt0 gpt2 -- hello again")
    assert repl.session.loaded == loaded
    assert all(repl.session.loaded[name] is loaded[name] for name in loaded)
    assert repl.renderer.err.getvalue().count("loading") == 2


def test_compare_usage_errors_are_one_line(builtin_repl):
    repl = builtin_repl()
    assert "nothing to send" in repl.handle("/compare mt0 gpt2 --").error
    assert "put -- before the text" in repl.handle("/compare mt0 hello world").error
    assert "did you mean 'gpt2'" in repl.handle("/compare mt0 gtp2 -- hi").error


def test_retry_sends_the_last_input_to_another_model(builtin_repl):
    repl = builtin_repl(active="mt0", **SHORT)
    assert "nothing to retry" in repl.handle("/retry gpt2").error
    repl.handle("Translate to English: Je t'aime.")
    result = repl.handle("/retry gpt2")
    assert [(turn.model, turn.input) for turn in result.turns] == [("gpt2", "Translate to English: Je t'aime.")]
    assert result.ok
    (again,) = repl.handle("/retry").turns  # alone: the last input, on the model that last answered
    assert (again.model, again.input) == ("gpt2", "Translate to English: Je t'aime.")


def test_retry_on_several_models_compares_them(builtin_repl):
    repl = builtin_repl(active="mt0", json_mode=True, **SHORT)
    repl.handle("hello")
    result = repl.handle("/retry gpt2 mt0")
    assert [(record["model"], record["input"]) for record in result.records] == [("gpt2", "hello"), ("mt0", "hello")]


# -- modelrepl compare -------------------------------------------------------------


def test_compare_command_writes_jsonl_and_csv_rows(tiny_checkpoints, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello world\n\nTranslate to English: Je t'aime.\n", encoding="utf-8")
    jsonl, table_csv = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    status = cli.main(
        [
            "compare",
            "-m", f"mt0={tiny_checkpoints['mt0']}", "-m", f"gpt2={tiny_checkpoints['gpt2']}",
            "--set", "max_new_tokens=4", "--jsonl", str(jsonl), "--csv", str(table_csv), str(prompts),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()

    assert status == 0, err
    rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [(row["prompt_index"], row["model"]) for row in rows] == [(1, "mt0"), (1, "gpt2"), (2, "mt0"), (2, "gpt2")]
    for row in rows:
        assert tuple(row) == ROW_FIELDS
        assert row["error"] is None and row["runs"] == 1
        assert 1 <= row["new_tokens"] <= 4 and row["input_tokens"] > 0
        assert row["seconds"] == row["seconds_min"] == row["seconds_max"] > 0
    with open(table_csv, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames) == ROW_FIELDS
        csv_rows = list(reader)

    def essentials(row):
        return row["prompt"], row["model"], row["output"]

    assert [essentials(row) for row in csv_rows] == [essentials(row) for row in rows]
    assert out.startswith("prompt ")
    assert out.count(str(tiny_checkpoints["mt0"])) == 2


def run_compare(argv: list[str], capsys) -> tuple[int, object, str]:
    args = build_parser().parse_args(["compare", *argv])
    config = config_module.load(None)
    session = build_session(args, config)
    code = compare_cli(build_evaluator(args, config, session), args)
    return code, session, capsys.readouterr().out


def test_repeat_reports_median_and_range_after_a_warm_up(tiny_checkpoints, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello world\n", encoding="utf-8")
    jsonl = tmp_path / "rows.jsonl"
    code, session, out = run_compare(
        ["-m", f"mt0={tiny_checkpoints['mt0']}", "-m", f"gpt2={tiny_checkpoints['gpt2']}", "--set", "max_new_tokens=2",
         "--repeat", "3", "--jsonl", str(jsonl), str(prompts)],
        capsys,
    )  # fmt: skip

    assert code == 0
    assert [turn.model for turn in session.turns] == ["mt0"] * 4 + ["gpt2"] * 4  # one warm-up, three timed
    rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert row["runs"] == 3
        for name in ("seconds", "ttft", "tokens_per_s"):
            assert row[f"{name}_min"] <= row[name] <= row[f"{name}_max"]
    timed = [turn.stats.seconds for turn in session.turns[1:4]]
    assert rows[0]["seconds"] == sorted(timed)[1]
    assert rows[0]["seconds_min"] == min(timed) and rows[0]["seconds_max"] == max(timed)
    assert out.count("–") >= 2 * 3  # every timing cell shows its range


def test_compare_command_reports_a_failing_model_and_keeps_the_others(tiny_checkpoints, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("no mask in this line\n", encoding="utf-8")
    code, _, out = run_compare(
        ["-m", f"bert={tiny_checkpoints['bert']}", "-m", f"mt0={tmp_path / 'missing'}", "-m", f"gpt2={tiny_checkpoints['gpt2']}",
         "--set", "gpt2.max_new_tokens=2", str(prompts)],
        capsys,
    )  # fmt: skip

    assert code == 1
    rows = {name: line for line in out.splitlines()[2:] for name in ("bert", "mt0", "gpt2") if f"  {name}  " in line}
    assert set(rows) == {"bert", "mt0", "gpt2"}
    assert "error" in rows["bert"] and "error" in rows["mt0"]
    assert "error" not in rows["gpt2"]


def test_compare_command_usage_errors(tiny_checkpoints, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n", encoding="utf-8")
    assert run_compare(["--repeat", "0", "-m", "mt0", str(prompts)], capsys)[0] == 2
    assert run_compare([str(prompts)], capsys)[0] == 2
    assert run_compare(["-m", "mt0", str(tmp_path / "absent.txt")], capsys)[0] == 2


def test_compare_command_turns_are_transcribed_like_any_other(tiny_checkpoints, tmp_path, capsys):
    from repl.store import paths

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello world\n", encoding="utf-8")
    code, session, _ = run_compare(
        ["-m", f"gpt2={tiny_checkpoints['gpt2']}", "-m", f"mt0={tiny_checkpoints['mt0']}", "--set", "max_new_tokens=2",
         str(prompts)],
        capsys,
    )  # fmt: skip

    assert code == 0
    transcribed = [json.loads(line) for line in paths.transcript_file().read_text(encoding="utf-8").splitlines()]
    assert [(turn["model"], turn["input"]) for turn in transcribed] == [("gpt2", "Hello world"), ("mt0", "Hello world")]
    assert [turn["output"] for turn in transcribed] == [turn.output for turn in session.turns]


def test_summarize_ignores_missing_values():
    assert summarize([3.0, None, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert summarize([None]) == (None, None, None)
