"""pytest fixtures for modelrepl and its plugins.

Enable them in a plugin's test suite with one line in conftest.py::

    pytest_plugins = ["repl.testing.fixtures"]
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repl.testing.checkpoints import FAMILIES, build_checkpoint
from repl.testing.driver import ReplDriver, make_host, make_repl


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A tiny real checkpoint per built-in family (mt0, gpt2, bert), built once per test run."""
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    return {family: build_checkpoint(family, root / family) for family in FAMILIES}


def pytest_configure(config):
    """Let tests name the hookspecs they exercise, as ``@pytest.mark.hookspec("tokenize")``."""
    config.addinivalue_line("markers", "hookspec(*names): the modelrepl hookspecs a test exercises")


@pytest.fixture
def plugin_host():
    """A factory of fresh plugin hosts holding only the plugins passed to it."""
    return make_host


@pytest.fixture
def plugin_repl():
    """A factory of REPLs holding only the plugins passed to it (modules, pairs or entry-point names).

    ``plugin_repl("echo", active="shout")``; keyword arguments go to ``make_repl``.
    """

    def build(*plugins, **options):
        return make_repl(make_host(*plugins), **options)

    return build


@pytest.fixture
def builtin_repl(tiny_checkpoints):
    """A factory of REPLs with the built-in plugins, loaded through their entry points, on tiny checkpoints."""

    def build(active: str | None = None, json_mode: bool = False, **settings):
        host = builtin_host()
        checkpoints = {family: str(path) for family, path in tiny_checkpoints.items()}
        return make_repl(host, active=active, checkpoints=checkpoints, json_mode=json_mode, settings=settings or None)

    return build


def builtin_host():
    """A fresh host with only the built-in plugins, loaded through their entry points."""
    from repl.core.plugin_host import PluginHost

    host = PluginHost()
    host.load_entry_points(only=FAMILIES)
    return host


@pytest.fixture
def repl_driver(tmp_path):
    """A factory: `repl_driver(repl).lines("hello", "/quit")` types into the real REPL loop."""

    def build(repl):
        return ReplDriver(repl, history_path=tmp_path / "history")

    return build
