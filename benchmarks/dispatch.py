"""Dispatch overhead and time to first token: a reply through modelrepl against plain transformers.

In process, one REPL line (tokenize -> run -> decode through the plugin hooks,
then rendering) is timed against `plain.reply` on its own copy of the same
checkpoint. End to end, `modelrepl -m NAME=DIR -e TEXT` is timed against
`python benchmarks/plain.py`, start-up and loading included.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from benchmarks.repl_side import (
    PROMPTS,
    BenchmarkError,
    checked_turns,
    isolated_environment,
    make_repl,
    modelrepl_command,
    set_streaming,
)
from benchmarks.timing import Workload, alternate, summarise, timed_with_cpu

PLAIN_SCRIPT = Path(__file__).with_name("plain.py")
STREAM_MODES = {"stream": True, "no_stream": False}


def side_figures(family: str, runs: list[dict[str, float]], new_tokens: int) -> dict[str, Any]:
    """Seconds per reply, CPU seconds, and the rate: tokens per second, or replies per second for bert."""
    seconds = summarise(runs, "seconds")
    per_reply = 1 if family == "bert" else new_tokens
    return {
        "seconds": seconds.as_dict(),
        "cpu_seconds": summarise(runs, "cpu_seconds").as_dict(),
        "rate": per_reply / seconds.median,
        "unit": "replies/s" if family == "bert" else "tokens/s",
    }


def compared(family: str, runs: dict[str, list[dict[str, float]]], new_tokens: int) -> dict[str, Any]:
    """Both sides, and modelrepl's rate over the plain script's (above 1: modelrepl was faster).

    `ratio` compares medians, as the targets are stated; `ratio_of_min` the
    fastest runs, which interference from other programs can only slow down;
    `cpu_ratio` the CPU seconds, which waiting for a core does not count.
    """
    plain, repl = side_figures(family, runs["plain"], new_tokens), side_figures(family, runs["modelrepl"], new_tokens)
    return {
        "plain": plain,
        "modelrepl": repl,
        "ratio": plain["seconds"]["median"] / repl["seconds"]["median"],
        "ratio_of_min": plain["seconds"]["min"] / repl["seconds"]["min"],
        "cpu_ratio": plain["cpu_seconds"]["median"] / repl["cpu_seconds"]["median"],
    }


def in_process(checkpoints: dict[str, Path], workload: Workload, sink: IO[str]) -> tuple[dict, dict]:
    """The dispatch figures and the first-token figures of every family."""
    dispatch: dict[str, Any] = {}
    first_token: dict[str, Any] = {}
    for family, checkpoint in checkpoints.items():
        dispatch[family], first_token[family] = _one_family_in_process(family, checkpoint, workload, sink)
        gc.collect()  # the two copies of this family's model go before the next family loads
    return dispatch, first_token


def _one_family_in_process(family: str, checkpoint: Path, workload: Workload, sink: IO[str]) -> tuple[dict, dict]:
    from benchmarks import plain

    text = PROMPTS[family]
    repl = make_repl({family: checkpoint}, workload.new_tokens, sink)
    repl.session.active = family
    repl.load(family)
    model, tokenizer = plain.load(family, str(checkpoint))
    forward = _forward_pass(family, model, tokenizer, text)
    dispatch: dict[str, Any] = {}
    first_token: dict[str, Any] = {}
    for mode, stream in STREAM_MODES.items():
        set_streaming(repl, stream)
        write = sink.write if stream else None

        def repl_reply() -> dict[str, float]:
            turns: list = []
            figures = timed_with_cpu(lambda: turns.extend(checked_turns(repl, text, workload.new_tokens)))
            return {**figures, "ttft": turns[0].stats.ttft}

        def plain_reply() -> dict[str, float]:
            return timed_with_cpu(
                lambda: sink.write(plain.reply(family, model, tokenizer, text, workload.new_tokens, write))
            )

        runs = alternate(
            {"plain": plain_reply, "modelrepl": repl_reply, "forward": lambda: timed_with_cpu(forward)}, workload
        )
        dispatch[mode] = {
            **compared(family, runs, workload.new_tokens),
            "python_calls": _python_calls(plain_reply, repl_reply),
        }
        ttft, forward_seconds = summarise(runs["modelrepl"], "ttft"), summarise(runs["forward"], "seconds")
        first_token[mode] = {
            "ttft": ttft.as_dict(),
            "forward": forward_seconds.as_dict(),
            "ratio": ttft.median / forward_seconds.median,
        }
    return dispatch, first_token


def _python_calls(plain_reply: Callable[[], Any], repl_reply: Callable[[], Any]) -> dict[str, int]:
    """Python function calls of one reply on each side, counted by cProfile.

    Unlike seconds, the count does not depend on what else the machine is
    doing, so the difference is the REPL's own work.
    """
    counts = {}
    for side, reply in (("plain", plain_reply), ("modelrepl", repl_reply)):
        profile = cProfile.Profile()
        profile.runcall(reply)
        counts[side] = pstats.Stats(profile).total_calls
    return {**counts, "extra_per_reply": counts["modelrepl"] - counts["plain"]}


def _forward_pass(family: str, model: Any, tokenizer: Any, text: str) -> Callable[[], Any]:
    """One forward pass over the prompt: the least work before a first token can exist.

    For the causal LM only the last position's logits, as `generate` computes
    them; for the encoder-decoder the encoder plus one decoder step from the
    start token; for the masked LM the whole pass the answer needs.
    """
    import torch

    inputs = dict(tokenizer(text, return_tensors="pt"))
    if family == "gpt2":
        inputs["logits_to_keep"] = 1
    if family == "mt0":
        inputs["decoder_input_ids"] = torch.tensor([[model.generation_config.decoder_start_token_id]])

    def run() -> Any:
        with torch.inference_mode():
            return model(**inputs)

    return run


def end_to_end(checkpoints: dict[str, Path], workload: Workload, home: Path) -> dict[str, Any]:
    """Whole processes: start-up, load, one reply, exit."""
    environment = isolated_environment(home)
    figures: dict[str, Any] = {}
    for family, checkpoint in checkpoints.items():
        figures[family] = {}
        text = PROMPTS[family]
        # bert shows its answer when done whatever `stream` says: one mode covers it.
        modes = workload.process_stream_modes[:1] if family == "bert" else workload.process_stream_modes
        for mode in modes:
            stream = STREAM_MODES[mode]
            repl_command = modelrepl_command() + ["-m", f"{family}={checkpoint}", "-e", text]
            if family != "bert":
                repl_command += ["--set", f"{family}.max_new_tokens={workload.new_tokens}"]
            plain_command = [sys.executable, str(PLAIN_SCRIPT), family, str(checkpoint), text, str(workload.new_tokens)]
            if stream:
                plain_command.append("--stream")
            else:
                repl_command.append("--no-stream")
            runs = alternate(
                {
                    "plain": lambda: _process_seconds(plain_command, environment),
                    "modelrepl": lambda: _process_seconds(repl_command, environment),
                },
                workload,
            )
            figures[family][mode] = compared(family, runs, workload.new_tokens)
    return figures


def _process_seconds(command: list[str], environment: dict[str, str]) -> dict[str, float]:
    """Wall seconds of a whole process, and the CPU seconds it used."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0 or not finished.stdout.strip():
        raise BenchmarkError(f"{Path(command[0]).name} exited {finished.returncode}: {finished.stderr.strip()[-500:]}")
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {"seconds": seconds, "cpu_seconds": cpu}
