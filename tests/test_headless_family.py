"""A third-party family on a bare encoder, written from docs/plugins.md: sentence similarity.

It loads a checkpoint without a task head through `repl.api.load(needs_head=False)`,
has an input format of its own (`first || second`), answers in one pass (`done`)
and puts a score in `data`. The conformance kit checks it with its own sample
lines and its own overlong line.
"""

import math

import pytest

from repl.api import MASKED, Encoding, ModelError, Reply, hookimpl
from repl.testing import build_checkpoint, check_plugin, make_host, make_repl

SEPARATOR = "||"


class Similarity:
    """How close two sentences are: the cosine of their mean-pooled encoder states."""

    def __init__(self, score=None, data_name="similarity"):
        self.score = score  # a fixed score, to check how a bad one is refused
        self.data_name = data_name
        self.longest_line = 0

    @hookimpl
    def register_models(self, register):
        register("similar", family="similarity", checkpoint="unset", description="'a cat || a dog' -> 0.93")

    @hookimpl
    def load_model(self, spec, checkpoint, options):
        import transformers

        from repl.api import family_of, load

        model = load(
            spec,
            checkpoint,
            options,
            auto_class=transformers.AutoModel,
            accepts=lambda config: family_of(config) == MASKED,
            needs_head=False,
        )
        model.max_input_tokens = model.handle.config.max_position_embeddings
        return model

    @hookimpl
    def tokenize(self, model, text):
        from repl.api import encode_cut_at_end

        self.longest_line = max(self.longest_line, len(text))
        parts = text.split(SEPARATOR)
        if len(parts) != 2:
            raise ModelError(f"put {SEPARATOR} between the two sentences to compare, once")
        first, first_notices = encode_cut_at_end(model, parts[0])
        second, second_notices = encode_cut_at_end(model, parts[1])
        return Encoding(text, first + second, first_notices + second_notices, context={"split": len(first)})

    @hookimpl
    def run(self, model, encoding, control):
        import torch

        ids = encoding.input_ids
        split = encoding.context["split"]
        with torch.inference_mode():
            pooled = [
                model.handle(input_ids=torch.tensor([part])).last_hidden_state[0].mean(dim=0)
                for part in (ids[:split], ids[split:])
            ]
        control.step()
        return float(torch.nn.functional.cosine_similarity(*pooled, dim=0))

    @hookimpl
    def decode(self, output):
        score = output if self.score is None else self.score
        return Reply(text=f"{score:.3f}", data={self.data_name: score}, stop_reason="done")


@pytest.fixture(scope="module")
def bare_encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bare")
    return {
        "safe": build_checkpoint("bert", root / "safe", head=False),
        "pickle": build_checkpoint("bert", root / "pickle", head=False, safetensors=False),
    }


@pytest.mark.hookspec("load_model", "decode")
def test_a_family_without_a_task_head_loads_a_bare_encoder_and_conforms(bare_encoders):
    plugin = Similarity()
    long_line = "cat " * 600 + SEPARATOR + " dog"

    report = check_plugin(
        plugin,
        name="similarity",
        checkpoints={"similar": bare_encoders["safe"]},
        samples={"similar": ["a cat || a dog", "hello world || good day"]},
        long_inputs={"similar": long_line},
    )

    assert report.ok
    assert plugin.longest_line == len(long_line)  # the kit's overlong line was the plugin's own
    repl = make_repl(make_host(("similarity", Similarity())), checkpoints={"similar": str(bare_encoders["safe"])})
    turn = repl.evaluate("a cat || a dog").turns[0]
    assert turn.error is None and turn.stats.stop_reason == "done" and -1 <= turn.data["similarity"] <= 1
    assert type(repl.session.model("similar").handle).__name__ == "BertModel"


@pytest.mark.hookspec("load_model")
def test_without_a_task_head_every_other_loading_check_still_holds(bare_encoders, tiny_checkpoints):
    repl = make_repl(make_host(("similarity", Similarity()), "bert"))

    pickle = repl.evaluate(f"/load similar {bare_encoders['pickle']}").error
    other_family = repl.evaluate(f"/load similar {tiny_checkpoints['gpt2']}").error
    offline = repl.evaluate("/load similar someone/no-such-encoder").error
    headless_for_bert = repl.evaluate(f"/load bert {bare_encoders['safe']}").error

    assert "only pickle weights" in pickle and "--allow-pickle" in pickle
    assert "is a gpt2 causal LM (decoder-only), but similar needs a similarity checkpoint" in other_family
    assert "is not in the local Hugging Face cache" in offline
    assert "has no masked LM (encoder-only) head" in headless_for_bert


@pytest.mark.parametrize(
    "plugin, failure",
    [
        (Similarity(score=math.nan), "data must be strict JSON for --json"),
        (Similarity(score=math.inf), "data must be strict JSON for --json"),
        (Similarity(data_name="output"), "data uses names reserved for modelrepl's own fields: 'output'"),
    ],
)
def test_the_kit_fails_data_that_is_not_strict_json_or_uses_reserved_names(bare_encoders, plugin, failure):
    report = check_plugin(
        plugin,
        name="similarity",
        checkpoints={"similar": bare_encoders["safe"]},
        samples={"similar": "a cat || a dog"},
        raise_on_failure=False,
    )

    failed = {finding.check: finding.detail for finding in report.failures}
    assert failure in failed["the reply is well formed"]
