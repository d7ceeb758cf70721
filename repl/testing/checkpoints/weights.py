"""Writing a tiny model's weights: initialised from a seed, as safetensors or as a legacy pickle."""

from __future__ import annotations

import pathlib


def save_model(
    model_class, config, path: pathlib.Path, safetensors: bool, seed: int, generation: dict | None = None
) -> None:
    import torch
    from safetensors.torch import load_file

    torch.manual_seed(seed)
    model = model_class(config).eval()
    if generation:
        model.generation_config.update(**generation)
    model.save_pretrained(path)
    if not safetensors:
        # transformers 5 only writes safetensors; convert to the legacy pickle
        # so the key set is the same in both formats.
        weights = path / "model.safetensors"
        torch.save(load_file(weights), path / "pytorch_model.bin")
        weights.unlink()
