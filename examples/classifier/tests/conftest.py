import pytest

from repl.testing import build_checkpoint, replace_model

pytest_plugins = ["repl.testing.fixtures"]

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    """A tiny BertForSequenceClassification with the SST-2 labels, on the test kit's BERT vocabulary."""
    checkpoint = build_checkpoint("bert", tmp_path_factory.mktemp("classifier"))
    return replace_model(checkpoint, "BertForSequenceClassification", id2label=LABELS)


@pytest.fixture(scope="session")
def tiny_masked_lm(tmp_path_factory):
    return build_checkpoint("bert", tmp_path_factory.mktemp("masked-lm"))
