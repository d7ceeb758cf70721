"""Big models over several devices: accelerate's `device_map="auto"`, `max_memory` and disk offload.

`--device auto` lets accelerate place a model's layers on every GPU, then the
CPU, then (with `--offload-dir`) the disk. Before loading, the plan is worked
out on an empty (meta) copy of the model, so a model that cannot fit is refused
with one line saying what it needs, instead of an out-of-memory crash halfway.

The option parsing at the top is light; torch and accelerate are imported only
inside the functions that place a model.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from repl.core.records import LoadOptions, ModelError
from repl.core.units import human_bytes

_SIZE = re.compile(r"^\d+(\.\d+)?\s*([kmgt]i?b)?$", re.IGNORECASE)
_DEVICE = re.compile(r"^(cpu|disk|mps|\d+|cuda:\d+)$")
MAX_MEMORY_HELP = "DEVICE=SIZE with DEVICE cpu, mps, a GPU number or cuda:N and SIZE like 20GiB or 500MB"


def parse_max_memory(text: str) -> tuple[str, str]:
    """One `--max-memory DEVICE=SIZE` value, checked; ValueError says what is allowed."""
    device, equals, size = (part.strip() for part in text.partition("="))
    if not equals or not _DEVICE.match(device) or device == "disk" or not _SIZE.match(size):
        raise ValueError(f"--max-memory takes {MAX_MEMORY_HELP}, not {text!r}")
    return device, size


def accelerate_max_memory(pairs: tuple[tuple[str, str], ...]) -> dict[int | str, int] | None:
    """The `max_memory` dict accelerate takes: GPU numbers as ints, sizes in bytes."""
    from accelerate.utils import convert_file_size_to_int

    if not pairs:
        return None
    limits: dict[int | str, int] = {}
    for device, size in pairs:
        key: int | str = (
            int(device.removeprefix("cuda:")) if device[0].isdigit() or device.startswith("cuda:") else device
        )
        size = size.replace(" ", "").upper().replace("IB", "iB")
        limits[key] = int(size) if size.isdigit() else convert_file_size_to_int(size)
    return limits


def plan(auto_class: Any, config: Any, dtype: Any, options: LoadOptions, checkpoint: str) -> dict[str, Any]:
    """The keyword arguments that spread the model as asked, or ModelError if it cannot fit.

    accelerate's `infer_auto_device_map` on an empty copy of the model gives the
    same plan `from_pretrained(device_map="auto")` follows; a plan that needs the
    disk is refused unless an offload directory was given, since a silent disk
    offload would make every token crawl.
    """
    from accelerate.utils import get_max_memory, infer_auto_device_map

    empty, weights_dtype = _empty_model(auto_class, config, dtype, options)
    limits = get_max_memory(accelerate_max_memory(options.max_memory))
    device_map = infer_auto_device_map(
        empty, max_memory=limits, no_split_module_classes=empty._no_split_modules, dtype=weights_dtype
    )
    if "disk" in device_map.values() and not options.offload_dir:
        available = ", ".join(f"{_device_name(device)} {human_bytes(size)}" for device, size in limits.items())
        raise ModelError(
            f"checkpoint {checkpoint!r} needs {human_bytes(_size(empty, weights_dtype))} for its weights but only "
            f"{available} is free for it; pass --offload-dir DIR to put the rest on disk, or give more with "
            "--max-memory DEVICE=SIZE"
        )
    arguments: dict[str, Any] = {"device_map": "auto"}
    if options.max_memory:
        arguments["max_memory"] = limits
    if options.offload_dir:
        arguments["offload_folder"] = options.offload_dir
    return arguments


def does_not_fit(auto_class: Any, config: Any, dtype: Any, options: LoadOptions, checkpoint: str) -> ModelError:
    """The one-line answer to running out of memory on the one device the user named."""
    empty, weights_dtype = _empty_model(auto_class, config, dtype, options)
    return ModelError(
        f"checkpoint {checkpoint!r} needs {human_bytes(_size(empty, weights_dtype))} for its weights and does not "
        f"fit on {options.device}; pass --device auto to spread it over every GPU and the CPU (with --max-memory "
        "DEVICE=SIZE to cap each, and --offload-dir DIR for what fits in no memory)"
    )


def _empty_model(auto_class: Any, config: Any, dtype: Any, options: LoadOptions) -> tuple[Any, Any]:
    """The model without its weights (on the meta device), and the dtype its weights will have."""
    import torch
    from accelerate import init_empty_weights

    with init_empty_weights():
        empty = auto_class.from_config(config, trust_remote_code=options.trust_remote_code)
    empty.tie_weights()  # a tied head shares the embeddings' memory, and accelerate keeps the two together
    weights_dtype = dtype if isinstance(dtype, torch.dtype) else getattr(config, "dtype", None) or torch.float32
    if isinstance(weights_dtype, str):
        weights_dtype = getattr(torch, weights_dtype)
    return empty, weights_dtype


def _size(empty: Any, weights_dtype: Any) -> int:
    from accelerate.utils import compute_module_sizes

    return compute_module_sizes(empty, dtype=weights_dtype)[""]


def needs_plan(options: LoadOptions) -> bool:
    """Only `--device auto` spreads a model; a named device keeps it whole there."""
    return options.device == "auto"


def placement(model: Any) -> tuple[str, str | None]:
    """The device to show for a loaded model, and where its layers went when spread over several.

    Layers are the model's repeated blocks (the modules accelerate never
    splits); each is counted on the device of the nearest module in
    `hf_device_map`. Returns ("cuda:0+cpu+disk", "cuda:0 14 layers, cpu 4 layers, disk 2 layers").
    """
    device_map = getattr(model, "hf_device_map", None) or {}
    devices = list(dict.fromkeys(_device_name(device) for device in device_map.values()))
    if len(devices) < 2:
        return (devices[0] if devices else str(model.device)), None
    block_classes = set(getattr(model, "_no_split_modules", None) or ())
    counts: Counter[str] = Counter()
    for name, module in model.named_modules():
        if type(module).__name__ in block_classes:
            counts[_device_name(_device_of(name, device_map))] += 1
    layers = ", ".join(f"{device} {counts[device]} layer{'s' if counts[device] != 1 else ''}" for device in devices)
    return "+".join(devices), layers


def input_device(model: Any) -> Any:
    """Where a model's inputs go: a model wholly offloaded to disk reports `meta`; its hooks work from the CPU."""
    return "cpu" if model.device.type == "meta" else model.device


def _device_of(module_name: str, device_map: dict[str, Any]) -> Any:
    """The device of the longest `hf_device_map` entry that contains this module."""
    while module_name not in device_map:
        if not module_name:
            return device_map.get("", "cpu")
        module_name = module_name.rpartition(".")[0]
    return device_map[module_name]


def _device_name(device: Any) -> str:
    return f"cuda:{device}" if isinstance(device, int) else str(device)
