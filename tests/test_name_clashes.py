"""Two plugins claiming one model name, alias or command: a rule that ignores install order.

Built-in plugins keep their names; a name only one plugin claims is its own; a
name two other plugins claim goes to neither, and both are told how to settle it.
"""

import pytest

from repl import hookimpl
from repl.testing import make_host, make_repl


class Claims:
    """A plugin that registers the given models ({name: aliases}) and commands ({name: aliases})."""

    def __init__(self, models=None, commands=None):
        self.wanted_models = models or {}
        self.wanted_commands = commands or {}

    @hookimpl
    def register_models(self, register):
        for name, aliases in self.wanted_models.items():
            register(name, family="echo", checkpoint="upper", aliases=aliases)

    @hookimpl
    def register_commands(self, register):
        for name, aliases in self.wanted_commands.items():
            register(name, lambda repl, args, name=name: f"{name} says {args}", aliases=aliases)


def host_with(order, plugins, builtins=()):
    """A host holding `plugins` ({name: object}) added in `order`, with the named built-in entry points."""
    host = make_host(*builtins)
    for name in order:
        host.add(plugins[name], name)
    return host


def problems(host, plugin):
    host.models()
    return host.statuses[plugin].problems


@pytest.mark.hookspec("register_models")
@pytest.mark.parametrize("order", [("one", "two"), ("two", "one")])
def test_a_model_name_two_plugins_claim_goes_to_neither_in_any_order(order):
    plugins = {
        "one": Claims(models={"twin": (), "solo": ("only",)}),
        "two": Claims(models={"twin": ("double",)}),
    }
    host = host_with(order, plugins)

    models = host.models()

    assert sorted(models) == ["solo"] and models["solo"].aliases == ("only",) and models["solo"].plugin == "one"
    assert host.resolve("double") is None
    assert problems(host, "one") == [
        "model name 'twin' is claimed by plugins 'one' and 'two', so none of them gets it; to give it to 'one', "
        "uninstall 'two' or set MODELREPL_PLUGINS=one; not registered"
    ]
    assert problems(host, "two") == [
        "model name 'twin' is claimed by plugins 'one' and 'two', so none of them gets it; to give it to 'two', "
        "uninstall 'one' or set MODELREPL_PLUGINS=two; not registered"
    ]


@pytest.mark.hookspec("register_models")
@pytest.mark.parametrize("builtin_first", [True, False])
def test_a_built_in_plugin_keeps_its_model_names_whichever_loads_first(builtin_first):
    grabby = Claims(models={"gpt2": (), "bert-base": (), "own": ("gpt-2",)})
    host = make_host("gpt2", "bert") if builtin_first else make_host(("grabby", grabby))
    if builtin_first:
        host.add(grabby, "grabby")
    else:
        host.load_entry_points(only=["gpt2", "bert"])

    models = host.models()

    assert models["gpt2"].plugin == "gpt2" and host.resolve("gpt-2").name == "gpt2"
    assert host.resolve("bert-base").name == "bert"
    assert models["own"].plugin == "grabby" and models["own"].aliases == ()
    assert problems(host, "grabby") == [
        "model name 'gpt2' belongs to the built-in plugin 'gpt2'; not registered",
        "model name 'bert-base' belongs to the built-in plugin 'bert'; not registered",
        "model name 'gpt-2' belongs to the built-in plugin 'gpt2'; left out",
    ]
    assert problems(host, "gpt2") == [] and problems(host, "bert") == []


@pytest.mark.hookspec("register_commands")
@pytest.mark.parametrize("order", [("one", "two"), ("two", "one")])
def test_a_command_two_plugins_claim_goes_to_neither_and_modelrepl_keeps_its_own(order):
    plugins = {
        "one": Claims(commands={"twin": (), "help": (), "solo": ("s", "tw")}),
        "two": Claims(commands={"twin": ("tw",)}),
    }
    repl = make_repl(host_with(order, plugins))

    assert repl.evaluate("/solo hi").text == "solo says hi"
    assert repl.evaluate("/twin").error.startswith("unknown command /twin")
    assert repl.evaluate("/s hi").text == "solo says hi"
    assert repl.evaluate("/tw").error.startswith("unknown command /tw")
    assert repl.commands.find("help").plugin is None  # modelrepl's own
    listed = repl.evaluate("/plugins").text
    one = next(line for line in listed.splitlines() if line.startswith("one "))
    assert "command /help is already taken by modelrepl; not registered" in one
    assert (
        "command /twin is claimed by plugins 'one' and 'two', so none of them gets it; to give it to 'one', "
        "uninstall 'two' or set MODELREPL_PLUGINS=one; not registered" in one
    )
    assert "command /tw is claimed by plugins 'one' and 'two', so none of them gets it" in one
    assert "MODELREPL_PLUGINS=one; left out" in one
