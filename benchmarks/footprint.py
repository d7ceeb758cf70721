"""Load time, memory, and what a second turn redoes; each run in a fresh process.

A fresh process per run makes peak resident memory mean "this side with one
model loaded and one reply given", untouched by earlier runs. The same file is
the worker: `python -m benchmarks.footprint SIDE FAMILY CHECKPOINT NEW_TOKENS`
prints one JSON record.

Both sides import torch and transformers before the clock starts (a plain
script does at its top, modelrepl on the first load), so load time compares
reading the checkpoint and building model and tokenizer, nothing else.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.repl_side import PROMPTS, BenchmarkError, isolated_environment
from benchmarks.timing import Workload, alternate, summarise, timed

REPO = Path(__file__).resolve().parent.parent
SIDES = ("plain", "modelrepl")


def measure(checkpoints: dict[str, Path], workload: Workload, home: Path) -> tuple[dict, dict]:
    """The load figures and the memory figures of every family."""
    environment = {**isolated_environment(home), "PYTHONPATH": str(REPO)}
    load: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    for family, checkpoint in checkpoints.items():
        runs = alternate(
            {side: _worker_call(side, family, checkpoint, workload.new_tokens, environment) for side in SIDES},
            workload,
        )
        plain_load, repl_load = summarise(runs["plain"], "load_seconds"), summarise(runs["modelrepl"], "load_seconds")
        plain_cpu, repl_cpu = (
            summarise(runs["plain"], "load_cpu_seconds"),
            summarise(runs["modelrepl"], "load_cpu_seconds"),
        )
        load[family] = {
            "plain": plain_load.as_dict(),
            "modelrepl": repl_load.as_dict(),
            "ratio": repl_load.median / plain_load.median,
            "plain_cpu": plain_cpu.as_dict(),
            "modelrepl_cpu": repl_cpu.as_dict(),
            "cpu_ratio": repl_cpu.median / plain_cpu.median,
            "second_turn": runs["modelrepl"][-1]["second_turn"],
        }
        if "context_turn" in runs["modelrepl"][-1]:
            load[family]["context_turn"] = runs["modelrepl"][-1]["context_turn"]
        memory[family] = {side: _memory_figures(runs[side]) for side in SIDES}
        memory[family]["peak_ratio"] = (
            memory[family]["modelrepl"]["peak"]["median"] / memory[family]["plain"]["peak"]["median"]
        )
    return load, memory


def _memory_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("before_load", "loaded", "peak", "after_unload", "after_second_unload")
    return {key: summarise(runs, key).as_dict() for key in keys if key in runs[0]}


def _worker_call(side: str, family: str, checkpoint: Path, new_tokens: int, environment: dict[str, str]):
    command = [sys.executable, "-m", "benchmarks.footprint", side, family, str(checkpoint), str(new_tokens)]

    def call() -> dict[str, Any]:
        finished = subprocess.run(
            command, env=environment, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if finished.returncode != 0:
            raise BenchmarkError(
                f"{side} worker for {family} exited {finished.returncode}: {finished.stderr.strip()[-500:]}"
            )
        return json.loads(finished.stdout.strip().splitlines()[-1])

    return call


# -- the worker -------------------------------------------------------------------


def resident_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from /proc."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise BenchmarkError(f"/proc/self/status has no {field}: memory figures need Linux")


def _plain_worker(family: str, checkpoint: str, new_tokens: int) -> dict[str, Any]:
    from benchmarks import plain

    before = resident_bytes()
    clocks = _clocks()
    model, tokenizer = plain.load(family, checkpoint)
    load = _since(clocks)
    loaded = resident_bytes()
    plain.reply(family, model, tokenizer, PROMPTS[family], new_tokens)
    peak = resident_bytes("VmHWM")
    del model, tokenizer
    gc.collect()
    return {**load, "before_load": before, "loaded": loaded, "peak": peak, "after_unload": resident_bytes()}


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(clocks: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds of the load since `clocks` were read."""
    return {"load_seconds": time.perf_counter() - clocks[0], "load_cpu_seconds": time.process_time() - clocks[1]}


class CountingTokenizer:
    """A tokenizer that counts how often text is encoded, and otherwise behaves as the one it wraps."""

    def __init__(self, tokenizer: Any):
        self.wrapped = tokenizer
        self.encodes = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.encodes += 1
        return self.wrapped(*args, **kwargs)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.encodes += 1
        return self.wrapped.encode(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class HookLog:
    """Which model hooks a turn called, and how long its tokenize hook took (pluggy's call monitoring)."""

    def __init__(self, host: Any):
        self.hooks: list[str] = []
        self.tokenize_seconds = 0.0
        self._started: dict[str, float] = {}
        host.manager.add_hookcall_monitoring(self._before, self._after)

    def _before(self, name: str, implementations: Any, kwargs: Any) -> None:
        self.hooks.append(name)
        self._started[name] = time.perf_counter()

    def _after(self, outcome: Any, name: str, implementations: Any, kwargs: Any) -> None:
        if name == "tokenize":
            self.tokenize_seconds += time.perf_counter() - self._started[name]

    def clear(self) -> None:
        self.hooks.clear()
        self.tokenize_seconds = 0.0


def _repl_worker(family: str, checkpoint: str, new_tokens: int) -> dict[str, Any]:
    from benchmarks.repl_side import checked_turns, make_repl

    importlib.import_module("repl.hf.loading")  # what the first load imports: torch, transformers, the Auto classes

    sink = open(os.devnull, "w", encoding="utf-8")
    repl = make_repl({family: Path(checkpoint)}, new_tokens, sink)
    repl.session.active = family
    log = HookLog(repl.session.host)
    before = resident_bytes()
    clocks = _clocks()
    loaded_model = repl.load(family)
    load = _since(clocks)
    loaded = resident_bytes()
    loaded_model.tokenizer = CountingTokenizer(loaded_model.tokenizer)
    text = PROMPTS[family]

    def turn(line: str = text) -> dict[str, Any]:
        counter = repl.session.loaded[family].tokenizer
        log.clear()
        counter.encodes = 0
        seconds = timed(lambda: checked_turns(repl, line, new_tokens))
        return {
            "hooks": list(log.hooks),
            "tokenizer_encodes": counter.encodes,
            "tokenize_seconds": log.tokenize_seconds,
            "seconds": seconds,
        }

    first = turn()
    peak = resident_bytes("VmHWM")
    second_turn = {**turn(), "first_seconds": first["seconds"]}
    figures = {**load, "before_load": before, "loaded": loaded, "peak": peak, "second_turn": second_turn}
    if loaded_model.spec.setting("context") is not None:
        # With context on, the turns since it was turned on join the prompt; the
        # second such line has one earlier turn, new to the tokenizer.
        repl.handle("/context on")
        turn(text + " Then")
        figures["context_turn"] = {**turn(text + " And then"), "earlier_turns": len(repl.session.history(family)) - 1}
    del loaded_model
    _unload(repl, family)
    figures["after_unload"] = resident_bytes()
    # A second cycle tells memory kept for good (a leak) from memory kept once
    # (modules the first load imported, allocator pools).
    repl.load(family)
    _unload(repl, family)
    figures["after_second_unload"] = resident_bytes()
    return figures


def _unload(repl: Any, family: str) -> None:
    result = repl.handle(f"/unload {family}")
    if not result.ok:
        raise BenchmarkError(f"/unload {family} failed: {result.error}")


def main(argv: list[str]) -> int:
    side, family, checkpoint, new_tokens = argv
    worker = _plain_worker if side == "plain" else _repl_worker
    print(json.dumps(worker(family, checkpoint, int(new_tokens))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
