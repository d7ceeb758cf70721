"""The `remote` model against a real `transformers serve`, and against small faulty servers.

One real OpenAI-compatible server runs for the whole module, on a tiny chat
checkpoint from the test kit; the faults it cannot produce on demand (HTTP errors,
broken event streams, a server that never answers, vLLM's /tokenize) come from
a stdlib HTTP server in a thread. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

import plugins.remote
from repl.core.results import turn_record
from repl.core.turn import run_turn
from repl.terminal.renderer import Renderer
from repl.testing import make_host, make_repl
from repl.testing.checkpoints import ChatPrompt, build_chat_checkpoint, teach_checkpoint
from repl.testing.serving import free_port, transformers_serve

SECRET = "sk-test-0123456789-secret"


# -- a tiny chat checkpoint and a real server -----------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`transformers serve` on a tiny chat checkpoint: (base URL, checkpoint directory, process)."""
    checkpoint = build_chat_checkpoint(tmp_path_factory.mktemp("chat") / "tiny-chat", "chatml")
    with transformers_serve(checkpoint, tmp_path_factory.mktemp("serve")) as (url, process):
        yield url, checkpoint, process


def error_of(result) -> str:
    """The one line a failed line printed: a command's error or the failed turn's."""
    return result.error or next(turn.error for turn in result.turns if turn.error)


def remote_repl(url: str, *extra_plugins, **settings):
    host = make_host(plugins.remote, *extra_plugins)
    return make_repl(host, active="remote", checkpoints={"remote": url}, settings={"remote": settings})


# -- against the real server ----------------------------------------------------------------------


@pytest.mark.slow
def test_chat_mode_streams_the_reply_and_counts_tokens_from_usage(served):
    from transformers import AutoTokenizer

    url, checkpoint, _ = served
    repl = remote_repl(url, max_new_tokens=6, temperature=0.0, system="You are terse.")
    streamed: list[str] = []
    turn = run_turn(repl.session, "remote", "Hello world", streamed.append)

    assert turn.ok, turn.error
    assert turn.checkpoint == f"{url}#{checkpoint}"  # the server's only model was picked
    assert turn.streamed and "".join(streamed) == turn.output
    assert turn.stats.new_tokens == 6 and turn.stats.stop_reason == "max_new_tokens"
    # The server applied the chat template to the system prompt and the line: its usage says how many tokens.
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    conversation = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello world"}]
    expected = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_dict=False)
    assert turn.stats.input_tokens == len(expected)
    assert turn.stats.ttft is not None and 0 < turn.stats.ttft <= turn.stats.seconds

    # The next line carries the conversation: more input tokens for the same line.
    second = run_turn(repl.session, "remote", "Hello world")
    assert second.ok and second.stats.input_tokens > turn.stats.input_tokens


@pytest.mark.slow
def test_retry_answers_again_from_the_same_conversation(served):
    url, _, _ = served
    repl = remote_repl(url, max_new_tokens=3, temperature=0.0)
    first, again = (repl.handle(line).turns[0] for line in ("Hello world", "/retry"))
    assert first.ok and again.ok, (first.error, again.error)
    assert again.stats.input_tokens == first.stats.input_tokens  # not the question and answer twice
    assert repl.session.turns == [again]


@pytest.mark.slow
def test_complete_mode_continues_the_line_greedily(served):
    url, _, _ = served
    repl = remote_repl(url, mode="complete", max_new_tokens=5, temperature=0.0)
    first = run_turn(repl.session, "remote", "Once upon a time")
    again = run_turn(repl.session, "remote", "Once upon a time")

    assert first.ok, first.error
    assert first.output == again.output  # greedy, and no conversation in complete mode
    assert first.stats.input_tokens == again.stats.input_tokens
    assert first.stats.new_tokens == 5


@pytest.mark.slow
def test_settings_the_api_lacks_are_refused_with_those_it_takes(served):
    url, _, _ = served
    repl = remote_repl(url)
    result = repl.handle("/set top_k 5")
    assert not result.ok
    assert "'top_k' does not apply to remote" in error_of(result)
    assert "max_new_tokens, temperature, top_p, seed" in error_of(result)


@pytest.mark.slow
def test_ctrl_c_closes_the_stream_and_keeps_the_partial_reply(served):
    url, _, _ = served
    repl = remote_repl(url, mode="complete", max_new_tokens=300, temperature=0.0)
    streamed: list[str] = []

    def press_ctrl_c(text):
        streamed.append(text)
        if len(streamed) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    turn = run_turn(repl.session, "remote", "Hello", press_ctrl_c)

    assert turn.ok and turn.stats.stop_reason == "cancelled"
    assert turn.notices == [
        "the server sent no token counts (usage), so the stats show none",
        "the cancelled exchange stays in the conversation with its partial reply; /clear forgets it",
    ]
    assert turn.output == "".join(streamed) and len(streamed) < 20
    assert repl.handle("/set max_new_tokens 3").ok  # the session carries on
    assert run_turn(repl.session, "remote", "Hello").ok


@pytest.mark.slow
def test_compare_puts_a_local_model_beside_the_served_one(served, tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    url, _, _ = served
    host = make_host(plugins.remote, "gpt2")
    repl = make_repl(
        host,
        active="remote",
        checkpoints={"remote": url, "gpt2": str(tiny_checkpoints["gpt2"])},
        settings={"remote": {"max_new_tokens": 3}, "gpt2": {"max_new_tokens": 3}},
    )
    result = repl.handle("/compare gpt2 remote -- Hello world")

    assert result.ok, result.error
    rows = {line.split()[0]: line.split() for line in result.text.splitlines() if line.startswith(("gpt2 ", "remote "))}
    assert set(rows) == {"gpt2", "remote"}
    assert rows["remote"][3] == "3" and rows["remote"][-1] == "max_new_tokens"

    assert repl.handle("/compare gpt2 remote").ok  # broadcast mode
    assert repl.handle("Hello").ok
    assert [(turn.model, turn.input, turn.ok) for turn in repl.session.turns[-2:]] == [
        ("gpt2", "Hello", True),
        ("remote", "Hello", True),
    ]


@pytest.mark.slow
def test_tokens_says_the_servers_tokens_are_not_visible(served):
    url, _, _ = served
    repl = remote_repl(url)
    result = repl.handle("/tokens Hello")
    assert result.ok
    assert "the tokens are the server's and not visible" in result.text


@pytest.mark.slow
def test_a_server_killed_mid_stream_is_one_line_and_the_input_is_kept(served):
    """Runs last against the real server: it kills it."""
    url, _, process = served
    repl = remote_repl(url, mode="complete", max_new_tokens=400, temperature=0.0)

    def kill_the_server(text):
        if process.poll() is None:
            process.kill()
            process.wait()

    turn = run_turn(repl.session, "remote", "Hello", kill_the_server)
    assert not turn.ok and turn.input == "Hello"
    assert "broke off" in turn.error and "send the line again" in turn.error
    assert "\n" not in turn.error

    after = repl.handle("Hello again")
    assert not after.ok and "connection refused" in error_of(after) and "start the server" in error_of(after)
    assert repl.session.turns[-1].input == "Hello again"


# -- a reasoning model on the real server ---------------------------------------------------------

THOUGHT = "<think>\nGreet them.\n</think>\n\nHello there!"


@pytest.fixture(scope="module")
def served_thinker(tmp_path_factory):
    """`transformers serve` on a tiny Qwen3 taught to think before "Hi", and to answer at once without thinking.

    transformers serve reads a Qwen3's replies with its own response template and sends the thinking as
    `reasoning_content` deltas.
    """
    examples = {"Hi": THOUGHT, ChatPrompt.of("Hi", enable_thinking=False): "Hi!"}
    checkpoint = build_chat_checkpoint(tmp_path_factory.mktemp("qwen3") / "tiny-qwen3", "qwen3")
    teach_checkpoint("chat", checkpoint, examples, steps=120)
    with transformers_serve(checkpoint, tmp_path_factory.mktemp("serve")) as (url, _):
        yield url


@pytest.mark.slow
def test_the_servers_reasoning_is_shown_apart_and_think_off_reaches_its_template(served_thinker):
    repl = remote_repl(served_thinker, max_new_tokens=30, temperature=0.0)
    asides: list[str] = []
    turn = run_turn(repl.session, "remote", "Hi", lambda text: None, asides.append)
    assert turn.ok, turn.error
    assert (turn.output, turn.data) == ("Hello there!", {"reasoning": "Greet them."})
    assert "".join(asides).strip() == "Greet them."
    assert 0 < turn.stats.reasoning_tokens < turn.stats.new_tokens and turn.stats.ttfa > turn.stats.ttft
    assert turn_record(turn)["reasoning"] == "Greet them."
    # think off goes to the server's template as chat_template_kwargs: the model sees the prompt without thinking.
    assert repl.handle("/clear").ok and repl.handle("/set think off").ok
    turn = run_turn(repl.session, "remote", "Hi")
    assert (turn.output, turn.data, turn.stats.reasoning_tokens) == ("Hi!", {}, 0)
    # think hide: the answer, then the mark; /reasoning has the thinking.
    out = io.StringIO()
    repl = remote_repl(served_thinker, max_new_tokens=30, temperature=0.0, think="hide", render="raw")
    repl.renderer = Renderer(out, io.StringIO(), terminal=True)
    repl.handle("Hi")
    assert out.getvalue().startswith("Hello there!\n(thought for ") and "Greet them." not in out.getvalue()
    assert repl.handle("/reasoning").text == "Greet them."


# -- faults from a small local server --------------------------------------------------------------


class FaultyServer(BaseHTTPRequestHandler):
    """Answers /v1/models with its models; each model fails in its own way on a completion request."""

    MODELS = ("status-401", "status-403", "status-404", "status-429", "status-500", "status-503")
    MODELS += ("garbage", "truncated", "silent", "vllm", "reasoner")
    bodies: ClassVar[list[dict]] = []  # the completion requests, for a test to see what was sent

    def log_message(self, *args):  # keep the test output clean
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in self.MODELS]})
        else:
            self._json(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize":
            if body["model"] != "vllm":
                return self._json(404, {"detail": "Not Found"})
            pieces = body.get("prompt", "").split()
            return self._json(
                200, {"count": len(pieces), "tokens": list(range(7, 7 + len(pieces))), "token_strs": pieces}
            )
        model = body["model"]
        self.bodies.append(body)
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            echoed = self.headers.get("Authorization", "")  # some servers echo the key they refused
            return self._json(status, {"error": {"message": f"failure {status} for {echoed}"}})
        if model == "silent":
            time.sleep(3)
            return self._json(500, {"error": {"message": "too late"}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if model == "garbage":
            self.wfile.write(b"data: {this is not json\n\n")
        elif model == "truncated":
            chunk = {"id": "1", "object": "text_completion", "created": 0, "model": model}
            chunk["choices"] = [{"index": 0, "text": "Hel", "finish_reason": None}]
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        elif model == "reasoner":  # its thinking in a `reasoning` field (as some servers name it), then the answer
            chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": model}
            deltas = [{"role": "assistant"}, {"reasoning": "Think"}, {"reasoning": " hard."}, {"content": "Yes."}]
            for delta in deltas:
                event = {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
            usage["completion_tokens_details"] = {"reasoning_tokens": 7}
            end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(b"data: " + json.dumps(end).encode() + b"\n\n")
            self.wfile.write(b"data: " + json.dumps({**chunk, "choices": [], "usage": usage}).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
        elif model == "vllm":
            chunk = {"id": "1", "object": "text_completion", "created": 0, "model": model}
            chunk["choices"] = [{"index": 0, "text": "ok", "finish_reason": "stop"}]
            usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture(scope="module")
def faulty():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultyServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "refused the API key (401): check MODELREPL_API_KEY"),
        (403, "does not allow the API key (403)"),
        (404, "answered 404 (failure 404"),
        (429, "is busy (429: failure 429"),
        (500, "failed (500: failure 500"),
        (503, "failed (503: failure 503"),
    ],
)
def test_http_errors_are_one_line_that_says_what_to_do(faulty, monkeypatch, tmp_path, status, says):
    monkeypatch.setenv("MODELREPL_API_KEY", SECRET)
    repl = remote_repl(f"{faulty}#status-{status}", mode="complete")
    result = repl.handle("my precious line")

    assert not result.ok and says in error_of(result) and "\n" not in error_of(result)
    turn = repl.session.turns[-1]
    assert turn.input == "my precious line"
    assert SECRET not in error_of(result) and SECRET not in json.dumps(turn_record(turn))
    assert SECRET not in repl.renderer.out.getvalue() + repl.renderer.err.getvalue()


def test_malformed_and_truncated_event_streams_are_one_line(faulty):
    repl = remote_repl(f"{faulty}#garbage", mode="complete")
    garbled = repl.handle("Hello")
    assert not garbled.ok and "broke off" in error_of(garbled)

    repl = remote_repl(f"{faulty}#truncated", mode="complete")
    cut = repl.handle("Hello")
    assert not cut.ok and "without finishing it" in error_of(cut)


def test_a_server_that_never_answers_times_out(faulty):
    repl = remote_repl(f"{faulty}#silent", timeout=0.5)
    result = repl.handle("Hello")
    assert not result.ok
    assert "did not answer within 0.5 s" in error_of(result) and "/set timeout" in error_of(result)


def test_a_refused_port_and_an_unknown_or_ambiguous_model(faulty):
    port = free_port()  # nothing listens there once the probe closed
    refused = remote_repl(f"http://127.0.0.1:{port}/v1").handle("Hello")
    assert not refused.ok and "connection refused" in error_of(refused)

    unknown = remote_repl(f"{faulty}#nope").handle("Hello")
    assert not unknown.ok and "has no model 'nope'; it serves: status-401" in error_of(unknown)

    several = remote_repl(faulty).handle("Hello")
    assert not several.ok and "serves 11 models; pick one" in error_of(several)

    not_a_url = remote_repl("localhost:8000").handle("/load remote")
    assert not not_a_url.ok and "is not a server address" in not_a_url.error


def test_tokens_come_from_the_servers_tokenize_endpoint_where_it_has_one(faulty):
    repl = remote_repl(f"{faulty}#vllm", mode="complete")
    shown = repl.handle("/tokens Hello big world")
    assert shown.ok
    assert "3 tokens" in shown.text and "big" in shown.text

    turn = run_turn(repl.session, "remote", "Hello big world")
    assert turn.ok and turn.output == "ok"
    assert turn.stats.input_tokens == 2 and turn.stats.new_tokens == 1  # usage has the last word
    assert turn.stats.stop_reason == "eos"


@pytest.mark.slow
def test_a_reasoning_field_is_the_thinking_and_the_reasoning_settings_go_in_the_request(faulty):
    repl = remote_repl(f"{faulty}#reasoner", reasoning_effort="low", **{"template.enable_thinking": True})
    asides: list[str] = []
    turn = run_turn(repl.session, "remote", "Hi", lambda text: None, asides.append)
    assert turn.ok, turn.error
    assert (turn.output, turn.data["reasoning"], "".join(asides)) == ("Yes.", "Think hard.", "Think hard.")
    assert (turn.stats.new_tokens, turn.stats.reasoning_tokens) == (9, 7)  # the server's own counts
    assert turn.stats.ttft < turn.stats.ttfa
    sent = FaultyServer.bodies[-1]
    assert sent["reasoning_effort"] == "low" and sent["chat_template_kwargs"] == {"enable_thinking": True}
    # think off, with no template known here: both switches the templates read go to the server's.
    assert repl.handle("/set template.enable_thinking none").ok and repl.handle("/set think off").ok
    assert run_turn(repl.session, "remote", "Hi").ok
    assert FaultyServer.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": False, "thinking": False}


@pytest.mark.slow
def test_no_torch_in_the_plugin_module():
    code = "import sys, plugins.remote; print('torch' in sys.modules, 'openai' in sys.modules)"
    checked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert checked.stdout.split() == ["False", "False"]
