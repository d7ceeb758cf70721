"""Opt-in int8: every family answers its taught lines exactly, NAME@int8 sits beside NAME, refusals are clear."""

import sys

import pytest
from conftest import TAUGHT

from repl import cli
from repl.api import LoadOptions, ModelError
from repl.core.session import Session
from repl.store import config
from repl.testing import make_repl
from repl.testing.fixtures import builtin_host


@pytest.fixture(scope="module")
def int8_repl(taught_checkpoints):
    """One REPL on the taught checkpoints, where each family is also loaded as NAME@int8."""
    return make_repl(builtin_host(), checkpoints={family: str(path) for family, path in taught_checkpoints.items()})


@pytest.mark.parametrize("family", ["mt0", "gpt2", "bert"])
def test_taught_checkpoints_keep_their_exact_answers_when_quantized(int8_repl, family):
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from transformers.pytorch_utils import Conv1D

    for line, answer in TAUGHT[family].items():
        result = int8_repl.evaluate(f"/compare {family} {family}@int8 -- {line}")
        assert result.error is None, result.error
        plain, quantized = int8_repl.session.turns[-2:]
        assert (plain.model, quantized.model) == (family, f"{family}@int8")
        assert quantized.output == plain.output
        assert (quantized.data["candidates"][0][0]["token"] if family == "bert" else quantized.output) == answer
    handle = int8_repl.session.loaded[f"{family}@int8"].handle
    layers = list(handle.modules())
    assert any(isinstance(layer, DynamicLinear) for layer in layers)
    assert not any(isinstance(layer, Conv1D) or type(layer) is torch.nn.Linear for layer in layers)  # gpt2's Conv1D too
    # The full-precision model loaded from the same checkpoint is untouched.
    assert not any(isinstance(layer, DynamicLinear) for layer in int8_repl.session.loaded[family].handle.modules())


def test_models_and_tokens_show_which_model_is_quantized(int8_repl):
    int8_repl.evaluate("/load gpt2@int8")
    rows = {line.split()[0].strip("*"): line for line in int8_repl.describe_models().splitlines()[2:] if line.split()}
    assert "int8 linear layers" in rows["gpt2@int8"]
    assert "int8" not in rows["gpt2"]
    assert int8_repl.session.loaded["gpt2@int8"].memory_bytes < int8_repl.session.model("gpt2").memory_bytes
    shown = int8_repl.evaluate("/tokens gpt2 gpt2@int8 -- hi").text
    assert "gpt2@int8 (" in shown and "int8 linear layers)" in shown
    assert shown.count("int8 linear layers") == 1


def test_a_variant_takes_its_own_checkpoint_or_else_the_base_one(taught_checkpoints, tiny_checkpoints):
    session = Session(builtin_host(), LoadOptions(device="cpu"))
    session.choose_checkpoint("gpt2", str(taught_checkpoints["gpt2"]))
    assert session.checkpoint_of("gpt-2@int8") == str(taught_checkpoints["gpt2"])  # an alias resolves too
    session.choose_checkpoint("gpt2@int8", str(tiny_checkpoints["gpt2"]))
    assert session.checkpoint_of("gpt2@int8") == str(tiny_checkpoints["gpt2"])
    assert session.load_options("gpt2@int8").quantize == "int8" and session.load_options("gpt2").quantize is None
    assert session.load_options("gpt2@int3").quantize is None  # a word that is no quantization names a copy
    with pytest.raises(ModelError, match=r"after @ comes a quantization \(int8, bnb8, bnb4\) or a word"):
        session.spec("gpt2@3-bit")


def test_a_tagged_copy_keeps_its_own_settings_so_compare_puts_two_settings_side_by_side(builtin_repl):
    repl = builtin_repl(active="gpt2", json_mode=True, gpt2={"max_new_tokens": 4})
    assert repl.handle("/use gpt2@short").ok and repl.handle("/set max_new_tokens 1").ok
    result = repl.handle("/compare gpt2 gpt2@short -- Hello world")
    by_model = {record["model"]: record for record in result.records}
    assert by_model["gpt2"]["stats"]["new_tokens"] == 4 and by_model["gpt2@short"]["stats"]["new_tokens"] == 1
    assert by_model["gpt2@short"]["output"] and by_model["gpt2"]["output"].startswith(by_model["gpt2@short"]["output"])
    assert repl.session.load_options("gpt2@short").quantize is None


def test_quantize_flag_and_config_key_choose_the_quantization(tmp_path):
    args = cli.build_parser().parse_args(["--quantize", "int8", "-m", "gpt2"])
    session = cli.build_session(args, config.Config())
    assert session.load_options("gpt2").quantize == "int8" and session.load_options("mt0").quantize == "int8"
    file = tmp_path / "config.toml"
    file.write_text('[models.mt0]\nquantize = "int8"\n', encoding="utf-8")
    session = cli.build_session(cli.build_parser().parse_args([]), config.load(file))
    assert session.load_options("mt0").quantize == "int8" and session.load_options("gpt2").quantize is None
    file.write_text('[models.mt0]\nquantize = "int4"\n', encoding="utf-8")
    with pytest.raises(config.ConfigError, match=r"models.mt0.quantize = 'int4' is not allowed; it takes one of int8"):
        config.load(file)


def test_bitsandbytes_and_half_precision_are_refused_on_cpu(tiny_checkpoints):
    repl = make_repl(
        builtin_host(), checkpoints={"gpt2": str(tiny_checkpoints["gpt2"])}, options=LoadOptions(device="cpu")
    )
    for mode in ("bnb8", "bnb4"):
        result = repl.evaluate(f"/load gpt2@{mode}")
        assert result.error == (
            f"--quantize {mode} uses bitsandbytes, which needs a CUDA GPU (this model runs on cpu); "
            "on CPU use --quantize int8"
        )
    half = make_repl(
        builtin_host(),
        checkpoints={"gpt2": str(tiny_checkpoints["gpt2"])},
        options=LoadOptions(device="cpu", dtype="bfloat16"),
    )
    assert "starts from float32 weights" in half.evaluate("/load gpt2@int8").error
    assert "gpt2@int8" not in half.session.loaded and "gpt2@bnb8" not in repl.session.loaded


def test_chat_models_quantize_through_the_shared_loader(tmp_path):
    from plugins import chat as chat_plugin
    from repl.testing import make_host
    from repl.testing.checkpoints import build_chat_checkpoint

    checkpoint = str(build_chat_checkpoint(tmp_path / "chat"))
    repl = make_repl(make_host(chat_plugin), checkpoints={"chat": checkpoint}, settings={"chat": {"max_new_tokens": 4}})
    result = repl.evaluate("/compare chat chat@int8 -- hello")
    assert result.error is None, result.error
    plain, quantized = repl.session.turns[-2:]
    assert plain.ok and quantized.ok and quantized.stats.new_tokens > 0
    assert repl.session.loaded["chat@int8"].quantization == "int8 linear layers"
    assert repl.session.loaded["chat"].quantization is None


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps")
def test_quantizing_hands_back_the_full_precision_pages(tiny_checkpoints, tmp_path):
    """The fp32 weights are memory-mapped; once a layer is int8 its fp32 pages leave the process (peak memory)."""
    import shutil

    import torch
    import transformers

    from repl.hf.quantization import quantize_int8

    directory = tmp_path / "wide-gpt2"
    shutil.copytree(tiny_checkpoints["gpt2"], directory)
    vocabulary = transformers.AutoConfig.from_pretrained(directory).vocab_size
    config = transformers.GPT2Config(vocab_size=vocabulary, n_embd=256, n_layer=4, n_head=4, n_positions=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(directory)
    weights = directory / "model.safetensors"
    embeddings = 4 * 256 * (vocabulary + 64)

    model = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    embedding_before = model.transformer.wte.weight.clone()
    prompt = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        model(prompt)  # every weight read once: all pages in
        assert _resident_bytes(weights) > weights.stat().st_size - embeddings - (1 << 20)
        quantize_int8(model)
        model(prompt)
    # What stays is about the fp32 embeddings (the tied one is still used) and the file's header pages.
    assert _resident_bytes(weights) < embeddings + (1 << 20)
    assert torch.equal(model.transformer.wte.weight, embedding_before)  # reclaimed pages lose nothing


def _resident_bytes(path) -> int:
    """Resident bytes of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total
