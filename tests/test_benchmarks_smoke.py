"""The benchmark still runs: its quick mode on tiny checkpoints fills every section.

The figures of a quick run mean nothing (one run, tiny models, a shared
machine), so nothing here compares timings; it checks that each section
measured what it claims to, with the work done on both sides.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import SECTIONS as MEASURED

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("machine", *MEASURED)  # the machine is described, every other section measured
FAMILIES = ("mt0", "gpt2", "bert")

pytestmark = pytest.mark.slow  # runs the benchmark in a fresh interpreter


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("benchmarks")
    figures = directory / "figures.json"
    finished = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--cache",
            str(directory / "cache"),
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return finished, json.loads(figures.read_text(encoding="utf-8")) if figures.exists() else None


def test_quick_run_succeeds_and_prints_every_table(quick_run):
    finished, results = quick_run
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    for title in (
        "Start-up",
        "Dispatch overhead, in process",
        "Dispatch overhead, end to end",
        "Time to first token",
        "Load time",
        "Peak resident memory",
        "/compare",
        "memory-bandwidth limit",
        "First reply after launch",
        "Streaming cost per step",
        "Markdown while streaming",
        "int8 against fp32",
        "torch.compile",
        "GGUF files through llama.cpp",
    ):
        assert title in finished.stdout
    assert results["mode"] == "quick"
    for section in SECTIONS:
        assert section in results and "error" not in results[section], section


def test_startup_times_the_help_and_the_prompt(quick_run):
    startup = quick_run[1]["startup"]
    for command in ("python -c pass", "python -c 'import transformers'", "modelrepl --help", "modelrepl prompt shown"):
        assert startup[command]["median"] > 0
    assert startup["modelrepl --help"]["target"] == 0.3
    assert startup["modelrepl prompt shown"]["target"] == 0.5


def test_dispatch_compares_both_sides_for_every_family_and_streaming_mode(quick_run):
    dispatch = quick_run[1]["dispatch"]
    for family in FAMILIES:
        for mode in ("stream", "no_stream"):
            figures = dispatch["in_process"][family][mode]
            assert figures["plain"]["rate"] > 0 and figures["modelrepl"]["rate"] > 0
            assert figures["ratio"] == pytest.approx(
                figures["plain"]["seconds"]["median"] / figures["modelrepl"]["seconds"]["median"]
            )
            assert figures["python_calls"]["plain"] > 0 and figures["python_calls"]["modelrepl"] > 0
            first_token = quick_run[1]["first_token"][family][mode]
            assert first_token["ttft"]["median"] > 0 and first_token["forward"]["median"] > 0
    assert dispatch["end_to_end"]["gpt2"]["stream"]["modelrepl"]["rate"] > 0


def test_second_turn_reloads_nothing_and_tokenizes_only_what_is_new(quick_run):
    load = quick_run[1]["load"]["gpt2"]
    assert load["second_turn"]["hooks"] == ["tokenize", "run", "decode"]
    assert load["second_turn"]["tokenizer_encodes"] == 1
    # /context on keeps the turns from then on: the new line, and the one earlier turn not yet seen.
    assert load["context_turn"]["earlier_turns"] == 1
    assert load["context_turn"]["tokenizer_encodes"] == 2


def test_memory_is_measured_before_and_after_unload(quick_run):
    memory = quick_run[1]["memory"]["gpt2"]
    repl = memory["modelrepl"]
    assert repl["before_load"]["median"] < repl["peak"]["median"]
    assert repl["after_unload"]["median"] > 0 and repl["after_second_unload"]["median"] > 0
    assert memory["plain"]["peak"]["median"] > 0 and memory["peak_ratio"] > 0


def test_compare_and_decode_limit_cover_the_three_models(quick_run):
    results = quick_run[1]
    assert sorted(results["compare"]["models"]) == sorted(FAMILIES)
    assert results["compare"]["ratio"] > 0
    for family in FAMILIES:
        limit = results["decode_limit"][family]
        assert limit["weight_bytes_per_step"] > 0 and limit["limit_steps_per_s"] > 0
    assert results["machine"]["memory_bandwidth"]["read"] > 0


def test_first_reply_is_timed_with_and_without_preload_against_the_plain_script(quick_run):
    first_reply = quick_run[1]["first_reply"]
    for side in ("preload", "no_preload"):
        assert first_reply[side]["first"]["median"] > 0 and first_reply[side]["second"]["median"] > 0
        assert first_reply[side]["ratio"] > 0
    assert first_reply["preload"]["target"] == 1.3
    assert first_reply["plain"]["process"]["median"] > 0


def test_streaming_cost_is_measured_for_both_streamers_at_each_length(quick_run):
    streaming = quick_run[1]["streaming"]
    assert sorted(streaming, key=int) == ["32", "1024", "4096"]
    for row in streaming.values():
        assert row["whole"] > 0 and row["incremental"] > 0


def test_markdown_cost_is_measured_three_ways_at_each_length(quick_run):
    markdown = quick_run[1]["markdown"]
    assert sorted(markdown, key=int) == ["100", "1000", "4000"]
    for row in markdown.values():
        assert all(row[way]["median"] > 0 for way in ("every_token", "five_a_second", "whole"))
        assert row["chars_per_token"]["whole"] > row["chars_per_token"]["every_token"] > 0


def test_int8_is_measured_against_fp32_with_quality_for_every_model(quick_run):
    int8 = quick_run[1]["int8"]
    assert sorted(int8) == ["bert", "gpt2", "llama"]
    for family, row in int8.items():
        assert row["fp32"]["rate"] > 0 and row["int8"]["rate"] > 0 and row["speedup"] > 0
        assert row["int8"]["weight_bytes"] > 0 and row["quality"]["logits_relative_error"] >= 0
        agreement = row["quality"]["top5_overlap" if family == "bert" else "greedy_agreement"]
        assert 0 <= agreement <= 1
    assert int8["gpt2"]["int8"]["weight_bytes"] < int8["gpt2"]["fp32"]["weight_bytes"]
    assert int8["gpt2"]["int8"]["peak_mib"] > 0 and int8["gpt2"]["target"] == 3.0


def test_torch_compile_is_timed_against_eager(quick_run):
    compiled = quick_run[1]["compile"]
    assert compiled["eager"]["median"] > 0 and compiled["compiled"]["median"] > 0 and compiled["speedup"] > 0


def test_gguf_files_are_measured_through_modelrepl_beside_llama_cpp_python_and_transformers(quick_run):
    pytest.importorskip("llama_cpp", reason='the gguf extra is not installed: pip install -e ".[gguf]"')
    gguf = quick_run[1]["gguf"]
    for shape in ("gpt2", "llama"):
        row = gguf[shape]
        for side in ("fp32", "int8", "gguf f16", "direct f16", "gguf q8_0", "direct q8_0"):
            assert row[side]["decode_rate"] > 0 and row[side]["prompt_rate"] > 0
        assert row["ratio q8_0"]["target"] == 0.9 and row["ratio f16"]["decode"] > 0
