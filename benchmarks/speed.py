"""Going faster than plain transformers: first reply after launch, streaming per step, int8, torch.compile.

- *First reply after launch*: modelrepl under a pseudo-terminal, a line sent
  `delay` seconds after the prompt appears; Enter to the end of the reply,
  against the same line sent again as the second turn; with the warm start
  (preload) and without; and the plain script's whole process beside them.
- *Streaming cost per step*: one `put` of each streamer once the reply already
  has N tokens, on the gpt2 checkpoint's tokenizer.
- *int8 against fp32*: the same checkpoint loaded as NAME and NAME@int8 in
  one REPL: decoding rate with streaming off (the tokens after the first over
  the time after the first, so the prompt's pass is left out), peak memory in a fresh process
  each, and quality (relative error of the next-token logits, greedy agreement
  over 64 tokens, bert's top-5 overlap). Run on gpt2, on a Llama shaped like
  SmolLM2-135M, and on bert.
- *torch.compile*: gpt2 fp32 with a static cache and a compiled forward,
  against eager: compile time and decoding rate. Measured, not adopted.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.repl_side import PROMPTS, BenchmarkError, isolated_environment, make_repl, modelrepl_command
from benchmarks.startup import expect_prompt, kill
from benchmarks.timing import Summary, Workload, alternate, summarise, timed

STREAM_LENGTHS = (32, 1024, 4096)
STREAM_STEPS_TIMED = 64
GREEDY_TOKENS = 64
FIRST_REPLY_TARGET = 1.3
INT8_TARGETS = {"gpt2": 3.0, "llama": 2.5}
# SmolLM2-135M's published shape; the vocabulary is the gpt2 checkpoint's tokenizer, padded.
LLAMA_135M = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
}
LLAMA_TINY = {
    **LLAMA_135M,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


# -- first reply after launch -------------------------------------------------------


def first_reply(checkpoints: dict[str, Path], workload: Workload, home: Path) -> dict[str, Any]:
    environment = {**isolated_environment(home), "PROMPT_TOOLKIT_NO_CPR": "1"}
    gpt2 = checkpoints["gpt2"]
    delay = 1.0 if workload.quick else 6.0
    line = PROMPTS["gpt2"]
    sides = {
        "preload": lambda: _two_turns(gpt2, line, delay, [], environment),
        "no_preload": lambda: _two_turns(gpt2, line, delay, ["--no-preload"], environment),
        "plain": lambda: {"process": _plain_process(gpt2, line, workload, environment)},
    }
    figures: dict[str, Any] = {"delay_s": delay}
    for name, records in alternate(sides, workload).items():
        figures[name] = {key: Summary.of([r[key] for r in records]).as_dict() for key in records[0]}
    for name in ("preload", "no_preload"):
        side = figures[name]
        side["ratio"] = side["first"]["median"] / side["second"]["median"]
    figures["preload"]["target"] = FIRST_REPLY_TARGET
    figures["preload"]["target_met"] = figures["preload"]["ratio"] <= FIRST_REPLY_TARGET
    return figures


def _two_turns(checkpoint: Path, line: str, delay: float, flags: list[str], environment: dict) -> dict[str, float]:
    """Enter to the end of the reply for the first line (sent `delay` s after the prompt) and for the second."""
    import pexpect

    command = modelrepl_command() + ["-m", f"gpt2={checkpoint}", "--no-log", "--no-stream", *flags]
    child = pexpect.spawn(command[0], command[1:], env=environment, encoding="utf-8", dimensions=(24, 200), timeout=120)
    try:
        expect_prompt(child, "gpt2")
        child.sendline("/stats on")  # the footer after each reply marks its end
        time.sleep(delay)
        seconds = {}
        for turn in ("first", "second"):
            child.sendline(line)
            started = time.perf_counter()
            child.expect(r"\[\d+ in, \d+ new, [^]]*total")  # no ttft: the reply is not streamed
            seconds[turn] = time.perf_counter() - started
    except (pexpect.TIMEOUT, pexpect.EOF) as exc:
        raise BenchmarkError(f"modelrepl did not answer under a terminal: {type(exc).__name__}") from None
    finally:
        kill(child)  # the measurement is done; a Ctrl-D typed between two prompts could be lost
    return seconds


def _plain_process(checkpoint: Path, line: str, workload: Workload, environment: dict) -> float:
    script = Path(__file__).resolve().parent / "plain.py"
    command = [sys.executable, str(script), "gpt2", str(checkpoint), line, str(workload.new_tokens)]
    started = time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, stdin=subprocess.DEVNULL)
    if finished.returncode != 0:
        raise BenchmarkError(f"plain script exited {finished.returncode}: {finished.stderr[-300:]!r}")
    return time.perf_counter() - started


# -- streaming cost per step --------------------------------------------------------


def streaming(checkpoints: dict[str, Path], workload: Workload) -> dict[str, Any]:
    """Seconds of one streamer step once the reply has N tokens: whole-reply decoding against DecodeStream."""
    import torch
    from transformers import AutoTokenizer

    from repl import hf
    from repl.api import RunControl

    tokenizer = AutoTokenizer.from_pretrained(checkpoints["gpt2"])
    generator = random.Random(0)
    ids = [generator.randrange(len(tokenizer)) for _ in range(max(STREAM_LENGTHS) + STREAM_STEPS_TIMED)]
    figures: dict[str, Any] = {}
    for length in STREAM_LENGTHS:
        row = {}
        for name, streamer_class in (("whole", hf.WholeCharacterStreamer), ("incremental", hf.IncrementalStreamer)):
            streamer = streamer_class(tokenizer, RunControl(stream=lambda _: None))
            streamer.put(torch.tensor([[0]]))  # the prompt
            streamer.put(torch.tensor(ids[:length]))  # the reply so far, in one step
            steps = [torch.tensor([token]) for token in ids[length : length + STREAM_STEPS_TIMED]]
            started = time.perf_counter()
            for step in steps:
                streamer.put(step)
            row[name] = (time.perf_counter() - started) / len(steps)
        row["ratio"] = row["whole"] / row["incremental"]
        figures[str(length)] = row
    return figures


# -- int8 against fp32 -------------------------------------------------------------


def int8(checkpoints: dict[str, Path], workload: Workload, cache: Path, out: IO[str]) -> dict[str, Any]:
    llama = prepare_llama(cache, checkpoints["gpt2"], real_size=not workload.quick, new_tokens=workload.new_tokens)
    figures: dict[str, Any] = {}
    for family, checkpoint in (("gpt2", checkpoints["gpt2"]), ("llama", llama), ("bert", checkpoints["bert"])):
        plugin = "bert" if family == "bert" else "gpt2"  # the gpt2 plugin takes any causal checkpoint
        line = PROMPTS[plugin]
        repl = make_repl({plugin: checkpoint}, workload.new_tokens, out)
        repl.session.set_everywhere("stream", False)
        names = {"fp32": plugin, "int8": f"{plugin}@int8"}
        expected = 0 if family == "bert" else workload.new_tokens
        sides = {precision: _turn_timer(repl, name, line, expected, split=True) for precision, name in names.items()}
        rounds = alternate(sides, workload)
        row: dict[str, Any] = {}
        for precision, name in names.items():
            side = row[precision] = {key: summarise(rounds[precision], key).as_dict() for key in rounds[precision][0]}
            if family == "bert":
                side["rate"] = 1 / side["seconds"]["median"]
            else:  # decoding: the tokens after the first, over the time after the first (the prompt's pass)
                side["rate"] = (expected - 1) / side["decode_seconds"]["median"]
                side["reply_rate"] = expected / side["seconds"]["median"]
            side["weight_bytes"] = repl.session.loaded[name].memory_bytes
        row["speedup"] = row["int8"]["rate"] / row["fp32"]["rate"]
        row["unit"] = "forward passes/s" if family == "bert" else "decode tokens/s"
        if family in INT8_TARGETS:
            row["target"] = INT8_TARGETS[family]
            row["target_met"] = row["speedup"] >= INT8_TARGETS[family]
        row["quality"] = _quality(repl, names, family, line)
        for name in names.values():  # no mapping of the checkpoint stays here to keep its pages in the fresh processes
            repl.session.unload(name)
        for precision, name in names.items():  # a fresh process each; the quick run checks it on gpt2 only
            if family == "gpt2" or not workload.quick:
                row[precision]["peak_mib"] = _peak_mib(name, checkpoint, line, workload)
        if "peak_mib" in row["int8"]:
            row["lower_peak_memory"] = row["int8"]["peak_mib"] < row["fp32"]["peak_mib"]
        figures[family] = row
    return figures


def _turn_timer(repl, name: str, line: str, expected: int, split: bool = False):
    """Seconds of one reply of model `name`, checked to have made the expected tokens.

    With `split`, a record: the whole reply's seconds and those after the first token.
    """

    def run() -> Any:
        turn = repl.turn(name, line, stream=False)
        if not turn.ok or turn.stats.new_tokens != expected:
            raise BenchmarkError(f"{name} made {turn.stats.new_tokens} tokens, not {expected}: {turn.error}")
        if not split:
            return turn.stats.seconds
        return {"seconds": turn.stats.seconds, "decode_seconds": turn.stats.seconds - (turn.stats.ttft or 0.0)}

    return run


def _quality(repl, names: dict[str, str], family: str, line: str) -> dict[str, float]:
    models = {precision: repl.session.loaded[name].handle for precision, name in names.items()}
    tokenizer = repl.session.loaded[names["fp32"]].tokenizer
    return (bert_quality if family == "bert" else causal_quality)(models, tokenizer, line)


def causal_quality(models: dict[str, Any], tokenizer: Any, line: str) -> dict[str, float]:
    """Relative error of the next-token logits, and how often int8 picks fp32's greedy token over 64 steps."""
    import torch

    prompt = torch.tensor([tokenizer(line)["input_ids"]])
    with torch.inference_mode():
        fp32, int8 = (models[p](input_ids=prompt).logits[0, -1] for p in ("fp32", "int8"))
        relative_error = float((int8 - fp32).norm() / fp32.norm())
        greedy = models["fp32"].generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=GREEDY_TOKENS,
            min_new_tokens=GREEDY_TOKENS,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
        # int8 reads fp32's greedy text and predicts each of its tokens: the fraction it gets right.
        predicted = models["int8"](input_ids=greedy).logits[0, prompt.shape[1] - 1 : -1].argmax(-1)
    agreement = float((predicted == greedy[0, prompt.shape[1] :]).float().mean())
    return {"logits_relative_error": relative_error, "greedy_agreement": agreement, "greedy_tokens": GREEDY_TOKENS}


def bert_quality(models: dict[str, Any], tokenizer: Any, line: str) -> dict[str, float]:
    """Relative error of the mask's logits and the share of fp32's top 5 candidates int8 also ranks top 5."""
    import torch

    encoded = tokenizer(line.replace("[MASK]", tokenizer.mask_token), return_tensors="pt")
    masks = encoded["input_ids"][0] == tokenizer.mask_token_id
    with torch.inference_mode():
        fp32, int8 = (models[p](**encoded).logits[0, masks] for p in ("fp32", "int8"))
    top_fp32, top_int8 = fp32.topk(5).indices.tolist(), int8.topk(5).indices.tolist()
    overlap = sum(len(set(a) & set(b)) for a, b in zip(top_fp32, top_int8)) / (5 * len(top_fp32))
    return {"logits_relative_error": float((int8 - fp32).norm() / fp32.norm()), "top5_overlap": overlap}


def _peak_mib(name: str, checkpoint: Path, line: str, workload: Workload) -> float:
    """Peak resident memory (VmHWM) of a fresh process that loads `name` and answers one line."""
    script = (
        "import sys, json\n"
        "from benchmarks.repl_side import make_repl\n"
        "name, checkpoint, line, tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
        "plugin = name.partition('@')[0]\n"
        "repl = make_repl({plugin: checkpoint}, tokens, open('/dev/null', 'w'))\n"
        "turn = repl.turn(name, line, stream=False)\n"
        "assert turn.ok, turn.error\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "print(json.dumps(int(status) / 1024))\n"
    )
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(
        [sys.executable, "-c", script, name, str(checkpoint), line, str(workload.new_tokens)],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=root,
    )
    if finished.returncode != 0:
        raise BenchmarkError(f"peak memory of {name}: {finished.stderr[-300:]}")
    return float(json.loads(finished.stdout.splitlines()[-1]))


def prepare_llama(cache: Path, gpt2: Path, *, real_size: bool, new_tokens: int) -> Path:
    """A Llama shaped like SmolLM2-135M (random weights), with the gpt2 checkpoint's tokenizer, built once."""
    import shutil

    import torch
    import transformers

    config = LLAMA_135M if real_size else LLAMA_TINY
    directory = cache / ("real" if real_size else "tiny") / "llama"
    recipe = {"config": config, "new_tokens": new_tokens}
    recipe_file = directory / "benchmark-recipe.json"
    if recipe_file.exists() and json.loads(recipe_file.read_text(encoding="utf-8")) == recipe:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gpt2)
    tokenizer.save_pretrained(directory)
    eos = tokenizer.eos_token_id
    torch.manual_seed(0)
    vocabulary = {"vocab_size": max(config["vocab_size"], len(tokenizer))} if not real_size else {}
    model = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**{**config, **vocabulary}, bos_token_id=eos, eos_token_id=eos)
    )
    model.generation_config.update(min_new_tokens=new_tokens, max_new_tokens=new_tokens)
    model.eval().save_pretrained(directory)
    recipe_file.write_text(json.dumps(recipe), encoding="utf-8")
    return directory


# -- torch.compile -----------------------------------------------------------------


def compiled(checkpoints: dict[str, Path], workload: Workload, out: IO[str]) -> dict[str, Any]:
    """gpt2 fp32: eager against a compiled forward with a static cache (quick: compiled with the eager backend)."""
    import torch

    repl = make_repl({"gpt2": checkpoints["gpt2"]}, workload.new_tokens, out)
    repl.session.set_everywhere("stream", False)
    line = PROMPTS["gpt2"]
    eager = _turn_timer(repl, "gpt2", line, workload.new_tokens)
    eager_seconds = [eager() for _ in range(workload.warmup + workload.runs)][workload.warmup :]
    model = repl.session.model("gpt2").handle
    model.generation_config.cache_implementation = "static"
    backend = "eager" if workload.quick else "inductor"
    model.forward = torch.compile(model.forward, backend=backend, dynamic=False)
    compile_seconds = timed(_turn_timer(repl, "gpt2", line, workload.new_tokens))  # the first call compiles
    compiled_timer = _turn_timer(repl, "gpt2", line, workload.new_tokens)
    compiled_seconds = [compiled_timer() for _ in range(workload.runs)]
    eager_summary, compiled_summary = Summary.of(eager_seconds), Summary.of(compiled_seconds)
    return {
        "backend": backend,
        "eager": eager_summary.as_dict(),
        "compiled": compiled_summary.as_dict(),
        "first_compiled_reply_s": compile_seconds,
        "speedup": eager_summary.median / compiled_summary.median,
    }
