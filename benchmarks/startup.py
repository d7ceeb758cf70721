"""Start-up: `modelrepl --help` and the time until the REPL shows its prompt.

Measured against the floor (`python -c pass`) and against what importing
transformers alone costs, which a REPL that imported it eagerly would pay.
The prompt is timed under a pseudo-terminal, answering prompt_toolkit's
cursor-position request as a terminal does.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.repl_side import BenchmarkError, isolated_environment, modelrepl_command
from benchmarks.timing import Summary, Workload, alternate

TARGETS = {"modelrepl --help": 0.3, "modelrepl prompt shown": 0.5}
CURSOR_POSITION_REQUEST = "\x1b[6n"
PROMPT_TIMEOUT = 60


def measure(checkpoint: Path, workload: Workload, home: Path) -> dict[str, Any]:
    environment = isolated_environment(home)
    sides: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: _process_seconds([sys.executable, "-c", "pass"], environment),
        "python -c 'import transformers'": lambda: _process_seconds(
            [sys.executable, "-c", "import transformers"], environment
        ),
        "modelrepl --help": lambda: _process_seconds(modelrepl_command() + ["--help"], environment),
        "modelrepl prompt shown": lambda: _prompt_seconds(
            modelrepl_command() + ["-m", f"mt0={checkpoint}"], "mt0", environment
        ),
    }
    figures: dict[str, Any] = {}
    for name, values in alternate(sides, workload).items():
        summary = Summary.of(values)
        figures[name] = summary.as_dict()
        if name in TARGETS:
            figures[name]["target"] = TARGETS[name]
            figures[name]["target_met"] = summary.median < TARGETS[name]
    return figures


def _process_seconds(command: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} exited {finished.returncode}")
    return seconds


def prompt_pattern(model: str) -> str:
    """The prompt as a terminal gets it: the model name is coloured."""
    return model + r"(?:\x1b\[[0-9;]*m)*>"


def expect_prompt(child: Any, model: str) -> None:
    """Wait for the prompt, answering prompt_toolkit's cursor-position requests on the way."""
    while child.expect([re.escape(CURSOR_POSITION_REQUEST), prompt_pattern(model)]) == 0:
        child.send("\x1b[1;1R")


def kill(child: Any) -> None:
    """Kill the REPL and wait until it is gone: tearing down a loaded model can take longer than pexpect's 0.1 s."""
    child.kill(signal.SIGKILL)
    child.wait()
    child.close()


def _prompt_seconds(command: list[str], model: str, environment: dict[str, str]) -> float:
    import pexpect

    started = time.perf_counter()
    child = pexpect.spawn(
        command[0], command[1:], env=environment, encoding="utf-8", dimensions=(24, 100), timeout=PROMPT_TIMEOUT
    )
    try:
        expect_prompt(child, model)
        seconds = time.perf_counter() - started
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    except (pexpect.TIMEOUT, pexpect.EOF) as exc:
        raise BenchmarkError(f"no {model}> prompt from {' '.join(command)}: {type(exc).__name__}") from None
    finally:
        child.close(force=True)
    return seconds
