"""Safe by default: no checkpoint code runs unless asked, no pickle, private files, no network, no stray plugins.

Covered elsewhere: the refusal of pickle-only weights and --allow-pickle
(test_loading.py), a session file's mode under the usual umask (test_sessions.py).
"""

import ipaddress
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys

import pytest

from repl import cli
from repl.store import paths
from repl.testing import ReplDriver

PRIVATE_FILE, PRIVATE_DIRECTORY = 0o600, 0o700


def mode(path):
    return os.stat(path).st_mode & 0o777


# -- checkpoints that bring their own code --------------------------------------------------------


def checkpoint_with_code(tiny_gpt2, directory, marker):
    """The tiny gpt2 as a checkpoint whose config maps to its own module, which leaves `marker` when imported."""
    shutil.copytree(tiny_gpt2, directory)
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "own-gpt2"
    config["auto_map"] = {"AutoConfig": "own_code.OwnConfig", "AutoModelForCausalLM": "own_code.OwnModel"}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "own_code.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        "class OwnConfig(GPT2Config):\n"
        "    model_type = 'own-gpt2'\n"
        "class OwnModel(GPT2LMHeadModel):\n"
        "    config_class = OwnConfig\n"
    )
    return directory


def test_a_checkpoint_with_its_own_code_is_refused_and_its_code_never_runs(tiny_checkpoints, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    checkpoint = checkpoint_with_code(tiny_checkpoints["gpt2"], tmp_path / "own-code", marker)

    status = cli.main(["-m", f"gpt2={checkpoint}", "--no-log", "-e", "Hello", "-e", "/models"])

    err = capsys.readouterr().err
    assert status == 1
    assert (
        f"error: checkpoint '{checkpoint}' comes with its own Python code, which would run on this machine; "
        "pass --trust-remote-code if you trust its source\n"
    ) in err
    assert not marker.exists()
    assert not any(name.endswith("own_code") for name in sys.modules)


@pytest.mark.slow
def test_trust_remote_code_runs_the_checkpoints_code_only_when_asked(tiny_checkpoints, tmp_path):
    """The same checkpoint with the flag: the marker proves the refusal above was the only thing stopping it."""
    marker = tmp_path / "code-ran"
    checkpoint = checkpoint_with_code(tiny_checkpoints["gpt2"], tmp_path / "own-code", marker)
    environment = {**os.environ, "MODELREPL_PLUGINS": "gpt2", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    arguments = ["-m", f"gpt2={checkpoint}", "--no-log", "--trust-remote-code", "-e", "Hello"]

    done = subprocess.run(
        [sys.executable, "-m", "repl", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert marker.exists()


# -- weights: safetensors only, unless asked ---------------------------------------------------


class LeavesAMarker:
    """Unpickling this creates a file: what a malicious pickle could do, harmlessly."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_weights_beside_safetensors_are_never_opened(
    builtin_repl, repl_driver, tiny_checkpoints, tmp_path, monkeypatch
):
    import torch

    marker = tmp_path / "unpickled"
    both = shutil.copytree(tiny_checkpoints["gpt2"], tmp_path / "both")
    pickle_only = shutil.copytree(tiny_checkpoints["gpt2"], tmp_path / "pickle-only")
    (pickle_only / "model.safetensors").unlink()
    for directory in (both, pickle_only):
        (directory / "pytorch_model.bin").write_bytes(pickle.dumps(LeavesAMarker(marker)))
    opened = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: opened.append(args))
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})

    drive = repl_driver(repl).lines(f"/load gpt2 {both}", "Hello", f"/load gpt2 {pickle_only}")

    loaded, hello, refused = drive.results
    assert loaded.ok and loaded.text.startswith(f"loaded gpt2 from {both}")
    assert hello.turns[0].ok
    assert "only pickle weights" in refused.error and "--allow-pickle" in refused.error
    assert opened == [] and not marker.exists()


# -- the user's files are private ---------------------------------------------------------------


@pytest.fixture
def permissive_umask():
    """umask 0: modes must come from modelrepl itself, not from a careful user's umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_history_and_session_files_are_private_through_the_interactive_loop(builtin_repl, permissive_umask):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2})

    ReplDriver(repl, history_path=paths.history_file()).lines("Hello", "/session save mine")

    session = paths.sessions_dir() / "mine.json"
    assert json.loads(session.read_text())["turns"][0]["input"] == "Hello"
    assert (mode(paths.history_file()), mode(session)) == (PRIVATE_FILE, PRIVATE_FILE)
    assert (mode(paths.data_dir()), mode(paths.sessions_dir())) == (PRIVATE_DIRECTORY, PRIVATE_DIRECTORY)


def test_transcript_and_sessions_from_the_command_line_are_private(tiny_checkpoints, permissive_umask, capsys):
    gpt2 = ["-m", f"gpt2={tiny_checkpoints['gpt2']}", "--set", "max_new_tokens=2", "--no-stream"]

    assert cli.main([*gpt2, "--no-log", "-e", "Hello", "-e", "/session save first"]) == 0
    assert cli.main([*gpt2, "-e", "Hello"]) == 0

    assert mode(paths.data_dir()) == PRIVATE_DIRECTORY  # made by the session save, before any transcript
    assert mode(paths.data_dir().parent) == PRIVATE_DIRECTORY  # XDG: a missing data home is made 0700
    assert mode(paths.sessions_dir() / "first.json") == PRIVATE_FILE
    assert mode(paths.transcript_file()) == PRIVATE_FILE


# -- plugins come from installed entry points only -----------------------------------------------


def test_modelrepl_plugins_cannot_name_a_module_or_a_file(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "imported"
    module = f"modelrepl_sneaky_{tmp_path.name}".replace("-", "_")
    source = (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "from repl import hookimpl\n"
        "@hookimpl\n"
        "def register_models(register):\n"
        "    register('sneaky', family='causal', checkpoint='nowhere')\n"
    )
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = [module, f"{module}:register_models", str(tmp_path / f"{module}.py"), "plugins.gpt2", "repl.testing"]
    monkeypatch.setenv("MODELREPL_PLUGINS", ",".join(names))

    assert cli.main(["plugins"]) == 0
    assert capsys.readouterr().out.strip() == "no plugins are installed"

    monkeypatch.setenv("MODELREPL_PLUGINS", f"gpt2,{module}")
    assert cli.main(["models"]) == 0
    assert [line.lstrip("* ").split()[0] for line in capsys.readouterr().out.splitlines()[2:]] == ["gpt2"]
    assert not marker.exists() and module not in sys.modules


# -- no network ------------------------------------------------------------------------------------


def is_loopback(address):
    if not isinstance(address, tuple):  # a Unix socket's path
        return True
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return address[0] == "localhost"


def test_the_suite_is_offline_and_model_turns_open_no_connection(builtin_repl, repl_driver, monkeypatch):
    import huggingface_hub.constants

    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE
    attempts = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(address):
        attempts.append(address)
        raise OSError(f"test: no network access, {address!r} was asked for")

    def connect(sock, address):
        return real_connect(sock, address) if is_loopback(address) else refuse(address)

    def connect_ex(sock, address):
        return real_connect_ex(sock, address) if is_loopback(address) else refuse(address)

    def getaddrinfo(host, *args, **kwargs):
        local = host is None or is_loopback((host,))
        return real_getaddrinfo(host, *args, **kwargs) if local else refuse((host,))

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2}, gpt2={"max_new_tokens": 2})

    drive = repl_driver(repl).lines(
        "Translate to English: Je t'aime.",
        "/use gpt2",
        "Hello",
        "/use bert",
        "the [MASK] is good .",
        "/tokens mt0 gpt2 bert -- the [MASK] is good",
        "/load gpt2 openai-community/gpt2-large",
    )

    assert attempts == []
    assert all(turn.ok for turn in drive.turns) and len(drive.turns) == 3
    assert "HF_HUB_OFFLINE is set" in drive.results[-1].error
