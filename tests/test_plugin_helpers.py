"""The front door's helpers for families the built-ins do not cover: text pairs, measuring, refusing with a reason.

A pair model (natural language inference, a cross-encoder) reads two texts as
its tokenizer joins them; when they are too long, the first is cut and the
second kept whole. Measuring a long text prints nothing, and `load` lets a
family say why a checkpoint does not suit it.
"""

import pytest

from repl.api import LoadedModel, ModelSpec, count_tokens, encode_marking_added, encode_pair_cut_first, hookimpl
from repl.testing import build_architecture, build_checkpoint, make_host, make_repl
from repl.testing.leaks import Leaks


@pytest.fixture(scope="module")
def tokenizer_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    return {
        "bert": build_checkpoint("bert", root / "bert"),
        "roberta": build_architecture("roberta", root / "roberta"),
        "marian": build_architecture("marian", root / "marian"),
    }


def tokenizer(tokenizer_paths, style):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_paths[style])


def model_of(tokenizer, limit):
    return LoadedModel(ModelSpec("nli", "nli", "x"), "x", handle=None, tokenizer=tokenizer, max_input_tokens=limit)


def pieces(tokenizer, ids, added):
    return [piece + ("+" if was_added else "") for piece, was_added in zip(tokenizer.convert_ids_to_tokens(ids), added)]


def test_a_pair_is_encoded_as_the_tokenizer_joins_it_with_its_separators_marked_added(tokenizer_paths):
    bert, roberta = tokenizer(tokenizer_paths, "bert"), tokenizer(tokenizer_paths, "roberta")

    assert pieces(bert, *encode_marking_added(bert, "a cat", "a dog")) == [
        "[CLS]+",
        "a",
        "cat",
        "[SEP]+",
        "a",
        "dog",
        "[SEP]+",
    ]
    assert pieces(roberta, *encode_marking_added(roberta, "cat", "dog")) == [
        "<s>+",
        "c",
        "at",
        "</s>+",
        "</s>+",
        "do",
        "g",
        "</s>+",
    ]


def test_a_pair_on_a_python_tokenizer_finds_each_text_in_the_ids(tokenizer_paths):
    marian = tokenizer(tokenizer_paths, "marian")
    assert not marian.is_fast

    ids, added = encode_marking_added(marian, "the cat", "a dog")

    assert ids == marian("the cat", "a dog")["input_ids"]
    assert added[-1] and not any(added[:-1])  # Marian joins a pair with nothing between, and ends it with </s>


def test_the_first_text_is_cut_to_fit_and_the_second_kept_whole(tokenizer_paths):
    bert = tokenizer(tokenizer_paths, "bert")
    premise = "the dog is in the city and the cat is at the game " * 4

    tokens, notices, token_type_ids = encode_pair_cut_first(model_of(bert, 16), premise, "a cat plays")

    assert [token.piece + ("+" if token.added else "") for token in tokens] == [
        *("[CLS]+", "the", "dog", "is", "in", "the", "city", "and", "the", "cat", "[SEP]+"),
        *("a", "cat", "play", "##s", "[SEP]+"),
    ]
    assert notices == [
        "input truncated to 16 tokens: 43 dropped from the end of the first text; the second is kept whole"
    ]
    assert token_type_ids == [0] * 11 + [1] * 5


def test_a_pair_that_fits_is_not_cut_and_a_model_without_segments_gets_no_token_type_ids(tokenizer_paths):
    roberta = tokenizer(tokenizer_paths, "roberta")

    tokens, notices, token_type_ids = encode_pair_cut_first(model_of(roberta, 64), "a cat", "a dog")

    assert [t.id for t in tokens] == roberta("a cat", "a dog")["input_ids"]
    assert (notices, token_type_ids) == ([], None)


def test_a_second_text_that_leaves_no_room_for_the_first_is_refused(tokenizer_paths):
    from repl.api import ModelError

    bert = tokenizer(tokenizer_paths, "bert")

    with pytest.raises(ModelError) as refused:
        encode_pair_cut_first(model_of(bert, 8), "a cat", "the dog is in the city and the cat")

    assert str(refused.value) == (
        "the second text takes 12 of nli's 8 tokens (special ones included), leaving no room for the first; shorten it"
    )


def test_measuring_a_long_text_prints_no_warning(tokenizer_paths):
    long_text = "hello world " * 100
    measured, raw = Leaks(), Leaks()

    with measured.watching():
        count = count_tokens(tokenizer(tokenizer_paths, "bert"), long_text)
    with raw.watching():
        raw_count = len(tokenizer(tokenizer_paths, "bert")(long_text)["input_ids"])

    assert count == raw_count == 202
    assert measured.found == []
    assert "Token indices sequence length is longer" in raw.summary()  # what count_tokens spares the user


class Entailment:
    """A family of its own whose checkpoints must be sequence classifiers with an entailment label."""

    @hookimpl
    def register_models(self, register):
        register("nli", family="nli", checkpoint="unset")

    @hookimpl
    def load_model(self, spec, checkpoint, options):
        import transformers

        from repl.api import load

        return load(
            spec,
            checkpoint,
            options,
            auto_class=transformers.AutoModelForSequenceClassification,
            accepts=self.accepts,
        )

    @staticmethod
    def accepts(config):
        architectures = getattr(config, "architectures", None) or []
        if not any(name.endswith("ForSequenceClassification") for name in architectures):
            return False
        labels = {label.lower() for label in config.id2label.values()}
        return "entailment" in labels or f"its labels are {', '.join(sorted(labels))}, with no entailment"


@pytest.mark.hookspec("load_model")
def test_accepts_can_say_why_a_checkpoint_is_refused(tmp_path):
    from repl.testing import replace_model

    sentiment = replace_model(
        build_checkpoint("bert", tmp_path / "sentiment"),
        "BertForSequenceClassification",
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
    )
    masked = build_checkpoint("bert", tmp_path / "masked")
    repl = make_repl(make_host(("entailment", Entailment())))

    assert repl.evaluate(f"/load nli {sentiment}").error == (
        f"nli cannot use checkpoint '{sentiment}': its labels are negative, positive, with no entailment"
    )
    assert repl.evaluate(f"/load nli {masked}").error == (
        f"checkpoint '{masked}' is a bert masked LM (encoder-only), but nli needs a nli checkpoint"
    )
