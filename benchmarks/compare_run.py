"""compare_run: a served model beside a local one answers at once, so /compare takes the slower one's time.

`transformers serve` runs a tiny chat checkpoint in its own process (the
remote model); gpt2 runs in this one. Each alone, then /compare of both
under `compare_run auto` (at once: they share no device) and `sequential`.
The served model is asked for enough tokens that it takes about as long
as the local one, where the difference between "max" and "sum" is largest.
Each model alone also runs through /compare (one model), in the same kind
of worker thread: torch's threads behave differently in the main thread,
and only running beside the other model should differ.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.repl_side import BenchmarkError
from benchmarks.timing import Summary, Workload, alternate, timed

LINE = "Tell me a story about a lighthouse."
SERVED_POSITIONS = 4096  # the served chat checkpoint's, prompt and reply together


def measure(checkpoints: dict[str, Path], workload: Workload, cache: Path, sink: IO[str]) -> dict[str, Any]:
    import torch

    # One core each: the served model's process has the other (the machine has two).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(checkpoints, workload, cache, sink)
    finally:
        torch.set_num_threads(threads)


def _measure(checkpoints: dict[str, Path], workload: Workload, cache: Path, sink: IO[str]) -> dict[str, Any]:
    from repl.api import LoadOptions
    from repl.app.evaluator import Repl
    from repl.core.plugin_host import create_host
    from repl.core.session import Session
    from repl.terminal.renderer import Renderer
    from repl.testing import build_chat_checkpoint

    served = build_chat_checkpoint(cache / "served-chat", "chatml")
    # A random model may end a reply at any token: it must not, or "as long as the local one" means nothing.
    # It is tiny and fast, so it needs many tokens for that: rotary positions have no table to outgrow.
    _update(served / "generation_config.json", min_new_tokens=SERVED_POSITIONS - 40)
    _update(served / "config.json", max_position_embeddings=SERVED_POSITIONS)
    with _serve(served, cache) as url:
        host = create_host(entry_points=False)
        host.load_entry_points(only=("gpt2", "remote"))
        repl = Repl(Session(host, LoadOptions(device="cpu")), Renderer(sink, sink))
        repl.session.choose_checkpoint("gpt2", str(checkpoints["gpt2"]))
        repl.session.choose_checkpoint("remote", url)
        repl.session.set("gpt2", "max_new_tokens", workload.new_tokens)
        repl.session.set("remote", "temperature", 0.0)  # greedy: the same reply, so the same length, each run
        repl.session.set_everywhere("stream", False)
        repl.load("gpt2")
        repl.load("remote")

        def alone(name: str) -> float:
            return timed(lambda: _answered(repl, LINE, name))

        local = Summary.of([alone("gpt2") for _ in range(max(workload.runs, 1))])
        remote_tokens = _matching_tokens(repl, local.median, workload)
        repl.session.set("remote", "max_new_tokens", remote_tokens)

        def compare(mode: str):
            def run() -> float:
                repl.session.set_compare("compare_run", mode)
                repl.session.clear()  # a chat conversation would grow with every run
                started = time.perf_counter()
                result = repl.handle(f"/compare gpt2 remote -- {LINE}")
                seconds = time.perf_counter() - started
                made = {turn.model: turn.stats.new_tokens for turn in repl.session.turns[-2:]}
                if not result.ok or made != {"gpt2": workload.new_tokens, "remote": remote_tokens}:
                    raise BenchmarkError(f"/compare failed: {result.error or made}")
                return seconds

            return run

        runs = alternate(
            {
                "gpt2": lambda: alone("gpt2"),
                "remote": lambda: alone("remote"),
                "auto": compare("auto"),
                "sequential": compare("sequential"),
            },
            workload,
        )
    figures = {name: Summary.of(values) for name, values in runs.items()}
    slower = max(figures["gpt2"].median, figures["remote"].median)
    both = figures["gpt2"].median + figures["remote"].median
    return {
        "local_tokens": workload.new_tokens,
        "remote_tokens": remote_tokens,
        **{name: summary.as_dict() for name, summary in figures.items()},
        "auto_to_slower": figures["auto"].median / slower,
        "auto_to_sum": figures["auto"].median / both,
        "sequential_to_sum": figures["sequential"].median / both,
    }


def _answered(repl, line: str, name: str) -> None:
    """One model alone, the way /compare runs it (a worker thread), so that only running beside another differs."""
    repl.session.clear()
    result = repl.handle(f"/compare {name} -- {line}")
    if not result.ok:
        raise BenchmarkError(f"{name} failed: {result.error}")


def _update(path: Path, **values: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **values}), encoding="utf-8")


def _matching_tokens(repl, seconds: float, workload: Workload) -> int:
    """How many tokens the served model generates in about `seconds` (it may stop early at its end token)."""
    probe = 64 if workload.quick else 512  # long enough that a request's own cost hardly counts
    repl.session.set("remote", "max_new_tokens", probe)
    started = time.perf_counter()
    _answered(repl, LINE, "remote")
    turn = repl.session.turns[-1]
    if turn.stats.new_tokens != probe:
        raise BenchmarkError(f"the served model made {turn.stats.new_tokens} tokens, not {probe}")
    per_token = (time.perf_counter() - started) / probe
    return max(1, min(int(seconds / per_token), SERVED_POSITIONS - 40))


@contextlib.contextmanager
def _serve(checkpoint: Path, cache: Path):
    from repl.testing.serving import transformers_serve

    try:
        with transformers_serve(checkpoint, cache) as (url, _):
            yield url
    except RuntimeError as exc:
        raise BenchmarkError(str(exc)) from None
