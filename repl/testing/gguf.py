"""GGUF files of tiny Hugging Face checkpoints, written offline for tests of the `gguf` model.

`build_gguf` does for a checkpoint of the kit what llama.cpp's
``convert_hf_to_gguf.py`` does for a hub checkpoint, with the pure-Python
``gguf`` package's writer: the same metadata keys, the same tensor names (from
``gguf``'s own name map), the same reshaping of weights (GPT-2's Conv1D
weights transposed, Llama's query and key rows permuted for llama.cpp's
rotary embedding), the same tokenizer metadata (a byte-level BPE vocabulary
with its merges, token types, special token ids, whether BOS and EOS are
added, and the chat template), and the same tensor types (norms, biases and
position embeddings stay F32; a matrix whose rows do not split into Q8_0's
blocks of 32 falls back to F16). So a test needs neither the hub nor llama.cpp's
converter to get a GGUF whose weights are exactly those of a checkpoint that
transformers loads.

torch, transformers and gguf are imported inside the functions: this module is
imported with the kit, and test collection must stay fast.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

__all__ = ["GGUF_ARCHITECTURES", "GGUF_QUANTS", "build_gguf"]

# The checkpoints' `model_type`s this builder writes, with llama.cpp's architecture for each (Mistral is Llama's).
GGUF_ARCHITECTURES = {
    "gpt2": "gpt2",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
}
GGUF_QUANTS = ("f32", "f16", "q8_0")

# The byte-level BPE pre-tokenizers llama.cpp implements, recognised by the split rule of tokenizer.json.
# Qwen2 and Llama 3 split text alike but for digits: one at a time, or up to three together.
_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|DIGITS| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPLIT_PRE_TOKENIZERS = {
    _SPLIT.replace("DIGITS", r"\p{N}"): "qwen2",
    _SPLIT.replace("DIGITS", r"\p{N}{1,3}"): "llama-bpe",
}


def build_gguf(checkpoint_dir: str | os.PathLike, out_path: str | os.PathLike, quant: str = "f32") -> pathlib.Path:
    """Write a GGUF file of the checkpoint in ``checkpoint_dir`` to ``out_path`` and return its path.

    ``quant`` is ``"f32"`` (the weights exactly), ``"f16"`` or ``"q8_0"``. The
    checkpoint is one of ``GGUF_ARCHITECTURES`` with safetensors weights and a
    byte-level BPE tokenizer (GPT-2's, Qwen2's, Llama 3's or SmolLM's
    pre-tokenizer), as the kit's ``build_checkpoint("gpt2")``,
    ``build_architecture("qwen2")`` and ``build_chat_checkpoint`` write them;
    anything else is a ``ValueError`` saying what is not supported.
    """
    import gguf
    import transformers

    if quant not in GGUF_QUANTS:
        raise ValueError(f"unknown quant {quant!r}; expected one of {', '.join(GGUF_QUANTS)}")
    source = pathlib.Path(checkpoint_dir)
    config = transformers.AutoConfig.from_pretrained(source)
    if config.model_type not in GGUF_ARCHITECTURES:
        raise ValueError(f"build_gguf writes {', '.join(GGUF_ARCHITECTURES)} checkpoints, not {config.model_type!r}")
    arch = GGUF_ARCHITECTURES[config.model_type]
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[quant]
    out = pathlib.Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out, arch)
    writer.add_name(source.name)
    writer.add_file_type(file_type)
    if quant == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hyperparameters(writer, config)
    _add_tokenizer(writer, source, config)
    for name, data, qtype in _tensors(source, config, arch, quant):
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _add_hyperparameters(writer: Any, config: Any) -> None:
    """The `{arch}.*` keys llama.cpp reads for the architecture, from the checkpoint's config."""
    if config.model_type == "gpt2":
        writer.add_context_length(config.n_positions)
        writer.add_embedding_length(config.n_embd)
        writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(config.layer_norm_epsilon)
        return
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config.vocab_size)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _rope_theta(config: Any) -> float:
    """transformers 5 keeps the base in `rope_parameters`; earlier configs had `rope_theta`."""
    parameters = getattr(config, "rope_parameters", None) or {}
    if parameters.get("rope_type", "default") != "default":
        raise ValueError(f"build_gguf writes plain rotary embeddings, not {parameters['rope_type']!r} scaling")
    return float(parameters.get("rope_theta") or getattr(config, "rope_theta", None) or 10000.0)


def _add_tokenizer(writer: Any, source: pathlib.Path, config: Any) -> None:
    """The vocabulary as convert_hf_to_gguf writes a GPT-2-style BPE one (its `_set_vocab_gpt2`).

    Token types: an added token the tokenizer calls special, or that looks like
    one (`<|...|>`), is CONTROL; another added token is USER_DEFINED; the rest
    NORMAL, and ids the tokenizer leaves unused are `[PAD{i}]`; the vocabulary
    has as many tokens as the model has embeddings, as the converter requires. The merges,
    special token ids and chat template come through gguf's `SpecialVocab`,
    the converter's own reader; whether BOS and EOS are added is what the
    tokenizer does to a text, which no config key says reliably.
    """
    import gguf
    import transformers

    tokenizer_json = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    pre = _pre_tokenizer(tokenizer_json)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    vocab = tokenizer.get_vocab()
    # One token per row of the embeddings: ids a padded tokenizer has beyond them can never reach the model.
    size = config.vocab_size
    by_id = {i: piece for piece, i in vocab.items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added and (added[i].special or _looks_special(by_id[i])):
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(source, load_merges=True, n_vocab=size)
    special.add_special_token["bos"], special.add_special_token["eos"] = _adds_bos_and_eos(tokenizer)
    special.add_to_gguf(writer, quiet=True)


def _adds_bos_and_eos(tokenizer: Any) -> tuple[bool, bool]:
    """Whether the tokenizer puts its BOS before a text and its EOS after it."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    marked = tokenizer("a")["input_ids"]
    start = marked.index(plain[0]) if plain[0] in marked else 0
    before, after = marked[:start], marked[start + len(plain) :]
    return before == [tokenizer.bos_token_id], after == [tokenizer.eos_token_id]


def _looks_special(piece: str) -> bool:
    return piece.startswith("<|") and piece.endswith("|>")


def _pre_tokenizer(tokenizer_json: dict) -> str:
    """llama.cpp's name (`tokenizer.ggml.pre`) for the tokenizer's pre-tokenizer; ValueError for one it lacks."""
    model = tokenizer_json.get("model", {})
    pre = tokenizer_json.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ValueError("build_gguf writes byte-level BPE tokenizers (GPT-2's style), not SentencePiece-style ones")
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        name = _SPLIT_PRE_TOKENIZERS.get(steps[0].get("pattern", {}).get("Regex"))
        if name is not None:
            return name
    raise ValueError(
        f"build_gguf knows the GPT-2, SmolLM, Qwen2 and Llama 3 pre-tokenizers, not {json.dumps(pre)[:200]}"
    )


def _tensors(source: pathlib.Path, config: Any, arch: str, quant: str):
    """(GGUF name, data, GGML type) of every weight, in the layout and type llama.cpp expects."""
    import gguf
    from safetensors.torch import load_file

    blocks = config.n_layer if config.model_type == "gpt2" else config.num_hidden_layers
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], blocks)
    weights = {}
    for part in sorted(source.glob("*.safetensors")):
        weights.update(load_file(part))
    if not weights:
        raise ValueError(f"{source} has no safetensors weights")
    for hf_name, tensor in weights.items():
        if hf_name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
            continue  # llama.cpp uses the token embeddings when there is no output matrix
        if hf_name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # GPT-2's causal mask buffers of older checkpoints, no weights
        data = tensor.float()
        if config.model_type == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            data = data.T  # Conv1D keeps (in, out); llama.cpp takes (out, in) like a Linear layer
        if arch == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = config.num_attention_heads
            if hf_name.endswith("k_proj.weight"):
                heads = getattr(config, "num_key_value_heads", None) or heads
            data = _permute(data, heads)
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"build_gguf has no GGUF name for the tensor {hf_name!r} of a {arch} checkpoint")
        yield (name, *_typed(data.contiguous().numpy(), name, quant))


def _permute(weights: Any, heads: int) -> Any:
    """Llama's query and key rows from transformers' rotate-half order to llama.cpp's interleaved pairs."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _typed(data: Any, name: str, quant: str) -> tuple[Any, Any]:
    """The data in the file's type, with that type: convert_hf_to_gguf's rules for what stays F32."""
    import gguf
    import numpy as np

    types = gguf.GGMLQuantizationType
    if quant == "f32" or data.ndim <= 1 or name.endswith("_norm.weight") or name.startswith("position_embd"):
        return data.astype(np.float32), types.F32
    if quant == "q8_0":
        try:
            return gguf.quants.quantize(data, types.Q8_0), types.Q8_0
        except gguf.quants.QuantError:
            pass  # rows shorter than a block, or not a multiple of it: F16, as the converter falls back
    return data.astype(np.float16), types.F16
