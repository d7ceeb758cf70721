"""Warm start: the background load is waited for, never repeated, cancellable, and only for local checkpoints."""

import _thread
import io
import os
import sys
import threading
import time

import pexpect
import pytest
from conftest import ShoutingModel

from repl import hookimpl
from repl.api import CAUSAL, LoadedModel
from repl.app.warm_start import Preloader, is_on_this_machine
from repl.testing import make_host, make_repl

# The prompt, its model name coloured on a terminal.
GPT2_PROMPT = r"gpt2(?:\x1b\[[0-9;]*m)*>"


class GatedLoad(ShoutingModel):
    """A model whose load runs until the test opens the gate, counting how often it is loaded."""

    def __init__(self, checkpoint):
        self.checkpoint = str(checkpoint)
        self.loads = 0
        self.started = threading.Event()
        self.gate = threading.Event()

    @hookimpl
    def register_models(self, register):
        register("gated", family=CAUSAL, checkpoint=self.checkpoint)

    @hookimpl
    def load_model(self, spec, checkpoint, options):
        self.loads += 1
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if checkpoint.endswith("broken"):
            raise RuntimeError("weights are torn")
        return LoadedModel(spec=spec, checkpoint=checkpoint, handle=options.local_files_only)


def gated_repl(directory):
    plugin = GatedLoad(directory)
    repl = make_repl(make_host(("gated", plugin)), active="gated")
    notices = []
    return repl, plugin, Preloader.for_active(repl.session, notices.append), notices


def test_a_line_sent_during_the_preload_waits_for_it_and_nothing_loads_twice(tmp_path):
    repl, plugin, preloader, notices = gated_repl(tmp_path)
    preloader.start()
    assert plugin.started.wait(10)
    threading.Timer(0.3, plugin.gate.set).start()
    (turn,) = repl.evaluate("hello").turns  # blocks until the background load is done
    assert turn.output == "HELLO" and plugin.loads == 1
    assert preloader.wait(5) and notices == []
    assert repl.session.loaded["gated"].handle is True  # loaded with local_files_only: never a download


def test_ctrl_c_while_waiting_cancels_the_wait_not_the_repl(tmp_path):
    repl, plugin, preloader, _ = gated_repl(tmp_path)
    preloader.start()
    assert plugin.started.wait(10)
    threading.Timer(0.3, _thread.interrupt_main).start()  # Ctrl-C, as the terminal delivers it
    (turn,) = repl.evaluate("hello").turns
    assert turn.stats.stop_reason == "cancelled" and "cancelled" in turn.error
    plugin.gate.set()
    assert preloader.wait(5)
    (turn,) = repl.evaluate("again").turns
    assert turn.output == "AGAIN" and plugin.loads == 1  # the background load is the one used


def test_a_failed_preload_says_so_and_the_line_tries_again(tmp_path):
    (tmp_path / "broken").mkdir()
    repl, plugin, preloader, notices = gated_repl(tmp_path / "broken")
    plugin.gate.set()
    preloader.start()
    assert preloader.wait(10)
    assert notices == ["preloading gated failed: plugin 'gated' failed in load_model: RuntimeError: weights are torn"]
    assert "gated" not in repl.session.loaded
    (turn,) = repl.evaluate("hello").turns
    assert "weights are torn" in turn.error and plugin.loads == 2


def test_commands_wait_for_the_preload_except_those_that_need_no_libraries(tmp_path):
    repl, plugin, preloader, _ = gated_repl(tmp_path)
    repl.warm_start = preloader
    preloader.start()
    assert plugin.started.wait(10)
    for line in ("/help", "/history", "/plugins", "/use gated"):  # instant: the load is still running
        assert repl.evaluate(line).ok, line
    assert preloader.running and "gated" not in repl.session.loaded
    threading.Timer(0.3, _thread.interrupt_main).start()  # Ctrl-C while /show waits
    assert repl.evaluate("/show").error == (
        "cancelled; gated goes on loading in the background: send the line again in a moment"
    )
    threading.Timer(0.3, plugin.gate.set).start()
    assert repl.evaluate("/show").ok  # waits: settings are checked by transformers, which the preload imports
    assert "gated" in repl.session.loaded and plugin.loads == 1


def test_only_checkpoints_on_this_machine_are_preloaded(tmp_path):
    assert is_on_this_machine(str(tmp_path))
    assert not is_on_this_machine(str(tmp_path / "missing"))
    assert not is_on_this_machine("someone/not-in-the-cache")
    assert not is_on_this_machine("not a repo id")


def spawn_repl(checkpoint, tmp_path, *flags):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    arguments = ["-m", "repl", "-m", f"gpt2={checkpoint}", "--no-log", *flags]
    child = pexpect.spawn(sys.executable, arguments, env=env, encoding="utf-8", timeout=120, dimensions=(40, 200))
    child.expect(GPT2_PROMPT)
    return child


@pytest.mark.slow
@pytest.mark.parametrize("preload", [True, False])
def test_the_terminal_repl_loads_the_active_model_while_the_user_types(tiny_checkpoints, tmp_path, preload):
    child = spawn_repl(tiny_checkpoints["gpt2"], tmp_path, *(() if preload else ("--no-preload",)))
    child.logfile_read = shown = io.StringIO()
    try:
        deadline = time.monotonic() + 180  # importing torch alone can take 20 s on a busy machine
        while True:  # no line has been sent: only the warm start can load the model
            child.sendline("/models")
            child.expect(r"\* gpt2 .*?(cpu, float32|not loaded)")
            state = child.match.group(1)
            child.expect(GPT2_PROMPT)
            if state != "not loaded" or not preload or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (state == "cpu, float32") == preload
        child.sendline("hello")
        child.sendline("/show")  # lines run in order: once /show answers, the reply to hello is done
        child.expect("stats after each reply")
        # The background load shows nothing; a load in the foreground shows modelrepl's own line, never
        # transformers' progress bars.
        assert ("loading gpt2 from" in shown.getvalue()) != preload
        assert "Loading weights" not in shown.getvalue()
    finally:
        child.kill(9)


@pytest.mark.slow
def test_a_setting_sent_while_the_preload_imports_transformers_is_checked_after_it(tiny_checkpoints, tmp_path):
    """Two threads importing transformers at once break its lazy imports ("cannot import name GenerationConfig")."""
    child = spawn_repl(tiny_checkpoints["gpt2"], tmp_path)
    try:
        child.sendline("/set probs on")  # at once: the warm start is importing transformers
        child.expect(r"(internal error[^\r\n]*|probs = on)")
        assert child.match.group(1) == "probs = on"
    finally:
        child.kill(9)
