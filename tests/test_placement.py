"""Big models over devices with accelerate: `--device auto`, `--max-memory` and `--offload-dir`, on CPU and disk."""

from __future__ import annotations

import pytest

from repl import cli
from repl.api import LoadOptions
from repl.hf.placement import parse_max_memory
from repl.store import config as config_module
from repl.testing import build_checkpoint, make_repl, replace_model
from repl.testing.fixtures import builtin_host


@pytest.fixture(scope="module")
def four_layer_gpt2(tmp_path_factory):
    """A tiny GPT-2 with four blocks, about 0.9 MiB of weights: enough to split between memory and disk."""
    path = build_checkpoint("gpt2", tmp_path_factory.mktemp("gpt2-4") / "gpt2")
    return replace_model(path, "GPT2LMHeadModel", n_layer=4, n_embd=64, n_head=2)


def gpt2_repl(checkpoint, options):
    return make_repl(
        builtin_host(),
        active="gpt2",
        checkpoints={"gpt2": str(checkpoint)},
        options=options,
        settings={"gpt2": {"max_new_tokens": 8}},
    )


def test_a_model_partly_on_disk_answers_the_same_greedy_tokens(four_layer_gpt2, tmp_path):
    whole = gpt2_repl(four_layer_gpt2, LoadOptions(device="cpu"))
    spread = gpt2_repl(
        four_layer_gpt2,
        LoadOptions(device="auto", max_memory=(("cpu", "600KB"),), offload_dir=str(tmp_path / "offload")),
    )
    expected = whole.handle("Hello world")
    answered = spread.handle("Hello world")

    assert answered.ok and expected.ok
    assert answered.turns[0].raw_ids == expected.turns[0].raw_ids
    assert answered.turns[0].output == expected.turns[0].output
    models = spread.handle("/models").text
    assert "cpu 1 layer, disk 3 layers" in models
    assert spread.session.loaded["gpt2"].device == "cpu+disk"
    assert "cpu, float32" in whole.handle("/models").text  # a model on one device reads as before


def test_a_model_that_does_not_fit_says_what_it_needs_and_what_to_pass(four_layer_gpt2):
    repl = gpt2_repl(four_layer_gpt2, LoadOptions(device="auto", max_memory=(("cpu", "600KB"),)))
    result = repl.handle("/load gpt2")

    assert not result.ok and "\n" not in result.error
    assert "needs 913.8 KiB for its weights but only cpu 585.9 KiB is free" in result.error
    assert "--offload-dir DIR" in result.error and "--max-memory DEVICE=SIZE" in result.error
    assert "gpt2" not in repl.session.loaded


@pytest.mark.parametrize("text", ["0=20GiB", "cuda:1=1.5GB", "cpu=500MB", "mps=1000000"])
def test_max_memory_values_accelerate_takes(text):
    from repl.hf.placement import accelerate_max_memory

    limits = accelerate_max_memory((parse_max_memory(text),))
    assert len(limits) == 1 and all(size > 0 for size in limits.values())


def test_bad_max_memory_is_refused_on_the_command_line_and_in_the_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(["--max-memory", "gpu=3", "-e", "hi"])
    assert refused.value.code == 2 and "--max-memory: takes DEVICE=SIZE" in capsys.readouterr().err

    config = tmp_path / "config.toml"
    config.write_text('max_memory = { "0" = "20GiB", cpu = "30GiB" }\noffload_dir = "/tmp/offload"\n')
    loaded = config_module.load(config)
    assert loaded.max_memory == (("0", "20GiB"), ("cpu", "30GiB")) and loaded.offload_dir == "/tmp/offload"
    config.write_text('max_memory = { cpu = "lots" }\n')
    with pytest.raises(config_module.ConfigError, match=r"max_memory\.cpu = 'lots' is not allowed"):
        config_module.load(config)
