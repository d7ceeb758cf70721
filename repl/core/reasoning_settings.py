"""What a user sets for models that think before they answer, shared by every plugin that runs one.

`think` decides what happens to the reasoning (shown, hidden behind one live
line, or switched off in the template), `max_thinking_tokens` caps it,
`reasoning_effort` is gpt-oss's knob, and `template.NAME` sets any variable the
checkpoint's chat template reads. A plugin puts `REASONING_SETTINGS` in its
settings and renders its template with `template_arguments`: the same check
refuses `/set think off` at the door and a config value that no longer fits
after `/load`, in one line that says what the template does accept. Nothing
here imports torch or transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from repl.core.records import LoadedModel, ModelError, Setting

if TYPE_CHECKING:
    from repl.core.results import Stats, Turn

THINK = Setting(
    "think",
    str,
    "show",
    "a reasoning model's thinking: show it (dimmed, labelled), hide it (one live line; /reasoning shows it "
    "after), or off (the chat template is told not to think)",
    choices=("show", "hide", "off"),
)
MAX_THINKING_TOKENS = Setting(
    "max_thinking_tokens",
    int,
    0,
    "after this many tokens of thinking, the thinking is closed and the model answers (0: no limit)",
    minimum=0,
    maximum=10_000_000,
)
REASONING_EFFORT = Setting(
    "reasoning_effort",
    str,
    None,
    "how hard the model thinks, where its chat template reads reasoning_effort (gpt-oss) or the server takes it "
    "(none: the default)",
    choices=("low", "medium", "high"),
    optional=True,
)
TEMPLATE = Setting(
    "template.",
    object,
    None,
    "a variable the chat template reads, set as /set template.NAME VALUE (/show lists them with their values)",
    prefix=True,
)
REASONING_SETTINGS = (THINK, MAX_THINKING_TOKENS, REASONING_EFFORT, TEMPLATE)

# The variables chat templates read to switch thinking off, in the order they are tried: Qwen3, SmolLM3 and
# most others read `enable_thinking`; some read `thinking`.
THINKING_SWITCHES = ("enable_thinking", "thinking")


def template_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The `template.NAME` values set, by NAME (a value of None is unset)."""
    return {
        key.removeprefix(TEMPLATE.name): value
        for key, value in settings.items()
        if key.startswith(TEMPLATE.name) and value is not None
    }


def template_arguments(settings: Mapping[str, Any], model: LoadedModel) -> dict[str, Any]:
    """The variables to render the chat template with, from `template.NAME`, `think off` and `reasoning_effort`.

    Checked against the variables the template reads (`model.template_variables`;
    where they are unknown, as on a server, everything is passed on): a variable
    it does not read is a one-line ModelError saying what it does read.
    """
    reads = model.template_variables
    where = f"the chat template of {model.checkpoint!r}"
    variables: dict[str, Any] = {}
    for name, value in template_settings(settings).items():
        if reads is not None and name not in reads:
            raise ModelError(f"template.{name}: {where} reads no variable {name!r}; {_reads(reads)}")
        variables[name] = value
    effort = settings.get(REASONING_EFFORT.name)
    if effort is not None:
        if reads is not None and REASONING_EFFORT.name not in reads:
            raise ModelError(f"reasoning_effort: {where} reads no reasoning_effort; {_reads(reads)}")
        variables[REASONING_EFFORT.name] = effort
    if settings.get(THINK.name) == "off":
        switches = [name for name in THINKING_SWITCHES if reads is None or name in reads]
        if not switches:
            raise ModelError(f"think off: {where} has no switch to turn thinking off; {_what_instead(reads)}")
        variables.update(dict.fromkeys(switches[:1] if reads is not None else switches, False))
    return variables


def _reads(reads: frozenset[str]) -> str:
    return f"it reads: {', '.join(sorted(reads))}" if reads else "it reads no variables of its own"


def _what_instead(reads: frozenset[str] | None) -> str:
    """What a template without a thinking switch does take, for a user who asked for no thinking."""
    if reads and REASONING_EFFORT.name in reads:
        return "it takes reasoning_effort instead: /set reasoning_effort low"
    return f"{_reads(reads or frozenset())}; /set max_thinking_tokens N caps the thinking instead"


# A model's thinking is set apart by these lines as well as by dimming, so it shows apart without colour too.
THINKING_OPENS = "thinking…"
THINKING_CLOSES = "…done thinking"


def thinking_summary(stats: Stats) -> str:
    """How long a reply thought: `312 tokens, 8.4 s` (the time is until the answer began)."""
    until = stats.ttfa if stats.ttfa is not None else stats.seconds
    return f"{stats.reasoning_tokens} tokens, {until:.1f} s"


def hidden_mark(turn: Turn) -> str:
    """The line that stands for a reply's hidden reasoning (`think hide`)."""
    return f"(thought for {thinking_summary(turn.stats)}; /reasoning shows it)"
