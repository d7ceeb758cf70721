"""Several turns at once, timed honestly: who runs beside whom in a comparison (`compare_run`).

Two models on one device slow each other down, so the time each one's
figures show would include the other's work: under `auto` such models
answer one after another, while models that share nothing (a served model
beside a local one, models on different GPUs) answer at the same time, and
the comparison takes about as long as the slowest. `parallel` runs all at
once and marks the figures of those that shared a device; `sequential` runs
them one by one.

Turns run in worker threads, one per group; the calling (main) thread keeps
drawing, and takes Ctrl-C for all of them (`cancel_all_on_interrupt`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from repl.core.records import LoadedModel
from repl.core.turn import cancel_all_on_interrupt

MODES = ("auto", "parallel", "sequential")
REDRAWN_EVERY = 0.05  # seconds between two looks at the columns while the models answer


def devices_of(loaded: LoadedModel) -> set[str]:
    """Where a model computes: "cpu", "cuda:0", "server HOST:PORT"; several for a model spread over devices.

    Layers offloaded to disk are computed on the CPU.
    """
    names = set()
    for device in loaded.device.split("+"):
        device = device.strip()
        if device in ("disk", "meta"):
            device = "cpu"
        elif device == "cuda":
            device = "cuda:0"
        names.add(device)
    return names


def plan(mode: str, devices: Sequence[set[str]]) -> tuple[list[list[int]], set[int]]:
    """Groups of model indices (a group runs in turn, the groups at once) and the indices timed on a shared device."""
    count = len(devices)
    if mode == "sequential":
        return [list(range(count))], set()
    if mode == "parallel":
        shared = {i for i in range(count) for j in range(count) if i != j and devices[i] & devices[j]}
        return [[i] for i in range(count)], shared
    groups: list[list[int]] = []
    group_devices: list[set[str]] = []
    for index, used in enumerate(devices):
        touching = [g for g, seen in enumerate(group_devices) if seen & used]
        merged = sorted({i for g in touching for i in groups[g]} | {index})
        merged_devices = set(used).union(*(group_devices[g] for g in touching))
        groups = [group for g, group in enumerate(groups) if g not in touching] + [merged]
        group_devices = [seen for g, seen in enumerate(group_devices) if g not in touching] + [merged_devices]
    return sorted(groups), set()


def run_groups(
    groups: Sequence[Sequence[int]],
    work: Callable[[int], None],
    cancel: threading.Event,
    idle: Callable[[], None] | None = None,
) -> None:
    """Run `work(index)` for every index: each group's in turn, in a thread per group.

    Called from the main thread, which calls `idle` (drawing) while it waits.
    After Ctrl-C no further work starts: the caller sees which indices ran.
    """

    def run_group(group: Sequence[int]) -> None:
        try:
            for index in group:
                if cancel.is_set():
                    return
                work(index)
        except KeyboardInterrupt:  # a second Ctrl-C that landed between two turns
            return

    threads = [
        threading.Thread(target=run_group, args=(group,), name=f"modelrepl-compare-{number}", daemon=True)
        for number, group in enumerate(groups)
    ]
    with cancel_all_on_interrupt(cancel, lambda: threads):
        for thread in threads:
            thread.start()
        alive = threads
        while alive:
            if idle is not None:
                idle()
            alive[0].join(REDRAWN_EVERY)  # a join with a timeout lets Ctrl-C's handler run meanwhile
            alive = [thread for thread in alive if thread.is_alive()]
    if idle is not None:
        idle()
