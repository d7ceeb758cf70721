"""Settings shared by plugins: the generation settings and the REPL's own.

Plugins pick the settings their models accept; transformers' GenerationConfig
has the last word on combinations, so its messages reach the user unchanged.
"""

from __future__ import annotations

from typing import Any

from repl.api import ModelSpec, Setting

GENERATION_SETTINGS = (
    Setting("max_new_tokens", int, 64, "most tokens to generate", minimum=1, maximum=100_000),
    Setting("do_sample", bool, False, "sample instead of greedy/beam decoding"),
    Setting("temperature", float, 1.0, "sampling temperature", minimum=0.0, maximum=100.0),
    Setting("top_k", int, 50, "sample from the k most likely tokens", minimum=0, maximum=1_000_000),
    Setting("top_p", float, 1.0, "nucleus sampling probability mass", minimum=0.0, maximum=1.0),
    Setting("num_beams", int, 1, "beam search width", minimum=1, maximum=64),
    Setting("repetition_penalty", float, 1.0, "penalty for repeated tokens", minimum=0.0, maximum=100.0),
    Setting("no_repeat_ngram_size", int, 0, "forbid repeating n-grams of this size", minimum=0, maximum=100),
    Setting("seed", int, None, "random seed for reproducible sampling", minimum=0, maximum=2**32 - 1, optional=True),
    # Not generation parameters: whether to keep each step's scores for /probs and --json.
    Setting("probs", bool, False, "keep each token's probabilities while generating, for /probs"),
    Setting("top_logprobs", int, 5, "alternatives /probs shows for each token", minimum=1, maximum=100),
)

GENERATION_KEYS = tuple(s.name for s in GENERATION_SETTINGS if s.name not in ("seed", "probs", "top_logprobs"))

# Settings the REPL itself keeps for every model.
REPL_SETTINGS = (Setting("stream", bool, True, "print replies token by token as they are generated"),)


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
    try:
        config.validate(strict=True)
    except ValueError as exc:
        return _one_line(exc)
    if settings.get("probs") and config.num_beams > 1:
        return "probs are not recorded with beam search (num_beams > 1): it keeps no per-token scores of its answer"
    return None


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


def all_settings(spec: ModelSpec) -> tuple[Setting, ...]:
    return REPL_SETTINGS + spec.settings


def find_setting(spec: ModelSpec, name: str) -> Setting | None:
    return next((s for s in all_settings(spec) if s.name == name), None)


def defaults(spec: ModelSpec) -> dict[str, Any]:
    return {s.name: s.default for s in all_settings(spec)}


def change(spec: ModelSpec, current: dict[str, Any], name: str, value: Any) -> tuple[dict[str, Any], str | None]:
    """The settings with one value changed plus a warning, or ValueError saying why not.

    `value` is text (from `/set`) or an already typed value (from a config file
    or a saved session).
    """
    setting = find_setting(spec, name)
    if setting is None:
        accepted = ", ".join(s.name for s in all_settings(spec))
        raise ValueError(f"{name!r} does not apply to {spec.name} ({spec.family}); it takes: {accepted}")
    parsed = setting.parse(value) if isinstance(value, str) else setting.check(value)
    updated = {**current, name: parsed}
    warning = spec.validate_settings(updated) if spec.validate_settings is not None else None
    return updated, warning


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
