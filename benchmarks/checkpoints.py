"""Checkpoints to measure on: real-size architectures with random weights, built offline.

The configurations are those of gpt2 (124M), bigscience/mt0-small and
bert-base-uncased, written from their published values: the compute of a
forward pass depends on the shapes, not on the weights' values. The real
tokenizers cannot be downloaded, so each checkpoint gets the tiny tokenizer of
`repl.testing.checkpoints`, its vocabulary padded with filler words up to the
model's vocabulary size. Input ids therefore stay within the embedding table,
and every id the random model generates decodes to text, so streaming does the
same work per token as with the real vocabulary.

Built checkpoints are cached (a few GB) and rebuilt only when their recipe changes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from repl.testing.checkpoints import FAMILIES, build_checkpoint

RECIPE_FILE = "benchmark-recipe.json"
RECIPE_VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

# Published configurations; only the special-token ids come from the tiny tokenizer.
REAL_CONFIGS = {
    "gpt2": {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024, "vocab_size": 50257},
    "mt0": {
        "d_model": 512,
        "d_ff": 1024,
        "d_kv": 64,
        "num_layers": 8,
        "num_decoder_layers": 8,
        "num_heads": 6,
        "vocab_size": 250112,
        "feed_forward_proj": "gated-gelu",
        "tie_word_embeddings": False,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
    },
    "bert": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    },
}
MODEL_MAX_LENGTH = {"gpt2": 1024, "bert": 512}


def prepare(family: str, cache: Path, *, real_size: bool, new_tokens: int) -> Path:
    """A checkpoint directory of `family` that generates exactly `new_tokens` tokens per reply.

    min_new_tokens = max_new_tokens in its generation config keeps the random
    model from stopping early at EOS, so both sides generate the same count.
    """
    directory = cache / ("real" if real_size else "tiny") / family
    recipe = {"version": RECIPE_VERSION, "family": family, "config": REAL_CONFIGS[family] if real_size else "tiny"}
    if _recipe(directory) != recipe:
        _build(family, directory, recipe, real_size)
    if family != "bert":
        _fix_generation(directory, new_tokens)
    return directory


def prepare_all(cache: Path, *, real_size: bool, new_tokens: int) -> dict[str, Path]:
    return {family: prepare(family, cache, real_size=real_size, new_tokens=new_tokens) for family in FAMILIES}


def weight_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*.safetensors"))


def _recipe(directory: Path) -> dict | None:
    try:
        return json.loads((directory / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _build(family: str, directory: Path, recipe: dict, real_size: bool) -> None:
    """Build into a scratch directory beside the target, then swap it in whole."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=directory.parent))
    try:
        tiny = build_checkpoint(family, scratch / "tiny")
        if real_size:
            _build_real_size(family, tiny, scratch / "built")
        else:
            tiny.rename(scratch / "built")
        (scratch / "built" / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        (scratch / "built").rename(directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build_real_size(family: str, tiny: Path, target: Path) -> None:
    import torch
    import transformers

    target.mkdir()
    vocab_size = REAL_CONFIGS[family]["vocab_size"]
    for name in TOKENIZER_FILES:
        shutil.copy(tiny / name, target / name)
    _pad_vocabulary(target / "tokenizer.json", vocab_size)
    if family in MODEL_MAX_LENGTH:
        _update_json(target / "tokenizer_config.json", model_max_length=MODEL_MAX_LENGTH[family])
    tokenizer = transformers.AutoTokenizer.from_pretrained(target)
    if tokenizer.convert_ids_to_tokens(vocab_size - 1) is None:
        raise RuntimeError(f"the padded {family} tokenizer does not reach id {vocab_size - 1}")

    config = REAL_CONFIGS[family]
    torch.manual_seed(0)
    if family == "gpt2":
        eos = tokenizer.eos_token_id
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config, bos_token_id=eos, eos_token_id=eos))
    elif family == "mt0":
        model = transformers.MT5ForConditionalGeneration(
            transformers.MT5Config(
                **config,
                decoder_start_token_id=tokenizer.pad_token_id,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                tokenizer_class="T5Tokenizer",
            )
        )
    else:
        model = transformers.BertForMaskedLM(transformers.BertConfig(**config, pad_token_id=tokenizer.pad_token_id))
    model.eval().save_pretrained(target)


def _pad_vocabulary(path: Path, size: int) -> None:
    """Append filler words ("w1234") to a tokenizers vocabulary until it has `size` ids.

    A BPE tokenizer never produces a piece that no merge builds, a WordPiece
    one would only for the literal filler word, and the unigram fillers get a
    score too low to win over real pieces: encoding the prompts is unchanged.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data["model"]
    if model["type"] == "Unigram":  # the vocabulary is a list of [piece, score]; the position is the id
        model["vocab"] += [["\u2581w" + str(i), -50.0] for i in range(len(model["vocab"]), size)]
    else:
        used = {token["id"] for token in data["added_tokens"]} | set(model["vocab"].values())
        start = max(used) + 1
        prefix = "\u0120" if model["type"] == "BPE" else ""  # byte-level BPE spells a leading space as Ġ
        model["vocab"].update({f"{prefix}w{i}": i for i in range(start, size)})
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _fix_generation(directory: Path, new_tokens: int) -> None:
    """Exactly `new_tokens` per reply, none of them padding.

    A random mT5 with tied embeddings answers the pad token it starts from,
    which decodes to nothing and which the mt0 plugin strips as beam padding;
    suppressing it keeps every generated token a visible word on both sides.
    """
    pad = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("pad_token_id")
    _update_json(
        directory / "generation_config.json",
        min_new_tokens=new_tokens,
        max_new_tokens=new_tokens,
        suppress_tokens=[pad] if pad is not None else None,
    )


def _update_json(path: Path, **values) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if any(data.get(key) != value for key, value in values.items()):
        data.update(values)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
