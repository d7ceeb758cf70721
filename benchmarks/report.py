"""The results as tables for the terminal (the JSON file holds every figure)."""

from __future__ import annotations

from typing import Any

from repl.core.layout import table
from repl.core.units import human_bytes

MIB = 1 / (1 << 20)
DISPATCH_TARGET = 0.97
MEMORY_TARGET = 1.10


def render(results: dict[str, Any]) -> str:
    parts = [_machine(results["machine"])]
    if results["mode"] == "quick":
        parts.append(
            "QUICK RUN: tiny checkpoints, one run each. It checks that the benchmark works; its figures mean nothing."
        )
    for title, section, renderer in (
        ("Start-up", "startup", _startup),
        (
            "Dispatch overhead, in process (ratio: rate of modelrepl / rate of plain transformers)",
            ("dispatch", "in_process"),
            _dispatch,
        ),
        (
            "Dispatch overhead, end to end (whole process: start, load, one reply)",
            ("dispatch", "end_to_end"),
            _dispatch,
        ),
        ("Time to first token against one forward pass over the prompt (modelrepl)", "first_token", _first_token),
        ("Load time (model and tokenizer) and the second turn", "load", _load),
        ("Peak resident memory with one model loaded, and after /unload", "memory", _memory),
        ("/compare of three models against three single runs", "compare", _compare),
        (
            "compare_run: a served model (transformers serve) beside a local one, alone and in /compare",
            "compare_run",
            _compare_run,
        ),
        (
            "Decoding speed against its memory-bandwidth limit (in process, streaming off)",
            "decode_limit",
            _decode_limit,
        ),
        ("First reply after launch (gpt2; Enter to the end of the reply)", "first_reply", _first_reply),
        ("Streaming cost per step (gpt2 tokenizer; one step once the reply has N tokens)", "streaming", _streaming),
        (
            "Markdown while streaming: one token once the reply has N tokens (80 columns, output thrown away)",
            "markdown",
            _markdown,
        ),
        ("int8 against fp32 (in process, streaming off; peak memory in a fresh process each)", "int8", _int8),
        ("torch.compile (gpt2 fp32, static cache): measured, not adopted", "compile", _compile),
        (
            "GGUF files through llama.cpp (in process, streaming off): modelrepl's gguf model, its transformers "
            "models, and llama-cpp-python called directly",
            "gguf",
            _gguf,
        ),
    ):
        data = _lookup(results, section)
        if data is None:
            continue
        body = f"error: {data['error']}" if "error" in data else renderer(data)
        parts.append(f"{title}\n{body}")
    return "\n\n".join(parts) + "\n"


def _lookup(results: dict[str, Any], section: str | tuple[str, ...]) -> Any:
    keys = (section,) if isinstance(section, str) else section
    data: Any = results
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        if "error" in data:
            return data
        data = data[key]
    return data


def _spread(summary: dict[str, float], scale: float = 1.0, digits: int = 3) -> str:
    """'median (min-max)'."""
    median, low, high = (summary[key] * scale for key in ("median", "min", "max"))
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def _machine(machine: dict[str, Any]) -> str:
    ram = human_bytes(machine["ram_bytes"]) if machine.get("ram_bytes") else "?"
    bandwidth = machine.get("memory_bandwidth", {})
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {ram} RAM; python {machine['python']}, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), transformers {machine['transformers']}",
        "Load average (1 min) at start {:.2f}, at end {:.2f}".format(
            machine["load_average"][0], machine["load_average_end"][0]
        ),
    ]
    if "error" in bandwidth:
        lines.append(f"Memory bandwidth: error: {bandwidth['error']}")
    elif bandwidth:
        lines.append(
            "Memory bandwidth: " + ", ".join(f"{name} {value / 1e9:.1f} GB/s" for name, value in bandwidth.items())
        )
    return "\n".join(lines)


def _startup(data: dict[str, Any]) -> str:
    rows = [
        (
            name,
            _spread(summary),
            f"< {summary['target']} s {_verdict(summary['target_met'])}" if "target" in summary else "",
        )
        for name, summary in data.items()
    ]
    return table(("command", "seconds: median (min-max)", "target"), rows)


def _dispatch(data: dict[str, Any]) -> str:
    rows = []
    for family, modes in data.items():
        for mode, figures in modes.items():
            calls = figures.get("python_calls")
            rows.append(
                (
                    family,
                    mode.replace("_", " "),
                    figures["plain"]["unit"],
                    f"{figures['plain']['rate']:.2f}",
                    f"{figures['modelrepl']['rate']:.2f}",
                    _spread(figures["plain"]["seconds"]),
                    _spread(figures["modelrepl"]["seconds"]),
                    f"{figures['ratio']:.3f} {_verdict(figures['ratio'] >= DISPATCH_TARGET)}",
                    f"{figures['ratio_of_min']:.3f}",
                    f"{figures['cpu_ratio']:.3f}",
                    "-" if calls is None else f"{calls['extra_per_reply']:+d}",
                )
            )
    headers = (
        "family",
        "mode",
        "unit",
        "plain",
        "modelrepl",
        "plain s/reply",
        "modelrepl s/reply",
        f"ratio (>= {DISPATCH_TARGET})",
        "of min",
        "of CPU s",
        "extra Python calls",
    )
    return table(headers, rows)


def _first_token(data: dict[str, Any]) -> str:
    rows = [
        (
            family,
            mode.replace("_", " "),
            _spread(figures["ttft"]),
            _spread(figures["forward"]),
            f"{figures['ratio']:.2f}",
        )
        for family, modes in data.items()
        for mode, figures in modes.items()
    ]
    return table(("family", "mode", "ttft s", "forward pass s", "ttft / forward"), rows)


def _load(data: dict[str, Any]) -> str:
    rows = []
    for family, figures in data.items():
        second = figures["second_turn"]
        rows.append(
            (
                family,
                _spread(figures["plain"]),
                _spread(figures["modelrepl"]),
                f"{figures['ratio']:.3f}",
                f"{figures['cpu_ratio']:.3f}",
                " ".join(second["hooks"]) or "-",
                str(second["tokenizer_encodes"]),
                _context_encodes(figures.get("context_turn")),
                f"{second['first_seconds']:.3f} / {second['seconds']:.3f}",
            )
        )
    headers = (
        "family",
        "plain s",
        "modelrepl s",
        "ratio",
        "of CPU s",
        "2nd turn hooks",
        "2nd turn encodes",
        "with context",
        "turn 1 / turn 2 s",
    )
    return table(headers, rows)


def _context_encodes(context_turn: dict[str, Any] | None) -> str:
    if context_turn is None:
        return "-"
    return f"{context_turn['tokenizer_encodes']} ({context_turn['earlier_turns']} earlier turns)"


def _memory(data: dict[str, Any]) -> str:
    rows = []
    for family, figures in data.items():
        plain, repl = figures["plain"], figures["modelrepl"]
        rows.append(
            (
                family,
                _spread(plain["peak"], MIB, 0),
                _spread(repl["peak"], MIB, 0),
                f"{figures['peak_ratio']:.3f} {_verdict(figures['peak_ratio'] <= MEMORY_TARGET)}",
                _median_mib(repl["before_load"]),
                _median_mib(repl["loaded"]),
                _median_mib(repl["after_unload"]),
                _median_mib(repl["after_second_unload"]),
                _median_mib(plain["after_unload"]),
            )
        )
    headers = (
        "family",
        "plain peak MiB",
        "modelrepl peak MiB",
        f"ratio (<= {MEMORY_TARGET})",
        "before load",
        "loaded",
        "after /unload",
        "after 2nd load+unload",
        "plain after del",
    )
    return table(headers, rows)


def _median_mib(summary: dict[str, float]) -> str:
    return f"{summary['median'] * MIB:.0f}"


def _compare(data: dict[str, Any]) -> str:
    return table(
        ("models", "/compare s", "sum of single runs s", "ratio"),
        [(", ".join(data["models"]), _spread(data["compare"]), _spread(data["singles_sum"]), f"{data['ratio']:.3f}")],
    )


def _compare_run(data: dict[str, Any]) -> str:
    rows = [
        ("gpt2 alone (local)", f"{data['local_tokens']} tok", _spread(data["gpt2"])),
        ("remote alone (served)", f"{data['remote_tokens']} tok", _spread(data["remote"])),
        ("/compare gpt2 remote, compare_run auto", "both", _spread(data["auto"])),
        ("/compare gpt2 remote, compare_run sequential", "both", _spread(data["sequential"])),
    ]
    ratios = (
        f"auto / the slower alone: {data['auto_to_slower']:.2f}; auto / the sum: {data['auto_to_sum']:.2f}; "
        f"sequential / the sum: {data['sequential_to_sum']:.2f}"
    )
    return table(("run", "tokens", "seconds"), rows) + "\n" + ratios


def _decode_limit(data: dict[str, Any]) -> str:
    rows = []
    for family, figures in data.items():
        measured = figures["measured"]
        rows.append(
            (
                family,
                human_bytes(figures["weight_bytes_per_step"]),
                figures["unit"],
                f"{figures['limit_steps_per_s']:.1f}",
                f"{figures['matvec_limit_steps_per_s']:.1f}",
                " / ".join(
                    f"{side} {rate:.2f} ({figures['fraction_of_limit'][side]:.0%})" for side, rate in measured.items()
                ),
            )
        )
    return table(
        (
            "family",
            "weights read per step",
            "unit",
            "limit (read)",
            "limit (matvec)",
            "measured (fraction of read limit)",
        ),
        rows,
    )


def _first_reply(data: dict[str, Any]) -> str:
    rows = []
    for side in ("preload", "no_preload"):
        figures = data[side]
        target = f"<= {figures['target']} {_verdict(figures['target_met'])}" if "target" in figures else ""
        first, second = _spread(figures["first"]), _spread(figures["second"])
        rows.append((side.replace("_", " "), first, second, f"{figures['ratio']:.2f}", target))
    rows.append(("plain script, whole process", _spread(data["plain"]["process"]), "-", "-", ""))
    title = f"first line sent {data['delay_s']:g} s after the prompt appears"
    return title + "\n" + table(("modelrepl", "first reply s", "second reply s", "first / second", "target"), rows)


def _streaming(data: dict[str, Any]) -> str:
    rows = [
        (length, f"{row['whole'] * 1e3:.4f}", f"{row['incremental'] * 1e3:.4f}", f"{row['ratio']:.1f}")
        for length, row in data.items()
    ]
    return table(("tokens so far", "whole-reply decode ms/step", "DecodeStream ms/step", "ratio"), rows)


def _markdown(data: dict[str, Any]) -> str:
    rows = [
        (
            length,
            _spread(row["every_token"], 1e3),
            _spread(row["five_a_second"], 1e3),
            _spread(row["whole"], 1e3),
            f"{row['ratio']:.1f}",
            f"{row['chars_per_token']['every_token']:.0f} / {row['chars_per_token']['whole']:.0f}",
        )
        for length, row in data.items()
    ]
    headers = (
        "tokens so far",
        "streamed, every token ms",
        "streamed, 5/s ms",
        "whole reply ms",
        "whole / every token",
        "chars rendered per token (every / whole)",
    )
    return table(headers, rows)


def _int8(data: dict[str, Any]) -> str:
    rows = []
    for family, row in data.items():
        quality = row["quality"]
        agreement = (
            f"top-5 overlap {quality['top5_overlap']:.2f}"
            if "top5_overlap" in quality
            else f"greedy agreement {quality['greedy_agreement']:.2f} of {quality['greedy_tokens']}"
        )
        target = f">= {row['target']} {_verdict(row['target_met'])}" if "target" in row else ""
        rows.append(
            (
                family,
                row["unit"],
                f"{row['fp32']['rate']:.2f}",
                f"{row['int8']['rate']:.2f}",
                f"{row['speedup']:.2f}",
                target,
                _peaks(row),
                f"{human_bytes(row['fp32']['weight_bytes'])} / {human_bytes(row['int8']['weight_bytes'])}",
                f"{quality['logits_relative_error']:.3f}",
                agreement,
            )
        )
    headers = (
        "model",
        "unit",
        "fp32",
        "int8",
        "speed-up",
        "target",
        "peak MiB fp32/int8",
        "weights",
        "logits rel. err",
        "agreement",
    )
    return table(headers, rows)


def _peaks(row: dict[str, Any]) -> str:
    if "peak_mib" not in row["int8"]:
        return "-"
    verdict = "lower" if row["lower_peak_memory"] else "NOT lower"
    return f"{row['fp32']['peak_mib']:.0f} / {row['int8']['peak_mib']:.0f} {verdict}"


def _compile(data: dict[str, Any]) -> str:
    rows = [
        (
            data["backend"],
            _spread(data["eager"]),
            _spread(data["compiled"]),
            f"{data['first_compiled_reply_s']:.1f}",
            f"{data['speedup']:.2f}",
        )
    ]
    return table(("backend", "eager s/reply", "compiled s/reply", "first compiled reply s", "speed-up"), rows)


def _gguf(data: dict[str, Any]) -> str:
    rows = []
    for shape in ("gpt2", "llama"):
        row = data[shape]
        for side in ("fp32", "int8", "gguf f16", "direct f16", "gguf q8_0", "direct q8_0"):
            figures = row[side]
            ratio = row.get(f"ratio {side.removeprefix('gguf ')}") if side.startswith("gguf") else None
            against = (
                f"{ratio['decode']:.2f} / {ratio['prompt']:.2f} >= {ratio['target']} {_verdict(ratio['target_met'])}"
                if ratio
                else ""
            )
            rows.append((shape, side, f"{figures['decode_rate']:.1f}", f"{figures['prompt_rate']:.1f}", against))
    headers = ("shape", "side", "decode tok/s", f"prompt tok/s ({data['prompt_tokens']})", "of direct: decode / prompt")
    bandwidth = data["memory_bandwidth"]
    machine = (
        f"{data['threads']} threads, llama-cpp-python {data['llama_cpp_python']}; memory read "
        f"{bandwidth['read'] / 1e9:.1f} GB/s, float32 matrix-vector {bandwidth['matvec'] / 1e9:.1f} GB/s; files "
        + ", ".join(
            f"{shape} {quant} {human_bytes(size)}"
            for shape in ("gpt2", "llama")
            for quant, size in data[shape]["file_bytes"].items()
        )
    )
    return machine + "\n" + table(headers, rows)
