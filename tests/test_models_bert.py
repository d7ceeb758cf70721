"""bert (masked): [CLS] ... [SEP], mask spellings, candidates per mask, ## pieces joined."""

import json

import pytest

from repl.core.turn import tokenize


def test_input_is_wrapped_in_cls_and_sep(builtin_repl):
    repl = builtin_repl(active="bert")
    encoding = tokenize(repl.session, "bert", "the capital of france is [MASK] .")
    pieces = [t.piece for t in encoding.tokens]
    assert pieces == ["[CLS]", "the", "capital", "of", "france", "is", "[MASK]", ".", "[SEP]"]
    assert [t.added for t in encoding.tokens] == [True] + [False] * 7 + [True]
    mask = encoding.tokens[6]
    assert mask.special and not mask.added


@pytest.mark.parametrize("spelling", ["[MASK]", "[mask]", "<mask>", "<MASK>"])
def test_mask_spellings_become_the_tokenizers_mask(builtin_repl, spelling):
    repl = builtin_repl(active="bert")
    encoding = tokenize(repl.session, "bert", f"the {spelling} is good")
    assert [t.piece for t in encoding.tokens] == ["[CLS]", "the", "[MASK]", "is", "good", "[SEP]"]


def test_best_candidate_is_filled_in_and_wordpieces_are_joined(taught_repl):
    repl = taught_repl(active="bert")
    (turn,) = repl.evaluate("the capital of france is [MASK] .").turns
    assert turn.output == "the capital of france is paris."
    assert turn.data["candidates"][0][0]["token"] == "paris"
    assert len(turn.data["candidates"][0]) == 5
    (joined,) = repl.evaluate("we like play [MASK] games .").turns
    assert joined.data["candidates"][0][0]["token"] == "##ing"
    assert joined.output == "we like playing games."


def test_each_mask_gets_top_k_candidates_in_json(taught_repl):
    repl = taught_repl(active="bert", json_mode=True)
    repl.handle("/set top_k 3")
    repl.handle("the [MASK] of france is [MASK] .")
    record = json.loads(repl.renderer.out.getvalue().splitlines()[-1])
    assert len(record["candidates"]) == 2
    for candidates in record["candidates"]:
        assert len(candidates) == 3
        assert all(set(c) == {"token", "score"} for c in candidates)
        scores = [c["score"] for c in candidates]
        assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1
        assert not any(c["token"].startswith("[") for c in candidates)


def test_text_display_lists_candidates_per_mask(taught_repl):
    repl = taught_repl(active="bert")
    repl.handle("the [MASK] of france is [MASK] .")
    shown = repl.renderer.out.getvalue()
    assert "[MASK] 1:" in shown and "[MASK] 2:" in shown


def test_a_line_without_a_mask_explains_how_to_use_bert(builtin_repl):
    repl = builtin_repl(active="bert")
    (turn,) = repl.evaluate("no mask here").turns
    assert "put [MASK] where a word is missing" in turn.error


def test_too_many_masks_are_refused(builtin_repl):
    repl = builtin_repl(active="bert")
    (turn,) = repl.evaluate(" ".join(["[MASK]"] * 50)).turns
    assert turn.error == "50 masks in one line; bert fills at most 20 at once"


def test_truncation_keeps_masks_or_refuses(builtin_repl):
    repl = builtin_repl(active="bert")
    words = "the dog " * 60
    kept = tokenize(repl.session, "bert", "[MASK] " + words)
    assert len(kept.input_ids) == 64 and kept.tokens[-1].piece == "[SEP]"
    assert kept.notices[0].startswith("input truncated to 64 tokens")
    at_end = tokenize(repl.session, "bert", words + "[MASK] .")  # the end is cut, but not the mask
    assert len(at_end.input_ids) == 64 and at_end.tokens[-1].piece == "[SEP]"
    assert at_end.tokens[0].piece == "[CLS]"
    assert sum(token.piece == "[MASK]" for token in at_end.tokens) == 1
    assert "around the [MASK]" in at_end.notices[0] and "dropped from the start" in at_end.notices[0]
    (turn,) = repl.evaluate(words + "[MASK]").turns
    assert turn.ok and turn.data["candidates"]
    (turn,) = repl.evaluate("[MASK] " + words + "[MASK]").turns
    assert "the [MASK]s are" in turn.error and "shorten the line" in turn.error


def test_settings_that_do_not_apply_are_refused_with_a_reason(builtin_repl):
    repl = builtin_repl(active="bert")
    error = repl.evaluate("/set num_beams 4").error
    assert error.startswith("'num_beams' does not apply to bert (masked); it takes:")
    assert "top_k" in error
