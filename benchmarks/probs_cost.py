"""What `/set probs on` costs: decoding with and without keeping every step's scores.

    python benchmarks/probs_cost.py            real-size gpt2 and mt0, 32 tokens, 5 runs after a warm-up
    python benchmarks/probs_cost.py --quick    tiny checkpoints, one run: checks that it still works

With probs on, `generate` keeps the raw logits and the processed scores of
every step (two vocabulary-sized vectors per token) and `decode` turns them
into log-probabilities and the top alternatives. Both sides run the same
turns in the same REPL, alternating, without streaming; the figure is the
ratio of the median wall times of one turn (probs on / probs off).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import checkpoints as checkpoint_builder
from benchmarks.repl_side import PROMPTS, checked_turns, make_repl, set_streaming
from benchmarks.timing import Summary, Workload, alternate, timed

HERE = Path(__file__).resolve().parent
FAMILIES = ("gpt2", "mt0")


def measure(family: str, cache: Path, workload: Workload) -> dict:
    checkpoint = checkpoint_builder.prepare(family, cache, real_size=not workload.quick, new_tokens=workload.new_tokens)
    repl = make_repl({family: checkpoint}, workload.new_tokens, io.StringIO())
    repl.session.active = family
    set_streaming(repl, False)

    def turn(probs: bool):
        def run() -> float:
            repl.session.set(family, "probs", probs)
            return timed(lambda: checked_turns(repl, PROMPTS[family], workload.new_tokens))

        return run

    times = alternate({"off": turn(False), "on": turn(True)}, workload)
    off, on = Summary.of(times["off"]), Summary.of(times["on"])
    return {"off": off.as_dict(), "on": on.as_dict(), "ratio": on.median / off.median}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/probs_cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny checkpoints, one run: a smoke test")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", metavar="DIR", help="built checkpoints")
    args = parser.parse_args(argv)
    workload = Workload.smoke() if args.quick else Workload.full()
    cache = Path(tempfile.mkdtemp()) if args.quick else args.cache
    results = {family: measure(family, cache, workload) for family in FAMILIES}
    for family, figures in results.items():
        print(
            f"{family}: probs off {figures['off']['median']:.3f}s, on {figures['on']['median']:.3f}s "
            f"per {workload.new_tokens}-token reply (median of {figures['on']['runs']}): ratio {figures['ratio']:.3f}"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
