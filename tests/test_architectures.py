"""Every architecture of the three families, on tiny random checkpoints: load, tokenize, run, decode, /tokens.

Each checkpoint is built once per test run (repl.testing.build_architecture) and
loaded by path through the built-in plugin, the same code path as a hub id.
"""

from __future__ import annotations

import json
import re

import pytest

from repl.testing import make_repl
from repl.testing.checkpoints import ARCHITECTURES, build_architecture
from repl.testing.fixtures import builtin_host

LINE = "Hello world, the capital of France"
MASKED_LINE = "the capital of france is [mask] ."
# Causal tokenizers that put a BOS before every line, as their hub checkpoints do.
ADDS_BOS = {"opt": "</s>", "llama": "<s>", "mistral": "<s>", "gemma": "<bos>"}
# Where each seq2seq decoder starts, and the first token its generation config forces.
DECODER_START = {"mt5": "<pad>", "t5": "<pad>", "flan_t5": "<pad>", "bart": "</s>", "mbart": "</s>", "marian": "<pad>"}
FORCED_FIRST = {"bart": "<s>", "mbart": "ro_RO"}
FORCED_EOS = {"bart", "mbart"}


@pytest.fixture(scope="session")
def architecture_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("architectures")
    return {name: build_architecture(name, root / name) for names in ARCHITECTURES.values() for name in names}


def repl_on(checkpoints, model: str, architecture: str, **settings):
    return make_repl(
        builtin_host(),
        active=model,
        checkpoints={model: str(checkpoints[architecture])},
        json_mode=True,
        settings={model: settings} if settings else None,
    )


def one_record(repl, line: str) -> dict:
    result = repl.handle(line)
    assert result.ok, result.error
    (record,) = result.records
    return record


def tokenizer_of(repl, model: str):
    return repl.session.loaded[model].tokenizer


@pytest.mark.parametrize("architecture", ARCHITECTURES["gpt2"])
def test_causal_architecture_continues_text(architecture_checkpoints, architecture):
    repl = repl_on(architecture_checkpoints, "gpt2", architecture, max_new_tokens=3)
    record = one_record(repl, f"/tokens -- {LINE}")
    tokenizer = tokenizer_of(repl, "gpt2")
    assert [t["id"] for t in record["tokens"]] == tokenizer(LINE).input_ids
    added = [t["piece"] for t in record["tokens"] if t["added"]]
    assert added == ([ADDS_BOS[architecture]] if architecture in ADDS_BOS else [])
    if added:
        assert record["tokens"][0]["added"] and record["tokens"][0]["special"]
    assert record["max_length"] == (128 if architecture == "gpt2" else 64)
    assert record["decoder_start"] is None

    (turn,) = repl.evaluate(LINE).turns
    assert turn.ok, turn.error
    assert 1 <= turn.stats.new_tokens <= 3 and turn.raw_ids
    assert turn.stats.input_tokens == len(record["tokens"])
    assert turn.output == tokenizer.decode(turn.raw_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert turn.stats.stop_reason in ("eos", "max_new_tokens")
    assert one_record(repl, "/tokens last")["ids"] == turn.raw_ids


@pytest.mark.parametrize("architecture", ("llama", "gemma"))
def test_bos_stays_first_when_the_line_is_cut_or_context_is_kept(architecture_checkpoints, architecture):
    repl = repl_on(architecture_checkpoints, "gpt2", architecture, max_new_tokens=2)
    bos = ADDS_BOS[architecture]
    long = tokenize_record(repl, " ".join(["world"] * 100))
    assert len(long["tokens"]) == 64 - 2 and long["tokens"][0]["piece"] == bos
    assert [t["piece"] for t in long["tokens"]].count(bos) == 1
    repl.handle("/context on")
    repl.evaluate("Hello")
    kept = tokenize_record(repl, "world")
    assert [t["piece"] for t in kept["tokens"]].count(bos) == 1 and kept["tokens"][0]["piece"] == bos


def tokenize_record(repl, text):
    return one_record(repl, f"/tokens -- {text}")


@pytest.mark.parametrize("architecture", ARCHITECTURES["mt0"])
def test_seq2seq_architecture_starts_its_decoder_where_its_generation_config_says(
    architecture_checkpoints, architecture
):
    repl = repl_on(architecture_checkpoints, "mt0", architecture, max_new_tokens=3)
    record = one_record(repl, f"/tokens -- {LINE}")
    tokenizer = tokenizer_of(repl, "mt0")
    ids = tokenizer(LINE).input_ids
    assert [t["id"] for t in record["tokens"]] == ids
    # The line has no special tokens of its own: each one is the tokenizer's (</s>, <s>, en_XX).
    special = set(tokenizer.all_special_ids)
    assert [t["added"] for t in record["tokens"]] == [i in special for i in ids]
    assert any(i in special for i in ids)
    start = record["decoder_start"]
    assert start["piece"] == DECODER_START[architecture]
    assert start["id"] == tokenizer.convert_tokens_to_ids(DECODER_START[architecture])
    forced = record.get("forced_first_token")
    assert (forced and forced["piece"]) == FORCED_FIRST.get(architecture)

    (turn,) = repl.evaluate(LINE).turns
    assert turn.ok, turn.error
    assert turn.raw_ids[0] == start["id"]
    if forced:
        assert turn.raw_ids[1] == forced["id"]
    if architecture in FORCED_EOS and len(turn.raw_ids) - 1 == 3:
        # BART and mBART end with a forced </s> when the limit is reached: still a stop at the limit.
        assert turn.stats.stop_reason == "max_new_tokens"
    # A random model may generate pad ids, which are not counted as reply tokens.
    assert turn.stats.new_tokens <= len(turn.raw_ids) - 1 <= 3
    assert turn.raw_output.startswith(DECODER_START[architecture])
    assert turn.output == tokenizer.decode(turn.raw_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert one_record(repl, "/tokens last")["ids"] == turn.raw_ids


@pytest.mark.parametrize("architecture", ARCHITECTURES["bert"])
def test_masked_architecture_fills_its_own_mask_with_words(architecture_checkpoints, architecture):
    repl = repl_on(architecture_checkpoints, "bert", architecture, top_k=8)
    record = one_record(repl, f"/tokens -- {MASKED_LINE}")
    tokenizer = tokenizer_of(repl, "bert")
    tokens = record["tokens"]
    (mask,) = [t for t in tokens if t["id"] == tokenizer.mask_token_id]
    assert mask["piece"] == tokenizer.mask_token and mask["special"] and not mask["added"]
    assert tokens[0]["added"] and tokens[-1]["added"]
    assert record["max_length"] == 64

    result = repl.handle(MASKED_LINE)
    assert result.ok, result.error
    (candidates,) = result.turns[0].data["candidates"]
    assert len(candidates) == 8
    never = {*tokenizer.all_special_tokens, tokenizer.mask_token}
    for candidate in candidates:
        word = candidate["token"]
        assert word and word == word.strip() and word.isprintable() and word not in never
        assert not re.search(r"[Ġ▁\ufffd]", word)
        assert not re.fullmatch(r"\[unused\d+\]", word)
        assert candidate["score"] > 0
    printed = json.loads(repl.renderer.out.getvalue().splitlines()[-1])
    assert [c["token"] for c in printed["candidates"][0]] == [c["token"] for c in candidates]


def test_wordpiece_continuations_keep_their_marks_and_small_probabilities_stay_readable(taught_repl):
    repl = taught_repl(active="bert")
    repl.handle("/set top_k 3")
    repl.handle("we like play [MASK] games .")
    best, *others = repl.session.turns[-1].data["candidates"][0]
    assert best["token"] == "##ing"
    shown = repl.renderer.out.getvalue()
    assert "##ing" in shown and " 0.000" not in shown
    for candidate in others:
        assert 0 < candidate["score"] < 0.001
        assert f"{candidate['score']:.0e}" in shown


def test_a_checkpoint_that_does_not_match_its_config_is_a_one_line_error(architecture_checkpoints, tmp_path):
    import shutil

    broken = tmp_path / "llama"
    shutil.copytree(architecture_checkpoints["llama"], broken)
    config = json.loads((broken / "config.json").read_text())
    config["hidden_size"] = 24
    (broken / "config.json").write_text(json.dumps(config))
    repl = make_repl(builtin_host(), active="gpt2", checkpoints={"gpt2": str(broken)})
    (turn,) = repl.evaluate("Hello").turns
    assert not turn.ok
    assert "\n" not in turn.error and "Traceback" not in turn.error
    assert str(broken) in turn.error
