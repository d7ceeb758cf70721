"""Tiny instruct checkpoints that ship a chat template: ChatML, Llama 3, and reasoning models' (`templates`)."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

from repl.testing.checkpoints import templates
from repl.testing.checkpoints.vocabularies import train_byte_level_bpe
from repl.testing.checkpoints.weights import save_model

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


@dataclass(frozen=True)
class _ChatStyle:
    template: str
    specials: tuple[str, ...]
    bos: str | None
    eos: str  # the tokenizer's
    architecture: str
    config_eos: tuple[str, ...] = ()  # the model's generation config's, when not the tokenizer's EOS
    bos_added: bool = False  # the tokenizer puts BOS before plain text (as DeepSeek's does)
    # The tokenizer also learns the words of its template, so that a prompt stays short (harmony's system message).
    learns_template: bool = True


_HARMONY_SPECIALS = (
    "<|startoftext|>",
    "<|endoftext|>",
    "<|return|>",
    "<|constrain|>",
    "<|channel|>",
    "<|start|>",
    "<|end|>",
    "<|message|>",
    "<|call|>",
)
_CHAT_STYLES = {
    "chatml": _ChatStyle(
        CHATML_TEMPLATE,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        None,
        "<|endoftext|>",
        "Qwen2",
        learns_template=False,
    ),
    "llama3": _ChatStyle(
        LLAMA3_TEMPLATE,
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "Llama",
        learns_template=False,
    ),
    "qwen3": _ChatStyle(
        templates.QWEN3_TEMPLATE, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), None, "<|im_end|>", "Qwen3"
    ),
    "deepseek": _ChatStyle(
        templates.DEEPSEEK_R1_TEMPLATE,
        ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"),
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "Qwen2",
        bos_added=True,
    ),
    "gemma": _ChatStyle(
        templates.GEMMA3_TEMPLATE,
        ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
        "<bos>",
        "<end_of_turn>",
        "Llama",
        config_eos=("<eos>",),
    ),
    "harmony": _ChatStyle(
        templates.HARMONY_TEMPLATE,
        _HARMONY_SPECIALS,
        "<|startoftext|>",
        "<|return|>",
        "Llama",
        config_eos=("<|return|>", "<|call|>"),
    ),
}
CHAT_STYLES = tuple(_CHAT_STYLES)
# Reasoning markers as Qwen3 has them: added tokens that are not special, so they decode as text.
_THINK_TOKENS = ("<think>", "</think>")


def build_chat_checkpoint(directory: str | os.PathLike, style: str = "chatml", *, seed: int = 0) -> pathlib.Path:
    """Write a tiny instruct checkpoint with a chat template and return its path.

    Every style has a byte-level BPE tokenizer with the special tokens its
    template writes, ``<think>``/``</think>`` as plain added tokens, and a tiny
    random model. The styles, by the checkpoints whose template they carry:

    - ``"chatml"``: Qwen2's ChatML (``<|im_start|>``, ``<|im_end|>``), no system prompt of its own;
    - ``"llama3"``: Llama 3 Instruct's header tokens; the model config's EOS is the
      end-of-text token, not the end of a turn, which only the template tells;
    - ``"qwen3"``: Qwen3's template, which reads ``enable_thinking``;
    - ``"deepseek"``: DeepSeek-R1's, which writes the BOS itself (the tokenizer
      adds one too, to plain text) and opens ``<think>`` in the prompt;
    - ``"gemma"``: Gemma 3's, which raises when two user turns follow each other;
    - ``"harmony"``: gpt-oss's (``templates.HARMONY_TEMPLATE``): ``analysis`` and
      ``final`` channels, ``reasoning_effort``, ``<|return|>`` ending the reply.
    """
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast

    try:
        chosen = _CHAT_STYLES[style]
    except KeyError:
        raise ValueError(f"unknown chat style {style!r}; expected one of {CHAT_STYLES}") from None
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if chosen.learns_template:
        bpe = train_byte_level_bpe(chosen.specials, extra_corpus=(chosen.template,), vocab_size=1000)
    else:
        bpe = train_byte_level_bpe(chosen.specials)
    bpe.add_tokens([AddedToken(token, special=False, normalized=False) for token in _THINK_TOKENS])
    if chosen.bos_added:
        bos_id = bpe.token_to_id(chosen.bos)
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{chosen.bos} $A", pair=f"{chosen.bos} $A {chosen.bos} $B", special_tokens=[(chosen.bos, bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=chosen.bos,
        eos_token=chosen.eos,
        model_max_length=256,
        chat_template=chosen.template,
    )
    tokenizer.save_pretrained(path)

    import transformers

    config = getattr(transformers, f"{chosen.architecture}Config")(
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
    ends = tokenizer.convert_tokens_to_ids(list(chosen.config_eos))
    generation = {"eos_token_id": ends} if ends else None
    model_class = getattr(transformers, f"{chosen.architecture}ForCausalLM")
    save_model(model_class, config, path, True, seed, generation)
    return path
