"""A long session: 1,000 turns in one REPL, and memory at the end where it was near the start.

Memory is measured after turn 100, when the model, tokenizer and
transformers' caches have settled, and after turn 1,000. The session keeps
every turn on purpose (/history, /session save), so both measurements are
taken right after /clear: what remains of 900 turns is what leaked.
"""

import gc
import os
import tracemalloc

import pytest

TURNS = 1000
SETTLED_AFTER = 100
# Python objects left behind by 900 turns. Measured: 80-100 KiB, which stops growing after a few
# hundred turns (small caches inside transformers). Anything kept per turn from about 200 bytes up
# goes over: a Turn record (1.3 KiB, measured 1.2 MiB in all), a dict of input tensors (measured
# 400 KiB in all), a KV cache. A single bare tensor handle per turn (~80 bytes) stays under.
PYTHON_GROWTH_LIMIT = 256 * 1024
# Resident memory, which also sees tensor data (tracemalloc does not). Measured: 2.5-5.5 MiB of
# allocator noise, tracemalloc's own tables excluded. Keeping ~10 KiB of tensor data per turn
# (one step's logits of the tiny gpt2) would add 9 MiB on top.
RESIDENT_GROWTH_LIMIT = 12 * 1024 * 1024


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def one_torch_thread():
    """On a busy 2-core machine torch's spinning worker threads make each tiny step ~100 times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory is read from /proc")
def test_a_thousand_turns_leave_memory_where_it_was(builtin_repl, one_torch_thread):
    repl = builtin_repl(active="gpt2", gpt2={"max_new_tokens": 2, "stream": False})

    def turns(numbers):
        for number in numbers:
            (turn,) = repl.evaluate(f"Turn {number}: once upon a time").turns
            assert turn.ok and turn.stats.new_tokens == 2, turn.error

    def settle():
        assert repl.evaluate("/clear").ok
        gc.collect()

    turns(range(SETTLED_AFTER))
    settle()
    resident_before = resident_bytes()
    tracemalloc.start()
    try:
        turns(range(SETTLED_AFTER, TURNS))
        assert len(repl.session.turns) == TURNS - SETTLED_AFTER  # all kept until /clear
        settle()
        python_growth = tracemalloc.get_traced_memory()[0]
        tracing_overhead = tracemalloc.get_tracemalloc_memory()
        resident_growth = resident_bytes() - resident_before - tracing_overhead
    finally:
        tracemalloc.stop()

    assert python_growth < PYTHON_GROWTH_LIMIT, f"{python_growth} bytes of Python objects kept by 900 turns"
    assert resident_growth < RESIDENT_GROWTH_LIMIT, f"resident memory grew by {resident_growth} bytes over 900 turns"
    assert repl.evaluate("Hello").turns[0].ok
