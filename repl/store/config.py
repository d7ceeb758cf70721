"""The TOML configuration file: defaults for models, devices, settings and logging.

Everything is checked before anything is applied, so modelrepl never starts
with half a config. A message names the file, the key, the value and what is
allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repl.hf import quantization as quantize
from repl.hf.placement import MAX_MEMORY_HELP, parse_max_memory
from repl.store import paths

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
EXAMPLE = """\
# modelrepl configuration
default_model = "mt0"        # the model that answers first
device = "auto"              # auto, cpu, cuda or mps
dtype = "auto"               # auto, float32, float16 or bfloat16
stream = true                # print replies as they are generated
history_size = 1000          # lines of input history kept
# max_memory = { "0" = "20GiB", cpu = "30GiB" }   # with device auto: the most each device may hold
# offload_dir = "~/modelrepl-offload"            # with device auto: layers that fit nowhere else go here
log = true                   # append every turn to the transcript
# system = "Answer briefly."  # system prompt of every model that takes one (chat)
preload = true               # load the active model in the background while you type the first line
# compare_run = "auto"       # auto: models on different devices answer at once; parallel; sequential
# compare_layout = "columns" # columns: replies side by side as they stream; blocks: when they are done
# arena = ["gpt2", "mt0"]    # the models a bare /arena pits against each other, two at a time

[models.gpt2]                # per model: checkpoint and any /set setting
checkpoint = "openai-community/gpt2"
max_new_tokens = 40
# quantize = "int8"          # int8 weights on CPU (about 4x faster decoding); bnb8 or bnb4 on CUDA
# [models.chat]              # a model's own system prompt wins over the top-level one
# system = "You are a helpful assistant."
"""


class ConfigError(Exception):
    """The configuration cannot be used; nothing of it has been applied."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    default_model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    stream: bool = True
    history_size: int = 1000
    log: bool = True
    system: str | None = None
    max_memory: tuple[tuple[str, str], ...] = ()
    offload_dir: str | None = None
    preload: bool = True
    compare_run: str = "auto"
    compare_layout: str = "columns"
    arena: tuple[str, ...] = ()
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


_TOP_LEVEL = {
    "default_model": (str, "a model name"),
    "device": (str, "one of " + ", ".join(DEVICES)),
    "dtype": (str, "one of " + ", ".join(DTYPES)),
    "stream": (bool, "true or false"),
    "history_size": (int, "a whole number from 0 to 1000000"),
    "log": (bool, "true or false"),
    "system": (str, "the text of a system prompt"),
    "max_memory": (dict, 'a table of DEVICE = SIZE, e.g. { cpu = "30GiB" }'),
    "offload_dir": (str, "a directory"),
    "preload": (bool, "true or false"),
    "compare_run": (str, "one of auto, parallel, sequential"),
    "compare_layout": (str, "one of columns, blocks"),
    "arena": (list, "a list of model names"),
    "models": (dict, "a table of [models.NAME] tables"),
}


def load(path: str | Path | None = None) -> Config:
    """Read the config file; a missing default file means defaults, a missing named one is an error."""
    named = path is not None
    file = Path(path).expanduser() if named else paths.config_file()
    if not file.exists():
        if named:
            raise ConfigError(f"config file {file} does not exist")
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    return _check(file, data)


def _check(file: Path, data: dict[str, Any]) -> Config:
    for key, value in data.items():
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{file}: unknown key {key!r}; allowed: {', '.join(_TOP_LEVEL)}")
        kind, allowed = _TOP_LEVEL[key]
        wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if (
            wrong_type
            or (key == "device" and value not in DEVICES)
            or (key == "dtype" and value not in DTYPES)
            or (key == "history_size" and not 0 <= value <= 1_000_000)
            or (key == "compare_run" and value not in ("auto", "parallel", "sequential"))
            or (key == "compare_layout" and value not in ("columns", "blocks"))
            or (key == "arena" and not all(isinstance(name, str) and name for name in value))
        ):
            raise ConfigError(f"{file}: {key} = {value!r} is not allowed; it takes {allowed}")
    models = {}
    for name, table in data.get("models", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: models.{name} = {table!r} is not allowed; it takes a table of settings")
        # A table inside a model's table holds settings named after it: [models.chat.template] enable_thinking
        # is the setting template.enable_thinking, as `/set` and `--set` spell it.
        table = {
            f"{key}.{inner}" if isinstance(value, dict) else key: inner_value
            for key, value in table.items()
            for inner, inner_value in (value.items() if isinstance(value, dict) else [(key, value)])
        }
        models[name] = table
        checkpoint = table.get("checkpoint")
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
            raise ConfigError(
                f"{file}: models.{name}.checkpoint = {checkpoint!r} is not allowed; it takes a hub id or directory"
            )
        mode = table.get("quantize")
        if mode is not None and mode not in quantize.MODES:
            raise ConfigError(
                f"{file}: models.{name}.quantize = {mode!r} is not allowed; it takes one of {', '.join(quantize.MODES)}"
            )
    limits = []
    for device, size in data.get("max_memory", {}).items():
        try:
            limits.append(parse_max_memory(f"{device}={size}"))
        except ValueError:
            raise ConfigError(
                f"{file}: max_memory.{device} = {size!r} is not allowed; it takes {MAX_MEMORY_HELP}"
            ) from None
    if "max_memory" in data:
        data = {**data, "max_memory": tuple(limits)}
    if "arena" in data:
        data = {**data, "arena": tuple(data["arena"])}

    if "models" in data:
        data = {**data, "models": models}
    return Config(path=file, **data)


def default_model(config: Config, host: Any) -> str | None:
    """The config's default model, checked against the registered models."""
    name = config.default_model
    if name is None or host.resolve(name) is not None:
        return name
    known = ", ".join(host.models()) or "none"
    raise ConfigError(f"{config.path}: default_model = {name!r} is not allowed; it takes a registered model: {known}")


def apply_model_settings(config: Config, session: Any) -> None:
    """Check every model table against the registered models, then apply them all at once.

    The top-level system prompt goes to every model that takes one; a model's own table may override it.
    """
    from repl.core import settings as settings_module
    from repl.core.conversation import SYSTEM

    where = config.path or "config"
    staged: dict[str, tuple[str | None, str | None, dict[str, Any]]] = {}
    if config.system is not None:
        for name, spec in session.host.models().items():
            if spec.setting(SYSTEM.name) is not None:
                staged[name] = (None, None, {**session.settings_of(name), SYSTEM.name: config.system})
    for name, table in config.models.items():
        spec = session.host.resolve(name)
        if spec is None:
            known = ", ".join(session.host.models()) or "none"
            raise ConfigError(f"{where}: [models.{name}]: no such model; registered: {known}")
        values = staged.get(spec.name, (None, None, session.settings_of(spec.name)))[2]
        for key, value in table.items():
            if key in ("checkpoint", "quantize"):
                continue
            try:
                values, _ = settings_module.change(spec, values, key, value)
            except ValueError as exc:
                raise ConfigError(f"{where}: models.{name}.{key} = {value!r} is not allowed: {exc}") from None
        staged[spec.name] = (table.get("checkpoint"), table.get("quantize"), values)
    for name, (checkpoint, mode, values) in staged.items():
        session.settings[name] = values
        if checkpoint:
            session.choose_checkpoint(name, checkpoint)
        if mode:
            session.quantization[name] = mode


def show(config: Config, default_model: str | None = None) -> str:
    """The values in force, as TOML: the file's, and the defaults for what it leaves out.

    `default_model` is the model that answers first when the file names none.
    """
    head = f"# {config.path}" if config.path else f"# no config file ({paths.config_file()}): the defaults are in force"
    lines = [head]
    shown = (
        "default_model",
        "device",
        "dtype",
        "stream",
        "history_size",
        "log",
        "system",
        "offload_dir",
        "preload",
        "compare_run",
        "compare_layout",
    )
    for key in shown:
        value = getattr(config, key)
        if key == "default_model" and value is None:
            value = default_model
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    if config.max_memory:
        limits = ", ".join(f"{_toml_value(device)} = {_toml_value(size)}" for device, size in config.max_memory)
        lines.append(f"max_memory = {{ {limits} }}")
    if config.arena:
        lines.append(f"arena = [{', '.join(_toml_value(name) for name in config.arena)}]")
    for name, table in config.models.items():
        lines.append(f"\n[models.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
