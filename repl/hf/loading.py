"""Loading a checkpoint for a plugin: its config, family, weights, tokenizer, device and dtype.

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
from transformers import AutoConfig, AutoTokenizer
from transformers.models.auto import modeling_auto
from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

from repl.core.records import (
    CAUSAL,
    MASKED,
    SEQ2SEQ,
    LoadedModel,
    LoadOptions,
    ModelError,
    ModelSpec,
)
from repl.hf import placement
from repl.hf import quantization as quantize

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
        f"the hub is off ({_offline_variable()} is set)"
        if constants.HF_HUB_OFFLINE
        else "the hub could not be reached or has no such model"
    )
    return (
        f"checkpoint {checkpoint!r} is not in the local Hugging Face cache and {where}; "
        f"download it once with network access, or load a local directory: /load {spec.name} /path/to/checkpoint"
    )


def _offline_variable() -> str:
    """The variable that turned the hub off: TRANSFORMERS_OFFLINE counts where HF_HUB_OFFLINE is unset."""
    return "HF_HUB_OFFLINE" if os.environ.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"


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
    accepts: Callable[[Any], bool | str] | None = None,
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
    ``accepts(config)``, which tells whether a checkpoint's config is of that
    family: True, False (refused with a message naming the checkpoint's family),
    or a string saying why it is refused ("it has no entailment label").
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
    accepts: Callable[[Any], bool | str] | None,
    needs_head: bool,
    local_files_only: bool,
) -> LoadedModel:
    """Load the checkpoint from wherever `load` found it; `local_files_only` keeps to the cache."""
    config = _load_config(spec, checkpoint, options, local_files_only)
    found = family_of(config)
    verdict = accepts(config) if accepts is not None else found == spec.family
    if isinstance(verdict, str) and verdict:
        raise ModelError(f"{spec.name} cannot use checkpoint {checkpoint!r}: {verdict}")
    if not verdict:
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
        raise ModelError(f"checkpoint {checkpoint!r} has no usable tokenizer: {flattened(exc)[:200]}") from None
    if len(tokenizer) - len(set(tokenizer.all_special_ids)) <= 1:
        # transformers 5 builds an empty tokenizer when the vocabulary files are missing, instead of
        # failing: special tokens only, plus SentencePiece's word-boundary piece.
        raise ModelError(f"checkpoint {checkpoint!r} has no usable tokenizer: its vocabulary files are missing")
    _without_decode_warnings(tokenizer)
    return tokenizer


def _without_decode_warnings(tokenizer: Any) -> None:
    """Settle now what transformers would warn about at the first decode, in the middle of a reply.

    A BPE tokenizer saved with `clean_up_tokenization_spaces` on (many Llama
    and SmolLM checkpoints) has it ignored at each decode, with a warning the
    first time; switching it off here decodes exactly the same, silently.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (
        getattr(tokenizer, "clean_up_tokenization_spaces", False)
        and backend is not None
        and type(backend.model).__name__ == "BPE"
        and not getattr(tokenizer, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
    ):
        tokenizer.clean_up_tokenization_spaces = False


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


def flattened(exc: Exception) -> str:
    """An exception's message on one line: transformers' messages span several."""
    return " ".join(str(exc).split())
