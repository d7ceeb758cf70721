"""The tiny checkpoints of the built-in families (mt0, gpt2, bert), and another head on one of them.

Each builder trains a real tokenizer on a small built-in corpus, builds a
randomly initialised model with tiny dimensions, and writes everything to a
directory with the library's own ``save_pretrained`` so that the ``Auto*``
classes load it exactly like a hub checkpoint.
"""

from __future__ import annotations

import json
import os
import pathlib

from repl.testing.checkpoints.vocabularies import (
    BERT_POSITIONS,
    MULTILINGUAL_CORPUS,
    resave_tokenizer,
    train_byte_level_bpe,
    wordpiece,
    write_json,
)
from repl.testing.checkpoints.weights import save_model

FAMILIES = ("mt0", "gpt2", "bert")

_GPT2_EOS = "<|endoftext|>"


def build_checkpoint(
    family: str,
    directory: str | os.PathLike,
    *,
    head: bool = True,
    safetensors: bool = True,
    seed: int = 0,
) -> pathlib.Path:
    """Write a tiny checkpoint of ``family`` to ``directory`` and return its path.

    ``head=False`` saves the bare base model (``MT5Model``, ``GPT2Model``,
    ``BertModel``) with the same config, to exercise "no LM head" handling.
    ``safetensors=False`` stores the weights only as a pickled
    ``pytorch_model.bin``. The same ``seed`` gives byte-identical files.
    Use a new or empty ``directory``: files from an earlier build with other
    options are not removed.
    """
    try:
        builder = _BUILDERS[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}") from None
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    builder(path, head=head, safetensors=safetensors, seed=seed)
    return path


def replace_model(directory: str | os.PathLike, model_class: str, *, seed: int = 0, **config_changes) -> pathlib.Path:
    """Swap a tiny checkpoint's model for a freshly initialised ``model_class``; keep its tokenizer.

    For plugins that add a task to a built-in family's architecture, e.g. a
    sequence classifier on the tiny BERT vocabulary::

        replace_model(build_checkpoint("bert", directory), "BertForSequenceClassification",
                      id2label={0: "NEGATIVE", 1: "POSITIVE"})

    ``model_class`` is the name of a transformers class; ``config_changes``
    override the saved config (label names, ``problem_type``).
    """
    import transformers

    path = pathlib.Path(directory)
    config = transformers.AutoConfig.from_pretrained(path, **config_changes)
    save_model(getattr(transformers, model_class), config, path, safetensors=True, seed=seed)
    return path


def _build_mt0(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    import io

    import sentencepiece
    from transformers import MT5Config, MT5ForConditionalGeneration, MT5Model, T5Tokenizer

    model_proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(MULTILINGUAL_CORPUS),
        model_writer=model_proto,
        model_type="unigram",
        vocab_size=300,
        hard_vocab_limit=False,  # the corpus is too small to guarantee 300 pieces
        character_coverage=1.0,  # keep every character, CJK and emoji included
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,  # T5 has no BOS
        num_threads=1,  # deterministic
        minloglevel=2,
    )
    (path / "spiece.model").write_bytes(model_proto.getvalue())
    write_json(path / "tokenizer_config.json", {"tokenizer_class": "T5Tokenizer", "extra_ids": 0})
    tokenizer = resave_tokenizer(T5Tokenizer, path)

    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        tokenizer_class="T5Tokenizer",
    )
    save_model(MT5ForConditionalGeneration if head else MT5Model, config, path, safetensors, seed)


def _build_gpt2(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model, GPT2Tokenizer

    bpe = train_byte_level_bpe()  # any byte sequence encodes
    trained = json.loads(bpe.to_str())["model"]
    # Like GPT-2, the end-of-text token takes the last id.
    vocab = {**trained["vocab"], _GPT2_EOS: len(trained["vocab"])}
    write_json(path / "vocab.json", vocab)
    merges = ["#version: 0.2"] + [" ".join(pair) for pair in trained["merges"]]
    (path / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")

    n_positions = 128
    write_json(
        path / "tokenizer_config.json",
        {
            "tokenizer_class": "GPT2Tokenizer",
            "add_prefix_space": False,
            "bos_token": _GPT2_EOS,
            "eos_token": _GPT2_EOS,
            "unk_token": _GPT2_EOS,
            "model_max_length": n_positions,
        },
    )
    tokenizer = resave_tokenizer(GPT2Tokenizer, path)

    eos_id = tokenizer.convert_tokens_to_ids(_GPT2_EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    save_model(GPT2LMHeadModel if head else GPT2Model, config, path, safetensors, seed)


def _build_bert(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    tokenizer = wordpiece(BertTokenizer, path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=BERT_POSITIONS,
        pad_token_id=0,
    )
    save_model(BertForMaskedLM if head else BertModel, config, path, safetensors, seed)


_BUILDERS = {"mt0": _build_mt0, "gpt2": _build_gpt2, "bert": _build_bert}
