"""Defects a user met at the prompt (issue 14), each driven through the real prompt loop or the CLI."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest
from conftest import offline_hub

from repl import hookimpl
from repl.api import SEQ2SEQ
from repl.terminal.renderer import Renderer
from repl.testing import make_host, make_repl


@pytest.fixture(scope="module")
def refused_gpt2(tiny_checkpoints, tmp_path_factory):
    """gpt2 checkpoints a load must refuse, made from the tiny one.

    The first four are refused before the weights load; `headless` only after
    (the architecture says it was saved without the LM head).
    """
    root = tmp_path_factory.mktemp("refused")
    source = tiny_checkpoints["gpt2"]

    def copy(name):
        return shutil.copytree(source, root / name)

    pickle_only = copy("pickle-only")
    (pickle_only / "model.safetensors").rename(pickle_only / "pytorch_model.bin")
    no_tokenizer = copy("no-tokenizer")
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).unlink()
    headless = copy("headless")
    config = json.loads((headless / "config.json").read_text())
    (headless / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2Model"]}))
    return {
        "missing": root / "nowhere",
        "wrong family": tiny_checkpoints["bert"],
        "pickle only": pickle_only,
        "no tokenizer": no_tokenizer,
        "headless": headless,
    }


def test_a_refused_load_leaves_the_loaded_model_as_it_was(builtin_repl, repl_driver, refused_gpt2, tiny_checkpoints):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 3})
    drive = repl_driver(repl).lines("/load gpt2", "Hello world")
    before = drive.turns[-1].output
    for kind, checkpoint in refused_gpt2.items():
        kept = repl.session.loaded["gpt2"]
        drive = repl_driver(repl).lines(f"/load gpt2 {checkpoint}", "Hello world")
        assert drive.results[0].error, kind
        loaded = repl.session.loaded["gpt2"]
        assert loaded.checkpoint == str(tiny_checkpoints["gpt2"]) == repl.session.checkpoint_of("gpt2"), kind
        if kind != "headless":  # refused before the weights: the old model was never freed
            assert loaded is kept, kind
        assert drive.turns[-1].output == before, kind


@pytest.mark.parametrize("model", ["mt0", "gpt2"])
def test_settings_generate_would_refuse_are_refused_when_set(builtin_repl, repl_driver, model):
    repl = builtin_repl(active=model)
    drive = repl_driver(repl).lines(
        "/set do_sample on",
        "/set temperature 0",
        "/set repetition_penalty 0",
        "/set do_sample off",
        "/set temperature 0",
        "/set do_sample on",
    )
    errors = [result.error for result in drive.results]
    assert errors[0] is None and errors[3] is None and errors[4] is None
    assert "temperature" in errors[1] and "strictly positive" in errors[1]
    assert "penalty" in errors[2]
    assert "temperature" in errors[5]  # sampling at temperature 0 is refused, whichever came first
    settings = repl.session.settings_of(model)
    assert settings["do_sample"] is False and settings["temperature"] == 0 and settings["repetition_penalty"] == 1


def test_a_model_that_refuses_its_settings_is_one_error_line_not_a_plugin_problem(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2")
    # As if a setting had slipped past /set: generate is never given it.
    repl.session.settings_of("gpt2").update(do_sample=True, temperature=0.0)
    drive = repl_driver(repl).lines("Hello world")
    (turn,) = drive.turns
    assert turn.error.startswith("gpt2 cannot generate with these settings: `temperature` (=0.0)")
    assert "plugin" not in drive.stderr
    assert [line for line in drive.stderr.splitlines() if not line.startswith("note: loading")] == [
        f"error: {turn.error}"
    ]


@pytest.fixture(scope="module")
def pad_mt0(tiny_checkpoints, tmp_path_factory):
    """A tiny mt0 whose every logit is 0, so greedy decoding emits the pad token (id 0) until the limit."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    path = shutil.copytree(tiny_checkpoints["mt0"], tmp_path_factory.mktemp("pad") / "mt0")
    model = AutoModelForSeq2SeqLM.from_pretrained(path)
    with torch.no_grad():
        model.get_input_embeddings().weight.zero_()
        model.get_output_embeddings().weight.zero_()
    model.save_pretrained(path)
    return path


def test_mt0_counts_the_pad_tokens_it_generated_and_says_it_hit_the_limit(builtin_repl, repl_driver, pad_mt0):
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 8}, gpt2={"max_new_tokens": 2})
    repl.session.choose_checkpoint("mt0", str(pad_mt0))
    drive = repl_driver(repl).lines("/stats on", "Hello world", "/compare mt0 gpt2 -- Hello world")
    turn, compared, _ = repl.session.turns
    assert turn.raw_ids == [0] * 9 and turn.output == ""
    for counted in (turn, compared):
        assert (counted.stats.new_tokens, counted.stats.stop_reason) == (8, "max_new_tokens")
    assert "(empty reply)\n[" in drive.stdout and "8 new" in drive.stdout
    row = next(line for line in drive.stdout.splitlines() if line.startswith("mt0 "))
    assert row.split()[3:4] == ["8"] and row.endswith("max_new_tokens")

    json_repl = builtin_repl(active="mt0", json_mode=True, mt0={"max_new_tokens": 8})
    json_repl.session.choose_checkpoint("mt0", str(pad_mt0))
    record = json.loads(repl_driver(json_repl).lines("Hello world").stdout)
    assert (record["stats"]["new_tokens"], record["stats"]["stop_reason"]) == (8, "max_new_tokens")

    from repl import cli

    prompts = pad_mt0.parent / "prompts.txt"
    prompts.write_text("Hello world\n", encoding="utf-8")
    rows = pad_mt0.parent / "rows.jsonl"
    assert (
        cli.main(["compare", "-m", f"mt0={pad_mt0}", "--set", "max_new_tokens=8", "--jsonl", str(rows), str(prompts)])
        == 0
    )
    (row,) = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()]
    assert (row["new_tokens"], row["stop_reason"]) == (8, "max_new_tokens")


def test_tokens_shows_any_text_for_bert_and_only_a_turn_needs_a_mask(builtin_repl, repl_driver):
    repl = builtin_repl(active="bert")
    drive = repl_driver(repl).lines("/tokens bert -- Hello world", "Hello world")
    tokens, turn = drive.results
    assert tokens.ok and "«[CLS]» +" in tokens.text and "hello" in tokens.text
    assert turn.turns[0].error.startswith("bert fills in masked words: put [MASK] where a word is missing")


def test_bert_candidates_show_in_compare_and_in_a_retry_on_several_models(builtin_repl, repl_driver, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    repl = builtin_repl(active="bert", mt0={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("/compare bert mt0 -- Paris is the [MASK] of France.", "/retry bert mt0")
    for result in drive.results:
        assert result.ok and result.text.count("[MASK] 1: ") == 1


def test_an_empty_reply_is_marked_in_a_turn_a_retry_and_a_comparison(builtin_repl, repl_driver, pad_mt0):
    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2}, gpt2={"max_new_tokens": 2})
    repl.session.choose_checkpoint("mt0", str(pad_mt0))
    drive = repl_driver(repl).lines("Hello world", "/retry mt0", "/retry mt0 gpt2")
    assert drive.stdout.startswith("(empty reply)\n(empty reply)\n")
    assert "(empty reply)" in drive.results[2].text


def test_input_notices_print_before_a_streamed_reply_each_on_its_own_line(builtin_repl, repl_driver):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 100})
    screen = io.StringIO()
    repl.renderer = Renderer(screen, screen)  # stdout and stderr in the order a terminal shows them
    lines = repl_driver(repl).lines("/load gpt2", "Hello world " * 40).stdout.splitlines()
    notice = next(i for i, line in enumerate(lines) if "input truncated" in line)
    assert lines[notice].startswith("note: input truncated to 28 tokens")
    assert lines[notice - 1].startswith("loaded gpt2") and len(lines) == notice + 2  # the reply comes after


class CancelledLoad:
    """A model whose first load is interrupted, as Ctrl-C does."""

    @hookimpl
    def register_models(self, register):
        register("slow", family=SEQ2SEQ, checkpoint="slow/checkpoint")

    @hookimpl
    def load_model(self, spec, checkpoint):
        raise KeyboardInterrupt


def test_ctrl_c_while_a_model_loads_prints_one_accurate_message(repl_driver):
    repl = make_repl(make_host(("slow", CancelledLoad())), active="slow")
    drive = repl_driver(repl).lines("Hello", "/load slow")
    messages = [line for line in drive.stderr.splitlines() if not line.startswith("note: loading")]
    assert messages == ["error: cancelled while loading slow", "error: cancelled while loading slow"]
    assert drive.stdout == ""


def test_session_save_does_not_overwrite_a_saved_session_without_force(builtin_repl, repl_driver):
    from repl.store.session_files import session_path

    repl = builtin_repl(active="mt0", mt0={"max_new_tokens": 2})
    drive = repl_driver(repl).lines("/session save mine", "Hello", "/session save mine", "/help session")
    assert drive.results[2].error.endswith("not overwritten: choose another name, or add --force to replace it")
    assert "--force" in drive.results[3].text
    assert json.loads(session_path("mine").read_text())["turns"] == []
    assert repl_driver(repl).lines("/session save mine --force").results[0].ok
    assert len(json.loads(session_path("mine").read_text())["turns"]) == 1


@pytest.fixture(scope="module")
def hub_without_network(tiny_checkpoints, tmp_path_factory):
    """A machine without network whose Hugging Face cache holds `tiny/gpt2`."""
    return offline_hub(tmp_path_factory.mktemp("hf-home"), "tiny/gpt2", tiny_checkpoints["gpt2"])


@pytest.mark.slow
def test_without_network_the_hub_cache_answers_at_once_and_an_uncached_id_fails_fast(hub_without_network, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "repl", "-m", "gpt2=tiny/gpt2", "--set", "max_new_tokens=2", "--no-log"],
        input="Hello world\n/load gpt2 tiny/uncached\nHello world\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=hub_without_network,
        timeout=300,
    )
    # huggingface_hub's own handling retries each file it cannot find in the cache five times in 23 s,
    # with a warning each time: for the cached checkpoint's optional files, and for the uncached one.
    assert "Retrying" not in completed.stderr and "thrown while requesting" not in completed.stderr
    assert completed.returncode == 1
    first, second = completed.stdout.splitlines()
    assert first.strip() and first == second  # the cached model answered, and still does after the refused load
    assert [line for line in completed.stderr.splitlines() if line.startswith(("note", "error"))] == [
        "note: loading gpt2 from tiny/gpt2 ...",
        "note: loading gpt2 from tiny/uncached ...",
        "error: checkpoint 'tiny/uncached' is not in the local Hugging Face cache and the hub could not be reached "
        "or has no such model; download it once with network access, or load a local directory: "
        "/load gpt2 /path/to/checkpoint",
    ]
