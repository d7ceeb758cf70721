"""Tiny instruct checkpoints that ship a chat template (ChatML, Llama 3)."""

from __future__ import annotations

import os
import pathlib

from repl.testing.checkpoints.vocabularies import train_byte_level_bpe
from repl.testing.checkpoints.weights import save_model

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
    from tokenizers import AddedToken
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    try:
        template, specials, bos, eos, architecture = _CHAT_STYLES[style]
    except KeyError:
        raise ValueError(f"unknown chat style {style!r}; expected one of {CHAT_STYLES}") from None
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    bpe = train_byte_level_bpe(specials)
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
    save_model(model_class, config, path, True, seed)
    return path
