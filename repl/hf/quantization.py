"""Opt-in quantization at load time: int8 linear layers on CPU, bitsandbytes on CUDA.

``--quantize int8`` (or ``quantize = "int8"`` in a ``[models.NAME]`` table, or a
model named ``NAME@int8``) turns every linear layer into PyTorch's dynamic int8
one after loading: weights stored as int8 with a scale per output channel,
activations quantized on the fly. Decoding on a CPU is bound by reading the
weights, so a quarter of the bytes decodes about 3 to 4 times faster
(BENCHMARKS.md, "int8 against fp32", says why this library and what it costs
in quality). ``bnb8`` and ``bnb4`` hand the checkpoint to transformers'
``BitsAndBytesConfig``, which needs a CUDA GPU and the bitsandbytes package.

Torch is imported inside the functions: the CLI imports this module for the
mode names.
"""

from __future__ import annotations

import ctypes
import importlib.util
import mmap
import sys
import warnings
from collections.abc import Callable
from typing import Any

from repl.core.records import QUANTIZATIONS, ModelError

INT8 = "int8"
BNB8 = "bnb8"
BNB4 = "bnb4"
MODES = QUANTIZATIONS
DESCRIPTIONS = {
    INT8: "int8 linear layers",
    BNB8: "bitsandbytes 8-bit",
    BNB4: "bitsandbytes 4-bit nf4",
}


def check_mode(mode: str, where: str) -> str:
    """`mode` if it is a quantization modelrepl knows, else a ModelError naming the choices."""
    if mode not in MODES:
        raise ModelError(f"{where}: unknown quantization {mode!r}; use one of {', '.join(MODES)}")
    return mode


def loading_arguments(mode: str | None, device: str) -> dict[str, Any]:
    """What `from_pretrained` needs for `mode` on `device`; refuses a mode the device cannot run."""
    if mode is None:
        return {}
    if mode == INT8:
        if device != "cpu":
            raise ModelError(
                f"--quantize int8 is PyTorch's dynamic quantization, which runs on CPU only; "
                f"on {device} use --quantize bnb8 or bnb4, or --device cpu"
            )
        return {}
    if device != "cuda":
        raise ModelError(
            f"--quantize {mode} uses bitsandbytes, which needs a CUDA GPU (this model runs on {device}); "
            "on CPU use --quantize int8"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f"--quantize {mode} needs the bitsandbytes package: pip install bitsandbytes")
    import torch
    from transformers import BitsAndBytesConfig

    if mode == BNB8:
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    }


def after_loading(model: Any, mode: str | None) -> None:
    """Quantize a model loaded in full precision, in place (int8); bitsandbytes did its part while loading."""
    if mode == INT8:
        quantize_int8(model)


def quantize_int8(model: Any) -> None:
    """Every linear layer, GPT-2's `Conv1D` included, becomes a dynamic int8 layer with per-channel scales.

    Embeddings and layer norms stay as they are: an embedding is a lookup, not a
    product, and costs nothing to read per token. Where the output projection is
    tied to the embedding (GPT-2, T5), the projection gets its own int8 copy.
    One layer at a time, each fp32 weight's pages handed back once its int8
    copy exists: the weights are memory-mapped from the checkpoint and reading
    them pages them in, so quantizing them all first would hold both copies.
    """
    import torch

    if model.dtype != torch.float32:
        raise ModelError(f"--quantize int8 starts from float32 weights, and this model is {model.dtype}; drop --dtype")
    if any(parameter.device.type != "cpu" for parameter in model.parameters()):
        raise ModelError("--quantize int8 needs the whole model in CPU memory; drop --max-memory and --offload-dir")
    layers = list(_linear_layers(model))
    replaced = {id(layer) for _, _, layer in layers}
    still_used = {
        tensor.data_ptr()
        for module in model.modules()
        if id(module) not in replaced
        for tensor in (*module.parameters(recurse=False), *module.buffers(recurse=False))
    }
    with warnings.catch_warnings():
        # torch.ao.quantization warns of its move to torchao, whose int8 layers are slower eagerly (BENCHMARKS.md),
        # and of quantized tensor types it still uses itself.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_", category=UserWarning)
        hand_back = _page_reclaimer()
        for parent, name, layer in layers:
            setattr(parent, name, _dynamic_int8(layer))
            if layer.weight.data_ptr() not in still_used:  # a tied embedding keeps its fp32 weight
                hand_back(layer.weight)


def _linear_layers(model: Any) -> Any:
    """(parent, attribute name, layer) of every plain `nn.Linear` (as `quantize_dynamic` picks them) and `Conv1D`."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is torch.nn.Linear or isinstance(child, Conv1D):
                yield parent, name, child


def _dynamic_int8(layer: Any) -> Any:
    """The int8 twin of a linear layer; GPT-2's `Conv1D` is a linear layer with its weight transposed."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    linear = layer
    if type(layer) is not torch.nn.Linear:
        inputs, outputs = layer.weight.shape
        linear = torch.nn.Linear(inputs, outputs, dtype=layer.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(layer.weight.T)
            linear.bias.copy_(layer.bias)
    linear.qconfig = per_channel_dynamic_qconfig
    return DynamicLinear.from_float(linear)


# madvise(2) advice that reclaims pages without losing their contents (Linux 5.4+); Python's mmap module lacks it.
MADV_PAGEOUT = 21


def _page_reclaimer() -> Callable[[Any], None]:
    """A function that asks the kernel to reclaim a tensor's whole pages; harmless if it declines (or off Linux)."""
    if sys.platform != "linux":
        return lambda tensor: None
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    page = mmap.PAGESIZE

    def hand_back(tensor: Any) -> None:
        start = -(-tensor.data_ptr() // page) * page
        end = (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // page * page
        if end > start:
            madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), ctypes.c_int(MADV_PAGEOUT))

    return hand_back


def weight_bytes(model: Any) -> int:
    """Memory of the weights: what `get_memory_footprint` counts, plus int8 layers, which it does not see."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total = model.get_memory_footprint()
    for module in model.modules():
        if isinstance(module, DynamicLinear):
            weight, bias = module._packed_params._weight_bias()
            per_row = (weight.q_per_channel_scales(), weight.q_per_channel_zero_points())
            for tensor in (weight, bias, *per_row):
                total += 0 if tensor is None else tensor.numel() * tensor.element_size()
    return total
