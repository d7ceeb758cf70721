"""The `modelrepl` command: instant --help, listings, batch mode, exit statuses."""

import json
import os
import re
import subprocess
import sys

import pytest

from repl.core.results import CORE_FIELDS


def modelrepl(*args, stdin=None, env=None, timeout=120):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "repl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_transformers(flag):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "repl", flag], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "transformers", "accelerate"}
    assert ("usage: modelrepl" in done.stdout) if flag == "--help" else done.stdout.startswith("modelrepl 0.1.0")


def test_plugins_lists_every_plugin_with_hooks_and_status():
    done = modelrepl("plugins")
    assert done.returncode == 0
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    for name in ("mt0", "gpt2", "bert"):
        assert "decode, load_model, register_models, run, score, tokenize" in rows[name]
        assert rows[name].rstrip().endswith("ok")


def test_models_lists_family_checkpoint_and_aliases():
    done = modelrepl("models")
    assert done.returncode == 0
    rows = {words[0]: words for words in (line.lstrip("* ").split() for line in done.stdout.splitlines()[2:])}
    assert rows["mt0"][:4] == ["mt0", "seq2seq", "bigscience/mt0-small", "mt0-small"]
    assert rows["gpt2"][:4] == ["gpt2", "causal", "openai-community/gpt2", "gpt-2"]
    assert rows["bert"][:4] == ["bert", "masked", "google-bert/bert-base-uncased", "bert-base"]
    assert done.stdout.splitlines()[2:][[w[0] for w in rows.values()].index("mt0")].startswith("* mt0")


def test_restricting_plugins_through_the_environment():
    only_gpt2 = modelrepl("models", env={"MODELREPL_PLUGINS": "gpt2"})
    assert "gpt2" in only_gpt2.stdout and "mt0" not in only_gpt2.stdout
    none = modelrepl("plugins", env={"MODELREPL_PLUGINS": ""})
    assert none.stdout.strip() == "no plugins are installed"


def test_batch_lines_from_execute_and_stdin_with_commands(taught_checkpoints):
    mt0 = f"mt0={taught_checkpoints['mt0']}"
    done = modelrepl("-m", mt0, "--no-log", "-e", "/set max_new_tokens 8", "-e", "Translate to English: Je t'aime.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["I love you."]  # stdout holds only replies
    assert "mt0: max_new_tokens = 8" in done.stderr
    piped = modelrepl("-m", mt0, "--no-log", stdin="Translate to English: Je t'aime.\n\n/show\n")
    assert piped.returncode == 0
    assert piped.stdout.splitlines()[0] == "I love you."
    assert "max_new_tokens" in piped.stdout


def test_errors_go_to_stderr_and_set_the_exit_status(tiny_checkpoints):
    done = modelrepl("-m", f"bert={tiny_checkpoints['bert']}", "--no-log", "-e", "no mask", "-e", "/nosuch")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert any(line.startswith("error: bert fills in masked words") for line in lines)
    assert "error: unknown command /nosuch; try /help" in lines
    assert "Traceback" not in done.stderr


def test_json_mode_prints_one_object_per_line_and_errors_as_objects(taught_checkpoints):
    done = modelrepl(
        "-m",
        f"bert={taught_checkpoints['bert']}",
        "--json",
        "--no-log",
        "-e",
        "the capital of france is [MASK] .",
        "-e",
        "no mask",
        "-e",
        "//[MASK] slash",
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[0]["output"] == "the capital of france is paris."
    assert records[0]["candidates"][0][0]["token"] == "paris"
    assert set(records[0]) >= {"model", "checkpoint", "input", "output", "stats", "candidates"}
    assert records[0]["error"] is None
    assert set(records[1]) == set(CORE_FIELDS) and "mask" in records[1]["error"]
    assert records[2]["input"] == "/[MASK] slash"
    assert done.returncode == 1


def test_unknown_model_or_bad_setting_at_start_is_a_usage_error():
    done = modelrepl("-m", "gtp2", "-e", "hi")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown model 'gtp2'; did you mean 'gpt2'?"
    bad = modelrepl("-m", "gpt2", "--set", "top_p=7", "-e", "hi")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --set top_p=7: top_p takes a number from 0 to 1, not 7.0"


def test_set_for_named_models_skips_those_that_do_not_take_it(taught_checkpoints):
    done = modelrepl(
        "-m",
        f"mt0={taught_checkpoints['mt0']}",
        "-m",
        f"bert={taught_checkpoints['bert']}",
        "--set",
        "max_new_tokens=3",
        "--no-log",
        "-e",
        "/show",
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^max_new_tokens +3 ", done.stdout, re.MULTILINE)


def test_debug_shows_the_traceback_behind_a_message(tiny_checkpoints):
    quiet = modelrepl("-m", f"bert={tiny_checkpoints['bert']}", "--no-log", "-e", "no mask")
    loud = modelrepl("-m", f"bert={tiny_checkpoints['bert']}", "--no-log", "--debug", "-e", "no mask")
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "plugins/bert.py" in loud.stderr
