"""The tokenizers of the tiny checkpoints: the corpora they are trained on, and a trainer per style.

Each trainer builds a real tokenizer of one style (WordPiece, byte-level BPE,
SentencePiece-like BPE, Unigram) through the library's own classes and saves it,
so that it loads back exactly as a hub checkpoint's tokenizer does.
"""

from __future__ import annotations

import json
import pathlib

# Every character a test may type should appear here: the T5 tokenizer of
# transformers 5 ignores SentencePiece byte fallback, so characters missing
# from this corpus encode to <unk>, exactly as with the real mT5 vocabulary.
MULTILINGUAL_CORPUS = (
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

ENGLISH_CORPUS = (
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

BERT_POSITIONS = 64


def wordpiece(tokenizer_class, path: pathlib.Path):
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
    write_json(
        path / "tokenizer_config.json",
        {"tokenizer_class": tokenizer_class.__name__, "do_lower_case": True, "model_max_length": BERT_POSITIONS},
    )
    return resave_tokenizer(tokenizer_class, path)


def resave_tokenizer(tokenizer_class, path: pathlib.Path):
    """Load the raw vocabulary files and save them back in the canonical layout.

    The round trip adds ``tokenizer.json`` and a complete
    ``tokenizer_config.json``, as found in hub repositories.
    """
    tokenizer = tokenizer_class.from_pretrained(path)
    tokenizer.save_pretrained(path)
    return tokenizer


def write_json(path: pathlib.Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def saved(tokenizer, path: pathlib.Path):
    """Save a tokenizer and load it back the way a checkpoint's tokenizer is loaded."""
    import transformers

    tokenizer.save_pretrained(path)
    return transformers.AutoTokenizer.from_pretrained(path)


def train_byte_level_bpe(specials: tuple[str, ...] = (), extra_corpus: tuple[str, ...] = (), vocab_size: int = 400):
    """GPT-2's style, trained on the English corpus: byte-level BPE, so any text encodes without an unknown token.

    A `tokenizers.Tokenizer`, its `specials` first; each checkpoint makes its tokenizer class of it.
    `extra_corpus` is learnt too (a chat template's words, so that its prompts stay short).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(ENGLISH_CORPUS + extra_corpus, trainer=trainer)
    return bpe


def byte_level_bpe(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...] = (), **options):
    """A `tokenizer_class` tokenizer made of `train_byte_level_bpe`'s vocabulary and merges."""
    trained = json.loads(train_byte_level_bpe(specials).to_str())["model"]
    merges = [tuple(pair) for pair in trained["merges"]]
    return saved(tokenizer_class(vocab=trained["vocab"], merges=merges, **options), path)


def sentencepiece_bpe(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...], **options):
    """Llama's and Gemma's style: BPE over "▁"-marked words, with byte fallback."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    byte_pieces = [f"<0x{byte:02X}>" for byte in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=[*specials, *byte_pieces], show_progress=False)
    bpe.train_from_iterator(ENGLISH_CORPUS + MULTILINGUAL_CORPUS, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(pair) for pair in trained["merges"]]
    return saved(tokenizer_class(vocab=trained["vocab"], merges=merges, **options), path)


def unigram(tokenizer_class, path: pathlib.Path, specials: tuple[str, ...], **options):
    """T5's, XLM-R's, ALBERT's and mBART's style: a SentencePiece Unigram model, special tokens first."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    unigram_model = Tokenizer(models.Unigram())
    unigram_model.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=list(specials), unk_token="<unk>", show_progress=False
    )
    unigram_model.train_from_iterator(ENGLISH_CORPUS + MULTILINGUAL_CORPUS, trainer=trainer)
    vocab = [tuple(entry) for entry in json.loads(unigram_model.to_str())["model"]["vocab"]]
    return saved(tokenizer_class(vocab=vocab, **options), path)
