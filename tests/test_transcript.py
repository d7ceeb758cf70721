"""The JSONL transcript: one whole line per finished turn, on unless switched off, never fatal."""

import json
import os

from repl import cli
from repl.core.results import Stats, Turn
from repl.store import files as storage
from repl.store import paths
from repl.store.transcript import Transcript


def lines_of(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_turn_becomes_one_private_json_line(tmp_path):
    path = tmp_path / "data" / "transcript.jsonl"
    notices = []
    transcript = Transcript(path, notices.append)
    first = Turn(
        model="gpt2", checkpoint="ckpt", input="Hello", output=" world", settings={"seed": 1}, stats=Stats(new_tokens=2)
    )
    second = Turn(model="mt0", checkpoint="ckpt", input="Bonjour\nencore", error="it failed")
    assert transcript.record(first) and transcript.record(second)
    records = lines_of(path)
    assert [(r["model"], r["input"], r["output"], r["error"]) for r in records] == [
        ("gpt2", "Hello", " world", None),
        ("mt0", "Bonjour\nencore", "", "it failed"),
    ]
    assert records[0]["settings"] == {"seed": 1} and records[0]["stats"]["new_tokens"] == 2
    assert records[0]["run"] == records[1]["run"] and records[0]["time"]
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert notices == []


def test_a_full_disk_costs_one_notice_and_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "transcript.jsonl"
    notices = []
    transcript = Transcript(path, notices.append)
    assert transcript.record(Turn(model="gpt2", checkpoint="c", input="kept"))
    real_write = os.write

    def full_disk(descriptor, data):
        real_write(descriptor, data[:7])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "write", full_disk)
    assert not transcript.record(Turn(model="gpt2", checkpoint="c", input="lost"))
    assert not transcript.record(Turn(model="gpt2", checkpoint="c", input="lost too"))
    assert len(notices) == 1 and "No space left on device" in notices[0] and "not being logged" in notices[0]
    assert [r["input"] for r in lines_of(path)] == ["kept"]

    monkeypatch.setattr(storage.os, "write", real_write)
    assert transcript.record(Turn(model="gpt2", checkpoint="c", input="back"))
    assert "again" in notices[-1]
    assert [r["input"] for r in lines_of(path)] == ["kept", "back"]


def test_the_repl_logs_every_turn_as_it_finishes_and_survives_a_broken_transcript(builtin_repl, tmp_path):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    path = tmp_path / "transcript.jsonl"
    repl.transcript = Transcript(path, repl.renderer.notice)
    repl.handle("Hello")
    assert [r["input"] for r in lines_of(path)] == ["Hello"]
    repl.handle("/use bert")
    repl.handle("no mask here")  # a failed turn is logged too
    assert [(r["model"], r["error"] is not None) for r in lines_of(path)] == [("gpt2", False), ("bert", True)]

    repl.transcript = Transcript(tmp_path, repl.renderer.notice)  # a directory: cannot be appended to
    result = repl.handle("/use gpt2")
    result = repl.handle("Once upon a time")
    assert result.ok and result.turns[0].output
    assert "note: transcript: cannot write" in repl.renderer.err.getvalue()
    assert repl.handle("/history").ok


def run_cli(tiny_checkpoints, *arguments):
    return cli.main(["-m", f"gpt2={tiny_checkpoints['gpt2']}", "--set", "max_new_tokens=2", "--no-stream", *arguments])


def test_batch_mode_logs_to_the_data_directory(tiny_checkpoints, capsys):
    assert run_cli(tiny_checkpoints, "-e", "Hello", "-e", "Once upon a time") == 0
    records = lines_of(paths.transcript_file())
    assert [r["input"] for r in records] == ["Hello", "Once upon a time"]
    assert records[0]["checkpoint"] == str(tiny_checkpoints["gpt2"])


def test_no_log_flag_and_log_false_in_the_config_switch_it_off(tiny_checkpoints, tmp_path, capsys):
    assert run_cli(tiny_checkpoints, "--no-log", "-e", "Hello") == 0
    assert not paths.transcript_file().exists()
    config = tmp_path / "quiet.toml"
    config.write_text("log = false\n")
    assert run_cli(tiny_checkpoints, "--config", str(config), "-e", "Hello") == 0
    assert not paths.transcript_file().exists()
