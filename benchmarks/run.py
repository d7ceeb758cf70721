"""Run every benchmark, print the tables and write the figures as JSON.

    python benchmarks/run.py            real-size checkpoints, 5 runs after a warm-up (about 20 minutes)
    python benchmarks/run.py --quick    tiny checkpoints, one run of each: checks that it all still works

Sections: start-up, dispatch overhead (in process and end to end), time to
first token, load time and the second turn, peak memory and /unload,
/compare, decoding speed against the memory-bandwidth limit, and GGUF files
through llama.cpp (modelrepl's gguf model against llama-cpp-python called directly), and
markdown while streaming (a token's cost against rendering the whole reply). A section
that fails is recorded with its error and the others still run; the exit
status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import checkpoints as checkpoint_builder
from benchmarks import (
    compare_run,
    comparison,
    dispatch,
    footprint,
    gguf_speed,
    machine,
    markdown_cost,
    report,
    speed,
    startup,
)
from benchmarks.repl_side import isolated_environment
from benchmarks.timing import Workload

HERE = Path(__file__).resolve().parent
SECTIONS = (
    "startup",
    "dispatch",
    "first_token",
    "load",
    "memory",
    "compare",
    "compare_run",
    "decode_limit",
    "first_reply",
    "streaming",
    "int8",
    "compile",
    "gguf",
    "markdown",
)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny checkpoints, one run each: a smoke test, not a measurement"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "latest.json",
        metavar="PATH",
        help="where to write the figures (default: %(default)s)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=HERE / ".cache",
        metavar="DIR",
        help="where built checkpoints are kept (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, metavar="N", help="measured runs per figure (default: 5, quick: 1)")
    parser.add_argument(
        "--new-tokens", type=int, metavar="N", help="tokens generated per reply (default: 32, quick: 4)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"measure only these sections ({', '.join(SECTIONS)})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    workload = Workload.smoke() if args.quick else Workload.full()
    if args.runs:
        workload = dataclasses.replace(workload, runs=args.runs)
    if args.new_tokens:
        workload = dataclasses.replace(workload, new_tokens=args.new_tokens)
    # The REPLs in this process and in every subprocess use a throw-away home: the
    # user's config, history and transcript are neither read nor written.
    home = Path(tempfile.mkdtemp(prefix="modelrepl-bench-"))
    os.environ.update(isolated_environment(home))
    started = time.perf_counter()

    _progress(f"preparing {'tiny' if workload.quick else 'real-size'} checkpoints in {args.cache}")
    checkpoints = checkpoint_builder.prepare_all(
        args.cache, real_size=not workload.quick, new_tokens=workload.new_tokens
    )
    results: dict[str, Any] = {
        "mode": "quick" if workload.quick else "full",
        "workload": dataclasses.asdict(workload),
        "machine": machine.describe(),
        "checkpoints": {
            family: {"path": str(path), "weight_bytes": checkpoint_builder.weight_bytes(path)}
            for family, path in checkpoints.items()
        },
    }
    sink = open(os.devnull, "w", encoding="utf-8")  # replies are rendered as to a terminal, then dropped

    per_process = {family: checkpoints[family] for family in workload.process_families}  # one process per run
    wanted = set(args.only or SECTIONS)
    if "startup" in wanted:
        results["startup"] = _section("start-up", lambda: startup.measure(checkpoints["mt0"], workload, home))
    if wanted & {"load", "memory"}:
        load_and_memory = _section("load time and memory", lambda: footprint.measure(per_process, workload, home))
        results["load"], results["memory"] = _split(load_and_memory, 2)
    if wanted & {"dispatch", "first_token", "decode_limit"}:
        end_to_end = _section("dispatch, end to end", lambda: dispatch.end_to_end(per_process, workload, home))
        in_process_and_first_token = _section(
            "dispatch in process, first token", lambda: dispatch.in_process(checkpoints, workload, sink)
        )
        in_process, results["first_token"] = _split(in_process_and_first_token, 2)
        results["dispatch"] = {"in_process": in_process, "end_to_end": end_to_end}
    if "compare" in wanted:
        results["compare"] = _section("/compare", lambda: comparison.measure(checkpoints, workload, sink))
    if "compare_run" in wanted:
        results["compare_run"] = _section(
            "compare_run", lambda: compare_run.measure(checkpoints, workload, args.cache, sink)
        )
    if "decode_limit" in wanted:
        bandwidth = _section(
            "memory bandwidth",
            lambda: machine.memory_bandwidth(_bandwidth_bytes(workload), 3 if workload.quick else 7),
        )
        results["machine"]["memory_bandwidth"] = bandwidth
        results["decode_limit"] = _section(
            "decode limit", lambda: machine.decode_limits(checkpoints, bandwidth, _measured_rates(results))
        )
    if "first_reply" in wanted:
        results["first_reply"] = _section("first reply", lambda: speed.first_reply(checkpoints, workload, home))
    if "streaming" in wanted:
        results["streaming"] = _section("streaming", lambda: speed.streaming(checkpoints, workload))
    if "int8" in wanted:
        results["int8"] = _section("int8", lambda: speed.int8(checkpoints, workload, args.cache, sink))
    if "compile" in wanted:
        results["compile"] = _section("torch.compile", lambda: speed.compiled(checkpoints, workload, sink))
    if "gguf" in wanted:
        results["gguf"] = _section("gguf", lambda: gguf_speed.measure(checkpoints, workload, args.cache, sink))
    if "markdown" in wanted:
        results["markdown"] = _section("markdown while streaming", lambda: markdown_cost.measure(workload))
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - started

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.render(results), end="")
    print(f"figures written to {args.json} ({results['seconds']:.0f} s)")
    return 1 if failed_sections(results, args.only or SECTIONS) else 0


def failed_sections(results: dict[str, Any], wanted: tuple[str, ...] | list[str] = SECTIONS) -> list[str]:
    failed = [name for name in wanted if "error" in results.get(name, {"error": "missing"})]
    failed += [f"dispatch.{part}" for part, data in results.get("dispatch", {}).items() if "error" in data]
    return failed


def _section(name: str, measure: Callable[[], Any]) -> Any:
    """The section's figures, or {"error": ...} so one failure does not stop the others."""
    _progress(f"measuring {name}")
    started = time.perf_counter()
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        _progress(f"{name}: {time.perf_counter() - started:.1f} s")


def _split(figures: Any, parts: int) -> tuple:
    """A section that yields several results shares its error among them."""
    return figures if isinstance(figures, tuple) else (figures,) * parts


def _bandwidth_bytes(workload: Workload) -> int:
    return (64 if workload.quick else 1024) * machine.MIB


def _measured_rates(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Decoding rates measured in process with streaming off, and bert's forward passes per second."""
    rates: dict[str, dict[str, float]] = {}
    for family, modes in results["dispatch"]["in_process"].items():
        if family == "bert":
            forward = results["first_token"][family]["no_stream"]["forward"]["median"]
            rates[family] = {"forward pass": 1 / forward}
        else:
            figures = modes["no_stream"]
            rates[family] = {side: figures[side]["rate"] for side in ("plain", "modelrepl")}
    return rates


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
