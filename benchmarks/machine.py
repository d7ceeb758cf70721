"""The machine the figures came from, its memory bandwidth, and the decoding speed it allows.

Generating one token on a CPU reads every weight matrix the decoder uses once
(a matrix-vector product per layer, then the vocabulary projection), so
tokens per second cannot exceed memory bandwidth / bytes of those weights.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import time
from pathlib import Path
from typing import Any

MIB = 1 << 20


def describe() -> dict[str, Any]:
    import torch
    import transformers

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_bytes": _total_memory(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _total_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_bandwidth(size_bytes: int, repeats: int) -> dict[str, float]:
    """Best of `repeats`, in bytes per second, on an array far larger than the caches.

    `read` sums the array (what streaming weights through a matrix-vector
    product needs), `copy` counts the bytes read plus those written, and
    `matvec` is a float32 matrix-vector product of that size: the kernel that
    decoding runs, on all of torch's threads.
    """
    import torch

    elements = size_bytes // 4
    source = torch.rand(elements)
    target = torch.empty_like(source)
    matrix = source.view(-1, 4096)
    vector = torch.rand(matrix.shape[0])
    best = {"read": 0.0, "copy": 0.0, "matvec": 0.0}
    for _ in range(repeats):
        for name, run, moved in (
            ("read", source.sum, size_bytes),
            ("copy", lambda: target.copy_(source), 2 * size_bytes),
            ("matvec", lambda: vector @ matrix, size_bytes),
        ):
            started = time.perf_counter()
            run()
            best[name] = max(best[name], moved / (time.perf_counter() - started))
    return best


def weights_read_per_step(family: str, checkpoint: Path) -> int:
    """Bytes of weights one decoding step reads (one forward pass for bert).

    An embedding table is read one row per token, except where it doubles as
    the output projection (gpt2's wte, mt0's shared): that one is read whole.
    mt0's encoder runs once per reply, not per token.
    """
    total = 0
    for name, size in _tensor_sizes(checkpoint).items():
        if family == "gpt2" and ".wpe." in f".{name}":
            continue
        if family == "mt0" and name.startswith("encoder."):
            continue
        if family == "bert" and ("position_embeddings" in name or "token_type_embeddings" in name):
            continue
        total += size
    return total


def _tensor_sizes(checkpoint: Path) -> dict[str, int]:
    """Each tensor's size in bytes, from the safetensors headers alone."""
    sizes: dict[str, int] = {}
    for path in sorted(checkpoint.glob("*.safetensors")):
        with open(path, "rb") as weights:
            (length,) = struct.unpack("<Q", weights.read(8))
            header = json.loads(weights.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                start, end = info["data_offsets"]
                sizes[name] = end - start
    return sizes


def decode_limits(
    checkpoints: dict[str, Path], bandwidth: dict[str, float], measured: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Per family: bytes per step, the steps per second bandwidth allows, and how close each side came.

    Two limits: at the bandwidth of a plain read (what the memory can give)
    and at that of a large matrix-vector product (what torch's kernels get
    from it on this machine).
    """
    limits: dict[str, Any] = {}
    for family, checkpoint in checkpoints.items():
        per_step = weights_read_per_step(family, checkpoint)
        limit = bandwidth["read"] / per_step
        rates = measured.get(family, {})
        limits[family] = {
            "weight_bytes_per_step": per_step,
            "limit_steps_per_s": limit,
            "matvec_limit_steps_per_s": bandwidth["matvec"] / per_step,
            "unit": "forward passes/s" if family == "bert" else "tokens/s",
            "measured": dict(rates),
            "fraction_of_limit": {side: rate / limit for side, rate in rates.items()},
        }
    return limits
