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

__all__ = [
    "ARCHITECTURES",
    "CHAT_STYLES",
    "FAMILIES",
    "build_architecture",
    "build_chat_checkpoint",
    "build_checkpoint",
    "replace_model",
    "teach_checkpoint",
]

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
_BERT_POSITIONS = 64


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
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    tokenizer = _wordpiece(BertTokenizer, path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=_BERT_POSITIONS,
        pad_token_id=0,
    )
    _save_model(BertForMaskedLM if head else BertModel, config, path, safetensors, seed)


def _wordpiece(tokenizer_class, path: pathlib.Path):
    """BERT's style: a WordPiece vocabulary, lowercased."""
    import string

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
    _write_json(
        path / "tokenizer_config.json",
        {"tokenizer_class": tokenizer_class.__name__, "do_lower_case": True, "model_max_length": _BERT_POSITIONS},
    )
    return _resave_tokenizer(tokenizer_class, path)


def _resave_tokenizer(tokenizer_class, path: pathlib.Path):
    """Load the raw vocabulary files and save them back in the canonical layout.

    The round trip adds ``tokenizer.json`` and a complete
    ``tokenizer_config.json``, as found in hub repositories.
    """
    tokenizer = tokenizer_class.from_pretrained(path)
    tokenizer.save_pretrained(path)
    return tokenizer


def _save_model(
    model_class, config, path: pathlib.Path, safetensors: bool, seed: int, generation: dict | None = None
) -> None:
    import torch
    from safetensors.torch import load_file

    torch.manual_seed(seed)
    model = model_class(config).eval()
    if generation:
        model.generation_config.update(**generation)
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


# -- one tiny checkpoint per architecture -----------------------------------------
#
# Each architecture a built-in model takes, with the tokenizer style its hub
# checkpoints ship (byte-level BPE, SentencePiece-like, WordPiece), built through
# the tokenizer's own class so that its special tokens and post-processor are the
# library's. The families' own checkpoints above stand for gpt2, mt5 and bert.

ARCHITECTURES = {
    "gpt2": ("gpt2", "gpt_neo", "gpt_neox", "opt", "llama", "mistral", "qwen2", "qwen3", "phi", "gemma"),
    "mt0": ("mt5", "t5", "flan_t5", "bart", "mbart", "marian"),
    "bert": ("bert", "distilbert", "roberta", "xlm_roberta", "albert", "modernbert"),
}
_FAMILY_CHECKPOINTS = {"gpt2": "gpt2", "mt5": "mt0", "bert": "bert"}
_AUTO_CLASS_NAMES = {"gpt2": "AutoModelForCausalLM", "mt0": "AutoModelForSeq2SeqLM", "bert": "AutoModelForMaskedLM"}
_TINY_POSITIONS = 64
_TINY_DECODER = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
_TINY_SEQ2SEQ = {
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "max_position_embeddings": _TINY_POSITIONS,
}
_TINY_T5 = {"d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_heads": 2}
_FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # RoBERTa, BART, XLM-R, mBART: these ids first
_MBART_SOURCE, _MBART_TARGET = "en_XX", "ro_RO"


def build_architecture(architecture: str, directory: str | os.PathLike, *, seed: int = 0) -> pathlib.Path:
    """Write a tiny random checkpoint of ``architecture`` (a name in ``ARCHITECTURES``) to ``directory``.

    The model has hidden size 16 and one or two layers; the tokenizer is a real
    one of the style the architecture's hub checkpoints use, trained on a small
    corpus. Where the hub checkpoints force a first generated token (BART's
    ``<s>``, mBART's target language), the generation config does too.
    """
    if architecture in _FAMILY_CHECKPOINTS:
        return build_checkpoint(_FAMILY_CHECKPOINTS[architecture], directory, seed=seed)
    try:
        builder = _ARCHITECTURE_BUILDERS[architecture]
    except KeyError:
        known = ", ".join(name for names in ARCHITECTURES.values() for name in names)
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {known}") from None
    import transformers

    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    family = next(family for family, names in ARCHITECTURES.items() if architecture in names)
    config, generation = builder(path)
    auto_class = getattr(transformers, _AUTO_CLASS_NAMES[family])
    _save_model(auto_class.from_config, config, path, True, seed, generation)
    return path


def _saved(tokenizer, path: pathlib.Path):
    """Save a tokenizer and load it back the way a checkpoint's tokenizer is loaded."""
    import transformers

    tokenizer.save_pretrained(path)
    return transformers.AutoTokenizer.from_pretrained(path)


def _byte_level_bpe(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...] = (), **options):
    """GPT-2's style: byte-level BPE, so any text encodes without an unknown token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_ENGLISH_CORPUS, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(pair) for pair in trained["merges"]]
    return _saved(tokenizer_class(vocab=trained["vocab"], merges=merges, **options), path)


def _sentencepiece_bpe(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...], **options):
    """Llama's and Gemma's style: BPE over "▁"-marked words, with byte fallback."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    byte_pieces = [f"<0x{byte:02X}>" for byte in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=[*specials, *byte_pieces], show_progress=False)
    bpe.train_from_iterator(_ENGLISH_CORPUS + _MULTILINGUAL_CORPUS, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(pair) for pair in trained["merges"]]
    return _saved(tokenizer_class(vocab=trained["vocab"], merges=merges, **options), path)


def _unigram(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...], **options):
    """T5's, XLM-R's, ALBERT's and mBART's style: a SentencePiece Unigram model, special tokens first."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=list(specials), unk_token="<unk>", show_progress=False
    )
    unigram.train_from_iterator(_ENGLISH_CORPUS + _MULTILINGUAL_CORPUS, trainer=trainer)
    vocab = [tuple(entry) for entry in json.loads(unigram.to_str())["model"]["vocab"]]
    return _saved(tokenizer_class(vocab=vocab, **options), path)


def _decoder_config(config_name: str, tokenizer, **config) -> tuple:
    """A tiny decoder-only config with the tokenizer's special ids; no generation changes."""
    import transformers

    sizes = {**_TINY_DECODER, "max_position_embeddings": _TINY_POSITIONS, **config}
    special_ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return getattr(transformers, config_name)(vocab_size=len(tokenizer), **special_ids, **sizes), {}


def _build_gpt_neo(path: pathlib.Path):
    from transformers import GPT2Tokenizer

    return _decoder_config("GPTNeoConfig", _byte_level_bpe(GPT2Tokenizer, path), attention_types=[[["global"], 1]])


def _build_gpt_neox(path: pathlib.Path):
    from transformers import GPTNeoXTokenizer

    return _decoder_config("GPTNeoXConfig", _byte_level_bpe(GPTNeoXTokenizer, path))


def _build_opt(path: pathlib.Path):
    from transformers import GPT2Tokenizer

    # OPT's tokenizer is GPT-2's with </s> as BOS, put before every line.
    tokenizer = _byte_level_bpe(
        GPT2Tokenizer,
        path,
        _FAIRSEQ_SPECIALS,
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        add_bos_token=True,
    )
    return _decoder_config("OPTConfig", tokenizer, ffn_dim=32, word_embed_proj_dim=16)


def _build_llama(path: pathlib.Path, config_name: str = "LlamaConfig"):
    from transformers import LlamaTokenizer

    tokenizer = _sentencepiece_bpe(LlamaTokenizer, path, ("<unk>", "<s>", "</s>"), add_bos_token=True)
    return _decoder_config(config_name, tokenizer, num_key_value_heads=1)


def _build_qwen(path: pathlib.Path, config_name: str = "Qwen2Config"):
    from transformers import Qwen2Tokenizer

    return _decoder_config(config_name, _byte_level_bpe(Qwen2Tokenizer, path), num_key_value_heads=1)


def _build_phi(path: pathlib.Path):
    from transformers import CodeGenTokenizer

    return _decoder_config("PhiConfig", _byte_level_bpe(CodeGenTokenizer, path))


def _build_gemma(path: pathlib.Path):
    from transformers import GemmaTokenizer

    tokenizer = _sentencepiece_bpe(GemmaTokenizer, path, ("<pad>", "<eos>", "<bos>", "<unk>"), add_bos_token=True)
    return _decoder_config("GemmaConfig", tokenizer, num_key_value_heads=1, head_dim=8)


def _build_t5(path: pathlib.Path, **config):
    from transformers import T5Config, T5Tokenizer

    tokenizer = _unigram(T5Tokenizer, path, ("<pad>", "</s>", "<unk>"), extra_ids=0)
    t5 = T5Config(
        vocab_size=len(tokenizer), decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **_TINY_T5, **config
    )
    return t5, {}


def _build_bart(path: pathlib.Path):
    from transformers import BartConfig, BartTokenizer

    tokenizer = _byte_level_bpe(BartTokenizer, path, _FAIRSEQ_SPECIALS)
    # As facebook/bart-large: the decoder starts from </s>, and <s> is forced as the first token.
    config = BartConfig(vocab_size=len(tokenizer), decoder_start_token_id=tokenizer.eos_token_id, **_TINY_SEQ2SEQ)
    return config, {"forced_bos_token_id": tokenizer.bos_token_id}


def _build_mbart(path: pathlib.Path):
    from transformers import MBartConfig, MBartTokenizer

    tokenizer = _unigram(MBartTokenizer, path, _FAIRSEQ_SPECIALS, src_lang=_MBART_SOURCE, tgt_lang=_MBART_TARGET)
    # As mBART's translation checkpoints: the decoder starts from </s>, the target language is forced next.
    config = MBartConfig(vocab_size=len(tokenizer), decoder_start_token_id=tokenizer.eos_token_id, **_TINY_SEQ2SEQ)
    return config, {"forced_bos_token_id": tokenizer.convert_tokens_to_ids(_MBART_TARGET)}


def _build_marian(path: pathlib.Path):
    import io

    import sentencepiece
    from transformers import MarianConfig, MarianTokenizer

    model_proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_ENGLISH_CORPUS + _MULTILINGUAL_CORPUS),
        model_writer=model_proto,
        model_type="unigram",
        vocab_size=300,
        hard_vocab_limit=False,
        character_coverage=1.0,
        eos_id=0,
        unk_id=1,
        pad_id=-1,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    for name in ("source.spm", "target.spm"):
        (path / name).write_bytes(model_proto.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto.getvalue())
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    # Marian's vocabulary is the SentencePiece one with <pad> last; its decoder starts from <pad>.
    _write_json(path / "vocab.json", {piece: i for i, piece in enumerate([*pieces, "<pad>"])})
    tokenizer = _saved(
        MarianTokenizer(str(path / "source.spm"), str(path / "target.spm"), str(path / "vocab.json")), path
    )
    config = MarianConfig(
        vocab_size=len(tokenizer),
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **_TINY_SEQ2SEQ,
    )
    return config, {}


def _encoder_config(config_name: str, tokenizer, **config) -> tuple:
    """A tiny encoder config with the tokenizer's pad id; masked LMs have no generation config."""
    import transformers

    return getattr(transformers, config_name)(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **config
    ), {}


def _build_distilbert(path: pathlib.Path):
    from transformers import DistilBertTokenizer

    tokenizer = _wordpiece(DistilBertTokenizer, path)
    return _encoder_config(
        "DistilBertConfig",
        tokenizer,
        dim=16,
        hidden_dim=32,
        n_layers=1,
        n_heads=2,
        max_position_embeddings=_TINY_POSITIONS,
    )


def _build_roberta(path: pathlib.Path):
    from transformers import RobertaTokenizer

    tokenizer = _byte_level_bpe(RobertaTokenizer, path, _FAIRSEQ_SPECIALS)
    # RoBERTa numbers positions from pad_token_id + 1: two more embeddings than it takes tokens.
    return _encoder_config("RobertaConfig", tokenizer, max_position_embeddings=_TINY_POSITIONS + 2, **_TINY_DECODER)


def _build_xlm_roberta(path: pathlib.Path):
    from transformers import XLMRobertaTokenizer

    tokenizer = _unigram(XLMRobertaTokenizer, path, _FAIRSEQ_SPECIALS)
    return _encoder_config("XLMRobertaConfig", tokenizer, max_position_embeddings=_TINY_POSITIONS + 2, **_TINY_DECODER)


def _build_albert(path: pathlib.Path):
    from transformers import AlbertTokenizer

    tokenizer = _unigram(AlbertTokenizer, path, ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"))
    return _encoder_config(
        "AlbertConfig", tokenizer, embedding_size=16, max_position_embeddings=_TINY_POSITIONS, **_TINY_DECODER
    )


def _build_modernbert(path: pathlib.Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # ModernBERT ships a plain tokenizer.json: byte-level BPE with BERT's special tokens.
    specials = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_ENGLISH_CORPUS, trainer=trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    named = dict(zip(("unk_token", "cls_token", "sep_token", "pad_token", "mask_token"), specials))
    tokenizer = _saved(PreTrainedTokenizerFast(tokenizer_object=bpe, **named), path)
    return _encoder_config(
        "ModernBertConfig",
        tokenizer,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        max_position_embeddings=_TINY_POSITIONS,
        local_attention=16,
        **_TINY_DECODER,
    )


_ARCHITECTURE_BUILDERS = {
    "gpt_neo": _build_gpt_neo,
    "gpt_neox": _build_gpt_neox,
    "opt": _build_opt,
    "llama": _build_llama,
    "mistral": lambda path: _build_llama(path, "MistralConfig"),
    "qwen2": _build_qwen,
    "qwen3": lambda path: _build_qwen(path, "Qwen3Config"),
    "phi": _build_phi,
    "gemma": _build_gemma,
    "t5": _build_t5,
    "flan_t5": lambda path: _build_t5(path, feed_forward_proj="gated-gelu"),
    "bart": _build_bart,
    "mbart": _build_mbart,
    "marian": _build_marian,
    "distilbert": _build_distilbert,
    "roberta": _build_roberta,
    "xlm_roberta": _build_xlm_roberta,
    "albert": _build_albert,
    "modernbert": _build_modernbert,
}
