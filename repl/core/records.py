"""The records that travel through the hooks: plugins build and return them, modelrepl reads them.

The core never looks inside a plugin's own objects (models, tokenizers,
tensors) except through these. Plugins import them from `repl.api`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEQ2SEQ = "seq2seq"
CAUSAL = "causal"
MASKED = "masked"

# Why a reply ended: `Reply.stop_reason` and the stats of every turn hold one of these.
STOP_REASONS = {
    "eos": "the model generated its end-of-sequence token",
    "max_new_tokens": "the reply reached the max_new_tokens setting",
    "cancelled": "the user pressed Ctrl-C (modelrepl sets this itself)",
    "error": "the turn failed; its error says why (modelrepl sets this itself)",
    "done": "the model generates no tokens (new_ids is empty): it answered in one pass (fill-mask, embeddings)",
}


class ModelError(Exception):
    """A failure the user can act on: shown as one line, never as a traceback."""


@dataclass(frozen=True)
class Setting:
    """One per-model setting that `/set` and `--set` accept."""

    name: str
    kind: type[Any]
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    # The name ends in "." and stands for every name after it: `template.` takes template.NAME for any NAME.
    prefix: bool = False

    @property
    def takes_text(self) -> bool:
        """Free text (a system prompt, a template, a template's variable), not a word from a list: `/set` takes
        the rest of the line."""
        return self.kind in (str, object) and not self.choices

    def parse(self, text: str) -> Any:
        """Turn what the user typed into a value, or raise ValueError saying what is allowed."""
        text = text.strip()
        if self.kind is object:
            return _any_value(text)
        if self.optional and text.lower() in ("none", "off", ""):
            return None
        if self.kind is bool:
            lowered = text.lower()
            if lowered in ("on", "true", "yes", "1"):
                return True
            if lowered in ("off", "false", "no", "0"):
                return False
            raise ValueError(f"{self.name} takes on or off, not {text!r}")
        if self.kind is str:
            if self.choices and text not in self.choices:
                raise ValueError(f"{self.name} takes one of {', '.join(self.choices)}, not {text!r}")
            return text
        try:
            value = self.kind(text)
        except ValueError:
            raise ValueError(f"{self.name} takes {self.describe_range()}, not {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Check a value of the right type against the allowed range."""
        if value is None and self.optional:
            return None
        if self.kind is object:
            return _checked_any_value(self.name, value)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValueError(f"{self.name} takes {self.describe_range()}, not {value!r}")
        if self.kind in (int, float) and not self._in_range(value):
            raise ValueError(f"{self.name} takes {self.describe_range()}, not {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} takes one of {', '.join(self.choices)}, not {value!r}")
        return value

    def _in_range(self, number: float) -> bool:
        return (
            number == number  # NaN is in no range
            and (self.minimum is None or number >= self.minimum)
            and (self.maximum is None or number <= self.maximum)
        )

    def describe_range(self) -> str:
        if self.kind is bool:
            return "on or off"
        if self.kind is object:
            return "on, off, a number, text or JSON (none: unset)"
        if self.choices:
            return "one of " + ", ".join(self.choices) + (" (or none)" if self.optional else "")
        if self.kind is str:
            return "text" + (" (or none)" if self.optional else "")
        noun = "a whole number" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            noun += f" from {_bound(self.minimum)} to {_bound(self.maximum)}"
        elif self.minimum is not None:
            noun += f" of at least {_bound(self.minimum)}"
        elif self.maximum is not None:
            noun += f" of at most {_bound(self.maximum)}"
        return noun + (" (or none)" if self.optional else "")


def _any_value(text: str) -> Any:
    """A value of any type as typed: on/off and true/false, a number, JSON (a list, an object), else the text."""
    import json

    lowered = text.lower()
    if lowered in ("on", "true", "yes"):
        return True
    if lowered in ("off", "false", "no"):
        return False
    if lowered in ("none", "null", ""):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _checked_any_value(name: str, value: Any) -> Any:
    """A value from a config file or a saved session: anything JSON can hold."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError(f"{name} takes on, off, a number, text or JSON, not {value!r}") from None
    return value


def _bound(value: float) -> str:
    """A range limit as the user would type it: `:g` alone shows 2**32 - 1 as 4.29497e+09."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: its name, family and default checkpoint."""

    name: str
    family: str
    checkpoint: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    settings: tuple[Setting, ...] = ()
    validate_settings: Callable[[dict], str | None] | None = None
    plugin: str = ""
    # The model answers in markdown (a chat model does): a terminal renders its replies unless `render` is raw.
    markdown: bool = False

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def default_settings(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings}


# The quantizations `--quantize`, NAME@MODE and the config's `quantize` take (applied by `repl.hf.quantization`).
QUANTIZATIONS = ("int8", "bnb8", "bnb4")


@dataclass(frozen=True)
class LoadOptions:
    """How the user asked models to be loaded (command-line flags and config)."""

    device: str = "auto"
    dtype: str = "auto"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    # With device "auto": (device, size) limits such as ("0", "20GiB"), ("cpu", "30GiB"), for accelerate's
    # max_memory, and the directory for layers that fit nowhere else (None: refuse to offload to disk).
    max_memory: tuple[tuple[str, str], ...] = ()
    offload_dir: str | None = None
    # None for the weights as loaded; "int8" (CPU), "bnb8" or "bnb4" (CUDA): see repl.hf.quantization.
    quantize: str | None = None
    # Load only what is already on this machine, never download (the warm start's background load).
    local_files_only: bool = False
    # Set by modelrepl when a load replaces a loaded model: `load_model` calls it once the checkpoint
    # has passed every check that needs no weights (config, family, weights' format, tokenizer), just
    # before loading the weights, and modelrepl frees the old model then. A plugin that never calls it
    # loads beside the old model, which goes once the new one is ready; either way a refused load
    # leaves the old model answering.
    make_room: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class LoadedModel:
    """A model ready to answer; `handle` and `tokenizer` belong to the plugin."""

    spec: ModelSpec
    checkpoint: str
    handle: Any = None
    tokenizer: Any = None
    device: str = "cpu"
    # Where the layers went when a model is spread over several devices: "cuda:0 14 layers, cpu 4 layers".
    placement: str | None = None
    dtype: str = "-"
    parameters: int = 0
    memory_bytes: int = 0
    # How the weights were quantized after loading ("int8 linear layers"), None when they were not.
    quantization: str | None = None
    max_input_tokens: int | None = None
    # The variables its chat template reads (`repl.hf.template_variables`), for `template.NAME`, `think off`
    # and `reasoning_effort`; None where no template is known here (a server applies its own).
    template_variables: frozenset[str] | None = None
    decoder_start: Token | None = None
    # The token generation must begin with (BART's <s>, mBART's target language); it follows decoder_start.
    forced_first_token: Token | None = None
    # The plugin's own per-model memo (token ids of earlier turns, say): it goes when the model is unloaded.
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Token:
    id: int
    piece: str
    special: bool = False
    added: bool = False


@dataclass
class Encoding:
    """What `tokenize` made of a line: exactly the ids the model will see.

    `context` carries whatever `run` and `decode` need from this step (tensors,
    mask positions, prompt length), the way a transformers pipeline carries
    preprocess output through to postprocess.
    """

    text: str
    tokens: list[Token]
    notices: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    # Why `tokens` is empty for a line the model takes: its tokenizer runs elsewhere (a server) and shows nothing.
    unseen: str | None = None

    @property
    def input_ids(self) -> list[int]:
        return [token.id for token in self.tokens]


@dataclass(frozen=True)
class Alternative:
    """One token a model could have produced at a step, with its log-probability (natural log).

    ``piece`` here and in `TokenProbs` and `ScoredToken` is the token as text,
    what it adds after another token (" the", not "Ġthe"; `hf.token_texts`),
    or its tokenizer piece where it is no text alone (part of a character).
    """

    id: int
    piece: str
    logprob: float


@dataclass
class TokenProbs:
    """How sure the model was of one token of a reply.

    ``logprob`` is the token's log-probability under the model's raw
    distribution; ``processed_logprob`` under the distribution it was actually
    drawn from (after repetition penalty, temperature, top-k and top-p; equal to
    ``logprob`` when nothing reshaped it). ``top`` holds the raw distribution's
    most likely tokens, most likely first, ``processed_top`` the drawn-from
    distribution's (only tokens it could have drawn). ``entropy`` (nats) is set
    where the whole distribution is the answer: a masked LM's mask.
    """

    id: int
    piece: str
    logprob: float
    processed_logprob: float | None = None
    top: list[Alternative] = field(default_factory=list)
    processed_top: list[Alternative] = field(default_factory=list)
    entropy: float | None = None


@dataclass(frozen=True)
class ScoredToken:
    """One token of a scored text; ``logprob`` is None for a token with nothing before it to predict it from."""

    id: int
    piece: str
    logprob: float | None


@dataclass
class Score:
    """What the `score` hook made of a text: the log-likelihood of each of its tokens.

    ``bos_prepended`` says whether the tokenizer put a start token before the
    text (None where that does not apply); ``method`` names how the tokens were
    scored ("causal", "seq2seq target", "pseudo-log-likelihood").
    """

    tokens: list[ScoredToken]
    method: str
    bos_prepended: bool | None = None
    notices: list[str] = field(default_factory=list)


@dataclass
class Reply:
    """What `decode` made of the model's output.

    `display` is what a terminal shows when plain `text` is not enough (BERT's
    candidate lists); `--json` prints `text` as "output" and `data` beside it.
    """

    text: str
    new_ids: list[int] = field(default_factory=list)
    raw_ids: list[int] = field(default_factory=list)
    raw_text: str = ""
    display: str | None = None
    stop_reason: str = "eos"
    data: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    # Token counts from elsewhere (a server's `usage`) for a model whose ids stay out of sight;
    # None: counted from the encoding's tokens and `new_ids`.
    input_tokens: int | None = None
    new_tokens: int | None = None
    # One per generated token when the `probs` setting is on (one per mask for a masked LM).
    logprobs: list[TokenProbs] | None = None
    # How many of the new tokens came before the answer: a reasoning model's thinking (0 for one that
    # answered at once). modelrepl times the first answer token from it (`Stats.ttfa`).
    reasoning_tokens: int = 0


class RunControl:
    """Handed to `run`: where streamed text goes and whether the user cancelled.

    The cancel flag is an Event rather than an exception because Ctrl-C must stop
    generation between two decoding steps, leaving what was generated so far.
    """

    def __init__(
        self,
        stream: Callable[[str], None] | None = None,
        clock: Callable[[], float] | None = None,
        aside: Callable[[str], None] | None = None,
    ):
        self._stream = stream
        self._aside = aside
        self._clock = clock or time.perf_counter
        self.cancel_event = threading.Event()
        self.started = self._clock()
        self.first_token_at: float | None = None
        self.first_answer_at: float | None = None  # the first text of the reply proper, after any reasoning
        self.step_times: list[float] = []  # when each step ended, to time the first answer token afterwards
        self.steps = 0
        self.streamed: list[str] = []
        self.aside_streamed: list[str] = []

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def cancel(self) -> None:
        self.cancel_event.set()

    def step(self) -> bool:
        """Record one decoding step; returns True when generation must stop."""
        now = self._clock()
        if self.first_token_at is None:
            self.first_token_at = now
        self.step_times.append(now)
        self.steps += 1
        return self.cancel_event.is_set()

    def emit(self, text: str) -> None:
        """Stream a piece of the reply; only whole characters may be passed."""
        if self.first_token_at is None:
            self.first_token_at = self._clock()
        if text and self.first_answer_at is None:
            self.first_answer_at = self._clock()
        if text:
            self.streamed.append(text)
            if self._stream is not None:
                self._stream(text)

    def emit_aside(self, text: str) -> None:
        """Stream text shown apart from the reply and not part of it: a model's reasoning before its answer.

        Where nothing shows asides (a conformance check, a plugin's own caller), the text is dropped.
        """
        if self.first_token_at is None:
            self.first_token_at = self._clock()
        if text and self._aside is not None:
            self.aside_streamed.append(text)
            self._aside(text)
