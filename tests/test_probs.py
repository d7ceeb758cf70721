"""/probs and /score: the recorded probabilities against independent forward passes on tiny checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from repl.app.commands.probs import SHADE_LEGEND
from repl.terminal.renderer import ROW_COLOURS

GREEDY = {"probs": True, "max_new_tokens": 4}


def greedy_turn(builtin_repl, family: str, line: str, **settings):
    repl = builtin_repl(active=family, **{family: {**GREEDY, **settings}})
    (turn,) = repl.evaluate(line).turns
    assert turn.ok, turn.error
    assert turn.logprobs is not None and len(turn.logprobs) == turn.stats.new_tokens
    return repl, turn


# float32 over the whole sequence at once against step by step with a key-value cache: sums in another order.
TOLERANCE = 1e-4


def assert_matches(steps, logprobs, k):
    """Each recorded step against the log-softmax row that predicts it: the chosen token and the top k."""
    for step, row in zip(steps, logprobs, strict=True):
        assert step.logprob == pytest.approx(row[step.id].item(), abs=TOLERANCE)
        assert step.processed_logprob == pytest.approx(step.logprob, abs=1e-6)  # greedy: nothing reshapes it
        assert step.id == row.argmax().item()
        values, ids = row.topk(k)
        assert [a.id for a in step.top] == ids.tolist()
        assert [a.logprob for a in step.top] == pytest.approx(values.tolist(), abs=TOLERANCE)


@pytest.mark.hookspec("decode")
def test_gpt2_greedy_probs_match_a_forward_pass_over_the_whole_sequence(builtin_repl):
    repl, turn = greedy_turn(builtin_repl, "gpt2", "Hello world")
    model = repl.session.loaded["gpt2"]
    prompt = model.tokenizer("Hello world").input_ids
    new_ids = [step.id for step in turn.logprobs]
    with torch.no_grad():
        logits = model.handle(torch.tensor([prompt + new_ids])).logits[0]
    rows = logits.log_softmax(-1)[len(prompt) - 1 : -1]
    assert_matches(turn.logprobs, rows, 5)


@pytest.mark.hookspec("decode")
def test_mt0_greedy_probs_match_a_forward_pass_of_the_decoder(builtin_repl):
    repl, turn = greedy_turn(builtin_repl, "mt0", "Translate to English: Je t'aime.", top_logprobs=3)
    model = repl.session.loaded["mt0"]
    encoder_ids = torch.tensor([model.tokenizer("Translate to English: Je t'aime.").input_ids])
    decoder_ids = torch.tensor([[model.decoder_start.id] + [step.id for step in turn.logprobs]])
    with torch.no_grad():
        logits = model.handle(input_ids=encoder_ids, decoder_input_ids=decoder_ids).logits[0]
    assert_matches(turn.logprobs, logits.log_softmax(-1)[:-1], 3)


def test_bert_probs_show_each_masks_candidates_and_entropy(builtin_repl):
    repl = builtin_repl(active="bert", json_mode=True)
    line = "the capital of france is [MASK] ."
    assert repl.evaluate(line).ok
    (record,) = repl.evaluate("/probs").records
    model = repl.session.loaded["bert"]
    ids = model.tokenizer(line).input_ids
    with torch.no_grad():
        logits = model.handle(torch.tensor([ids])).logits[0, ids.index(model.tokenizer.mask_token_id)]
    logits[model.tokenizer.all_special_ids] = float("-inf")
    probabilities = logits.softmax(-1)
    expected_entropy = -sum(p * math.log(p) for p in probabilities.tolist() if p > 0)
    (mask,) = record["logprobs"]
    assert mask["entropy"] == pytest.approx(expected_entropy, abs=1e-4)
    assert [c["id"] for c in mask["top"]] == probabilities.topk(5).indices.tolist()
    text = builtin_repl_text(repl, "/probs")
    assert "entropy" in text and mask["top"][0]["piece"] in text


def builtin_repl_text(repl, line: str) -> str:
    repl.renderer.json_mode = False
    result = repl.evaluate(line)
    repl.renderer.json_mode = True
    assert result.ok, result.error
    return result.text


def test_sampled_probs_sum_to_one_over_the_tokens_the_sampler_kept(builtin_repl):
    _, turn = greedy_turn(
        builtin_repl, "gpt2", "Once upon a time", do_sample=True, top_k=3, temperature=0.7, seed=1, top_logprobs=10
    )
    for step in turn.logprobs:
        kept = step.processed_top
        assert len(kept) == 3  # top_k=3: every other token has probability 0
        assert sum(math.exp(a.logprob) for a in kept) == pytest.approx(1.0, abs=1e-5)
        assert step.id in [a.id for a in kept]
        assert step.processed_logprob > step.logprob  # temperature < 1 and top-k sharpen the raw distribution
        assert len(step.top) == 10


def test_json_turns_carry_logprobs_only_with_probs_on(builtin_repl):
    repl = builtin_repl(active="gpt2", json_mode=True, gpt2={"max_new_tokens": 2})
    assert "logprobs" not in _turn_record(repl, "Hello")
    assert "/set probs on" in repl.evaluate("/probs").error
    repl.evaluate("/set probs on")
    record = _turn_record(repl, "Hello")
    assert len(record["logprobs"]) == 2
    first = record["logprobs"][0]
    assert set(first) == {"id", "piece", "logprob", "processed_logprob", "top", "processed_top"}
    assert set(first["top"][0]) == {"id", "piece", "logprob"}
    assert first["top"][0]["logprob"] >= first["top"][-1]["logprob"]


def _turn_record(repl, line):
    from repl.core.results import turn_record

    (turn,) = repl.evaluate(line).turns
    return turn_record(turn)


@pytest.mark.hookspec("score")
def test_score_of_the_greedy_continuation_is_the_sum_of_its_probs(builtin_repl):
    repl, turn = greedy_turn(builtin_repl, "gpt2", "Hello world")
    repl.renderer.json_mode = True
    (record,) = repl.evaluate(f"/score gpt2 -- Hello world{turn.output}").records
    tokenizer = repl.session.loaded["gpt2"].tokenizer
    prompt = tokenizer("Hello world").input_ids
    assert [t["id"] for t in record["tokens"]] == prompt + [step.id for step in turn.logprobs]
    continuation = [t["logprob"] for t in record["tokens"][len(prompt) :]]
    assert math.fsum(continuation) == pytest.approx(math.fsum(s.logprob for s in turn.logprobs), abs=1e-4)
    assert record["tokens"][0]["logprob"] is None  # GPT-2's tokenizer prepends no BOS
    assert record["bos_prepended"] is False
    scored = [t["logprob"] for t in record["tokens"][1:]]
    assert record["logprob"] == pytest.approx(math.fsum(scored))
    assert record["perplexity"] == pytest.approx(math.exp(-record["logprob"] / len(scored)))


@pytest.mark.hookspec("score")
def test_pseudo_log_likelihood_matches_masking_each_token_in_a_loop(builtin_repl):
    repl = builtin_repl(active="bert", json_mode=True)
    text = "the king of france is in paris"
    (record,) = repl.evaluate(f"/score bert -- {text}").records
    model = repl.session.loaded["bert"]
    ids = model.tokenizer(text).input_ids
    expected = []
    for position in range(1, len(ids) - 1):  # [CLS] and [SEP] are context, not scored
        masked = list(ids)
        masked[position] = model.tokenizer.mask_token_id
        with torch.no_grad():
            logits = model.handle(torch.tensor([masked])).logits[0, position]
        expected.append(logits.log_softmax(-1)[ids[position]].item())
    assert [t["logprob"] for t in record["tokens"]] == pytest.approx(expected, abs=1e-4)
    assert record["logprob"] == pytest.approx(math.fsum(expected), abs=1e-4)


@pytest.mark.hookspec("score")
def test_seq2seq_scores_the_target_for_the_input_and_compares_texts_in_one_table(builtin_repl):
    repl = builtin_repl(active="mt0")
    result = repl.evaluate(
        "/score mt0 gpt2 -- Translate to English: Je t'aime. => I love you.\n"
        "Translate to English: Je t'aime. => I hate you."
    )
    assert result.ok, result.error
    header, _, *rows = result.text.splitlines()
    assert header.split()[:6] == ["text", "model", "logprob", "tokens", "perplexity", "rank"]
    mt0_rows = [row for row in rows if " mt0 " in row]
    assert len(mt0_rows) == 2 and sorted(row.split()[-1] for row in mt0_rows) == ["1", "2"]
    assert all("error:" not in row for row in mt0_rows)
    # gpt2 scores the whole line as text, arrow included
    assert len([row for row in rows if " gpt2 " in row]) == 2
    missing = repl.evaluate("/score mt0 -- no arrow here")
    assert "INPUT => TARGET" in missing.error
    one_fails = repl.evaluate("/score gpt2 mt0 -- no arrow here\nnor here")
    assert one_fails.ok and "INPUT => TARGET" in one_fails.text  # mt0's refusal is a cell of the table
    assert len([row for row in one_fails.text.splitlines() if " gpt2 " in row]) == 2


def test_score_on_a_model_whose_plugin_cannot_score_says_so_and_names_those_that_can(plugin_repl, tiny_checkpoints):
    repl = plugin_repl("echo", "gpt2", active="echo", checkpoints={"gpt2": str(tiny_checkpoints["gpt2"])})

    refused = repl.evaluate("/score echo shout -- hello world")
    scored = repl.evaluate("/score echo gpt2 -- hello world")

    assert refused.error == "echo, shout cannot score text (no score hook in plugin 'echo'); models that can: gpt2"
    assert "echo" not in repl.session.loaded  # refused before loading anything
    assert scored.ok and "echo (plain)\n  error: cannot score text (plugin 'echo' has no score hook)" in scored.text


def test_modelrepl_score_writes_a_row_per_text_and_model(tiny_checkpoints, tmp_path, capsys):
    import csv
    import json

    from repl import cli

    texts = tmp_path / "texts.txt"
    texts.write_text("the king is in paris\nthe dog is in paris\n", encoding="utf-8")
    argv = ["score", "-m", f"gpt2={tiny_checkpoints['gpt2']}", "-m", f"bert={tiny_checkpoints['bert']}", str(texts)]
    argv += ["--jsonl", str(tmp_path / "rows.jsonl"), "--csv", str(tmp_path / "rows.csv")]

    assert cli.main(argv) == 0

    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(row["text_index"], row["model"]) for row in rows] == [(1, "gpt2"), (1, "bert"), (2, "gpt2"), (2, "bert")]
    for row in rows:
        scored = [token["logprob"] for token in row["tokens"] if token["logprob"] is not None]
        assert row["logprob"] == pytest.approx(math.fsum(scored)) and row["error"] is None
    with open(tmp_path / "rows.csv", encoding="utf-8", newline="") as stream:
        table_rows = list(csv.DictReader(stream))
    assert [float(row["logprob"]) for row in table_rows] == pytest.approx([row["logprob"] for row in rows])
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["text", "model", "logprob", "tokens", "perplexity", "rank"]


def test_divergence_of_two_settings_gives_each_side_the_other_tokens_probability(builtin_repl):
    from repl.app.divergence import describe, divergences

    repl = builtin_repl(active="gpt2", gpt2={"probs": True, "max_new_tokens": 6, "top_logprobs": 100})
    (plain,) = repl.evaluate("Hello world").turns
    repl.evaluate("/set repetition_penalty 5")
    (penalised,) = repl.evaluate("Hello world").turns
    (record,) = divergences([plain, penalised])

    position = record["position"]
    assert position is not None and plain.output != penalised.output
    assert [s.id for s in plain.logprobs[:position]] == [s.id for s in penalised.logprobs[:position]]
    mine, theirs = record["choices"]
    # Same model, same prefix: each side's raw probability of the other's token is the other's own.
    assert mine["other_p"] == pytest.approx(math.exp(penalised.logprobs[position].logprob), abs=1e-5)
    assert theirs["other_p"] == pytest.approx(math.exp(plain.logprobs[position].logprob), abs=1e-5)
    assert f"part at token {position}" in describe(record)


def test_compare_reports_where_replies_part_or_how_to_see_it(builtin_repl, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    short = {"max_new_tokens": 2}
    repl = builtin_repl(mt0=short, gpt2=short)
    result = repl.evaluate("/compare mt0 gpt2 -- Hello world")
    assert result.text.endswith("/set probs on for mt0, gpt2 to see where the replies part ways")
    repl.evaluate("/set probs on")  # the active model, mt0
    repl.session.set("gpt2", "probs", True)
    result = repl.evaluate("/compare mt0 gpt2 -- Hello world")
    assert result.text.splitlines()[-1].startswith("mt0 and gpt2 part at token 0: mt0 chose")


def test_a_saved_session_keeps_the_probabilities_for_probs(builtin_repl):
    original = builtin_repl(active="gpt2", gpt2={**GREEDY, "top_logprobs": 3})
    (turn,) = original.evaluate("Hello world").turns
    assert original.evaluate("/session save with-probs").ok
    reopened = builtin_repl()
    assert reopened.evaluate("/session open with-probs").ok
    assert reopened.session.turns[0].logprobs == turn.logprobs
    assert reopened.evaluate("/probs").text == original.evaluate("/probs").text


@pytest.fixture(scope="module")
def llama3_chat(tmp_path_factory):
    from repl.testing.checkpoints import build_chat_checkpoint

    return build_chat_checkpoint(tmp_path_factory.mktemp("probs-chat") / "llama3", "llama3")


@pytest.mark.hookspec("score")
def test_chat_greedy_probs_match_a_forward_pass_and_its_score_says_whether_a_bos_came_first(llama3_chat):
    from plugins import chat as chat_plugin
    from repl.core.turn import tokenize
    from repl.testing.driver import make_host, make_repl

    settings = {"chat": {**GREEDY, "max_new_tokens": 3}}
    repl = make_repl(make_host(chat_plugin), active="chat", checkpoints={"chat": str(llama3_chat)}, settings=settings)
    prompt = tokenize(repl.session, "chat", "Hi").input_ids  # before the turn, which becomes history
    (turn,) = repl.evaluate("Hi").turns
    assert turn.ok, turn.error
    model = repl.session.loaded["chat"]
    with torch.no_grad():
        logits = model.handle(torch.tensor([prompt + [step.id for step in turn.logprobs]])).logits[0]
    assert_matches(turn.logprobs, logits.log_softmax(-1)[len(prompt) - 1 : -1], 5)

    repl.renderer.json_mode = True
    (record,) = repl.evaluate("/score -- hello there").records
    ids = model.tokenizer("hello there").input_ids
    bos = ids[0] == model.tokenizer.bos_token_id
    assert record["bos_prepended"] is bos
    assert [t["id"] for t in record["tokens"]] == ids[1:] if bos else ids  # a BOS is context, not scored
    assert (record["tokens"][0]["logprob"] is None) is not bos


@pytest.mark.parametrize("family", ["gpt2", "mt0", "bert"])
def test_tokens_are_shown_as_the_text_they_add(tiny_checkpoints, family):
    """Byte-level `Ġthe`, SentencePiece `▁the` and WordPiece `##s` read as " the", " the" and "s"."""
    from transformers import AutoTokenizer

    from repl.hf.probabilities import token_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints[family])
    ids = tokenizer("the cat sat on the mat", add_special_tokens=False)["input_ids"]
    texts = token_texts(tokenizer, ids)
    assert "".join(texts).strip() == "the cat sat on the mat"
    pieces = tokenizer.convert_ids_to_tokens(ids)
    glued = [text for text, piece in zip(texts, pieces) if piece.startswith("##")]
    assert all(not text.startswith((" ", "#")) for text in glued)
    assert not any(mark in "".join(texts) for mark in ("Ġ", "▁", "##"))
    # one per word after the first (SentencePiece also puts one before the first word)
    assert sum(text.startswith(" ") for text in texts[1:]) == 5


def test_a_part_of_a_character_shows_its_bytes(tiny_checkpoints):
    from transformers import AutoTokenizer

    from repl.hf.probabilities import token_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints["gpt2"])
    ids = tokenizer("日", add_special_tokens=False)[
        "input_ids"
    ]  # three bytes, none of them a piece of the tiny vocabulary
    assert len(ids) > 1
    texts = token_texts(tokenizer, ids)
    assert "".join(texts) == "\\xe6\\x97\\xa5"


def test_probs_table_shows_text_with_visible_spaces(builtin_repl):
    repl, turn = greedy_turn(builtin_repl, "gpt2", "Hello world")
    text = repl.evaluate("/probs").text
    assert "Ġ" not in text and "Ċ" not in text
    spaced = [step.piece for step in turn.logprobs + [a for s in turn.logprobs for a in s.top] if " " in step.piece]
    if spaced:
        assert "\u2423" in text


def test_probs_are_coloured_by_certainty_only_where_the_renderer_colours(builtin_repl):
    repl, _ = greedy_turn(builtin_repl, "gpt2", "Hello world")
    repl.handle("/probs")
    assert "\x1b[" not in repl.renderer.out.getvalue()
    repl.renderer.colour = True
    repl.handle("/probs")  # the command returns the same data; the renderer shades the rows
    coloured = repl.renderer.out.getvalue()
    assert any(f"\x1b[{code}m" in coloured for code in ROW_COLOURS.values()) and SHADE_LEGEND in coloured
