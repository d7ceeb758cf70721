"""The one front door for plugins: everything a plugin may use, importable from here.

This module only re-exports. The records that travel through the hooks come
from `repl.core.records`, the results of commands from `repl.core.results`,
what a command handler receives from `repl.app.context`, and the transformers
helpers from `repl.hf`. Those helpers import torch, so they are looked up only
when first used: importing this module costs no torch or transformers, and a
plugin module can import it at start-up for free.
Whatever is not in ``__all__`` is internal and may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from repl.core.reasoning_settings import (
    MAX_THINKING_TOKENS,
    REASONING_EFFORT,
    REASONING_SETTINGS,
    TEMPLATE,
    THINK,
    template_arguments,
)
from repl.core.records import (
    CAUSAL,
    MASKED,
    SEQ2SEQ,
    STOP_REASONS,
    Alternative,
    Encoding,
    LoadedModel,
    LoadOptions,
    ModelError,
    ModelSpec,
    Reply,
    RunControl,
    Score,
    ScoredToken,
    Setting,
    Token,
    TokenProbs,
)
from repl.core.results import CommandError, Result, Stats, Table, Turn
from repl.hookspecs import hookimpl

if TYPE_CHECKING:  # the names of _LAZY, for type checkers
    from repl.app.context import CommandContext  # noqa: F401
    from repl.app.context import CommandContext as Repl  # noqa: F401
    from repl.core.conversation import SYSTEM, messages  # noqa: F401
    from repl.core.settings import GENERATION_SETTINGS  # noqa: F401
    from repl.hf import (  # noqa: F401
        FAMILY_NAMES,
        ReplyFormat,
        ReplyReader,
        ThinkingBudget,
        added_by_template,
        added_by_tokenizer,
        control_ids,
        count_tokens,
        cut_to_fit,
        decode_text,
        decoder_start,
        describe,
        encode_cut_at_end,
        encode_marking_added,
        encode_pair_cut_first,
        end_of_turn_ids,
        entropy,
        eos_ids,
        family_of,
        forced_first_token,
        generate,
        generation_config,
        generation_prompt,
        harmony_format,
        load,
        max_positions,
        message_spans,
        reasoning_open_in_prompt,
        render_prompt,
        reply_format,
        resolve_device,
        score_causal,
        score_masked,
        score_seq2seq,
        split_added_ends,
        split_reasoning,
        stop_reason,
        template_variables,
        think_format,
        token_probs,
        token_texts,
        top_alternatives,
        validate_generation,
    )

# Names found in modules that import torch, or that import this one: each is imported on first use.
_LAZY = {
    "GENERATION_SETTINGS": "repl.core.settings",
    "SYSTEM": "repl.core.conversation",
    "messages": "repl.core.conversation",
    "CommandContext": "repl.app.context",
    # What handlers of the first docs were annotated with: they receive a CommandContext now.
    "Repl": "repl.app.context:CommandContext",
    **dict.fromkeys(
        (
            "validate_generation",
            "render_prompt",
            "message_spans",
            "added_by_template",
            "control_ids",
            "end_of_turn_ids",
            "split_reasoning",
            "reasoning_open_in_prompt",
            "template_variables",
            "generation_prompt",
            "ReplyFormat",
            "ReplyReader",
            "ThinkingBudget",
            "reply_format",
            "think_format",
            "harmony_format",
            "FAMILY_NAMES",
            "load",
            "family_of",
            "resolve_device",
            "describe",
            "added_by_tokenizer",
            "encode_marking_added",
            "encode_pair_cut_first",
            "count_tokens",
            "split_added_ends",
            "encode_cut_at_end",
            "cut_to_fit",
            "decoder_start",
            "forced_first_token",
            "decode_text",
            "generation_config",
            "generate",
            "stop_reason",
            "eos_ids",
            "max_positions",
            "token_probs",
            "token_texts",
            "top_alternatives",
            "entropy",
            "score_causal",
            "score_seq2seq",
            "score_masked",
        ),
        "repl.hf",
    ),
}

__all__ = [
    # families
    "SEQ2SEQ",
    "CAUSAL",
    "MASKED",
    # hooks and records
    "hookimpl",
    "ModelError",
    "Setting",
    "ModelSpec",
    "LoadOptions",
    "LoadedModel",
    "Token",
    "Encoding",
    "Reply",
    "RunControl",
    "STOP_REASONS",
    "TokenProbs",
    "Alternative",
    "Score",
    "ScoredToken",
    # reasoning models: settings shared by every plugin that runs one, and the chat template's variables
    "THINK",
    "MAX_THINKING_TOKENS",
    "REASONING_EFFORT",
    "TEMPLATE",
    "REASONING_SETTINGS",
    "template_arguments",
    # commands and observers
    "Result",
    "Table",
    "CommandError",
    "Turn",
    "Stats",
    # settings, conversations, chat templates and transformers helpers: looked up on first use
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attribute = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attribute or name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
