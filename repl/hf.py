"""Infrastructure for plugins built on transformers: loading, streaming, cancelling.

This module imports torch and transformers, so plugins import it inside their
hooks, never at module level: start-up stays instant.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer
from transformers.models.auto import modeling_auto
from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

from repl import placement, quantize
from repl.api import (
    CAUSAL,
    MASKED,
    SEQ2SEQ,
    Alternative,
    LoadedModel,
    LoadOptions,
    ModelError,
    ModelSpec,
    RunControl,
    Score,
    ScoredToken,
    Token,
    TokenProbs,
)
from repl.settings import GENERATION_KEYS, check_logits_processors

FAMILY_NAMES = {
    SEQ2SEQ: "seq2seq (encoder-decoder)",
    CAUSAL: "causal LM (decoder-only)",
    MASKED: "masked LM (encoder-only)",
}
_HEAD_MAPPINGS = {
    SEQ2SEQ: modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    CAUSAL: modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MASKED: modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES,
}
_AUTO_CLASSES = {
    SEQ2SEQ: transformers.AutoModelForSeq2SeqLM,
    CAUSAL: transformers.AutoModelForCausalLM,
    MASKED: transformers.AutoModelForMaskedLM,
}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Masked copies of a text scored in one forward pass: bounds memory for long texts.
MASKED_BATCH = 32
# How long a first request to the hub may take before modelrepl counts it as out of reach.
HUB_TIMEOUT_SECONDS = 5
_ARCHITECTURE_FAMILIES = (
    ("ForMaskedLM", MASKED),
    ("ForConditionalGeneration", SEQ2SEQ),
    ("ForCausalLM", CAUSAL),
    ("LMHeadModel", CAUSAL),
)


# -- loading --------------------------------------------------------------------


def resolve_device(requested: str) -> str:
    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("--device cuda was asked for, but torch sees no CUDA device")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelError("--device mps was asked for, but torch sees no MPS device")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def family_of(config: Any) -> str | None:
    """The family a checkpoint was trained for, from its architectures, else its model type."""
    for architecture in getattr(config, "architectures", None) or ():
        for suffix, family in _ARCHITECTURE_FAMILIES:
            if architecture.endswith(suffix):
                return family
    model_type = getattr(config, "model_type", None)
    for family in (SEQ2SEQ, MASKED, CAUSAL):
        if model_type in _HEAD_MAPPINGS[family]:
            return family
    return None


# Config attributes that hold the number of positions, under the names architectures give it, most common first.
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length", "max_seq_len")
# RoBERTa-style embeddings number positions from pad_token_id + 1, so that many fewer are usable.
_POSITIONS_AFTER_PADDING = {
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "roberta-prelayernorm",
    "data2vec-text",
}


def max_positions(config: Any, tokenizer: Any) -> int | None:
    """The most tokens a model takes, from its config whatever the key's name, or its tokenizer; None if unknown.

    A tokenizer without a limit stores a huge sentinel as ``model_max_length``,
    which is no limit. Where both give one, the smaller holds.
    """
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = []
    for key in _POSITION_KEYS:
        value = getattr(text_config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            if getattr(text_config, "model_type", None) in _POSITIONS_AFTER_PADDING:
                value -= (getattr(text_config, "pad_token_id", None) or 0) + 1
            limits.append(value)
            break
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < VERY_LARGE_INTEGER:
        limits.append(tokenizer_limit)
    return min(limits) if limits and min(limits) > 0 else None


def _is_local(checkpoint: str) -> bool:
    return os.path.isdir(os.path.expanduser(checkpoint)) or checkpoint.startswith((".", "/", "~"))


def _load_config(spec: ModelSpec, checkpoint: str, options: LoadOptions, local_files_only: bool) -> Any:
    if _is_local(checkpoint):
        directory = Path(os.path.expanduser(checkpoint))  # Path.expanduser raises for an unknown ~user
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{checkpoint!r} is a file; a checkpoint is a directory with config.json and weights")
        if not directory.is_dir():
            raise ModelError(f"checkpoint directory {checkpoint!r} does not exist")
        if not (directory / "config.json").is_file():
            raise ModelError(f"{checkpoint!r} is not a checkpoint directory: it has no config.json")
    try:
        return AutoConfig.from_pretrained(
            checkpoint, trust_remote_code=options.trust_remote_code, local_files_only=local_files_only
        )
    except (OSError, ValueError) as exc:
        _refuse_uncached(spec, checkpoint, exc, local_files_only)
        if not options.trust_remote_code and "trust_remote_code" in str(exc):
            raise ModelError(
                f"checkpoint {checkpoint!r} comes with its own Python code, which would run on this machine; "
                "pass --trust-remote-code if you trust its source"
            ) from None
        raise ModelError(_unreachable_message(spec, checkpoint, exc)) from None


def _refuse_uncached(spec: ModelSpec, checkpoint: str, exc: Exception, local_files_only: bool) -> None:
    if local_files_only and isinstance(exc, OSError) and not _is_local(checkpoint):
        raise _NotAllCached(_unreachable_message(spec, checkpoint, exc)) from None


def _unreachable_message(spec: ModelSpec, checkpoint: str, exc: Exception) -> str:
    if _is_local(checkpoint):
        return f"cannot read checkpoint {checkpoint!r}: {' '.join(str(exc).split())[:200]}"
    from huggingface_hub import constants

    where = (
        "the hub is off (HF_HUB_OFFLINE is set)"
        if constants.HF_HUB_OFFLINE
        else "the hub could not be reached or has no such model"
    )
    return (
        f"checkpoint {checkpoint!r} is not in the local Hugging Face cache and {where}; "
        f"download it once with network access, or load a local directory: /load {spec.name} /path/to/checkpoint"
    )


def _weights_are_pickle_only(checkpoint: str) -> bool:
    directory = Path(os.path.expanduser(checkpoint))
    if not directory.is_dir():
        return False
    names = [p.name for p in directory.iterdir()]
    has_safetensors = any(n.endswith(".safetensors") or n.endswith(".safetensors.index.json") for n in names)
    has_pickle = any(n.endswith((".bin", ".pt", ".pth", ".ckpt")) or n.endswith(".bin.index.json") for n in names)
    return has_pickle and not has_safetensors


def _pickle_refusal(checkpoint: str) -> str:
    return (
        f"checkpoint {checkpoint!r} has only pickle weights (.bin), which can run code when loaded; "
        "pass --allow-pickle if you trust its source"
    )


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers while it loads: no LOAD REPORT table, no "Loading weights" bars.

    What matters reaches the user as modelrepl's own message (a refusal names
    the missing weights), and the REPL shows one progress line of its own.
    Both switches are transformers' process-wide ones, so they are restored after.
    """
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


@quiet_loading()
def load(
    spec: ModelSpec,
    checkpoint: str,
    options: LoadOptions,
    *,
    auto_class: Any = None,
    accepts: Callable[[Any], bool] | None = None,
    needs_head: bool = True,
) -> LoadedModel:
    """Load a checkpoint of `spec.family` with the matching Auto class, safely, and quietly (`quiet_loading`).

    Refuses a checkpoint of another family, pickle-only weights (unless
    allowed) and checkpoints that lack the task head's weights: transformers
    would only log those as MISSING and answer from random weights. Every
    check that needs no weights (config, family, weights' format, tokenizer)
    comes before ``options.make_room``, so a model being replaced is freed
    only for a checkpoint that got that far.

    A plugin with a family of its own passes both the ``auto_class`` that
    loads it (``transformers.AutoModelForSequenceClassification``) and
    ``accepts(config)``, which tells whether a checkpoint's config is of that family.
    A family that wants the bare model (embeddings from an encoder) passes
    ``needs_head=False`` with ``auto_class=transformers.AutoModel``: only the
    check for a task head is left out.

    A directory is loaded as it is. A hub id already in the Hugging Face cache
    loads from the cache alone, at once, network or not; an uncached one is
    first looked up on the hub with a short timeout, so that no network means
    one clear message within seconds, not huggingface_hub retrying each file.
    """
    from huggingface_hub import constants

    arguments = (spec, checkpoint, options, auto_class, accepts, needs_head)
    if _is_local(checkpoint) or constants.HF_HUB_OFFLINE or options.local_files_only:
        return _load_checkpoint(*arguments, local_files_only=options.local_files_only)
    if _in_hub_cache(checkpoint):
        try:
            return _load_checkpoint(*arguments, local_files_only=True)
        except _NotAllCached:
            pass  # a download that was interrupted: the hub has the rest
    _reach_hub(spec, checkpoint)
    return _load_checkpoint(*arguments, local_files_only=False)


class _NotAllCached(ModelError):
    """A file of a checkpoint found in the hub cache is not there."""


def _in_hub_cache(checkpoint: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(checkpoint, "config.json"), str)
    except ValueError:  # not a valid repository id
        return False


def _reach_hub(spec: ModelSpec, checkpoint: str) -> None:
    """One quick request for the checkpoint's config, without huggingface_hub's retries."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        get_hf_file_metadata(hf_hub_url(checkpoint, "config.json"), timeout=HUB_TIMEOUT_SECONDS)
    except Exception as exc:  # no network, no such repository, an invalid id: it cannot be fetched
        raise ModelError(_unreachable_message(spec, checkpoint, exc)) from None


def _load_checkpoint(
    spec: ModelSpec,
    checkpoint: str,
    options: LoadOptions,
    auto_class: Any,
    accepts: Callable[[Any], bool] | None,
    needs_head: bool,
    local_files_only: bool,
) -> LoadedModel:
    """Load the checkpoint from wherever `load` found it; `local_files_only` keeps to the cache."""
    config = _load_config(spec, checkpoint, options, local_files_only)
    found = family_of(config)
    if not (accepts(config) if accepts is not None else found == spec.family):
        kind = FAMILY_NAMES.get(found, "model of a family modelrepl does not know")
        raise ModelError(
            f"checkpoint {checkpoint!r} is a {config.model_type} {kind}, "
            f"but {spec.name} needs a {FAMILY_NAMES.get(spec.family, spec.family)} checkpoint"
        )
    if not options.allow_pickle and _weights_are_pickle_only(checkpoint):
        raise ModelError(_pickle_refusal(checkpoint))
    tokenizer = _load_tokenizer(checkpoint, options, local_files_only)
    dtype = "auto" if options.dtype == "auto" else _DTYPES[options.dtype]
    model_class = auto_class or _AUTO_CLASSES[spec.family]
    quantization = quantize.loading_arguments(options.quantize, resolve_device(options.device))
    if options.make_room is not None:
        options.make_room()
    try:
        if placement.needs_plan(options):
            where = placement.plan(model_class, config, dtype, options, checkpoint)
        else:
            where = {"device_map": resolve_device(options.device)}
        model, info = model_class.from_pretrained(
            checkpoint,
            config=config,
            dtype=dtype,
            use_safetensors=None if options.allow_pickle else True,
            trust_remote_code=options.trust_remote_code,
            output_loading_info=True,
            **where,
            local_files_only=local_files_only,
            **quantization,
        )
    except torch.OutOfMemoryError:
        raise placement.does_not_fit(model_class, config, dtype, options, checkpoint) from None
    except (OSError, ValueError) as exc:
        _refuse_uncached(spec, checkpoint, exc, local_files_only)
        if not options.allow_pickle and not _is_local(checkpoint) and "safetensors" in str(exc).lower():
            raise ModelError(_pickle_refusal(checkpoint)) from None
        raise ModelError(_unreachable_message(spec, checkpoint, exc)) from None
    except (AttributeError, KeyError, TypeError, RuntimeError, ImportError) as exc:
        # An odd or inconsistent config (weights of another shape, a field the model class lacks).
        raise ModelError(
            f"cannot build a {config.model_type} model from {checkpoint!r}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        ) from exc
    if needs_head:
        _refuse_headless(spec, checkpoint, config, info)
    model.eval()
    parameters = model.num_parameters()
    quantize.after_loading(model, options.quantize)
    device, layers = placement.placement(model)
    return LoadedModel(
        spec=spec,
        checkpoint=checkpoint,
        handle=model,
        tokenizer=tokenizer,
        device=device,
        placement=layers,
        dtype=str(model.dtype).removeprefix("torch."),
        parameters=parameters,
        memory_bytes=quantize.weight_bytes(model),
        quantization=quantize.DESCRIPTIONS.get(options.quantize or ""),
    )


def _load_tokenizer(checkpoint: str, options: LoadOptions, local_files_only: bool) -> Any:
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            checkpoint, trust_remote_code=options.trust_remote_code, local_files_only=local_files_only
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"checkpoint {checkpoint!r} has no usable tokenizer: {_flattened(exc)[:200]}") from None
    if len(tokenizer) - len(set(tokenizer.all_special_ids)) <= 1:
        # transformers 5 builds an empty tokenizer when the vocabulary files are missing, instead of
        # failing: special tokens only, plus SentencePiece's word-boundary piece.
        raise ModelError(f"checkpoint {checkpoint!r} has no usable tokenizer: its vocabulary files are missing")
    return tokenizer


def _refuse_headless(spec: ModelSpec, checkpoint: str, config: Any, info: dict) -> None:
    """Refuse a checkpoint saved without the task head.

    Missing weights show up in the loading info, except where the head is tied
    to the embeddings (GPT-2, mT5): transformers then ties it silently, so a
    checkpoint saved from the bare base class is recognised by its architecture.
    """
    missing = sorted(key for key in info.get("missing_keys", ()) if key)
    base_class = modeling_auto.MODEL_MAPPING_NAMES.get(config.model_type)
    architectures = getattr(config, "architectures", None) or []
    saved_bare = bool(architectures) and all(a == base_class or a.endswith("EncoderModel") for a in architectures)
    if not missing and not saved_bare:
        return
    detail = f"{len(missing)} weights missing: " + ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    if not missing:
        detail = f"it was saved as {', '.join(architectures)}"
    raise ModelError(
        f"checkpoint {checkpoint!r} has no {FAMILY_NAMES.get(spec.family, spec.family)} head ({detail}); "
        "it is a base model, and would answer from random weights"
    )


# -- tokens ---------------------------------------------------------------------


def describe(tokenizer: Any, ids: list[int], added: list[bool]) -> list[Token]:
    special_ids = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    return [Token(i, piece, i in special_ids, was_added) for i, piece, was_added in zip(ids, pieces, added)]


def added_by_tokenizer(encoding: Any, special_ids: set[int]) -> list[bool]:
    """Which tokens the tokenizer's post-processor put in, not the user.

    Those have an empty span in the text; a special token the user typed
    (a `[MASK]`) covers characters.
    """
    return [
        token_id in special_ids and start == end
        for token_id, (start, end) in zip(encoding["input_ids"], encoding["offset_mapping"])
    ]


def encode_marking_added(tokenizer: Any, text: str) -> tuple[list[int], list[bool]]:
    """The ids the tokenizer makes of `text`, and which of them it added (BOS, `</s>`, `[CLS]`).

    A Rust-backed tokenizer tells by its offsets; a Python one (Marian's) has
    none, so its ids are compared with those of the bare text, which they hold.
    """
    # verbose=False: callers cut long lines themselves, and notice it; transformers would warn of "indexing errors".
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, return_offsets_mapping=True, verbose=False)
        return encoded["input_ids"], added_by_tokenizer(encoded, set(tokenizer.all_special_ids))
    ids = tokenizer(text, verbose=False)["input_ids"]
    bare = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    start = next((i for i in range(len(ids) - len(bare) + 1) if ids[i : i + len(bare)] == bare), 0)
    return ids, [not start <= i < start + len(bare) for i in range(len(ids))]


def encode_cut_at_end(model: LoadedModel, text: str, keep_id: int | None = None) -> tuple[list[Token], list[str]]:
    """The tokens the model sees for `text`, and notices.

    A line longer than the model takes is cut by the rule every family follows
    (`cut_to_fit`), keeping the special tokens the tokenizer put around it; a
    line with no readable text is refused.
    """
    tokenizer = model.tokenizer
    ids, added = encode_marking_added(tokenizer, text)
    if all(added):
        raise ModelError(f"the line has no text {model.spec.name}'s tokenizer can read")
    notices = []
    limit = model.max_input_tokens
    if limit is not None and len(ids) > limit:
        lead, body, tail = split_added_ends(ids, added)
        keep_name = tokenizer.convert_ids_to_tokens(keep_id) if keep_id is not None else ""
        kept, notice = cut_to_fit(body, max(limit - lead - tail, 1), keep_id, keep_name, limit)
        ids = ids[:lead] + body[kept] + ids[len(ids) - tail :]
        added = added[:lead] + [False] * len(body[kept]) + added[len(added) - tail :]
        notices.append(notice)
    return describe(tokenizer, ids, added), notices


def split_added_ends(ids: list[int], added: list[bool]) -> tuple[int, list[int], int]:
    """How many tokens the tokenizer put before the text, the text's ids, and how many after."""
    lead = next((i for i, was_added in enumerate(added) if not was_added), len(added))
    tail = next((i for i, was_added in enumerate(reversed(added)) if not was_added), 0)
    return lead, ids[lead : len(ids) - tail], tail


def cut_to_fit(
    ids: list[int], room: int, keep_id: int | None = None, keep_name: str = "", limit: int | None = None
) -> tuple[slice, str]:
    """Which of a long line's tokens to keep, and the notice that says what was cut.

    One rule for every family: the start of the line (where the instruction is)
    is kept and the end is cut; a model that needs certain tokens (BERT's
    `[MASK]`, `keep_id`) keeps the stretch centred on them instead when the
    end would drop one. ModelError when they lie further apart than `room`.
    The notice names `limit`, the model's whole input with its special tokens
    (default: `room`).
    """
    cut, limit = len(ids) - room, limit or room
    wanted = [position for position, token in enumerate(ids) if token == keep_id] if keep_id is not None else []
    if not wanted or wanted[-1] < room:
        return slice(0, room), f"input truncated to {limit} tokens: {cut} dropped from the end"
    if wanted[-1] - wanted[0] >= room:
        raise ModelError(
            f"the {keep_name}s are {wanted[-1] - wanted[0] + 1} tokens apart, more than fit in {room}; shorten the line"
        )
    centred = (wanted[0] + wanted[-1] - room) // 2
    start = min(max(centred, wanted[-1] - room + 1, 0), wanted[0], len(ids) - room)
    return (
        slice(start, start + room),
        f"input truncated to {limit} tokens around the {keep_name}: {start} dropped from the start, "
        f"{cut - start} from the end",
    )


def decoder_start(model: Any, tokenizer: Any) -> Token | None:
    """The token the decoder starts from, as the model's generation config (else its config) says."""
    return _generation_token(model, tokenizer, "decoder_start_token_id")


def forced_first_token(model: Any, tokenizer: Any) -> Token | None:
    """The token generation is forced to begin with (BART's `<s>`, mBART's target language), if any."""
    return _generation_token(model, tokenizer, "forced_bos_token_id")


def _generation_token(model: Any, tokenizer: Any, key: str) -> Token | None:
    token_id = getattr(model.generation_config, key, None)
    if token_id is None:
        token_id = getattr(model.config, key, None)
    if token_id is None:
        return None
    return Token(token_id, tokenizer.convert_ids_to_tokens(token_id), token_id in set(tokenizer.all_special_ids), True)


def decode_text(tokenizer: Any, ids: list[int]) -> str:
    """The reply as shown: special tokens removed, spaces exactly as the tokenizer decodes them.

    Streaming and the final reply both use this, so they cannot disagree.
    """
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


# -- generation -----------------------------------------------------------------


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
    **overrides: Any,
) -> Any:
    """Run `generate` so that Ctrl-C stops it between steps and text streams as it comes.

    ``split`` divides the streamed text into an aside and the reply (see `_WholeCharacterStreamer`).
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
        raise ModelError(f"{model.spec.name} cannot generate with these settings: {_flattened(exc)}") from None
    if settings.get("seed") is not None:
        transformers.set_seed(settings["seed"])
    streamer = None
    if control.streaming and config.num_beams == 1:  # generate() refuses streamers with beam search
        streamer = streamer_for(model.tokenizer, control, split)
    try:
        with torch.inference_mode():
            return model.handle.generate(
                **{k: v.to(placement.input_device(model.handle)) for k, v in inputs.items()},
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([_CancelCriteria(control)]),
                streamer=streamer,
            )
    except (ValueError, RuntimeError, MemoryError) as exc:
        # The model's own failure (a setting, the memory): the user's to act on, not the plugin's fault.
        described = f"{type(exc).__name__}: {_flattened(exc)}" if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{model.spec.name}'s generate failed: {described}") from exc


def _flattened(exc: Exception) -> str:
    return " ".join(str(exc).split())


# -- probabilities and scores -----------------------------------------------------


def token_probs(tokenizer: Any, output: Any, new_ids: list[int], settings: dict[str, Any]) -> list[TokenProbs] | None:
    """Each generated token's log-probability, raw and as drawn, with the top alternatives.

    `output.logits` are the model's raw logits at each step, `output.scores`
    the same after the logits processors (repetition penalty, temperature,
    top-k, top-p): the distribution the token was drawn from. None when
    `generate` kept no scores (probs off, or beam search).
    """
    if getattr(output, "logits", None) is None or getattr(output, "scores", None) is None:
        return None
    k = settings.get("top_logprobs", 5)
    measured = []
    for token_id, raw_logits, processed_logits in zip(new_ids, output.logits, output.scores):
        raw = raw_logits[0].float().log_softmax(-1)
        processed = processed_logits[0].float().log_softmax(-1)
        measured.append((token_id, raw[token_id].item(), processed[token_id].item(), _top(raw, k), _top(processed, k)))
    # Every token shown, decoded once for the whole reply rather than once per step.
    shown = {i for token_id, _, _, top, processed_top in measured for i in (token_id, *top, *processed_top)}
    text = dict(zip(shown, token_texts(tokenizer, list(shown))))
    return [
        TokenProbs(
            id=token_id,
            piece=text[token_id],
            logprob=logprob,
            processed_logprob=processed_logprob,
            top=[Alternative(i, text[i], value) for i, value in top.items()],
            processed_top=[Alternative(i, text[i], value) for i, value in processed_top.items()],
        )
        for token_id, logprob, processed_logprob, top, processed_top in measured
    ]


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """The text each token adds after another one (`Ġthe`, `▁the` are " the", `##s` is "s").

    A token decoded alone loses what its decoder strips at the start of a text
    (SentencePiece's leading space), so each is decoded after the tokenizer's
    token for "a" and that prefix is cut off. A token that is no text alone
    (part of a character) shows the bytes it holds as escapes where the
    tokenizer is byte-level (`ĠGrÃ` is " Gr\\xc3"), else its piece.
    """
    pieces = tokenizer.convert_ids_to_tokens(ids)
    lead = tokenizer("a", add_special_tokens=False)["input_ids"][-1:]
    prefix = tokenizer.decode(lead, clean_up_tokenization_spaces=False)
    decoded = tokenizer.batch_decode([lead + [i] for i in ids], clean_up_tokenization_spaces=False)
    return [
        text[len(prefix) :] if text.startswith(prefix) and "\ufffd" not in text else _bytes_shown(tokenizer, piece)
        for text, piece in zip(decoded, pieces)
    ]


def _bytes_shown(tokenizer: Any, piece: str) -> str:
    """A byte-level piece as text with the bytes that are no whole character escaped; other pieces as they are."""
    from tokenizers.decoders import ByteLevel
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.decoder, ByteLevel):
        return piece
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    if not all(char in byte_of for char in piece):
        return piece
    return bytes(byte_of[char] for char in piece).decode("utf-8", errors="backslashreplace")


def top_alternatives(tokenizer: Any, logprobs: torch.Tensor, k: int) -> list[Alternative]:
    """The k most likely tokens of a log-probability vector, most likely first; impossible ones left out."""
    top = _top(logprobs, k)
    return [Alternative(i, text, value) for (i, value), text in zip(top.items(), token_texts(tokenizer, list(top)))]


def _top(logprobs: torch.Tensor, k: int) -> dict[int, float]:
    """{id: log-probability} of the k most likely tokens, most likely first; impossible ones left out."""
    values, ids = logprobs.topk(min(k, logprobs.shape[-1]))
    return {i: value for i, value in zip(ids.tolist(), values.tolist()) if value != float("-inf")}


def entropy(logprobs: torch.Tensor) -> float:
    """Entropy in nats of the distribution a log-probability vector describes (impossible tokens add nothing)."""
    probabilities = logprobs.exp()
    return -(probabilities * logprobs.masked_fill(probabilities == 0, 0.0)).sum().item()


def score_causal(model: LoadedModel, text: str) -> Score:
    """Each token of `text` scored given the ones before it, in one forward pass.

    Special tokens the tokenizer puts in front (a BOS) are context, not
    scored; without one, the first token has nothing to be predicted from and
    gets logprob None.
    """
    encoded = model.tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    added = added_by_tokenizer(encoded, set(model.tokenizer.all_special_ids))
    context = next((i for i, was_added in enumerate(added) if not was_added), len(ids))
    _check_scored_length(model, ids, context)
    logprobs = _forward_logprobs(model, input_ids=torch.tensor([ids]))[0]
    pieces = token_texts(model.tokenizer, ids)
    tokens = [
        ScoredToken(ids[i], pieces[i], logprobs[i - 1, ids[i]].item() if i > 0 else None)
        for i in range(context, len(ids))
    ]
    return Score(tokens, method="causal", bos_prepended=context > 0)


def score_seq2seq(model: LoadedModel, text: str) -> Score:
    """`INPUT => TARGET`: each token of TARGET scored as the decoder's output for INPUT, given the ones before it."""
    source, separator, target = text.partition("=>")
    if not separator or not source.strip() or not target.strip():
        raise ModelError(f"{model.spec.name} scores an output for an input: write INPUT => TARGET")
    input_ids = model.tokenizer(source.strip(), verbose=False)["input_ids"]
    target_ids = model.tokenizer(text_target=target.strip(), verbose=False)["input_ids"]
    _check_scored_length(model, input_ids, 0)
    logprobs = _forward_logprobs(model, input_ids=torch.tensor([input_ids]), labels=torch.tensor([target_ids]))[0]
    pieces = token_texts(model.tokenizer, target_ids)
    tokens = [ScoredToken(token_id, pieces[i], logprobs[i, token_id].item()) for i, token_id in enumerate(target_ids)]
    return Score(tokens, method="seq2seq target")


def score_masked(model: LoadedModel, text: str) -> Score:
    """Pseudo-log-likelihood (Salazar et al. 2020): each token of `text` masked in turn and scored.

    The tokens the tokenizer adds ([CLS], [SEP]) stay as context. The masked
    copies go through the model MASKED_BATCH at a time; each token's
    log-probability is read at its own, masked, position.
    """
    encoded = model.tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    scored = [
        i
        for i, was_added in enumerate(added_by_tokenizer(encoded, set(model.tokenizer.all_special_ids)))
        if not was_added
    ]
    _check_scored_length(model, ids, len(ids) - len(scored))
    tokens = []
    for start in range(0, len(scored), MASKED_BATCH):
        positions = scored[start : start + MASKED_BATCH]
        rows = torch.tensor([ids] * len(positions))
        rows[range(len(positions)), positions] = model.tokenizer.mask_token_id
        logprobs = _forward_logprobs(model, input_ids=rows)[range(len(positions)), positions]
        originals = [ids[position] for position in positions]
        pieces = token_texts(model.tokenizer, originals)
        tokens += [
            ScoredToken(token_id, pieces[row], logprobs[row, token_id].item()) for row, token_id in enumerate(originals)
        ]
    return Score(tokens, method="pseudo-log-likelihood")


def _forward_logprobs(model: LoadedModel, input_ids: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the vocabulary at every position, from one forward pass."""
    device = placement.input_device(model.handle)  # the first layer's device when spread over several
    with torch.inference_mode():
        logits = model.handle(
            input_ids=input_ids.to(device),
            attention_mask=torch.ones_like(input_ids).to(device),
            **{key: value.to(device) for key, value in extra.items()},
        ).logits
    return logits.float().log_softmax(-1).cpu()


def _check_scored_length(model: LoadedModel, ids: list[int], context: int) -> None:
    if len(ids) <= context:
        raise ModelError(f"nothing to score: {model.spec.name}'s tokenizer reads no text in it")
    if model.max_input_tokens is not None and len(ids) > model.max_input_tokens:
        raise ModelError(
            f"the text has {len(ids)} tokens, more than {model.spec.name}'s {model.max_input_tokens}; shorten it"
        )


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
