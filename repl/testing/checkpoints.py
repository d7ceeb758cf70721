"""Tiny but real Hugging Face checkpoints, built offline for tests.

Each builder trains a real tokenizer on a small built-in corpus, builds a
randomly initialised model with tiny dimensions, and writes everything to a
directory with the library's own ``save_pretrained`` so that the ``Auto*``
classes load it exactly like a hub checkpoint.

Heavy libraries (torch, transformers, tokenizers, sentencepiece) are imported
inside the functions: this module is imported by a pytest plugin, and test
collection must stay fast.
"""

from __future__ import annotations

import json
import os
import pathlib

__all__ = ["CHAT_STYLES", "FAMILIES", "build_chat_checkpoint", "build_checkpoint", "replace_model", "teach_checkpoint"]

FAMILIES = ("mt0", "gpt2", "bert")

# Every character a test may type should appear here: the T5 tokenizer of
# transformers 5 ignores SentencePiece byte fallback, so characters missing
# from this corpus encode to <unk>, exactly as with the real mT5 vocabulary.
_MULTILINGUAL_CORPUS = (
    "Translate to English: Je t'aime.",
    "Translate to French: I love you.",
    "Translate to German: I love you.",
    "Translate to Chinese: I love you.",
    "Je t'aime. Bonjour le monde, comment ça va ? Très bien, merci !",
    "Où est la gare ? À demain, Hélène. Noël, garçon, élève, être.",
    "Ich liebe dich. Guten Morgen! Wie geht es dir? Grüße aus München.",
    "Die Straße ist schön. Äpfel, Öl und Übung. Tschüss!",
    "我爱你。你好，世界！今天天气很好。谢谢你。",
    "中文翻译：我爱你。再见，朋友们。",
    "I love you ❤️ 😀 🎉 👍 🙂 🚀 ✨",
    "Hello world, how are you today? The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Answer the question: is the sky blue? Yes, the sky is blue.",
    "Summarize: the cat sat on the mat and looked at the dog.",
    '0 1 2 3 4 5 6 7 8 9 10 100 2024 3.14 -1 +1 = % $ € @ # & * / \\ ( ) [ ] { } < > _ | ~ ` ^ "',
)

_ENGLISH_CORPUS = (
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little model that could generate text.",
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "def hello():\n    print('hello, world')\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024.",
    "Unicode too: café, naïve, Grüße, 我爱你, 😀 🎉.",
)

_BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# "playing" is deliberately absent so that it splits into "play", "##ing".
_BERT_WORDS = (
    "the a an of is was are be to in on at and or not it this that what who "
    "where how why which capital city country france paris germany berlin "
    "england london italy rome spain madrid man woman king queen child dog cat "
    "hello world good bad day night love like play game music book read write "
    "run walk go went come see saw say said do did make made time year people "
    "i you he she we they my your his her our their yes no"
).split()
_BERT_SUFFIXES = ("##ing", "##ed", "##s", "##er", "##ly", "##est")
_BERT_PUNCTUATION = tuple(".,!?;:'\"()-[]/")

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
    _save_model(getattr(transformers, model_class), config, path, safetensors=True, seed=seed)
    return path


def teach_checkpoint(
    family: str,
    directory: str | os.PathLike,
    examples: dict[str, str],
    *,
    steps: int = 150,
    seed: int = 0,
) -> pathlib.Path:
    """Overfit a tiny checkpoint on a few examples so that tests can expect exact answers.

    ``examples`` maps an input line to the answer the model must give: for mt0
    the generated reply, for gpt2 the continuation of the prompt, for bert the
    vocabulary piece for the single ``[MASK]`` in the line (``"paris"``, ``"##ing"``),
    for chat (a checkpoint of ``build_chat_checkpoint``) the assistant's reply to
    the line as a one-turn conversation, end-of-turn token included. The checkpoint is saved back in
    place, in the same format, so it loads through the normal code path.
    """
    import torch
    import transformers

    auto_classes = {
        "mt0": transformers.AutoModelForSeq2SeqLM,
        "gpt2": transformers.AutoModelForCausalLM,
        "bert": transformers.AutoModelForMaskedLM,
        "chat": transformers.AutoModelForCausalLM,
    }
    path = pathlib.Path(directory)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = auto_classes[family].from_pretrained(path)
    batches = [_training_batch(family, tokenizer, line, answer) for line, answer in examples.items()]
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        for batch in batches:
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
    model.eval()
    model.save_pretrained(path)
    return path


def _training_batch(family: str, tokenizer, line: str, answer: str) -> dict:
    import torch

    if family == "mt0":
        return {
            "input_ids": torch.tensor([tokenizer(line).input_ids]),
            "labels": torch.tensor([tokenizer(answer).input_ids]),
        }
    if family == "chat":
        # The prompt and the taught conversation both come from the checkpoint's own template.
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": line}], add_generation_prompt=True)
        said = [{"role": "user", "content": line}, {"role": "assistant", "content": answer}]
        ids = tokenizer.apply_chat_template(said)["input_ids"]
        labels = [-100] * len(prompt["input_ids"]) + ids[len(prompt["input_ids"]) :]
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    if family == "gpt2":
        ids = tokenizer(line + answer).input_ids + [tokenizer.eos_token_id]
        labels = list(ids)
        labels[: len(tokenizer(line).input_ids)] = [-100] * len(tokenizer(line).input_ids)
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    ids = tokenizer(line).input_ids
    labels = [-100] * len(ids)
    word_id = tokenizer.convert_tokens_to_ids(answer)  # a piece such as "##ing", not text
    labels[ids.index(tokenizer.mask_token_id)] = word_id
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}


def _build_mt0(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    import io

    import sentencepiece
    from transformers import MT5Config, MT5ForConditionalGeneration, MT5Model, T5Tokenizer

    model_proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_MULTILINGUAL_CORPUS),
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
    _write_json(path / "tokenizer_config.json", {"tokenizer_class": "T5Tokenizer", "extra_ids": 0})
    tokenizer = _resave_tokenizer(T5Tokenizer, path)

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
    _save_model(MT5ForConditionalGeneration if head else MT5Model, config, path, safetensors, seed)


def _build_gpt2(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model, GPT2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte sequence encodes
        show_progress=False,
    )
    bpe.train_from_iterator(_ENGLISH_CORPUS, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    # Like GPT-2, the end-of-text token takes the last id.
    vocab = {**trained["vocab"], _GPT2_EOS: len(trained["vocab"])}
    _write_json(path / "vocab.json", vocab)
    merges = ["#version: 0.2"] + [" ".join(pair) for pair in trained["merges"]]
    (path / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")

    n_positions = 128
    _write_json(
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
    tokenizer = _resave_tokenizer(GPT2Tokenizer, path)

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
    _save_model(GPT2LMHeadModel if head else GPT2Model, config, path, safetensors, seed)


def _build_bert(path: pathlib.Path, *, head: bool, safetensors: bool, seed: int) -> None:
    import string

    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    # Single letters and digits (plain and "##") make every lowercase ASCII
    # word encodable without [UNK].
    characters = string.ascii_lowercase + string.digits
    pieces = [
        *_BERT_SPECIAL_TOKENS,
        *_BERT_PUNCTUATION,
        *characters,
        *(f"##{c}" for c in characters),
        *_BERT_WORDS,
        *_BERT_SUFFIXES,
    ]
    (path / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    max_positions = 64
    _write_json(
        path / "tokenizer_config.json",
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": max_positions},
    )
    tokenizer = _resave_tokenizer(BertTokenizer, path)

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=0,
    )
    _save_model(BertForMaskedLM if head else BertModel, config, path, safetensors, seed)


def _resave_tokenizer(tokenizer_class, path: pathlib.Path):
    """Load the raw vocabulary files and save them back in the canonical layout.

    The round trip adds ``tokenizer.json`` and a complete
    ``tokenizer_config.json``, as found in hub repositories.
    """
    tokenizer = tokenizer_class.from_pretrained(path)
    tokenizer.save_pretrained(path)
    return tokenizer


def _save_model(model_class, config, path: pathlib.Path, safetensors: bool, seed: int) -> None:
    import torch
    from safetensors.torch import load_file

    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.save_pretrained(path)
    if not safetensors:
        # transformers 5 only writes safetensors; convert to the legacy pickle
        # so the key set is the same in both formats.
        weights = path / "model.safetensors"
        torch.save(load_file(weights), path / "pytorch_model.bin")
        weights.unlink()


# -- chat checkpoints: instruct models that ship a chat template --------------------

CHAT_STYLES = ("chatml", "llama3")

# ChatML as Qwen2 and SmolLM2 write it, without a default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Meta Llama 3 Instruct's template, verbatim: header tokens, trimmed contents, BOS from the template.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
_CHAT_STYLES = {
    # style: (template, special tokens, bos, eos of the model config, model class, config class)
    "chatml": (CHATML_TEMPLATE, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), None, "<|endoftext|>", "Qwen2"),
    "llama3": (
        LLAMA3_TEMPLATE,
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "Llama",
    ),
}
# Reasoning markers as Qwen3 has them: added tokens that are not special, so they decode as text.
_THINK_TOKENS = ("<think>", "</think>")


def build_chat_checkpoint(directory: str | os.PathLike, style: str = "chatml", *, seed: int = 0) -> pathlib.Path:
    """Write a tiny instruct checkpoint with a chat template and return its path.

    ``"chatml"``: a Qwen2 model with ChatML tokens (``<|im_start|>``,
    ``<|im_end|>``); ``"llama3"``: a Llama model with Llama 3's header tokens
    and template. Both have a byte-level BPE tokenizer, ``<think>``/``</think>``
    as plain added tokens, and a model config whose EOS is the end-of-text
    token, not the end of a turn: as in Llama 3, where the turn ends is only
    known from the template.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    try:
        template, specials, bos, eos, architecture = _CHAT_STYLES[style]
    except KeyError:
        raise ValueError(f"unknown chat style {style!r}; expected one of {CHAT_STYLES}") from None
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(specials),
        show_progress=False,
    )
    bpe.train_from_iterator(_ENGLISH_CORPUS, trainer=trainer)
    bpe.add_tokens([AddedToken(token, special=False, normalized=False) for token in _THINK_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=bos,
        eos_token=eos,
        model_max_length=256,
        chat_template=template,
    )
    tokenizer.save_pretrained(path)

    config_class, model_class = {"Qwen2": (Qwen2Config, Qwen2ForCausalLM), "Llama": (LlamaConfig, LlamaForCausalLM)}[
        architecture
    ]
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    _save_model(model_class, config, path, True, seed)
    return path


def _write_json(path: pathlib.Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


_BUILDERS = {"mt0": _build_mt0, "gpt2": _build_gpt2, "bert": _build_bert}
