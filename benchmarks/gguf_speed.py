"""GGUF files through llama.cpp: modelrepl's gguf model beside its transformers models and beside llama-cpp-python.

On the GPT-2-124M and SmolLM2-135M shapes (random weights, real sizes, the
gpt2 checkpoint's padded tokenizer), each written as GGUF F16 and Q8_0 by
`repl.testing.build_gguf`, in one process, streaming off, every side with the
same threads:

- modelrepl's gpt2 model in fp32 and in int8 (transformers);
- modelrepl's gguf model on each file;
- llama-cpp-python called directly on each file (`Llama.generate`, greedy).

Decode tokens/s is the tokens after the first over the time after the first
(the prompt's pass left out), on a short line; prompt tokens/s is a prompt of
PROMPT_TOKENS tokens over the time to the first token. Every run's prompt
starts with a word of its own, so that no side answers from the cache of the
run before. Target: gguf through modelrepl within 10 % of llama-cpp-python
called directly.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.repl_side import PROMPTS, BenchmarkError
from benchmarks.speed import prepare_llama
from benchmarks.timing import Workload, alternate, summarise

PROMPT_TOKENS = 256
QUICK_PROMPT_TOKENS = 64  # the tiny gpt2 takes 128 positions
TARGET = 0.90  # gguf through modelrepl, as a share of llama-cpp-python's own rate
QUANTS = ("f16", "q8_0")


def measure(checkpoints: dict[str, Path], workload: Workload, cache: Path, out: IO[str]) -> dict[str, Any]:
    import llama_cpp
    import torch

    from benchmarks import machine

    llama = prepare_llama(cache, checkpoints["gpt2"], real_size=not workload.quick, new_tokens=workload.new_tokens)
    threads = torch.get_num_threads()
    figures: dict[str, Any] = {
        "threads": threads,
        "prompt_tokens": QUICK_PROMPT_TOKENS if workload.quick else PROMPT_TOKENS,
        "llama_cpp_python": llama_cpp.__version__,
        # What the machine reads per second: decoding reads every weight once per token.
        "memory_bandwidth": machine.memory_bandwidth((64 if workload.quick else 1024) * machine.MIB, 3),
    }
    for shape, checkpoint in (("gpt2", checkpoints["gpt2"]), ("llama", llama)):
        files = _gguf_files(checkpoint, cache, workload.quick)
        figures[shape] = _shape(checkpoint, files, workload, threads, out)
        figures[shape]["file_bytes"] = {quant: path.stat().st_size for quant, path in files.items()}
    return figures


def _gguf_files(checkpoint: Path, cache: Path, quick: bool) -> dict[str, Path]:
    """The checkpoint as GGUF F16 and Q8_0, written once beside the cached checkpoints."""
    from repl.testing.gguf import build_gguf

    directory = cache / ("tiny" if quick else "real") / "gguf"
    files = {}
    for quant in QUANTS:
        path = directory / f"{checkpoint.name}-{quant}.gguf"
        weights = checkpoint / "model.safetensors"
        if not path.exists() or path.stat().st_mtime < weights.stat().st_mtime:
            build_gguf(checkpoint, path.with_suffix(".partial"), quant).rename(path)
        files[quant] = path
    return files


def _shape(checkpoint: Path, files: dict[str, Path], workload: Workload, threads: int, out: IO[str]) -> dict[str, Any]:
    repl = _repl(checkpoint, files, workload.new_tokens, threads, out)
    long_line = _long_line(checkpoint, QUICK_PROMPT_TOKENS if workload.quick else PROMPT_TOKENS)
    words = itertools.count()
    sides: dict[str, Any] = {
        "fp32": _through_modelrepl(repl, "gpt2", workload.new_tokens, long_line, words),
        "int8": _through_modelrepl(repl, "gpt2@int8", workload.new_tokens, long_line, words),
    }
    for quant, path in files.items():
        sides[f"gguf {quant}"] = _through_modelrepl(repl, f"gguf@{quant}", workload.new_tokens, long_line, words)
        sides[f"direct {quant}"] = _direct(path, workload.new_tokens, long_line, words, threads, repl, quant)
    rounds = alternate(sides, workload)
    row: dict[str, Any] = {}
    for side, records in rounds.items():
        row[side] = {key: summarise(records, key).as_dict() for key in records[0]}
        row[side]["decode_rate"] = (workload.new_tokens - 1) / row[side]["decode_seconds"]["median"]
        row[side]["prompt_rate"] = row[side]["prompt_tokens"]["median"] / row[side]["prompt_seconds"]["median"]
    for quant in QUANTS:
        through, direct = row[f"gguf {quant}"], row[f"direct {quant}"]
        ratios = {kind: through[f"{kind}_rate"] / direct[f"{kind}_rate"] for kind in ("decode", "prompt")}
        row[f"ratio {quant}"] = {**ratios, "target": TARGET, "target_met": min(ratios.values()) >= TARGET}
    for name in list(repl.session.loaded):
        repl.session.unload(name)
    return row


def _repl(checkpoint: Path, files: dict[str, Path], new_tokens: int, threads: int, out: IO[str]) -> Any:
    import plugins.gguf
    from repl.api import LoadOptions
    from repl.app.evaluator import Repl
    from repl.core.plugin_host import create_host
    from repl.core.session import Session
    from repl.terminal.renderer import Renderer

    host = create_host([("gguf", plugins.gguf)], entry_points=False)
    host.load_entry_points(only=["gpt2"])
    session = Session(host, LoadOptions(device="cpu"))
    session.choose_checkpoint("gpt2", str(checkpoint))
    names = ["gpt2", "gpt2@int8"]
    for quant, path in files.items():
        names.append(f"gguf@{quant}")
        session.choose_checkpoint(names[-1], str(path))
        session.set(names[-1], "threads", str(threads))
    for name in names:
        session.set(name, "max_new_tokens", str(new_tokens))
        session.set(name, "stream", "off")
    return Repl(session, Renderer(out, out))


def _long_line(checkpoint: Path, tokens: int) -> str:
    """A line of about `tokens` tokens of the checkpoint's tokenizer, with the word each run puts first."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    ids = tokenizer(" ".join([PROMPTS["gpt2"]] * 40), verbose=False)["input_ids"][: tokens - 2]
    return tokenizer.decode(ids)


def _through_modelrepl(repl: Any, name: str, new_tokens: int, long_line: str, words: Any) -> Any:
    def run() -> dict[str, float]:
        word = f"w{next(words)}"
        short = repl.turn(name, f"{word} {PROMPTS['gpt2']}", stream=False)
        long = repl.turn(name, f"{word} {long_line}", stream=False)
        for turn in (short, long):
            if not turn.ok or turn.stats.new_tokens != new_tokens:
                raise BenchmarkError(f"{name} made {turn.stats.new_tokens} tokens, not {new_tokens}: {turn.error}")
        return {
            "decode_seconds": short.stats.seconds - (short.stats.ttft or 0.0),
            "prompt_seconds": long.stats.ttft or long.stats.seconds,
            "prompt_tokens": long.stats.input_tokens,
        }

    return run


def _direct(path: Path, new_tokens: int, long_line: str, words: Any, threads: int, repl: Any, quant: str) -> Any:
    """llama-cpp-python as its README calls it, on the same file, context size and threads as the gguf model."""
    from llama_cpp import Llama

    n_ctx = repl.session.model(f"gguf@{quant}").max_input_tokens
    with _without_amx():
        llm = Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)

    def generate(text: str) -> tuple[float, float, int]:
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
        started = time.perf_counter()
        first = None
        for count, _ in enumerate(llm.generate(tokens, top_k=0, top_p=1.0, min_p=0.0, temp=0.0), start=1):
            first = first or time.perf_counter()
            if count == new_tokens:
                break
        return first - started, time.perf_counter() - first, len(tokens)

    def run() -> dict[str, float]:
        word = f"w{next(words)}"
        _, decode_seconds, _ = generate(f"{word} {PROMPTS['gpt2']}")
        prompt_seconds, _, prompt_tokens = generate(f"{word} {long_line}")
        return {"decode_seconds": decode_seconds, "prompt_seconds": prompt_seconds, "prompt_tokens": prompt_tokens}

    return run


@contextlib.contextmanager
def _without_amx():
    """Load without llama.cpp's extra buffer types where the CPU has AMX, as the gguf model does.

    Its AMX kernels crash on Q8_0 matrices here (ggml-org/llama.cpp#20824);
    `Llama` has no argument for it, so its default model parameters are
    patched while it loads.
    """
    import llama_cpp
    from llama_cpp import llama_cpp as bindings

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        yield
        return
    defaults = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        bindings.llama_model_default_params = defaults
