"""Faults injected into a running REPL: the user is told what happened, and the REPL and other models go on.

Covered elsewhere: a plugin raising, exiting or returning None or the wrong
type in each hook, and broken imports (test_isolation.py); Ctrl-C during a
reply or a load (test_interrupt.py); a full disk for the transcript and kill -9
during a session save (test_transcript.py, test_storage.py).
"""

import errno
import os
import shutil
import signal
import threading
import time

import pytest

from repl import hookimpl
from repl.api import Encoding, LoadedModel, ModelError, Reply, Token
from repl.store import files as storage
from repl.store import paths
from repl.store import session_files as sessions
from repl.testing import make_host, make_repl

WAIT = 60  # seconds a helper thread waits for the REPL before giving up; never reached when things work


# -- running out of memory ----------------------------------------------------------------


def out_of_memory(device: str) -> Exception:
    import torch

    if device == "cuda":
        return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    return MemoryError()


@pytest.mark.parametrize(
    "device, shown",
    [("cuda", "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"), ("cpu", "MemoryError")],
)
def test_running_out_of_memory_during_generation_costs_one_turn(builtin_repl, repl_driver, device, shown):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2}, mt0={"max_new_tokens": 2})
    assert repl.evaluate("Hello").turns[0].ok
    loaded = repl.session.loaded["gpt2"]
    generate = loaded.handle.generate
    failures = [out_of_memory(device)]

    def out_of_memory_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return generate(*args, **kwargs)

    loaded.handle.generate = out_of_memory_once

    drive = repl_driver(repl).lines("Hello", "/use mt0", "Bonjour", "/use gpt2", "Hello again")

    failed, bonjour, again = drive.turns
    assert failed.error == f"gpt2's generate failed: {shown}"  # the model's failure, not the plugin's
    assert f"error: {failed.error}\n" in drive.stderr and "Traceback" not in drive.stderr
    assert bonjour.ok and again.ok and again.stats.new_tokens == 2
    assert repl.session.loaded["gpt2"] is loaded  # the model stayed loaded: no reload after the failure


def test_running_out_of_memory_while_loading_registers_no_model(builtin_repl, repl_driver, monkeypatch):
    import transformers

    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    from_pretrained = transformers.AutoModelForCausalLM.from_pretrained
    failures = [out_of_memory("cuda")]

    def out_of_memory_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return from_pretrained(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", out_of_memory_once)

    drive = repl_driver(repl).lines("Hello", "/models", "Hello")

    failed, models, answered = drive.results
    # One line with what the weights need and what to pass, never the allocator's traceback.
    assert failed.turns[0].error.startswith(f"checkpoint {repl.session.checkpoint_of('gpt2')!r} needs ")
    assert "KiB for its weights and does not fit on cpu; pass --device auto" in failed.turns[0].error
    assert "gpt2" in models.text and "cpu, float32" not in models.text  # nothing half-loaded
    assert answered.turns[0].ok and "gpt2" in repl.session.loaded


# -- a plugin that hangs until interrupted ----------------------------------------------------


class Stuck:
    """A plugin with model "stuck" that echoes words, but hangs once in one place, ignoring the cancel flag."""

    def __init__(self, where: str):
        self.where = where
        self.hanging = threading.Event()
        self.control = None

    def hang(self, where):
        if where == self.where and not self.hanging.is_set():
            self.hanging.set()
            give_up = time.monotonic() + WAIT  # only if Ctrl-C never comes: then the test fails instead of hanging
            while time.monotonic() < give_up:  # a model stuck in native code looks the same to the REPL
                time.sleep(0.005)

    @hookimpl
    def register_models(self, register):
        register("stuck", family="echo", checkpoint="none")

    @hookimpl
    def load_model(self, spec, checkpoint):
        return LoadedModel(spec=spec, checkpoint=checkpoint)

    @hookimpl
    def tokenize(self, text):
        self.hang("tokenize")
        return Encoding(text, [Token(number, word) for number, word in enumerate(text.split())])

    @hookimpl
    def run(self, encoding, control):
        self.control = self.control or control  # the hanging turn's
        control.emit(encoding.tokens[0].piece)
        self.hang("run")
        return [token.piece for token in encoding.tokens]

    @hookimpl
    def decode(self, output):
        self.hang("decode")
        return Reply(text=" ".join(output), new_ids=list(range(len(output))))

    @hookimpl
    def register_commands(self, register):
        register("wait", lambda repl, args: self.hang("command") or "done waiting", help="hangs once")


def press_ctrl_c_when_stuck(plugin: Stuck, times: int) -> threading.Thread:
    """SIGINT to this process once the plugin hangs; a second one after the first has set the cancel flag.

    The thread's `flag_was_set` tells whether it had; the second SIGINT is sent
    in any case, so that a failing test ends instead of hanging.
    """

    def press():
        if not plugin.hanging.wait(WAIT):
            return
        os.kill(os.getpid(), signal.SIGINT)
        if times == 2:
            thread.flag_was_set = plugin.control.cancel_event.wait(WAIT)
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=press, daemon=True)
    thread.flag_was_set = False
    thread.start()
    return thread


def test_a_run_that_ignores_the_cancel_flag_is_stopped_by_a_second_ctrl_c(repl_driver):
    plugin = Stuck("run")
    repl = make_repl(make_host("echo", ("stuck", plugin)), active="stuck")
    pressing = press_ctrl_c_when_stuck(plugin, times=2)

    drive = repl_driver(repl).lines("hello there", "hello again", "/use echo", "echo works")

    pressing.join(WAIT)
    stuck, again, echoed = drive.turns
    assert pressing.flag_was_set  # the first Ctrl-C asked the model to stop; the plugin never looked
    assert (stuck.stats.stop_reason, stuck.error, stuck.output) == ("cancelled", None, "hello")
    assert "note: cancelled: the reply above is what was generated before Ctrl-C" in drive.stderr
    assert again.output == "hello again" and again.ok
    assert echoed.output == "echo works"
    assert "Traceback" not in drive.stderr


@pytest.mark.parametrize("where", ["tokenize", "decode"])
def test_a_hook_that_hangs_outside_generation_is_stopped_by_one_ctrl_c(repl_driver, where):
    plugin = Stuck(where)
    repl = make_repl(make_host(("stuck", plugin)), active="stuck")
    pressing = press_ctrl_c_when_stuck(plugin, times=1)

    drive = repl_driver(repl).lines("hello there", "hello again")

    pressing.join(WAIT)
    stuck, again = drive.turns
    assert stuck.stats.stop_reason == "cancelled"
    if where == "tokenize":
        assert stuck.error == "cancelled before the model answered"
    else:
        assert stuck.error is None and stuck.output == "hello"  # what was streamed before Ctrl-C
    assert again.output == "hello again"
    assert "Traceback" not in drive.stderr


def test_a_plugin_command_that_hangs_is_cancelled_by_ctrl_c(repl_driver):
    plugin = Stuck("command")
    repl = make_repl(make_host("echo", ("stuck", plugin)), active="echo")
    pressing = press_ctrl_c_when_stuck(plugin, times=1)

    drive = repl_driver(repl).lines("/wait", "/wait", "still here")

    pressing.join(WAIT)
    cancelled, waited, echoed = drive.results
    assert cancelled.error == "cancelled"
    assert waited.text == "done waiting"
    assert echoed.turns[0].output == "still here"


# -- a plugin's message with line breaks or escape sequences ------------------------------------


class Chatty:
    """A plugin whose tokenize fails with the message it was given."""

    def __init__(self, failure: Exception):
        self.failure = failure

    @hookimpl
    def register_models(self, register):
        register("chatty", family="echo", checkpoint="none")

    @hookimpl
    def load_model(self, spec, checkpoint):
        return LoadedModel(spec=spec, checkpoint=checkpoint)

    @hookimpl
    def tokenize(self, text):
        raise self.failure


@pytest.mark.parametrize(
    "failure, shown",
    [
        (ModelError("first line\nsecond line \x1b[31mred"), "first line\\nsecond line \\x1b[31mred"),
        (
            RuntimeError("\x1b]0;pwned\x07first line\nsecond line"),
            "plugin 'chatty' failed in tokenize: RuntimeError: \\x1b]0;pwned\\x07first line",
        ),
    ],
)
def test_a_plugin_message_is_shown_on_one_line_with_escapes_visible(repl_driver, failure, shown):
    repl = make_repl(make_host("echo", ("chatty", Chatty(failure))), active="chatty")

    drive = repl_driver(repl).lines("hello", "/use echo", "hello")

    failed, answered = drive.turns
    assert failed.error == shown
    assert f"error: {shown}\n" in drive.stderr
    assert "\x1b" not in drive.stderr and "\x07" not in drive.stderr
    assert answered.output == "hello"


# -- the checkpoint directory disappears after loading -------------------------------------------


def test_a_model_keeps_answering_after_its_checkpoint_directory_is_deleted(
    builtin_repl, repl_driver, tiny_checkpoints, tmp_path
):
    copy = shutil.copytree(tiny_checkpoints["gpt2"], tmp_path / "gpt2-copy")
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2}, mt0={"max_new_tokens": 2})
    assert repl.evaluate(f"/load gpt2 {copy}").ok
    shutil.rmtree(copy)

    drive = repl_driver(repl).lines(
        "Hello",
        "/tokens Hello",
        f"/load gpt2 {copy}",
        "/unload gpt2",
        "Hello",
        f"/load gpt2 {copy}",
        "/use mt0",
        "Bonjour",
        f"/load gpt2 {tiny_checkpoints['gpt2']}",
        "/use gpt2",
        "Hello",
    )

    (from_memory, tokens, already, unloaded, reload, load_again, _, bonjour, other, _, answered) = drive.results
    assert from_memory.turns[0].ok and from_memory.turns[0].checkpoint == str(copy)
    assert tokens.ok
    assert already.text == f"gpt2 is already loaded from {copy}"
    assert unloaded.text == "unloaded gpt2"
    assert reload.turns[0].error == f"checkpoint directory '{copy}' does not exist"
    assert load_again.error == f"checkpoint directory '{copy}' does not exist"
    assert bonjour.turns[0].ok
    assert other.ok and answered.turns[0].ok and answered.turns[0].checkpoint == str(tiny_checkpoints["gpt2"])
    assert "Traceback" not in drive.stderr


def test_a_checkpoint_whose_weights_were_deleted_says_which_file_is_missing(builtin_repl, tiny_checkpoints, tmp_path):
    copy = shutil.copytree(tiny_checkpoints["mt0"], tmp_path / "mt0-copy")
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2})
    assert repl.evaluate(f"/load mt0 {copy}").ok
    (copy / "model.safetensors").unlink()

    assert repl.evaluate("Bonjour").turns[0].ok
    repl.evaluate("/unload mt0")
    error = repl.evaluate("Bonjour").turns[0].error

    assert error.startswith(f"cannot read checkpoint '{copy}': ") and "model.safetensors" in error
    assert "pickle" not in error


# -- a full disk while saving ------------------------------------------------------------------------


class FullDisk:
    """`os` as repl.storage sees it, except that files opened for writing take half the data and then fail."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(descriptor, *args, **kwargs):
        return _HalfWritten(os.fdopen(descriptor, *args, **kwargs))


class _HalfWritten:
    def __init__(self, handle):
        self.handle = handle

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self.handle.__exit__(*exc_info)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_a_full_disk_while_saving_a_session_keeps_the_saved_file_whole(builtin_repl, repl_driver, monkeypatch):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    path = paths.sessions_dir() / "story.json"
    assert repl.handle("Once upon a time").ok and repl.handle("/session save story").ok
    saved = path.read_bytes()
    with monkeypatch.context() as full:
        full.setattr(storage, "os", FullDisk())
        drive = repl_driver(repl).lines("The end", "/session save story --force", "/models")

    answered, refused, models = drive.results
    assert answered.ok and models.ok
    assert refused.error == f"cannot write {path}: No space left on device; the previous file is unchanged"
    assert path.read_bytes() == saved and len(sessions.read(path).turns) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["story.json"]  # no torn temporary left
    assert repl.handle("/session save story --force").ok and len(sessions.read(path).turns) == 2


def test_a_full_disk_while_writing_the_input_history_costs_a_notice_not_the_line(
    builtin_repl, repl_driver, tmp_path, monkeypatch
):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})
    history = tmp_path / "history"  # where repl_driver keeps it
    repl_driver(repl).lines("/show")
    monkeypatch.setattr(storage, "os", FullDisk())

    drive = repl_driver(repl).lines("/models", "Hello")

    assert [result.ok for result in drive.results] == [True, True]
    notice = f"note: cannot write {history}: No space left on device; the previous file is unchanged"
    assert drive.stderr.count(notice) == 2
    assert history.read_text(encoding="utf-8") == '"/show"\n'
    assert sorted(p.name for p in history.parent.iterdir() if p.name.startswith(".history")) == []
