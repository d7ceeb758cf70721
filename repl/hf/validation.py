"""Generation settings judged by transformers: its GenerationConfig and logits processors have the last word.

Their messages reach the user unchanged, but for the commonest, sampling settings
that greedy decoding ignores, which is said in modelrepl's words. transformers is imported inside the
functions, so a plugin may name `validate_generation` at start-up for free.
"""

from __future__ import annotations

from typing import Any

from repl.core.settings import GENERATION_KEYS, GENERATION_SETTINGS, format_value

# Settings only sampling reads: transformers' own warning about them quotes their values as Python (5.0).
SAMPLING_KEYS = ("temperature", "top_k", "top_p")


def validate_generation(settings: dict[str, Any]) -> str | None:
    """Let transformers judge the combination.

    Raises ValueError with transformers' message for an invalid combination;
    returns its message for one that merely has no effect (temperature without
    do_sample), so settings can be given in any order.
    """
    from transformers import GenerationConfig
    from transformers.utils import logging as transformers_logging

    values = {key: settings[key] for key in GENERATION_KEYS if key in settings}
    previous = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        config = GenerationConfig(**values)
        config.validate(strict=False)
        check_logits_processors(config)
    except ValueError as exc:
        raise ValueError(_one_line(exc)) from None
    finally:
        transformers_logging.set_verbosity(previous)
    unused = _unused_sampling(config)
    if unused:
        values = ", ".join(f"{key} {format_value(getattr(config, key))}" for key in unused)
        return f"{values} {'takes' if len(unused) == 1 else 'take'} effect only when sampling: /set do_sample on"
    try:
        config.validate(strict=True)
    except ValueError as exc:
        return _one_line(exc)
    if settings.get("max_thinking_tokens") and config.num_beams > 1:
        raise ValueError(
            "max_thinking_tokens follows one sequence as it thinks, which beam search does not have: "
            "set num_beams 1, or max_thinking_tokens 0"
        )
    if settings.get("probs") and config.num_beams > 1:
        return "probs are not recorded with beam search (num_beams > 1): it keeps no per-token scores of its answer"
    return None


def _unused_sampling(config: Any) -> list[str]:
    """The sampling settings that differ from their defaults while greedy or beam search ignores them."""
    if config.do_sample:
        return []
    defaults = {setting.name: setting.default for setting in GENERATION_SETTINGS}
    return [key for key in SAMPLING_KEYS if getattr(config, key) not in (None, defaults[key])]


def check_logits_processors(config: Any) -> None:
    """Build the logits processors `generate` would build for `config`; ValueError for a value they refuse.

    GenerationConfig.validate accepts values that the processors' constructors
    refuse only once `generate` runs (temperature 0 when sampling, repetition
    penalty 0), so the same constructors judge them here, under the same
    conditions as `generate` (transformers' `_get_logits_processor`).
    """
    from transformers import generation

    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        generation.RepetitionPenaltyLogitsProcessor(penalty=config.repetition_penalty)
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        generation.NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size)
    if not config.do_sample:
        return
    if config.temperature is not None and config.temperature != 1.0:
        generation.TemperatureLogitsWarper(config.temperature)
    if config.top_k is not None and config.top_k != 0:
        generation.TopKLogitsWarper(top_k=config.top_k)
    if config.top_p is not None and config.top_p < 1.0:
        generation.TopPLogitsWarper(top_p=config.top_p)


def _one_line(exc: Exception) -> str:
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("GenerationConfig is invalid", "If you're using"))]
    return " ".join(useful or lines)
