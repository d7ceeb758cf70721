"""The gguf model: GGUF files of tiny checkpoints (repl.testing.build_gguf) run by llama.cpp, beside transformers.

The f32 files hold exactly the checkpoints' weights, so llama.cpp must answer
what transformers answers: the same greedy tokens, the same log-probabilities
(to the float32 rounding of another order of summation), the same taught chat
replies through the same chat template.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import offline_hub

pytest.importorskip("llama_cpp", reason='the gguf extra is not installed: pip install -e ".[gguf]"')

import plugins.chat as chat_plugin
import plugins.gguf as gguf_plugin
from repl.api import LoadOptions, RunControl
from repl.testing import (
    build_architecture,
    build_chat_checkpoint,
    build_gguf,
    check_plugin,
    make_host,
    make_repl,
    teach_checkpoint,
)
from repl.testing.checkpoints import ChatPrompt
from repl.turn import tokenize

TAUGHT_CHAT = {"Hi": "<think>Greet.</think>\n\nHello there!", "Bye": "See you."}
# As tests/test_reasoning.py teaches chat: a reply per prompt, so the reply tells which prompt the template wrote.
TAUGHT_QWEN3 = {
    "Hi": "<think>\nGreet them.\n</think>\n\nHello there!",
    ChatPrompt.of("Hi", enable_thinking=False): "Hi!",
    "Count": "<think>\none two three four five six seven eight nine ten\n</think>\n\nDone.",
}


def _llama(directory, tiny_gpt2, positions=512):
    """A Llama with grouped-query attention, a rotary base of its own and a tokenizer that puts a BOS first."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_gpt2, add_bos_token=True)
    tokenizer.save_pretrained(directory)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        rope_parameters={"rope_type": "default", "rope_theta": 50000.0},
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.2,  # peaked logits: greedy replies that do not repeat one token
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, taught_checkpoints, tiny_checkpoints):
    root = tmp_path_factory.mktemp("gguf-checkpoints")
    return {
        "gpt2": taught_checkpoints["gpt2"],
        "qwen2": build_architecture("qwen2", root / "qwen2"),
        "llama": _llama(root / "llama", tiny_checkpoints["gpt2"]),
        "chatml": teach_checkpoint("chat", build_chat_checkpoint(root / "chatml", "chatml"), TAUGHT_CHAT, steps=120),
        "llama3": teach_checkpoint("chat", build_chat_checkpoint(root / "llama3", "llama3"), TAUGHT_CHAT, steps=120),
        "qwen3": teach_checkpoint("chat", build_chat_checkpoint(root / "qwen3", "qwen3"), TAUGHT_QWEN3, steps=120),
    }


@pytest.fixture(scope="module")
def files(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf-files")
    built = {name: build_gguf(path, root / f"{name}.gguf") for name, path in checkpoints.items()}
    for quant in ("f16", "q8_0"):
        built[f"llama-{quant}"] = build_gguf(checkpoints["llama"], root / f"llama-{quant}.gguf", quant)
    return built


def repl_on(file, other=None, checkpoint=None, json_mode=False, options=None, **settings):
    """gguf on `file` (active), beside `other` (gpt2 or chat) on `checkpoint`; one thread, short replies."""
    plugins = [gguf_plugin] + ([chat_plugin] if other == "chat" else ["gpt2"] if other == "gpt2" else [])
    chosen = {"gguf": str(file), **({other: str(checkpoint)} if other else {})}
    values = {"gguf": {"max_new_tokens": 12, "threads": 1, **settings}}
    if other:
        values[other] = {"max_new_tokens": 12, **settings}
    return make_repl(
        make_host(*plugins), active="gguf", checkpoints=chosen, json_mode=json_mode, settings=values, options=options
    )


def only_turn(repl, line):
    result = repl.evaluate(line)
    assert result.ok, result.error or [turn.error for turn in result.turns]
    (turn,) = result.turns
    assert turn.ok, turn.error
    return turn


def scored(repl, name, text):
    result = repl.evaluate(f"/score {name} -- {text}")
    assert result.ok, result.error
    return next(record for record in result.records if record["model"] == name)


# -- the same weights, the same answers ------------------------------------------------


@pytest.mark.parametrize("name", ["gpt2", "qwen2", "llama"])
def test_the_f32_file_answers_transformers_greedy_tokens_and_log_probabilities(checkpoints, files, name):
    repl = repl_on(files[name], "gpt2", checkpoints[name], json_mode=True)

    for line in ("Once upon a time", "Hello world! The quick brown fox"):
        through_llama_cpp, through_transformers = repl.turn("gguf", line), repl.turn("gpt2", line)
        assert through_llama_cpp.ok and through_transformers.ok
        assert through_llama_cpp.raw_ids == through_transformers.raw_ids
        assert through_llama_cpp.output == through_transformers.output
        assert through_llama_cpp.stats.input_tokens == through_transformers.stats.input_tokens
    mine, theirs = (
        scored(repl, "gguf", "The capital of France is Paris."),
        scored(repl, "gpt2", "The capital of France is Paris."),
    )
    assert [t["id"] for t in mine["tokens"]] == [t["id"] for t in theirs["tokens"]]
    assert mine["bos_prepended"] == theirs["bos_prepended"]
    for a, b in zip(mine["tokens"], theirs["tokens"]):
        assert (a["logprob"] is None) == (b["logprob"] is None)
        assert a["logprob"] is None or a["logprob"] == pytest.approx(b["logprob"], rel=1e-3, abs=1e-4)


def test_a_taught_continuation_streams_whole_characters_equal_to_the_reply(checkpoints, files):
    repl = repl_on(files["gpt2"], "gpt2", checkpoints["gpt2"])
    model = repl.session.model("gguf")
    encoding = tokenize(repl.session, "gguf", "Say hi in Chinese:")
    control = RunControl(stream=lambda text: None)
    settings = repl.session.settings_of("gguf")
    output = repl.session.host.call("gguf", "run", model=model, encoding=encoding, settings=settings, control=control)
    reply = repl.session.host.call("gguf", "decode", model=model, encoding=encoding, output=output, settings=settings)

    assert reply.text == " 我爱你 😀 🎉" == repl.turn("gpt2", "Say hi in Chinese:").output
    assert "".join(control.streamed) == reply.text and len(control.streamed) > 1
    assert not any("\ufffd" in piece for piece in control.streamed)
    assert reply.stop_reason == "eos" and reply.raw_text.endswith("<|endoftext|>")


def test_the_bos_is_added_only_where_the_file_says_so_and_marked(checkpoints, files):
    with_bos = repl_on(files["llama"], "gpt2", checkpoints["llama"], json_mode=True)
    without = repl_on(files["qwen2"], json_mode=True)

    first = with_bos.evaluate("/tokens gguf -- Hello").records[0]
    bos = first["tokens"][0]
    assert (bos["piece"], bos["special"], bos["added"]) == ("<|endoftext|>", True, True)
    assert [t["id"] for t in first["tokens"]] == [
        t["id"] for t in with_bos.evaluate("/tokens gpt2 -- Hello").records[0]["tokens"]
    ]
    assert scored(with_bos, "gguf", "Hello world")["bos_prepended"] is True
    (plain,) = without.evaluate("/tokens -- Hello").records
    assert not any(t["added"] for t in plain["tokens"])
    assert scored(without, "gguf", "Hello world")["bos_prepended"] is False


def test_f16_and_q8_0_files_answer_and_models_shows_what_the_file_is(checkpoints, files):
    f32 = repl_on(files["llama"], json_mode=True)
    reference = sum(t["logprob"] for t in scored(f32, "gguf", "Once upon a time")["tokens"] if t["logprob"] is not None)
    for quant, tolerance in (("f16", 0.05), ("q8_0", 0.5)):
        repl = repl_on(files[f"llama-{quant}"], json_mode=True)
        assert only_turn(repl, "Once upon a time").stats.new_tokens == 12
        total = sum(
            t["logprob"] for t in scored(repl, "gguf", "Once upon a time")["tokens"] if t["logprob"] is not None
        )
        assert total == pytest.approx(reference, abs=tolerance)
        shown = repl.evaluate("/models").text
        assert f"cpu, llama.cpp llama, context 512, {quant.upper()}," in shown


# -- chat ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["chatml", "llama3"])
def test_a_taught_chat_checkpoint_answers_the_same_through_gguf_as_through_chat(checkpoints, files, style):
    repl = repl_on(files[style], "chat", checkpoints[style], json_mode=True, max_new_tokens=20)

    outputs = []
    for line in ("Hi", "/system Be brief.", "Bye"):
        if line.startswith("/"):  # from here on, a system prompt the checkpoint was not taught with
            assert all(repl.evaluate(f"/use {name}").ok and repl.evaluate(line).ok for name in ("gguf", "chat"))
            continue
        gguf_turn, chat_turn = repl.turn("gguf", line), repl.turn("chat", line)
        outputs.append(gguf_turn.output)
        assert (gguf_turn.output, gguf_turn.data, gguf_turn.stats.stop_reason) == (
            chat_turn.output,
            chat_turn.data,
            chat_turn.stats.stop_reason,
        )
        assert gguf_turn.raw_ids == chat_turn.raw_ids
    assert outputs[0] == "Hello there!"
    mine, theirs = repl.evaluate("/tokens gguf chat -- Hi again").records
    assert [(t["id"], t["piece"], t["special"], t["added"]) for t in mine["tokens"]] == [
        (t["id"], t["piece"], t["special"], t["added"]) for t in theirs["tokens"]
    ]
    assert any(t["added"] and t["special"] for t in mine["tokens"])


def test_reasoning_is_kept_apart_from_the_answer_or_hidden(files):
    repl = repl_on(files["chatml"], json_mode=True, max_new_tokens=20)
    shown = only_turn(repl, "Hi")
    assert (shown.output, shown.data) == ("Hello there!", {"reasoning": "Greet."})
    repl.evaluate("/clear")
    assert repl.evaluate("/set think hide").ok
    hidden = only_turn(repl, "Hi")
    # Hidden while it streams, kept for /reasoning, --json and the transcript, as chat keeps it.
    assert (hidden.output, hidden.data) == ("Hello there!", {"reasoning": "Greet."})
    assert hidden.stats.reasoning_tokens > 0
    assert repl.evaluate("/reasoning").text == "Greet."


def test_think_off_reaches_the_template_and_the_model_answers_the_prompt_it_saw(files):
    repl = repl_on(files["qwen3"], max_new_tokens=40)
    turn = only_turn(repl, "Hi")
    assert (turn.output, turn.data["reasoning"]) == ("Hello there!", "Greet them.")
    assert turn.stats.reasoning_tokens > 0 and turn.stats.ttfa > turn.stats.ttft
    assert repl.evaluate("/set think off").ok
    turn = only_turn(repl, "Hi")
    assert (turn.output, turn.data, turn.stats.reasoning_tokens) == ("Hi!", {}, 0)
    repl = repl_on(files["qwen3"], max_new_tokens=40, **{"template.enable_thinking": False})
    assert only_turn(repl, "Hi").output == "Hi!"
    refused = repl.evaluate("/set template.nonsense 1")
    assert "reads no variable 'nonsense'" in refused.error


def test_think_hide_keeps_the_reasoning_for_reasoning_and_shows_the_mark(files):
    import io

    from repl.terminal.renderer import Renderer

    out = io.StringIO()
    repl = repl_on(files["qwen3"], max_new_tokens=40, think="hide", render="raw")
    repl.renderer = Renderer(out, io.StringIO(), terminal=True)
    turn = repl.handle("Hi").turns[0]
    shown = out.getvalue()
    assert "Greet them." not in shown
    assert shown.startswith(f"Hello there!\n(thought for {turn.stats.reasoning_tokens} tokens, ")
    assert turn.data["reasoning"] == "Greet them."
    assert repl.evaluate("/reasoning").text == "Greet them."


def test_max_thinking_tokens_closes_the_thinking_and_the_model_answers(files):
    repl = repl_on(files["qwen3"], max_new_tokens=40)
    free = only_turn(repl, "Count")
    assert free.data["reasoning"] == "one two three four five six seven eight nine ten"
    assert repl.evaluate("/set max_thinking_tokens 3").ok
    capped = only_turn(repl, "Count")
    assert capped.raw_output.startswith("<think>") and "</think>" in capped.raw_output
    assert capped.stats.reasoning_tokens < free.stats.reasoning_tokens
    assert "five" not in capped.data.get("reasoning", "")
    assert capped.output


def test_a_file_without_a_template_refuses_the_reasoning_settings(files):
    repl = repl_on(files["gpt2"])
    repl.load("gguf")
    assert "has no switch to turn thinking off" in repl.evaluate("/set think off").error
    assert repl.evaluate("/set max_thinking_tokens 3").ok
    assert "has no chat template" in repl.evaluate("Hello").turns[0].error


def test_the_oldest_turns_are_dropped_to_fit_the_context_and_the_cache_keeps_the_conversation(files, monkeypatch):
    repl = repl_on(files["chatml"], max_new_tokens=16, n_ctx=80)
    engine = repl.session.model("gguf").handle
    decoded = []
    original = engine.decode
    monkeypatch.setattr(engine, "decode", lambda tokens, **kw: decoded.append(len(tokens)) or original(tokens, **kw))

    first = only_turn(repl, "Hi")
    prompt = first.stats.input_tokens
    decoded.clear()
    second = only_turn(repl, "Bye")
    # The second prompt repeats the first conversation: only what is new goes through the model.
    assert decoded[0] < second.stats.input_tokens - prompt + first.stats.new_tokens + 2
    notices = [only_turn(repl, "Hi").notices for _ in range(3)]
    assert any("context trimmed" in notice for turn_notices in notices for notice in turn_notices)


# -- probabilities, sampling and settings ----------------------------------------------


def test_probs_give_transformers_distributions_and_the_drawn_one_after_the_penalty(checkpoints, files):
    repl = repl_on(files["llama"], "gpt2", checkpoints["llama"], probs=True)
    mine, theirs = repl.turn("gguf", "Once upon a time"), repl.turn("gpt2", "Once upon a time")
    assert len(mine.logprobs) == len(theirs.logprobs) == 12
    for a, b in zip(mine.logprobs, theirs.logprobs):
        assert (a.id, a.piece) == (b.id, b.piece)
        assert a.logprob == pytest.approx(b.logprob, rel=1e-3, abs=1e-4) and a.processed_logprob == pytest.approx(
            a.logprob
        )
        assert [alt.id for alt in a.top[:3]] == [alt.id for alt in b.top[:3]]

    assert repl.evaluate("/set repetition_penalty 1.5").ok
    penalised = only_turn(repl, "Once upon a time")
    for step in penalised.logprobs:  # greedy draws the top of the penalised distribution, as measured here
        assert step.processed_top[0].id == step.id
    assert any(abs(step.processed_logprob - step.logprob) > 1e-3 for step in penalised.logprobs)
    assert repl.evaluate("/probs").text.count("\n") > 12


def test_sampling_follows_the_seed_and_the_top_k(files):
    repl = repl_on(files["llama"], probs=True, do_sample=True, top_k=3, temperature=0.8, seed=7)
    first, again = only_turn(repl, "Once upon a time"), only_turn(repl, "Once upon a time")
    assert first.output == again.output
    for step in first.logprobs:
        assert len(step.processed_top) <= 3 and step.id in [alt.id for alt in step.processed_top]
        assert math.isclose(sum(math.exp(alt.logprob) for alt in step.processed_top), 1.0, rel_tol=1e-4)


def test_settings_without_a_llama_cpp_equivalent_are_refused(files):
    repl = repl_on(files["llama"])
    for setting, value in (("num_beams", "2"), ("no_repeat_ngram_size", "2")):
        refused = repl.evaluate(f"/set {setting} {value}")
        assert refused.error.startswith(f"{setting!r} does not apply to gguf")
    assert repl.evaluate("/set do_sample on").ok
    assert "only when sampling" not in repl.evaluate("/set temperature 0.5").text
    assert repl.evaluate("/set temperature 0").error.startswith("temperature 0 does not sample")
    changed = repl.evaluate("/set do_sample off")
    assert (
        changed.text
        == "gguf: do_sample = off\nnote: temperature 0.5 takes effect only when sampling: /set do_sample on"
    )


def test_threads_and_context_length_take_effect(files):
    repl = repl_on(files["llama"])
    assert repl.evaluate("/set threads 2").ok and only_turn(repl, "Hello").ok
    assert repl.session.model("gguf").handle.threads == 2
    assert repl.evaluate("/set n_ctx 64").ok and only_turn(repl, "Hello").ok
    assert "context 64 of 512" in repl.evaluate("/models").text
    assert repl.evaluate("/set n_ctx 100000").ok
    assert only_turn(repl, "Hello").notices == ["n_ctx 100000 is more than the file's 512 positions: using those"]
    assert repl.evaluate("/set max_new_tokens 600").error.startswith(
        "max_new_tokens 600 leaves no room for input in gguf's 512 positions"
    )
    assert repl.evaluate("/set max_new_tokens 20").ok
    assert repl.evaluate("/set n_ctx 16").error.startswith(
        "max_new_tokens 20 leaves no room for input in a context of n_ctx 16 tokens"
    )


# -- the plugin contract, Ctrl-C ------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama", "chatml"])
def test_gguf_keeps_the_plugin_contract(files, name):
    check_plugin(
        gguf_plugin, name="gguf", checkpoints={"gguf": str(files[name])}, settings={"max_new_tokens": 4, "threads": 1}
    )


def test_ctrl_c_stops_the_reply_between_two_tokens_and_the_next_line_answers(files):
    repl = repl_on(files["llama"])
    model = repl.session.model("gguf")
    settings = repl.session.settings_of("gguf")
    encoding = tokenize(repl.session, "gguf", "Once upon a time")
    control = RunControl(stream=lambda text: control.cancel())  # Ctrl-C as soon as the first text shows
    output = repl.session.host.call("gguf", "run", model=model, encoding=encoding, settings=settings, control=control)

    assert len(output.new_ids) == 1
    assert only_turn(repl, "Once upon a time").stats.new_tokens == 12


def test_ctrl_c_during_the_prompt_stops_its_pass_and_a_second_one_crosses_no_c_frame(files, capfd):
    repl = repl_on(files["llama"])
    engine = repl.session.model("gguf").handle
    expected = only_turn(repl, "Once upon a time").output
    prompt = engine.tokenize("One two three four", add_special=True)

    engine.keep(0)
    assert engine.decode(prompt, cancelled=lambda: True) is False
    assert engine.tokens == []

    def second_ctrl_c():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.decode(prompt, cancelled=second_ctrl_c)
    assert "Exception ignored" not in capfd.readouterr().err
    assert only_turn(repl, "Once upon a time").output == expected


def test_a_gguf_file_on_this_machine_loads_in_the_background_while_the_user_types(files, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from repl.app.warm_start import Preloader, is_on_this_machine

    repl, notices = repl_on(files["chatml"]), []
    preloader = Preloader.for_active(repl.session, notices.append)
    preloader.start()
    assert preloader.wait(60) and "gguf" in repl.session.loaded and notices == []
    (tmp_path / "repository").mkdir()
    shutil.copy(files["chatml"], tmp_path / "repository" / "chat.gguf")
    offline_hub(tmp_path / "home", "tiny/gguf", tmp_path / "repository")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "home" / "hub"))
    assert is_on_this_machine("tiny/gguf#chat.gguf")
    assert not is_on_this_machine("tiny/gguf#other.gguf") and not is_on_this_machine("tiny/gguf#")


# -- bad input ------------------------------------------------------------------------------


def test_bad_files_get_one_line_and_the_loaded_model_stays(files, tmp_path):
    repl = repl_on(files["llama"])
    before = only_turn(repl, "Hello").output
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(files["qwen2"], folder / "qwen2.gguf")
    huge = tmp_path / "huge.gguf"
    with open(huge, "wb") as sparse:  # a header, then a hole: larger than any memory, yet no disk used
        sparse.write(b"GGUF")
        sparse.truncate(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") + (1 << 30))
    toy = _toy_architecture(tmp_path / "toy.gguf")

    for checkpoint, message in (
        (text, f"'{text}' is not a GGUF file (a GGUF file starts with the bytes 'GGUF')"),
        (
            tmp_path / "missing.gguf",
            f"no such file: '{tmp_path / 'missing.gguf'}' (a file of a hub repository is REPO#FILE.gguf)",
        ),
        (folder, f"'{folder}' is a directory; gguf loads one .gguf file: /load gguf {folder / 'qwen2.gguf'}"),
        (huge, "GiB of memory; take a smaller quantization of the model (Q4_K_M, Q8_0)"),
        (toy, "is a toyformer model, which this llama.cpp (llama-cpp-python"),
        (
            "tiny/uncached#model.gguf",
            "'tiny/uncached#model.gguf' is not in the local Hugging Face cache and the hub is off",
        ),
    ):
        refused = repl.evaluate(f"/load gguf {checkpoint}")
        assert message in refused.error, refused.error
        assert "\n" not in refused.error
    assert only_turn(repl, "Hello").output == before


def _toy_architecture(path):
    import gguf

    writer = gguf.GGUFWriter(path, "toyformer")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_without_the_extra_loading_says_how_to_install_it(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    repl = repl_on(files["llama"])
    (turn,) = repl.evaluate("Hello").turns
    assert turn.error == 'gguf needs llama-cpp-python, which is not installed: pip install -e ".[gguf]"'


def test_quantizing_a_gguf_file_again_or_a_gpu_this_build_lacks_is_refused(files):
    import llama_cpp

    repl = repl_on(files["llama"], options=LoadOptions(device="cpu", quantize="int8"))
    (turn,) = repl.evaluate("Hello").turns
    assert turn.error.startswith("gguf runs a GGUF file as it is quantized; --quantize int8 does not apply")
    if not llama_cpp.llama_supports_gpu_offload():
        (turn,) = repl_on(files["llama"], options=LoadOptions(device="cuda")).evaluate("Hello").turns
        assert turn.error.startswith("this llama-cpp-python was built for the CPU only, so gguf cannot run on cuda")


def test_build_gguf_refuses_what_it_cannot_write(tiny_checkpoints, tmp_path):
    with pytest.raises(
        ValueError, match="build_gguf writes gpt2, llama, mistral, qwen2, qwen3 checkpoints, not 'bert'"
    ):
        build_gguf(tiny_checkpoints["bert"], tmp_path / "bert.gguf")
    with pytest.raises(ValueError, match="byte-level BPE tokenizers"):
        build_gguf(build_architecture("llama", tmp_path / "spm"), tmp_path / "spm.gguf")
    with pytest.raises(ValueError, match="unknown quant 'q4'"):
        build_gguf(tiny_checkpoints["gpt2"], tmp_path / "gpt2.gguf", "q4")


# -- as a user runs it ----------------------------------------------------------------------


@pytest.fixture
def hub_cache(files, tmp_path):
    """A machine without network whose Hugging Face cache holds `tiny/gguf` with its file `chat.gguf`."""
    (tmp_path / "repository").mkdir()
    shutil.copy(files["llama3"], tmp_path / "repository" / "chat.gguf")
    return offline_hub(tmp_path / "hf-home", "tiny/gguf", tmp_path / "repository")


@pytest.mark.slow
def test_a_hub_file_loads_from_the_cache_without_network_and_an_uncached_one_fails_fast(hub_cache, tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "repl",
            "-m",
            "gguf=tiny/gguf#chat.gguf",
            "--set",
            "max_new_tokens=20",
            "--set",
            "threads=1",
            "--no-log",
        ],
        input="Hi\n/load gguf tiny/gguf#other.gguf\n/models\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=hub_cache,
        timeout=300,
    )
    assert completed.stdout.splitlines()[0] == "Hello there!"
    assert "llama.cpp llama, context 256, F32" in completed.stdout
    assert (
        "error: 'tiny/gguf#other.gguf' is not in the local Hugging Face cache and the hub could not be reached or "
        "has no such file; download it once with network access, or load a local file: /load gguf /path/to/model.gguf"
    ) in completed.stderr.splitlines()
    assert "Traceback" not in completed.stderr and "llama" not in completed.stderr.replace("llama.cpp", "")


@pytest.mark.slow
def test_sigint_stops_a_gguf_reply_and_the_repl_goes_on(tiny_checkpoints, tmp_path):
    import pexpect

    # A context long enough for a reply that lasts seconds even from a tiny model.
    long = build_gguf(_llama(tmp_path / "long", tiny_checkpoints["gpt2"], positions=32768), tmp_path / "long.gguf")
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    arguments = ["-m", "repl", "-m", f"gguf={long}", "--no-log", "--set", "threads=1", "--set", "n_ctx=32768"]
    child = pexpect.spawn(
        sys.executable,
        [*arguments, "--set", "max_new_tokens=32000"],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        prompt = r"gguf(?:\x1b\[[0-9;]*m)*>"
        child.expect(prompt)
        child.sendline("/stats on")
        child.expect(prompt)
        child.sendline("Once upon a time")
        time.sleep(1.5)  # the reply streams: 32000 tokens take much longer
        child.sendintr()
        child.expect("cancelled", timeout=10)
        child.expect(prompt, timeout=10)
        child.sendline("/set max_new_tokens 3")
        child.expect(prompt)
        child.sendline("again")
        child.expect(r"\[\d+ in, 3 new, ttft", timeout=20)
    finally:
        child.kill(signal.SIGKILL)
