"""Generating with transformers so that Ctrl-C stops it between steps and text streams whole characters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from repl.core.records import (
    LoadedModel,
    ModelError,
    RunControl,
)
from repl.core.settings import GENERATION_KEYS
from repl.hf import placement
from repl.hf.loading import flattened
from repl.hf.reasoning import ReplyReader
from repl.hf.tokens import decode_text
from repl.hf.validation import check_logits_processors


class _CancelCriteria(StoppingCriteria):
    """Reports each decoding step to the control, and stops when the user cancelled."""

    def __init__(self, control: RunControl):
        self.control = control

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        stop = self.control.step()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


# A reply's text so far and whether it is complete -> (aside, reply).
Split = Callable[[str, bool], tuple[str, str]]


def _no_aside(text: str, final: bool) -> tuple[str, str]:
    return "", text


class WholeCharacterStreamer(BaseStreamer):
    """Streams the reply as text, holding back a partial UTF-8 character.

    The whole reply is decoded again at every step and only the new suffix is
    emitted: decoding pieces one by one loses SentencePiece spaces, and a byte-
    level token may end in the middle of a character (decoded as U+FFFD). Each
    step costs time in proportion to the reply so far; it is the fallback for
    tokenizers without a Rust backend.

    A ``split`` function divides the text into an aside (a model's reasoning,
    passed to ``control.emit_aside``) and the reply; each part must only grow
    as the text grows.
    """

    def __init__(self, tokenizer: Any, control: RunControl, split: Split | None = None):
        self.tokenizer = tokenizer
        self.control = control
        self.split = split or _no_aside
        self.ids: list[int] = []
        self.shown = 0
        self.shown_aside = 0
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt or the decoder start
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = decode_text(self.tokenizer, self.ids)
        if not text.endswith("\ufffd"):
            self._show(text, final=False)

    def end(self) -> None:
        self._show(decode_text(self.tokenizer, self.ids), final=True)

    def _show(self, text: str, final: bool) -> None:
        aside, reply = self.split(text, final)
        self.control.emit_aside(aside[self.shown_aside :])
        self.shown_aside = len(aside)
        self.control.emit(reply[self.shown :])
        self.shown = len(reply)


class IncrementalStreamer(WholeCharacterStreamer):
    """Streams with the tokenizers library's own incremental decoder: constant cost per step.

    `DecodeStream` (what `transformers serve` streams with) decodes only the
    last few ids against the text already shown, and returns nothing while a
    character is incomplete. At the end the whole reply is decoded once, and
    whatever the stream has not shown yet (a byte that never became a
    character, decoded as U+FFFD) is emitted, so the streamed text equals the
    final reply.
    """

    def __init__(self, tokenizer: Any, control: RunControl, split: Split | None = None):
        super().__init__(tokenizer, control, split)
        self.backend = tokenizer.backend_tokenizer
        self.stream = DecodeStream(skip_special_tokens=True)
        self.text = ""

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        self.ids.extend(ids)
        chunk = self.stream.step(self.backend, ids)
        if chunk:
            self.text += chunk
            self._show(self.text, final=False)


class ReadingStreamer(BaseStreamer):
    """Streams a reply through a `ReplyReader`: its thinking to `control.emit_aside`, its answer to `control.emit`.

    The reader decodes the ids itself (transformers' response parser), so the
    streamed thinking and answer are exactly what reading the whole reply gives.
    """

    def __init__(self, reader: ReplyReader, control: RunControl):
        self.reader = reader
        self.control = control
        self.shown = {"thinking": 0, "answer": 0}
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.reader.feed(value.reshape(-1).tolist())
        self._show()

    def end(self) -> None:
        self.reader.finish()
        self._show()

    def _show(self) -> None:
        thinking, answer = self.reader.thinking, self.reader.answer
        self.control.emit_aside(thinking[self.shown["thinking"] :])
        self.control.emit(answer[self.shown["answer"] :])
        self.shown = {"thinking": len(thinking), "answer": len(answer)}


def streamer_for(tokenizer: Any, control: RunControl, split: Split | None = None) -> WholeCharacterStreamer:
    """The incremental streamer where the tokenizer has a Rust backend, else the whole-reply one."""
    if isinstance(getattr(tokenizer, "backend_tokenizer", None), Tokenizer):
        return IncrementalStreamer(tokenizer, control, split)
    return WholeCharacterStreamer(tokenizer, control, split)


def generation_config(model: Any, settings: dict[str, Any], **overrides: Any) -> GenerationConfig:
    """The model's own generation config with the user's settings on top."""
    config = GenerationConfig.from_dict(
        {**model.generation_config.to_dict(), **{k: settings[k] for k in GENERATION_KEYS if k in settings}, **overrides}
    )
    return config


def generate(
    model: LoadedModel,
    inputs: dict[str, torch.Tensor],
    settings: dict[str, Any],
    control: RunControl,
    split: Split | None = None,
    reader: ReplyReader | None = None,
    processors: list[Any] | None = None,
    **overrides: Any,
) -> Any:
    """Run `generate` so that Ctrl-C stops it between steps and text streams as it comes.

    ``split`` divides the streamed text into an aside and the reply (see `_WholeCharacterStreamer`);
    a ``reader`` (`ReplyReader`) streams a reasoning model's thinking and answer apart instead.
    ``processors`` are logits processors added to the ones the settings make (`ThinkingBudget`).
    Returns generate's output record: `sequences`, and with the `probs` setting
    on, the raw `logits` and processed `scores` of every step for `token_probs`.
    Beam search keeps no per-token scores of the chosen sequence, so it records none.
    """
    config = generation_config(model.handle, settings, return_dict_in_generate=True, **overrides)
    record = bool(settings.get("probs")) and config.num_beams == 1
    config.output_scores = config.output_logits = record
    try:
        check_logits_processors(config)
    except ValueError as exc:
        raise ModelError(f"{model.spec.name} cannot generate with these settings: {flattened(exc)}") from None
    if settings.get("seed") is not None:
        transformers.set_seed(settings["seed"])
    streamer = None
    if control.streaming and config.num_beams == 1:  # generate() refuses streamers with beam search
        streamer = (
            ReadingStreamer(reader, control) if reader is not None else streamer_for(model.tokenizer, control, split)
        )
    try:
        with torch.inference_mode():
            return model.handle.generate(
                **{k: v.to(placement.input_device(model.handle)) for k, v in inputs.items()},
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([_CancelCriteria(control)]),
                logits_processor=LogitsProcessorList(processors or []),
                streamer=streamer,
            )
    except (ValueError, RuntimeError, MemoryError) as exc:
        # The model's own failure (a setting, the memory): the user's to act on, not the plugin's fault.
        described = f"{type(exc).__name__}: {flattened(exc)}" if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{model.spec.name}'s generate failed: {described}") from exc


def stop_reason(new_ids: list[int], eos_ids: set[int], max_new_tokens: int) -> str:
    """Why generation ended; the core turns it into "cancelled" when the user stopped it."""
    if new_ids and new_ids[-1] in eos_ids:
        return "eos"
    if len(new_ids) >= max_new_tokens:
        return "max_new_tokens"
    return "eos"


def eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, (list, tuple)) else {eos}
