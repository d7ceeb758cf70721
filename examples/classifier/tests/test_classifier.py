import math

from repl.testing import build_architecture, build_checkpoint, check_plugin, replace_model, tokenize


def test_classifier_keeps_the_plugin_contract(tiny_classifier):
    check_plugin("classifier", checkpoints={"sentiment": tiny_classifier}, samples={"sentiment": "i like this book"})


def test_answers_with_every_label_and_its_score_most_likely_first(plugin_repl, tiny_classifier):
    repl = plugin_repl("classifier", checkpoints={"sentiment": str(tiny_classifier)}, json_mode=True)

    (turn,) = repl.evaluate("what a good day").turns

    labels = turn.data["labels"]
    assert sorted(entry["label"] for entry in labels) == ["NEGATIVE", "POSITIVE"]
    scores = [entry["score"] for entry in labels]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores), 1.0, abs_tol=1e-5)
    assert turn.output == "  ".join(f"{entry['label']} {entry['score']:.3f}" for entry in labels)
    assert turn.stats.new_tokens == 0


def test_top_k_limits_the_labels_shown(plugin_repl, tiny_classifier):
    repl = plugin_repl(
        "classifier", checkpoints={"sentiment": str(tiny_classifier)}, settings={"sentiment": {"top_k": 1}}
    )

    (turn,) = repl.evaluate("what a good day").turns

    assert len(turn.data["labels"]) == 1
    assert turn.output.split()[0] in ("NEGATIVE", "POSITIVE")


def test_multi_label_checkpoints_score_each_label_on_its_own(plugin_repl, tmp_path):
    checkpoint = replace_model(
        build_checkpoint("bert", tmp_path),
        "BertForSequenceClassification",
        id2label={0: "sports", 1: "politics", 2: "music"},
        problem_type="multi_label_classification",
    )
    repl = plugin_repl("classifier", checkpoints={"sentiment": str(checkpoint)})

    (turn,) = repl.evaluate("the king went to the game").turns

    scores = [entry["score"] for entry in turn.data["labels"]]
    assert len(scores) == 3 and all(0 < score < 1 for score in scores)
    assert not math.isclose(sum(scores), 1.0, abs_tol=1e-3)


def test_a_checkpoint_of_another_family_is_refused_with_a_message(plugin_repl, tiny_masked_lm):
    repl = plugin_repl("classifier")

    result = repl.evaluate(f"/load sentiment {tiny_masked_lm}")

    assert result.error == (
        f"checkpoint '{tiny_masked_lm}' is a bert masked LM (encoder-only), but sentiment needs a classifier checkpoint"
    )


def test_the_tokenizer_adds_cls_and_sep(plugin_repl, tiny_classifier):
    repl = plugin_repl("classifier", checkpoints={"sentiment": str(tiny_classifier)})

    encoding = tokenize(repl.session, "sentiment", "i like it")

    assert [(t.piece, t.added) for t in encoding.tokens] == [
        ("[CLS]", True),
        ("i", False),
        ("like", False),
        ("it", False),
        ("[SEP]", True),
    ]


def test_the_input_limit_leaves_out_roberta_s_padding_positions(plugin_repl, tmp_path):
    checkpoint = replace_model(
        build_architecture("roberta", tmp_path), "RobertaForSequenceClassification", id2label={0: "NO", 1: "YES"}
    )
    repl = plugin_repl("classifier", checkpoints={"sentiment": str(checkpoint)})

    encoding = tokenize(repl.session, "sentiment", "hello world " * 100)

    # RoBERTa numbers positions after its padding id: 66 position embeddings take 64 tokens.
    assert repl.session.loaded["sentiment"].max_input_tokens == 64
    assert len(encoding.tokens) == 64
    assert encoding.notices == ["input truncated to 64 tokens: 139 dropped from the end"]
