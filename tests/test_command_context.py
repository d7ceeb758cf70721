"""What a command handler receives: the documented `CommandContext`, and the session old handlers read."""

import pytest

from repl.api import CommandContext, CommandError, Repl, Result, Setting, hookimpl

THRESHOLD = Setting("threshold", float, 0.5, "labels scored below it are not shown", minimum=0.0, maximum=1.0)


def no_exact_half(settings):
    if settings["threshold"] == 0.5:
        return "0.5 is the default: nothing changes"
    return None


class Commands:
    """A plugin with one echo-like model and commands written both ways: against the context, and the first docs."""

    def __init__(self):
        self.received = []

    @hookimpl
    def register_models(self, register):
        register("judge", family="echo", checkpoint="plain", settings=(THRESHOLD,), validate_settings=no_exact_half)

    @hookimpl
    def load_model(self, spec, checkpoint):
        import modelrepl_echo

        return modelrepl_echo.load_model(spec, checkpoint)

    @hookimpl
    def tokenize(self, model, text):
        import modelrepl_echo

        return modelrepl_echo.tokenize(model, text)

    @hookimpl
    def run(self, model, encoding, settings, control):
        import modelrepl_echo

        return modelrepl_echo.run(model, encoding, {"max_new_tokens": 64}, control)

    @hookimpl
    def decode(self, model, output):
        import modelrepl_echo

        return modelrepl_echo.decode(model, output)

    @hookimpl
    def register_commands(self, register):
        register("threshold", self.set_threshold, usage="SCORE")
        register("ask", self.ask, usage="TEXT")
        register("old", self.old_style)

    def set_threshold(self, context, args):
        self.received.append(context)
        spec = context.spec()
        warning = context.set(spec.name, "threshold", args.strip())
        shown = f"{spec.name}: threshold = {context.settings(spec.name)['threshold']}"
        return f"{shown}\nnote: {warning}" if warning else shown

    def ask(self, context, args):
        context.notice(f"asking {context.active}, {len(context.tokenize(context.active, args).tokens)} tokens")
        return Result(turns=[context.turn(context.active, args)])

    def old_style(self, repl, args):
        """A handler as the first docs showed them: everything through `repl.session`."""
        session = repl.session
        spec = session.spec(session.active_spec().name)
        session.set(spec.name, "threshold", "0.75")
        model = session.model(spec.name)
        plugins = sorted(session.host.statuses)
        return f"{session.model_names()} {session.settings_of(spec.name)['threshold']} {model.checkpoint} {plugins}"


@pytest.fixture
def commands():
    return Commands()


@pytest.fixture
def repl(plugin_repl, commands):
    return plugin_repl(("judge", commands), "echo", active="judge")


@pytest.mark.hookspec("register_commands")
def test_a_handler_receives_the_command_context(repl, commands):
    assert repl.evaluate("/threshold 0.7").text == "judge: threshold = 0.7"

    (context,) = commands.received
    assert isinstance(context, CommandContext) and Repl is CommandContext  # the first docs' name for it


def test_set_refuses_a_bad_value_with_the_reason_and_changes_nothing(repl):
    refused = repl.evaluate("/threshold 7")

    assert refused.error == "threshold takes a number from 0 to 1, not 7.0"
    assert repl.session.settings_of("judge")["threshold"] == 0.5
    assert repl.evaluate("/threshold 0.7").text == "judge: threshold = 0.7"
    assert repl.evaluate("/threshold 0.5").text == "judge: threshold = 0.5\nnote: 0.5 is the default: nothing changes"


def test_a_turn_a_command_runs_is_a_turn_like_any_other(repl):
    result = repl.handle("/ask hello world")

    assert [turn.output for turn in result.turns] == ["hello world"]
    assert [turn.input for turn in repl.session.turns] == ["hello world"]
    assert repl.renderer.err.getvalue().splitlines()[-1] == "note: asking judge, 3 tokens"


def test_a_handler_written_against_the_first_docs_still_works(repl):
    assert repl.evaluate("/old").text == "['judge', 'echo', 'shout'] 0.75 plain ['echo', 'judge']"


def test_the_context_answers_for_the_session(repl):
    context = repl.context

    assert (context.active, context.model_names()) == ("judge", ["judge", "echo", "shout"])
    assert context.spec("parrot").name == "echo"  # an alias
    assert context.loaded("echo") is None
    assert context.load("echo").checkpoint == "plain" and context.loaded("echo") is not None
    context.settings("judge")["threshold"] = 0.9  # a copy
    assert context.settings()["threshold"] == 0.5
    assert context.turns == [] and context.width is None  # captured output: lines stay whole
    with pytest.raises(CommandError, match="'nonsense' does not apply to judge"):
        context.set(None, "nonsense", "1")
