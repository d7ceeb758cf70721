"""What plugins built on transformers use: loading, tokens, generation, probabilities, chat templates.

One module per concern (`loading`, `placement`, `quantization`, `tokens`,
`generation`, `validation`, `probabilities`, `chat_templates`, `reasoning`).
Most import torch, so this package imports none of them until a name is
first looked up: `from repl import hf` costs nothing at start-up, and
`hf.load` (any name below) still works as it did when this was one module.
Plugins import these names from `repl.api`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module of this package that defines it.
_HOME = {
    **dict.fromkeys(
        (
            "FAMILY_NAMES",
            "HUB_TIMEOUT_SECONDS",
            "resolve_device",
            "family_of",
            "max_positions",
            "quiet_loading",
            "load",
        ),
        "loading",
    ),
    **dict.fromkeys(
        (
            "describe",
            "added_by_tokenizer",
            "encode_marking_added",
            "encode_pair_cut_first",
            "count_tokens",
            "encode_cut_at_end",
            "split_added_ends",
            "cut_to_fit",
            "decoder_start",
            "forced_first_token",
            "decode_text",
            "token_texts",
        ),
        "tokens",
    ),
    **dict.fromkeys(
        (
            "Split",
            "WholeCharacterStreamer",
            "IncrementalStreamer",
            "ReadingStreamer",
            "streamer_for",
            "generation_config",
            "generate",
            "stop_reason",
            "eos_ids",
        ),
        "generation",
    ),
    **dict.fromkeys(("validate_generation", "check_logits_processors"), "validation"),
    **dict.fromkeys(
        ("MASKED_BATCH", "token_probs", "top_alternatives", "entropy", "score_causal", "score_seq2seq", "score_masked"),
        "probabilities",
    ),
    **dict.fromkeys(
        (
            "render_prompt",
            "message_spans",
            "added_by_template",
            "control_ids",
            "end_of_turn_ids",
            "template_variables",
            "generation_prompt",
            "TemplateError",
        ),
        "chat_templates",
    ),
    **dict.fromkeys(
        (
            "split_reasoning",
            "reasoning_open_in_prompt",
            "ReplyFormat",
            "ReplyReader",
            "ThinkingBudget",
            "reply_format",
            "think_format",
            "harmony_format",
        ),
        "reasoning",
    ),
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
