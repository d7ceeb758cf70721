"""Loading checkpoints safely: wrong family, missing head, pickle weights, missing files."""

import pytest

from repl.api import LoadOptions
from repl.testing import build_checkpoint


@pytest.fixture(scope="module")
def odd_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    return {
        "bert-headless": build_checkpoint("bert", root / "bert-headless", head=False),
        "gpt2-headless": build_checkpoint("gpt2", root / "gpt2-headless", head=False),
        "mt0-headless": build_checkpoint("mt0", root / "mt0-headless", head=False),
        "mt0-pickle": build_checkpoint("mt0", root / "mt0-pickle", safetensors=False),
    }


def test_checkpoint_of_another_family_names_its_family(builtin_repl, tiny_checkpoints):
    repl = builtin_repl(active="mt0")
    error = repl.evaluate(f"/load mt0 {tiny_checkpoints['gpt2']}").error
    assert "is a gpt2 causal LM (decoder-only)" in error and "mt0 needs a seq2seq" in error
    assert "mt0" not in repl.session.loaded
    error = repl.evaluate(f"/load gpt2 {tiny_checkpoints['bert']}").error
    assert "is a bert masked LM (encoder-only)" in error


@pytest.mark.parametrize(
    "model, checkpoint", [("bert", "bert-headless"), ("gpt2", "gpt2-headless"), ("mt0", "mt0-headless")]
)
def test_checkpoint_without_the_task_head_is_refused(builtin_repl, odd_checkpoints, model, checkpoint):
    repl = builtin_repl(active=model)
    error = repl.evaluate(f"/load {model} {odd_checkpoints[checkpoint]}").error
    assert "head" in error and "would answer from random weights" in error
    assert model not in repl.session.loaded


def test_pickle_weights_are_refused_unless_allowed(builtin_repl, odd_checkpoints):
    repl = builtin_repl(active="mt0")
    error = repl.evaluate(f"/load mt0 {odd_checkpoints['mt0-pickle']}").error
    assert "only pickle weights" in error and "--allow-pickle" in error
    repl.session.options = LoadOptions(device="cpu", allow_pickle=True)
    assert repl.evaluate(f"/load mt0 {odd_checkpoints['mt0-pickle']}").error is None
    assert repl.session.loaded["mt0"].checkpoint == str(odd_checkpoints["mt0-pickle"])


def test_directory_that_is_not_a_checkpoint(builtin_repl, tmp_path):
    repl = builtin_repl(active="mt0")
    assert (
        repl.evaluate(f"/load mt0 {tmp_path}").error
        == f"'{tmp_path}' is not a checkpoint directory: it has no config.json"
    )
    missing = tmp_path / "nowhere"
    assert repl.evaluate(f"/load mt0 {missing}").error == f"checkpoint directory '{missing}' does not exist"


def test_uncached_hub_id_offline_gets_one_message(builtin_repl):
    repl = builtin_repl(active="mt0")
    repl.session.choose_checkpoint("mt0", None)
    (turn,) = repl.evaluate("hello").turns
    assert turn.error.startswith("checkpoint 'bigscience/mt0-small' is not in the local Hugging Face cache")
    assert "HF_HUB_OFFLINE" in turn.error and "/load mt0 /path/to/checkpoint" in turn.error
    assert "\n" not in turn.error


def test_failed_load_keeps_the_previous_checkpoint_and_model(builtin_repl, tiny_checkpoints):
    repl = builtin_repl(active="mt0")
    assert repl.evaluate("/load mt0").error is None
    loaded = repl.session.loaded["mt0"]
    assert repl.evaluate(f"/load mt0 {tiny_checkpoints['bert']}").error
    assert repl.session.checkpoint_of("mt0") == str(tiny_checkpoints["mt0"])
    assert repl.evaluate("hello").turns[0].ok
    assert repl.session.loaded["mt0"] is not loaded or repl.session.loaded["mt0"].checkpoint == loaded.checkpoint


def test_models_are_loaded_once_and_unloaded_on_request(builtin_repl):
    repl = builtin_repl(active="mt0")
    repl.session.set("mt0", "max_new_tokens", "2")
    repl.evaluate("hello")
    loaded = repl.session.loaded["mt0"]
    repl.evaluate("hello again")
    assert repl.session.loaded["mt0"] is loaded
    assert repl.evaluate("/unload mt0").text == "unloaded mt0"
    assert "mt0" not in repl.session.loaded
    assert repl.evaluate("/unload mt0").error == "mt0 is not loaded"
