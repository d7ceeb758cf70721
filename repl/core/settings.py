"""Settings shared by plugins: the generation settings and the REPL's own.

Plugins pick the settings their models accept; transformers' GenerationConfig
has the last word on combinations (`repl.hf.validation`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from repl.core.records import CAUSAL, LoadedModel, ModelSpec, Setting
from repl.core.suggest import nearest

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
RENDERINGS = ("markdown", "raw")


def render_setting(spec: ModelSpec) -> Setting:
    """How a terminal shows the model's replies; markdown by default for a model that answers in markdown.

    Off a terminal, in --json, transcripts and session files, replies are always their raw text.
    """
    return Setting(
        "render",
        str,
        "markdown" if spec.markdown else "raw",
        "how a terminal shows replies: markdown rendered as it streams, or the raw text",
        choices=RENDERINGS,
    )


# Settings of every comparison (/compare, broadcast, /retry NAME NAME ..., /arena) rather than of one model.
COMPARE_SETTINGS = (
    Setting(
        "compare_run",
        str,
        "auto",
        "auto: models on different devices answer at once, those sharing one in turn; "
        "parallel: all at once (timings on a shared device marked shared); sequential: in turn",
        choices=("auto", "parallel", "sequential"),
    ),
    Setting(
        "compare_layout",
        str,
        "columns",
        "columns: replies side by side as they stream (on a terminal wide enough); blocks: when they are done",
        choices=("columns", "blocks"),
    ),
)


def compare_setting(name: str) -> Setting | None:
    return next((s for s in COMPARE_SETTINGS if s.name == name), None)


def all_settings(spec: ModelSpec) -> tuple[Setting, ...]:
    return REPL_SETTINGS + (render_setting(spec),) + spec.settings


def find_setting(spec: ModelSpec, name: str) -> Setting | None:
    """The setting called `name`, or the prefix setting it belongs to (`template.NAME` is `template.`'s)."""
    exact = next((s for s in all_settings(spec) if s.name == name and not s.prefix), None)
    if exact is not None:
        return exact
    head, dot, rest = name.partition(".")
    return next((s for s in all_settings(spec) if s.prefix and s.name == head + dot and rest.isidentifier()), None)


def defaults(spec: ModelSpec) -> dict[str, Any]:
    """Each setting's default; a prefix setting has none until a name after it is set."""
    return {s.name: s.default for s in all_settings(spec) if not s.prefix}


def change(
    spec: ModelSpec, current: dict[str, Any], name: str, value: Any, elsewhere: Collection[str] = ()
) -> tuple[dict[str, Any], str | None]:
    """The settings with one value changed plus a warning, or ValueError saying why not.

    `value` is text (from `/set`) or an already typed value (from a config file
    or a saved session). `elsewhere` names the settings other models take: one
    of those does not apply here, any other name is likely misspelt.
    """
    setting = find_setting(spec, name)
    if setting is None:
        own = [shown_name(s) for s in all_settings(spec)]
        known = {*elsewhere, *(setting.name for setting in GENERATION_SETTINGS)}  # top_k: known, if not here
        hint = None if name in known else nearest(name, own)
        if hint is not None:
            raise ValueError(f"{spec.name} has no setting {name!r}; did you mean {hint}?")
        raise ValueError(f"{name!r} does not apply to {spec.name} ({spec.family}); it takes: {', '.join(own)}")
    parsed = setting.parse(value) if isinstance(value, str) else setting.check(value)
    updated = {**current, name: parsed}
    if setting.prefix and parsed is None:
        del updated[name]  # `template.NAME none` unsets the variable: the template's own default applies
    validate = spec.validate_settings
    if validate is None:
        return updated, None
    warning = validate(updated)
    if warning is not None and warning == _warning(validate, current):
        warning = None  # not this change's doing: said when it was
    return updated, warning


def _warning(validate: Callable[[dict], str | None], values: dict[str, Any]) -> str | None:
    try:
        return validate(values)
    except ValueError:
        return None


def room_problem(spec: ModelSpec, model: LoadedModel, values: dict[str, Any]) -> str | None:
    """Why `values` leave a causal model no room for its input, or None.

    A decoder-only model's prompt and reply share its positions, so a reply
    budget of all of them would make every line fail.
    """
    limit, wanted = model.max_input_tokens, values.get("max_new_tokens")
    if spec.family != CAUSAL or limit is None or not isinstance(wanted, int) or wanted < limit:
        return None
    return (
        f"max_new_tokens {wanted} leaves no room for input in {spec.name}'s {limit} positions "
        f"(the prompt and the reply share them): at most {limit - 1}"
    )


def shown_name(setting: Setting) -> str:
    """A setting's name as the user types it: a prefix setting as `template.NAME`."""
    return setting.name + "NAME" if setting.prefix else setting.name


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)
