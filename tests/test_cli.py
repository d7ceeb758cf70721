"""The `modelrepl` command: instant --help, listings, batch mode, exit statuses.

Most run `repl.cli.main` in this process; those about what a fresh process
imports or reads from its stdin start one.
"""

import json
import logging
import os
import re
import subprocess
import sys
import traceback

import pytest

from repl import cli
from repl.core.results import CORE_FIELDS


def modelrepl(capsys, *args):
    """`modelrepl ARGS` in this process: (exit status, stdout, stderr)."""
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_transformers(flag):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "repl", flag], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "transformers", "accelerate"}
    assert ("usage: modelrepl" in done.stdout) if flag == "--help" else done.stdout.startswith("modelrepl 0.1.0")


def test_plugins_lists_every_plugin_with_hooks_and_status(capsys):
    status, out, _ = modelrepl(capsys, "plugins")
    assert status == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    for name in ("mt0", "gpt2", "bert"):
        assert "decode, load_model, register_models, run, score, tokenize" in rows[name]
        assert rows[name].rstrip().endswith("ok")


def test_models_lists_family_checkpoint_and_aliases(capsys):
    status, out, _ = modelrepl(capsys, "models")
    assert status == 0
    rows = {words[0]: words for words in (line.lstrip("* ").split() for line in out.splitlines()[2:])}
    assert rows["mt0"][:4] == ["mt0", "seq2seq", "bigscience/mt0-small", "mt0-small"]
    assert rows["gpt2"][:4] == ["gpt2", "causal", "openai-community/gpt2", "gpt-2"]
    assert rows["bert"][:4] == ["bert", "masked", "google-bert/bert-base-uncased", "bert-base"]
    assert out.splitlines()[2:][[w[0] for w in rows.values()].index("mt0")].startswith("* mt0")


def test_restricting_plugins_through_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("MODELREPL_PLUGINS", "gpt2")
    _, only_gpt2, _ = modelrepl(capsys, "models")
    assert "gpt2" in only_gpt2 and "mt0" not in only_gpt2
    monkeypatch.setenv("MODELREPL_PLUGINS", "")
    _, none, _ = modelrepl(capsys, "plugins")
    assert none.strip() == "no plugins are installed"


def test_batch_lines_from_execute_with_commands(taught_checkpoints, capsys):
    mt0 = f"mt0={taught_checkpoints['mt0']}"
    status, out, err = modelrepl(
        capsys, "-m", mt0, "--no-log", "-e", "/set max_new_tokens 8", "-e", "Translate to English: Je t'aime."
    )
    assert status == 0, err
    assert out.splitlines() == ["I love you."]  # stdout holds only replies
    assert "mt0: max_new_tokens = 8" in err


@pytest.mark.slow
def test_batch_lines_piped_on_stdin(taught_checkpoints):
    done = subprocess.run(
        [sys.executable, "-m", "repl", "-m", f"mt0={taught_checkpoints['mt0']}", "--no-log"],
        input="Translate to English: Je t'aime.\n\n/show\n",
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "I love you."
    assert "max_new_tokens" in done.stdout


def test_errors_go_to_stderr_and_set_the_exit_status(tiny_checkpoints, capsys):
    status, out, err = modelrepl(
        capsys, "-m", f"bert={tiny_checkpoints['bert']}", "--no-log", "-e", "no mask", "-e", "/nosuch"
    )
    assert status == 1
    assert out == ""
    lines = err.splitlines()
    assert any(line.startswith("error: bert fills in masked words") for line in lines)
    assert "error: unknown command /nosuch; try /help" in lines
    assert "Traceback" not in err


def test_json_mode_prints_one_object_per_line_and_errors_as_objects(taught_checkpoints, capsys):
    status, out, _ = modelrepl(
        capsys,
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
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["output"] == "the capital of france is paris."
    assert records[0]["candidates"][0][0]["token"] == "paris"
    assert set(records[0]) >= {"model", "checkpoint", "input", "output", "stats", "candidates"}
    assert records[0]["error"] is None
    assert set(records[1]) == set(CORE_FIELDS) and "mask" in records[1]["error"]
    assert records[2]["input"] == "/[MASK] slash"
    assert status == 1


def test_unknown_model_or_bad_setting_at_start_is_a_usage_error(capsys):
    status, _, err = modelrepl(capsys, "-m", "gtp2", "-e", "hi")
    assert status == 2
    assert err.strip() == "error: unknown model 'gtp2'; did you mean 'gpt2'?"
    status, _, err = modelrepl(capsys, "-m", "gpt2", "--set", "top_p=7", "-e", "hi")
    assert status == 2
    assert err.strip() == "error: --set top_p=7: top_p takes a number from 0 to 1, not 7.0"


def test_set_for_named_models_skips_those_that_do_not_take_it(taught_checkpoints, capsys):
    status, out, err = modelrepl(
        capsys,
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
    assert status == 0, err
    assert re.search(r"^max_new_tokens +3 ", out, re.MULTILINE)


@pytest.fixture
def logging_restored():
    """--debug configures logging for the whole process: put it back as it was."""
    root, ours = logging.getLogger(), logging.getLogger("repl")
    handlers, level = list(root.handlers), ours.level
    yield
    root.handlers[:] = handlers
    ours.setLevel(level)


def test_debug_shows_the_traceback_behind_a_message(tiny_checkpoints, capsys, caplog, logging_restored):
    bert = f"bert={tiny_checkpoints['bert']}"
    _, _, quiet = modelrepl(capsys, "-m", bert, "--no-log", "-e", "no mask")
    assert "Traceback" not in quiet and not caplog.records
    modelrepl(capsys, "-m", bert, "--no-log", "--debug", "-e", "no mask")
    # --debug logs it for stderr (pytest's log capture stands in for the handler it sets up there).
    (failed,) = [record for record in caplog.records if record.exc_info]
    assert "plugins/bert.py" in "".join(traceback.format_exception(*failed.exc_info))
