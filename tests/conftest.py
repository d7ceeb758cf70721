import os
import shutil
import socket

import pytest

from repl import hookimpl
from repl.api import Encoding, Reply, Token

# Set before anything imports huggingface_hub, which reads it once: no test may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
# Tiny models gain nothing from threads, and on a busy 2-core machine two threads make each step
# many times slower. Set before torch is imported, here and in every subprocess a test starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["repl.testing.fixtures"]


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """No test reads or writes the real user's config, history or transcript, or the network."""
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("MODELREPL_PLUGINS", raising=False)


TAUGHT = {
    "mt0": {"Translate to English: Je t'aime.": "I love you."},
    "gpt2": {"Say hi in Chinese:": " 我爱你 😀 🎉"},
    "bert": {"the capital of france is [MASK] .": "paris", "we like play [MASK] games .": "##ing"},
}


@pytest.fixture(scope="session")
def taught_checkpoints(tmp_path_factory):
    """Tiny checkpoints overfit on TAUGHT, so replies can be asserted exactly."""
    from repl.testing import build_checkpoint, teach_checkpoint

    root = tmp_path_factory.mktemp("taught")
    return {
        family: teach_checkpoint(family, build_checkpoint(family, root / family), examples)
        for family, examples in TAUGHT.items()
    }


@pytest.fixture
def taught_repl(taught_checkpoints):
    """A factory of REPLs with the built-in plugins (through their entry points) on taught checkpoints."""
    from repl.testing import make_repl
    from repl.testing.fixtures import builtin_host

    def build(active=None, json_mode=False, **settings):
        checkpoints = {family: str(path) for family, path in taught_checkpoints.items()}
        return make_repl(
            builtin_host(), active=active, checkpoints=checkpoints, json_mode=json_mode, settings=settings or None
        )

    return build


class ShoutingModel:
    """The turn hooks of a toy model that answers its line in capitals; subclasses register and load it."""

    @hookimpl
    def tokenize(self, text):
        return Encoding(text, [Token(1, text)])

    @hookimpl
    def run(self, encoding, control):
        control.step()
        return encoding.text

    @hookimpl
    def decode(self, output):
        return Reply(text=output.upper(), new_ids=[1])


# Either turns huggingface_hub's network off: a test of the network's absence must set neither.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_hub(home, repository, source):
    """The environment of a machine without network: no offline variable set, a hub endpoint nothing answers on,
    and a Hugging Face cache (HF_HOME) holding `repository` (the files of the directory `source`) in the
    hub's cache layout."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    cached = home / "hub" / ("models--" + repository.replace("/", "--"))
    shutil.copytree(source, cached / "snapshots" / commit)
    (cached / "refs").mkdir()
    (cached / "refs" / "main").write_text(commit)
    with socket.socket() as closed:  # a port that was free a moment ago: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    environment = {key: value for key, value in os.environ.items() if key not in OFFLINE_VARIABLES}
    return {**environment, "HF_HOME": str(home), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
