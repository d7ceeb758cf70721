"""Ctrl-C cancels the reply (or a load) but never the REPL; Ctrl-D leaves."""

import os
import sys

import pexpect
import pytest
from conftest import ShoutingModel

from repl import hookimpl
from repl.api import SEQ2SEQ
from repl.testing import make_host, make_repl

# The prompt, its model name coloured on a terminal.
MT0_PROMPT = r"mt0(?:\x1b\[[0-9;]*m)*>"


@pytest.fixture
def terminal(tiny_checkpoints, tmp_path):
    """modelrepl under a pseudo-terminal, on a tiny mt0 that can generate for a long time."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "repl", "-m", f"mt0={tiny_checkpoints['mt0']}", "--no-log", "--set", "max_new_tokens=100000"],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    child.expect(MT0_PROMPT)
    yield child
    if child.isalive():
        child.kill(9)


@pytest.mark.slow
def test_sigint_during_generation_returns_to_the_prompt_with_the_session_intact(terminal):
    terminal.sendline("hello")
    terminal.expect("ra")  # the tiny random model streams this piece over and over
    terminal.sendintr()
    terminal.expect("cancelled", timeout=10)
    terminal.expect(MT0_PROMPT, timeout=10)
    terminal.sendline("/set max_new_tokens 3")
    terminal.expect("max_new_tokens = 3")
    terminal.expect(MT0_PROMPT)
    terminal.sendline("/stats on")
    terminal.expect(MT0_PROMPT)
    terminal.sendline("again")
    terminal.expect(r"\[\d+ in, \d+ new, ttft", timeout=20)
    terminal.expect(MT0_PROMPT)
    terminal.sendline("/models")
    terminal.expect("cpu, float32")  # still loaded: the interrupted turn did not unload it


@pytest.mark.slow
def test_sigint_at_the_prompt_does_not_exit_and_ctrl_d_does(terminal):
    terminal.send("some text")
    terminal.expect("some text")
    terminal.sendintr()
    terminal.expect(MT0_PROMPT)
    terminal.sendintr()
    terminal.expect(MT0_PROMPT)
    terminal.sendline("/show")
    terminal.expect("max_new_tokens")
    terminal.expect(MT0_PROMPT)
    assert terminal.isalive()
    terminal.sendcontrol("d")
    terminal.expect(pexpect.EOF, timeout=20)
    terminal.close()
    assert terminal.exitstatus == 0


class InterruptedLoad(ShoutingModel):
    """A plugin whose first load is interrupted by Ctrl-C, as from_pretrained would be."""

    def __init__(self):
        self.loads = 0

    @hookimpl
    def register_models(self, register):
        register("slow", family=SEQ2SEQ, checkpoint="slow/checkpoint")

    @hookimpl
    def load_model(self, spec, checkpoint):
        from repl.api import LoadedModel

        self.loads += 1
        if self.loads == 1:
            raise KeyboardInterrupt
        return LoadedModel(spec=spec, checkpoint=checkpoint)


def test_ctrl_c_during_a_load_registers_no_half_loaded_model():
    repl = make_repl(make_host(("slow", InterruptedLoad())), active="slow")
    (turn,) = repl.evaluate("first").turns
    assert turn.stats.stop_reason == "cancelled" and "cancelled" in turn.error
    assert "slow" not in repl.session.loaded
    (turn,) = repl.evaluate("second").turns
    assert turn.output == "SECOND" and "slow" in repl.session.loaded


def test_prompt_runs_under_patch_stdout_so_background_output_keeps_the_line(builtin_repl, repl_driver, monkeypatch):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import StdoutProxy

    seen = []
    original = PromptSession.prompt

    def recording_prompt(self, *args, **kwargs):
        seen.append(type(sys.stdout))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PromptSession, "prompt", recording_prompt)
    repl_driver(builtin_repl()).lines("/show")
    assert seen and all(kind is StdoutProxy for kind in seen)
