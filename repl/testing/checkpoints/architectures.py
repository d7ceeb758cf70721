"""One tiny checkpoint per architecture the built-in models take.

Each comes with the tokenizer style its hub checkpoints ship (byte-level BPE,
SentencePiece-like, WordPiece), built through the tokenizer's own class so that
its special tokens and post-processor are the library's. The families' own
checkpoints (`repl.testing.checkpoints.families`) stand for gpt2, mt5 and bert.
"""

from __future__ import annotations

import os
import pathlib

from repl.testing.checkpoints.families import build_checkpoint
from repl.testing.checkpoints.vocabularies import (
    ENGLISH_CORPUS,
    MULTILINGUAL_CORPUS,
    byte_level_bpe,
    saved,
    sentencepiece_bpe,
    train_byte_level_bpe,
    unigram,
    wordpiece,
    write_json,
)
from repl.testing.checkpoints.weights import save_model

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
    save_model(auto_class.from_config, config, path, True, seed, generation)
    return path


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

    return _decoder_config("GPTNeoConfig", byte_level_bpe(GPT2Tokenizer, path), attention_types=[[["global"], 1]])


def _build_gpt_neox(path: pathlib.Path):
    from transformers import GPTNeoXTokenizer

    return _decoder_config("GPTNeoXConfig", byte_level_bpe(GPTNeoXTokenizer, path))


def _build_opt(path: pathlib.Path):
    from transformers import GPT2Tokenizer

    # OPT's tokenizer is GPT-2's with </s> as BOS, put before every line.
    tokenizer = byte_level_bpe(
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

    tokenizer = sentencepiece_bpe(LlamaTokenizer, path, ("<unk>", "<s>", "</s>"), add_bos_token=True)
    return _decoder_config(config_name, tokenizer, num_key_value_heads=1)


def _build_qwen(path: pathlib.Path, config_name: str = "Qwen2Config"):
    from transformers import Qwen2Tokenizer

    return _decoder_config(config_name, byte_level_bpe(Qwen2Tokenizer, path), num_key_value_heads=1)


def _build_phi(path: pathlib.Path):
    from transformers import CodeGenTokenizer

    return _decoder_config("PhiConfig", byte_level_bpe(CodeGenTokenizer, path))


def _build_gemma(path: pathlib.Path):
    from transformers import GemmaTokenizer

    tokenizer = sentencepiece_bpe(GemmaTokenizer, path, ("<pad>", "<eos>", "<bos>", "<unk>"), add_bos_token=True)
    return _decoder_config("GemmaConfig", tokenizer, num_key_value_heads=1, head_dim=8)


def _build_t5(path: pathlib.Path, **config):
    from transformers import T5Config, T5Tokenizer

    tokenizer = unigram(T5Tokenizer, path, ("<pad>", "</s>", "<unk>"), extra_ids=0)
    t5 = T5Config(
        vocab_size=len(tokenizer), decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **_TINY_T5, **config
    )
    return t5, {}


def _build_bart(path: pathlib.Path):
    from transformers import BartConfig, BartTokenizer

    tokenizer = byte_level_bpe(BartTokenizer, path, _FAIRSEQ_SPECIALS)
    # As facebook/bart-large: the decoder starts from </s>, and <s> is forced as the first token.
    config = BartConfig(vocab_size=len(tokenizer), decoder_start_token_id=tokenizer.eos_token_id, **_TINY_SEQ2SEQ)
    return config, {"forced_bos_token_id": tokenizer.bos_token_id}


def _build_mbart(path: pathlib.Path):
    from transformers import MBartConfig, MBartTokenizer

    tokenizer = unigram(MBartTokenizer, path, _FAIRSEQ_SPECIALS, src_lang=_MBART_SOURCE, tgt_lang=_MBART_TARGET)
    # As mBART's translation checkpoints: the decoder starts from </s>, the target language is forced next.
    config = MBartConfig(vocab_size=len(tokenizer), decoder_start_token_id=tokenizer.eos_token_id, **_TINY_SEQ2SEQ)
    return config, {"forced_bos_token_id": tokenizer.convert_tokens_to_ids(_MBART_TARGET)}


def _build_marian(path: pathlib.Path):
    import io

    import sentencepiece
    from transformers import MarianConfig, MarianTokenizer

    model_proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(ENGLISH_CORPUS + MULTILINGUAL_CORPUS),
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
    write_json(path / "vocab.json", {piece: i for i, piece in enumerate([*pieces, "<pad>"])})
    tokenizer = saved(
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

    tokenizer = wordpiece(DistilBertTokenizer, path)
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

    tokenizer = byte_level_bpe(RobertaTokenizer, path, _FAIRSEQ_SPECIALS)
    # RoBERTa numbers positions from pad_token_id + 1: two more embeddings than it takes tokens.
    return _encoder_config("RobertaConfig", tokenizer, max_position_embeddings=_TINY_POSITIONS + 2, **_TINY_DECODER)


def _build_xlm_roberta(path: pathlib.Path):
    from transformers import XLMRobertaTokenizer

    tokenizer = unigram(XLMRobertaTokenizer, path, _FAIRSEQ_SPECIALS)
    return _encoder_config("XLMRobertaConfig", tokenizer, max_position_embeddings=_TINY_POSITIONS + 2, **_TINY_DECODER)


def _build_albert(path: pathlib.Path):
    from transformers import AlbertTokenizer

    tokenizer = unigram(AlbertTokenizer, path, ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"))
    return _encoder_config(
        "AlbertConfig", tokenizer, embedding_size=16, max_position_embeddings=_TINY_POSITIONS, **_TINY_DECODER
    )


def _build_modernbert(path: pathlib.Path):
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    # ModernBERT ships a plain tokenizer.json: byte-level BPE with BERT's special tokens.
    specials = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")
    bpe = train_byte_level_bpe(specials)
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    named = dict(zip(("unk_token", "cls_token", "sep_token", "pad_token", "mask_token"), specials))
    tokenizer = saved(PreTrainedTokenizerFast(tokenizer_object=bpe, **named), path)
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
