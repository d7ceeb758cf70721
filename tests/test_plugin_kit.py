"""The plugin author's kit: check_plugin, the fixtures, and the two example plugins.

The examples are installed packages (`pip install -e examples/echo -e
examples/classifier`); every test here reaches them through their `modelrepl`
entry points, the way modelrepl itself finds them.
"""

import dataclasses
import importlib.metadata
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import modelrepl_echo
import pytest

from repl import cli, hookimpl
from repl.api import Encoding, ModelError, Token
from repl.core.plugin_host import create_host
from repl.testing import (
    ConformanceError,
    ReplDriver,
    build_checkpoint,
    check_plugin,
    make_host,
    make_repl,
    replace_model,
)

ROOT = Path(__file__).resolve().parent.parent
MASK_SAMPLE = "paris is the [MASK] of france ."


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    directory = tmp_path_factory.mktemp("classifier")
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    return replace_model(build_checkpoint("bert", directory), "BertForSequenceClassification", id2label=labels)


def examples_repl(tiny_classifier, json_mode=False, active="echo"):
    """A REPL with every installed plugin, the classifier on its tiny checkpoint."""
    return make_repl(create_host(), active=active, checkpoints={"sentiment": str(tiny_classifier)}, json_mode=json_mode)


def marked(record):
    """The pieces of a /tokens record; "*" marks a special token, "+" one the tokenizer added."""
    return [t["piece"] + ("*" if t["special"] else "") + ("+" if t["added"] else "") for t in record["tokens"]]


# -- check_plugin passes the built-in plugins and the examples ----------------------------


@pytest.mark.hookspec("register_models", "load_model", "tokenize", "run", "decode")
@pytest.mark.parametrize("family", ["mt0", "gpt2", "bert"])
def test_the_builtin_plugins_pass_check_plugin(family, tiny_checkpoints):
    report = check_plugin(
        family,
        checkpoints={family: tiny_checkpoints[family]},
        samples={"bert": MASK_SAMPLE},
        settings={"max_new_tokens": 3},
    )

    assert report.ok
    checked = {finding.check for finding in report.findings if finding.model == family}
    assert {
        "declares the tokens its tokenizer adds",
        "stops at the first step after Ctrl-C",
        "answers in the interactive loop",
    } <= checked


@pytest.mark.hookspec("register_models", "register_commands", "load_model", "tokenize", "run", "decode")
def test_the_echo_example_passes_check_plugin_for_both_its_models():
    report = check_plugin("echo")

    assert {finding.model for finding in report.findings} == {None, "echo", "shout"}


@pytest.mark.hookspec("register_models", "load_model", "tokenize", "run", "decode")
def test_the_classifier_example_passes_check_plugin(tiny_classifier):
    report = check_plugin(
        "classifier", checkpoints={"sentiment": tiny_classifier}, samples={"sentiment": "i like this book"}
    )

    assert "loads" in {finding.check for finding in report.findings if finding.model == "sentiment"}


# -- check_plugin names what a plugin does wrong ---------------------------------------------


class EchoLike:
    """The echo example's hooks as methods, so that a subclass can break one rule."""

    @hookimpl
    def register_models(self, register):
        register("like", family="echo", checkpoint="plain", settings=(modelrepl_echo.MAX_NEW_TOKENS,))

    @hookimpl
    def load_model(self, spec, checkpoint):
        return modelrepl_echo.load_model(spec, checkpoint)

    @hookimpl
    def tokenize(self, model, text):
        return modelrepl_echo.tokenize(model, text)

    @hookimpl
    def run(self, model, encoding, settings, control):
        return modelrepl_echo.run(model, encoding, settings, control)

    @hookimpl
    def decode(self, model, output):
        return modelrepl_echo.decode(model, output)


class UndeclaredEndToken(EchoLike):
    @hookimpl
    def tokenize(self, model, text):
        encoding = modelrepl_echo.tokenize(model, text)
        encoding.tokens = [dataclasses.replace(token, added=False) for token in encoding.tokens]
        return encoding


class EndTokenInText(EchoLike):
    @hookimpl
    def decode(self, model, output):
        reply = modelrepl_echo.decode(model, output)
        return dataclasses.replace(reply, text=reply.raw_text)


class IgnoresCtrlC(EchoLike):
    @hookimpl
    def run(self, model, encoding, settings, control):
        words = [token.piece for token in encoding.tokens if not token.special]
        for position, word in enumerate(words):
            control.emit(" " + word if position else word)
            control.step()
        return [model.tokenizer.id(word) for word in words] + [modelrepl_echo.END_ID]


class NeverSteps(EchoLike):
    @hookimpl
    def run(self, model, encoding, settings, control):
        return [token.id for token in encoding.tokens if not token.special] + [modelrepl_echo.END_ID]


class StreamsOtherText(EchoLike):
    @hookimpl
    def run(self, model, encoding, settings, control):
        control.emit("something else")
        return modelrepl_echo.run(model, encoding, settings, control)


class CrashesOnAMissingCheckpoint(EchoLike):
    @hookimpl
    def load_model(self, spec, checkpoint):
        if checkpoint != "plain":
            Path(checkpoint, "config.json").read_text()
        return modelrepl_echo.load_model(spec, checkpoint)


class DataNotJson(EchoLike):
    @hookimpl
    def decode(self, model, output):
        return dataclasses.replace(modelrepl_echo.decode(model, output), data={"vocabulary": model.tokenizer})


class Unmarked(EchoLike):
    def tokenize(self, model, text):
        return modelrepl_echo.tokenize(model, text)


class CommandCrashesOnBadInput(EchoLike):
    @hookimpl
    def register_commands(self, register):
        register("words", lambda repl, args: f"{int(args)} words", help="crashes unless given a number")


END = Token(modelrepl_echo.END_ID, modelrepl_echo.END, special=True, added=True)


class CutsSilentlyInRun(EchoLike):
    """Shows every word in /tokens, but its model reads only the first 256 of them."""

    @hookimpl
    def tokenize(self, model, text):
        ids = [model.tokenizer.id(word) for word in text.split()]
        return Encoding(text, [Token(i, word) for i, word in zip(ids, text.split())] + [END])

    @hookimpl
    def run(self, model, encoding, settings, control):
        encoding.tokens = encoding.tokens[: modelrepl_echo.MAX_INPUT_TOKENS]
        return modelrepl_echo.run(model, encoding, settings, control)


class LeaksAWarning(EchoLike):
    @hookimpl
    def tokenize(self, model, text):
        warnings.warn("this tokenizer is deprecated, use another", UserWarning, stacklevel=1)
        return modelrepl_echo.tokenize(model, text)


class LogsAWarning(EchoLike):
    @hookimpl
    def run(self, model, encoding, settings, control):
        logging.getLogger("some.library").warning("Token indices sequence length is longer than 256")
        return modelrepl_echo.run(model, encoding, settings, control)


def test_a_plugin_that_keeps_every_rule_passes():
    assert check_plugin(EchoLike(), name="like").ok


@pytest.mark.hookspec("load_model", "tokenize", "run", "decode")
@pytest.mark.parametrize(
    "plugin, failure",
    [
        (
            UndeclaredEndToken,
            "FAIL declares the tokens its tokenizer adds [like]: "
            "'</e>' (id 0) is special and not in the text, but not marked added",
        ),
        (
            EndTokenInText,
            "FAIL keeps added special tokens out of the reply text [like]: "
            "'</e>' shown to the user; they belong in raw_text",
        ),
        (IgnoresCtrlC, "FAIL stops at the first step after Ctrl-C [like]: 2 steps ran after the cancel flag was set"),
        (NeverSteps, "FAIL run reports its steps to control.step() [like]: Ctrl-C could never stop it"),
        (
            StreamsOtherText,
            "FAIL streams exactly the reply's text [like]: "
            "streamed 'something elsehello world' but the reply text is 'hello world'",
        ),
        (
            CrashesOnAMissingCheckpoint,
            "FAIL a missing checkpoint is a one-line message [like]: "
            "plugin 'like' failed in load_model: FileNotFoundError",
        ),
        (DataNotJson, "FAIL the reply is well formed [like]: data must be strict JSON for --json"),
        (Unmarked, "FAIL every hook function is marked @hookimpl: tokenize look like hooks but lack @hookimpl"),
        (
            CommandCrashesOnBadInput,
            "FAIL /words answers bad arguments with a message: /words '': plugin 'like' failed in /words: ValueError",
        ),
        (
            CutsSilentlyInRun,
            "FAIL cuts an overlong line where /tokens shows it, with a notice [like]: tokenize gives 1001 tokens for "
            "the long line, with no notice, but the model takes at most 256 (its max_input_tokens)",
        ),
        (
            LeaksAWarning,
            "FAIL prints no library warnings to the terminal [like]: "
            "UserWarning: this tokenizer is deprecated, use another",
        ),
        (
            LogsAWarning,
            "FAIL prints no library warnings to the terminal [like]: "
            "some.library logged: Token indices sequence length is longer than 256",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:this tokenizer is deprecated")  # LeaksAWarning's, outside the kit's watch
def test_check_plugin_fails_with_a_message_that_says_what_is_wrong(plugin, failure):
    with pytest.raises(ConformanceError) as caught:
        check_plugin(plugin(), name="like")

    assert isinstance(caught.value, AssertionError)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("plugin 'like': ")
    assert any(line.strip().startswith(failure) for line in lines)
    assert all(not f.ok for f in caught.value.report.failures)


def test_check_plugin_reports_a_missing_entry_point_without_raising_when_asked():
    report = check_plugin("no-such-plugin", raise_on_failure=False)

    assert [str(f) for f in report.findings] == ["FAIL has a modelrepl entry point: none is installed by that name"]


# -- the examples, found through their entry points ---------------------------------------------


def test_the_examples_are_installed_with_modelrepl_entry_points():
    entry_points = {e.name: e for e in importlib.metadata.entry_points(group="modelrepl")}

    assert entry_points["echo"].value == "modelrepl_echo"
    assert entry_points["echo"].dist.name == "modelrepl-echo"
    assert entry_points["classifier"].value == "modelrepl_classifier"
    assert entry_points["classifier"].dist.name == "modelrepl-classifier"
    host = create_host()
    assert host.statuses["echo"].state == host.statuses["classifier"].state == "ok"
    models = host.models()
    assert (models["echo"].plugin, models["shout"].plugin, models["sentiment"].plugin) == ("echo", "echo", "classifier")
    assert models["sentiment"].family == "classifier"


@pytest.mark.hookspec("register_commands")
def test_the_examples_in_the_interactive_loop(tiny_classifier, tmp_path):
    repl = examples_repl(tiny_classifier)

    drive = ReplDriver(repl, history_path=tmp_path / "history").lines(
        "hello world", "/use shout", "hello world", "/vocab", "/use sst2", "i like it"
    )

    assert all(result.ok for result in drive.results)
    echoed, shouted, classified = drive.turns
    assert (echoed.output, shouted.output) == ("hello world", "HELLO WORLD")
    assert drive.results[3].text == "shout: 5 words: 0:</e> 1:hello 2:world 3:HELLO 4:WORLD"
    assert sorted(entry["label"] for entry in classified.data["labels"]) == ["NEGATIVE", "POSITIVE"]
    assert classified.output in drive.stdout


def test_the_examples_in_batch_mode(tiny_classifier, capsys):
    lines = ["i like it", "/use sentiment", "i like it"]
    arguments = ["--no-log", "--json", "-m", "shout", "-m", f"sentiment={tiny_classifier}"]

    status = cli.main(arguments + [word for line in lines for word in ("-e", line)])

    out = capsys.readouterr().out
    shouted, switched, classified = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert (shouted["model"], shouted["output"]) == ("shout", "I LIKE IT")
    assert shouted["stats"]["stop_reason"] == "eos"
    assert switched == {"output": f"active model: sentiment (classifier, {tiny_classifier})"}
    assert classified["model"] == "sentiment"
    assert {entry["label"] for entry in classified["labels"]} == {"NEGATIVE", "POSITIVE"}


def test_the_examples_in_compare(tiny_classifier):
    repl = examples_repl(tiny_classifier, json_mode=True)

    result = repl.evaluate("/compare echo shout sentiment -- i like it")

    assert result.ok
    by_model = {record["model"]: record for record in result.records}
    assert list(by_model) == ["echo", "shout", "sentiment"]
    assert (by_model["echo"]["output"], by_model["shout"]["output"]) == ("i like it", "I LIKE IT")
    assert by_model["echo"]["stats"]["new_tokens"] == 4  # three words and the end token
    assert len(by_model["sentiment"]["labels"]) == 2


def test_the_examples_in_compare_as_text(tiny_classifier):
    repl = examples_repl(tiny_classifier)

    result = repl.evaluate("/compare echo sentiment -- i like it")

    assert result.ok
    assert "i like it" in result.text
    assert "POSITIVE" in result.text and "NEGATIVE" in result.text
    lines = [line.split() for line in result.text.splitlines()]
    rows = {cells[0]: cells for cells in lines if cells[:1] in (["echo"], ["sentiment"])}
    assert rows["echo"][2:4] == ["4", "4"]  # input tokens, new tokens
    assert rows["sentiment"][2:4] == ["5", "-"]  # a model that generates no tokens: no new tokens to count


def test_the_examples_in_tokens(tiny_classifier):
    repl = examples_repl(tiny_classifier, json_mode=True)

    result = repl.evaluate("/tokens echo sentiment -- i like it")

    assert result.ok
    echo, sentiment = result.records
    assert marked(echo) == ["i", "like", "it", "</e>*+"]
    assert marked(sentiment) == ["[CLS]*+", "i", "like", "it", "[SEP]*+"]
    assert (echo["max_length"], sentiment["max_length"]) == (256, 64)


def test_tokens_last_shows_the_echo_reply_with_its_end_token(tiny_classifier):
    repl = examples_repl(tiny_classifier, json_mode=True)
    repl.evaluate("hello there")

    (record,) = repl.evaluate("/tokens last").records

    assert record["raw"] == "hello there </e>"
    assert record["ids"][-1] == modelrepl_echo.END_ID


# -- the fixtures, as a plugin's own test suite uses them ---------------------------------------------


def test_plugin_repl_holds_only_the_plugins_asked_for(plugin_repl):
    repl = plugin_repl("echo", ("like", EchoLike()), active="like")

    assert sorted(repl.session.host.statuses) == ["echo", "like"]
    assert sorted(repl.session.host.models()) == ["echo", "like", "shout"]
    assert repl.evaluate("hi").turns[0].output == "hi"


def test_make_host_loads_only_the_named_entry_points_and_refuses_unknown_names():
    host = make_host("classifier")

    assert list(host.statuses) == ["classifier"]
    with pytest.raises(ModelError, match="unknown model 'echo'"):
        make_repl(host).session.spec("echo")
    with pytest.raises(ValueError, match="no modelrepl entry point named 'no-such-plugin'"):
        make_host("echo", "no-such-plugin")


@pytest.mark.slow
def test_the_example_test_suites_pass_as_their_authors_run_them():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/echo", "examples/classifier"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout.splitlines()[-1]
