"""A faulty plugin is named in a clear message and spoils nothing else.

The healthy neighbour is the echo example, loaded through its entry point; the
faulty plugins are objects that behave like echo except in one hook, or
distributions installed for one test (a dist-info folder on sys.path), so that
`modelrepl plugins` finds them exactly as it finds real ones.
"""

import json
import subprocess
import sys
import textwrap

import modelrepl_echo
import pytest

from repl import cli, hookimpl
from repl.api import Encoding, LoadedModel, Reply, Token
from repl.testing import ReplDriver, check_plugin, make_host, make_repl

MODEL_HOOKS = ("load_model", "tokenize", "run", "decode")
FAULTS = ("raises", "exits", "returns None", "returns the wrong type")


class Faulty:
    """A plugin with model "faulty" that works like echo, except in the hook it is told to break."""

    def __init__(self, hook: str, fault: str = "raises"):
        self.hook = hook
        self.fault = fault

    def answer(self, hook, healthy):
        if hook != self.hook:
            return healthy()
        if self.fault == "raises":
            raise RuntimeError(f"boom in {hook}")
        if self.fault == "exits":
            raise SystemExit(f"sys.exit() in {hook}")
        if self.fault == "returns None":
            return None
        return "not a record"

    @hookimpl
    def register_models(self, register):
        self.answer("register_models", lambda: None)
        register("faulty", family="echo", checkpoint="plain", settings=(modelrepl_echo.MAX_NEW_TOKENS,))

    @hookimpl
    def load_model(self, spec, checkpoint):
        return self.answer("load_model", lambda: modelrepl_echo.load_model(spec, checkpoint))

    @hookimpl
    def tokenize(self, model, text):
        return self.answer("tokenize", lambda: modelrepl_echo.tokenize(model, text))

    @hookimpl
    def run(self, model, encoding, settings, control):
        return self.answer("run", lambda: modelrepl_echo.run(model, encoding, settings, control))

    @hookimpl
    def decode(self, model, output):
        return self.answer("decode", lambda: modelrepl_echo.decode(model, output))

    @hookimpl
    def register_commands(self, register):
        self.answer("register_commands", lambda: None)
        register("faulty-help", lambda repl, args: "faulty helps", help="a command of the faulty plugin")

    @hookimpl
    def turn_finished(self, turn):
        self.answer("turn_finished", lambda: None)


def repl_with(*plugins, active=None):
    """A REPL holding the echo example (from its entry point) and then the given (name, object) plugins."""
    host = make_host("echo")
    for name, plugin in plugins:
        host.add(plugin, name)
    return make_repl(host, active=active)


def plugin_row(repl, name):
    table = repl.evaluate("/plugins").text
    return next(line for line in table.splitlines() if line.split()[:1] == [name])


# -- a plugin that fails in a hook --------------------------------------------------


@pytest.mark.hookspec("load_model", "tokenize", "run", "decode")
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("hook", MODEL_HOOKS)
def test_a_model_hook_failure_is_named_and_the_repl_and_other_plugins_keep_working(hook, fault, tmp_path):
    repl = repl_with(("faulty", Faulty(hook, fault)), active="faulty")
    driver = ReplDriver(repl, history_path=tmp_path / "history")

    drive = driver.lines("hello there", "/use echo", "hello there", "/plugins")

    failed, switched, answered, plugins = drive.results
    (turn,) = failed.turns
    assert not turn.ok
    assert turn.error.startswith("plugin 'faulty' failed in ")
    assert "\n" not in turn.error
    if fault == "raises":
        assert turn.error == f"plugin 'faulty' failed in {hook}: RuntimeError: boom in {hook}"
    if fault == "exits":
        assert turn.error == f"plugin 'faulty' failed in {hook}: SystemExit: sys.exit() in {hook}"
    assert "Traceback" not in drive.stderr
    assert f"error: {turn.error}" in drive.stderr
    assert switched.ok and answered.ok
    assert answered.turns[0].output == "hello there"
    faulty_row = next(line for line in plugins.text.splitlines() if line.startswith("faulty"))
    assert "ok, with problems:" in faulty_row
    echo_row = next(line for line in plugins.text.splitlines() if line.startswith("echo"))
    assert echo_row.endswith(" ok")


@pytest.mark.hookspec("load_model", "tokenize", "decode")
@pytest.mark.parametrize(
    "hook, expected", [("load_model", "LoadedModel"), ("tokenize", "Encoding"), ("decode", "Reply")]
)
def test_a_wrong_return_type_is_named_in_the_message_and_in_plugins(hook, expected):
    repl = repl_with(("faulty", Faulty(hook, "returns the wrong type")), active="faulty")

    result = repl.evaluate("hello")

    message = f"plugin 'faulty' failed in {hook}: returned str, expected {expected}"
    assert result.turns[0].error == message
    assert f"{hook} returned str, expected {expected}" in plugin_row(repl, "faulty")


@pytest.mark.hookspec("register_models")
def test_a_plugin_raising_in_register_models_registers_nothing_and_is_reported():
    repl = repl_with(("faulty", Faulty("register_models")))

    assert "faulty" not in repl.session.host.models()
    assert repl.evaluate("/use faulty").error.startswith("unknown model 'faulty'")
    assert "register_models raised RuntimeError: boom in register_models" in plugin_row(repl, "faulty")
    assert repl.evaluate("/use echo").ok
    assert repl.evaluate("hi").turns[0].output == "hi"


@pytest.mark.hookspec("register_commands")
def test_a_plugin_raising_in_register_commands_is_reported_and_its_models_still_work():
    repl = repl_with(("faulty", Faulty("register_commands")), active="faulty")

    assert repl.evaluate("/faulty-help").error.startswith("unknown command /faulty-help")
    assert "register_commands raised RuntimeError" in plugin_row(repl, "faulty")
    assert repl.evaluate("hi").turns[0].output == "hi"


@pytest.mark.hookspec("register_commands")
def test_a_command_that_raises_is_named_and_the_repl_goes_on():
    class BadCommand:
        @hookimpl
        def register_commands(self, register):
            register("explode", lambda repl, args: 1 / 0, help="always fails")

    repl = repl_with(("bad", BadCommand()), active="echo")

    assert repl.evaluate("/explode").error == "plugin 'bad' failed in /explode: ZeroDivisionError: division by zero"
    assert "command /explode raised ZeroDivisionError" in plugin_row(repl, "bad")
    assert repl.evaluate("still here").turns[0].output == "still here"


@pytest.mark.hookspec("turn_finished")
@pytest.mark.parametrize("fault, problem", [("raises", "RuntimeError: boom"), ("exits", "SystemExit: sys.exit()")])
def test_a_failing_observer_is_reported_once_and_turns_still_succeed(fault, problem):
    repl = repl_with(("faulty", Faulty("turn_finished", fault)), active="echo")

    first, second = repl.evaluate("one"), repl.evaluate("two")

    assert first.ok and second.ok
    assert [t.output for t in first.turns + second.turns] == ["one", "two"]
    assert repl.session.host.take_problems() == [f"plugin 'faulty': turn_finished raised {problem} in turn_finished"]


@pytest.mark.hookspec("turn_finished")
def test_observers_see_every_turn_failed_ones_included():
    seen = []

    class Observer:
        @hookimpl
        def turn_finished(self, turn):
            seen.append((turn.model, turn.ok))

    repl = repl_with(("observer", Observer()), ("faulty", Faulty("run")), active="echo")
    repl.evaluate("fine")
    repl.evaluate("/use faulty")
    repl.evaluate("broken")

    assert seen == [("echo", True), ("faulty", False)]


@pytest.mark.hookspec("tokenize")
def test_a_plugin_whose_hooks_do_not_match_the_specs_is_refused_and_shown_broken():
    class Misspelt:
        @hookimpl
        def tokenise(self, model, text):
            return None

    class ExtraArgument:
        @hookimpl
        def tokenize(self, model, text, language):
            return None

    repl = repl_with(("misspelt", Misspelt()), ("extra", ExtraArgument()), active="echo")

    assert "broken: PluginValidationError: unknown hook 'tokenise'" in plugin_row(repl, "misspelt")
    assert "broken: PluginValidationError" in plugin_row(repl, "extra")
    assert "language" in plugin_row(repl, "extra")
    assert repl.evaluate("hello").turns[0].output == "hello"


def test_check_plugin_names_each_fault():
    report = check_plugin(Faulty("tokenize", "returns the wrong type"), name="faulty", raise_on_failure=False)

    assert [str(f) for f in report.failures] == [
        "FAIL tokenizes the sample [faulty]: "
        "'hello world': plugin 'faulty' failed in tokenize: returned str, expected Encoding",
        "FAIL no problem reported at any hook: tokenize returned str, expected Encoding",
    ]


# -- installed distributions, as `modelrepl plugins` sees them ----------------------------


def install(tmp_path, monkeypatch, name, source):
    """Make a distribution with one `modelrepl` entry point, `name = "<module>"`, importable."""
    module = f"modelrepl_test_{name}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = tmp_path / f"{module}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.3\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[modelrepl]\n{name} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def plugins_command(capsys):
    assert cli.main(["plugins"]) == 0
    return capsys.readouterr().out


def row(table, name):
    return next(line for line in table.splitlines() if line.split()[:1] == [name])


def test_modelrepl_plugins_shows_a_plugin_that_fails_to_import_and_the_rest_still_load(tmp_path, monkeypatch, capsys):
    install(tmp_path, monkeypatch, "crashy", "raise ImportError('needs libfoo, which is not installed')\n")

    table = plugins_command(capsys)

    assert row(table, "crashy").split()[1] == "0.3"
    assert row(table, "crashy").endswith("broken: ImportError: needs libfoo, which is not installed")
    assert row(table, "echo").endswith(" ok")
    assert row(table, "mt0").endswith(" ok")


def test_modelrepl_plugins_shows_start_up_faults_and_taken_names(tmp_path, monkeypatch, capsys):
    install(
        tmp_path,
        monkeypatch,
        "grabby",
        """
        from repl import hookimpl

        @hookimpl
        def register_models(register):
            register("gpt2", family="causal", checkpoint="somewhere/else")

        @hookimpl
        def register_commands(register):
            raise KeyError("no commands today")
        """,
    )

    table = plugins_command(capsys)

    grabby = row(table, "grabby")
    assert "ok, with problems:" in grabby
    assert "model name 'gpt2' belongs to the built-in plugin 'gpt2'; not registered" in grabby
    assert "register_commands raised KeyError: 'no commands today'" in grabby
    assert row(table, "gpt2").endswith(" ok")


def test_a_broken_plugin_does_not_stop_batch_mode_and_is_noted_once(tmp_path, monkeypatch, capsys):
    install(tmp_path, monkeypatch, "crashy", "import modelrepl_no_such_dependency\n")

    status = cli.main(["--no-log", "-m", "echo", "-e", "hello", "-e", "/use shout", "-e", "hello"])

    out, err = capsys.readouterr()
    assert status == 0
    assert out.splitlines() == ["hello", "HELLO"]  # the confirmation of /use goes to stderr, with the notes
    assert "active model: shout (echo, upper)" in err
    problem = "plugin 'crashy' is broken: ModuleNotFoundError: No module named 'modelrepl_no_such_dependency'"
    assert err.count(problem) == 1


@pytest.mark.slow
def test_modelrepl_plugins_in_a_fresh_process_with_a_broken_plugin_installed(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "crashy", "raise SystemExit('gave up at import')\n")
    environment = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}

    done = subprocess.run(
        [sys.executable, "-m", "repl", "plugins"], capture_output=True, text=True, env=environment, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert row(done.stdout, "crashy").endswith("broken: SystemExit: gave up at import")
    assert row(done.stdout, "echo").endswith(" ok")
    assert "Traceback" not in done.stderr


# -- MODELREPL_PLUGINS ------------------------------------------------------------------


def test_modelrepl_plugins_variable_loads_only_the_named_entry_points(tmp_path, monkeypatch, capsys):
    install(tmp_path, monkeypatch, "crashy", "raise ImportError('must not even be imported')\n")
    monkeypatch.setenv("MODELREPL_PLUGINS", "echo, classifier")

    table = plugins_command(capsys)

    assert [line.split()[0] for line in table.splitlines()[2:]] == ["classifier", "echo"]
    assert cli.main(["models"]) == 0
    listed = capsys.readouterr().out.splitlines()[2:]
    assert [line[2:].split()[0] for line in listed] == ["sentiment", "echo", "shout"]


def test_an_empty_modelrepl_plugins_variable_loads_none_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("MODELREPL_PLUGINS", "")

    assert plugins_command(capsys).strip() == "no plugins are installed"
    assert cli.main(["--no-log", "-e", "hello"]) == 1
    assert "error: no model is registered: see `modelrepl plugins` for broken plugins" in capsys.readouterr().err


@pytest.mark.hookspec("decode")
@pytest.mark.parametrize(
    "data, reason",
    [
        ({"when": object()}, "that is not a JSON object (Object of type object is not JSON serializable)"),
        (["a"], "that is not a JSON object (it is a list)"),
        ({"similarity": float("nan")}, "that is not strict JSON (NaN or infinity)"),
        (
            {"scores": [1.0, float("-inf")]},
            "that is not strict JSON (NaN or infinity)",
        ),
        ({"model": "evil", "output": "x", "score": 1}, "with field names reserved for modelrepl: 'model', 'output'"),
    ],
)
def test_reply_data_that_is_not_a_strict_json_object_of_its_own_is_named_and_json_mode_keeps_working(data, reason):
    class OddData(Faulty):
        @hookimpl
        def decode(self, model, output):
            reply = modelrepl_echo.decode(model, output)
            reply.data = data
            return reply

    repl = make_repl(make_host("echo", ("odd", OddData("decode"))), active="faulty", json_mode=True)

    failed = repl.handle("hello")
    repl.handle("/use echo")
    answered = repl.handle("hello")

    message = f"plugin 'odd' failed in decode: returned data {reason}"
    assert failed.turns[0].error == message
    assert answered.turns[0].output == "hello"
    printed = [json.loads(line) for line in repl.renderer.out.getvalue().splitlines()]
    assert {key: printed[0][key] for key in ("model", "checkpoint", "input", "error")} == {
        "model": "faulty",
        "checkpoint": "plain",
        "input": "hello",
        "error": message,
    }
    assert printed[-1]["output"] == "hello"


class _BadReplyText:
    @hookimpl
    def register_models(self, register):
        register("badtext", family="odd", checkpoint="none")

    @hookimpl
    def load_model(self, spec, checkpoint):
        return LoadedModel(spec=spec, checkpoint=checkpoint)

    @hookimpl
    def tokenize(self, text):
        return Encoding(text, [Token(1, text)])

    @hookimpl
    def run(self, encoding):
        return encoding.text

    @hookimpl
    def decode(self):
        return Reply(text=None)

    @hookimpl
    def register_commands(self, register):
        register("leave", lambda repl, args: sys.exit(3), help="exits")


def test_reply_text_that_is_not_a_string_and_a_command_that_exits_are_contained():
    repl = make_repl(make_host(("bad", _BadReplyText())))
    (turn,) = repl.evaluate("hi").turns
    assert turn.error == "plugin 'bad' failed in decode (Reply.text): returned NoneType, expected str"
    result = repl.evaluate("/leave")
    assert result.error.startswith("plugin 'bad' failed in /leave: SystemExit")
    assert repl.evaluate("/show").error is None
