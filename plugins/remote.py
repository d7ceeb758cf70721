"""remote: a model served by an OpenAI-compatible server (vLLM, TGI, transformers serve, llama.cpp, ollama).

The checkpoint is the server's API address, `http://HOST:PORT/v1`, with
`#MODEL_ID` to pick one of the models it serves; without it the server must
serve exactly one. The pipeline is the same as a local model's, with the server
doing the work: `tokenize` builds the messages (mode `chat`: the conversation
and the system prompt) or the prompt (mode `complete`), and asks the server for
the tokens where it has vLLM's `/tokenize`; `run` streams the reply through
server-sent events with the `openai` client; `decode` takes the token counts
from the server's `usage`, since the reply's ids never leave the server.

A reasoning model's thinking comes as its own delta field (`reasoning_content`
from vLLM, llama.cpp and `transformers serve`, `reasoning` from some others)
and is streamed apart from the answer, like a local model's. `reasoning_effort`
goes as the request's own field; `think off` and `template.NAME` go as
`chat_template_kwargs`, which the servers that render templates pass to theirs.

The API key comes from MODELREPL_API_KEY or OPENAI_API_KEY and stays in the
client: it is never part of a message, a setting or the checkpoint.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from repl.api import (
    GENERATION_SETTINGS,
    REASONING_EFFORT,
    SYSTEM,
    TEMPLATE,
    THINK,
    Encoding,
    LoadedModel,
    ModelError,
    ModelSpec,
    Reply,
    RunControl,
    Setting,
    Token,
    hookimpl,
    messages,
)

NAME = "remote"
FAMILY = "remote"
DEFAULT_CHECKPOINT = "http://127.0.0.1:8000/v1"
KEY_VARIABLES = ("MODELREPL_API_KEY", "OPENAI_API_KEY")
# Listing the models must not keep a mistyped address waiting for long; replies have the `timeout` setting.
LOAD_TIMEOUT = 15.0
FINISH_REASONS = {"stop": "eos", "length": "max_new_tokens"}

MODE = Setting(
    "mode",
    str,
    "chat",
    "chat: the conversation through /v1/chat/completions; complete: the line continued through /v1/completions",
    choices=("chat", "complete"),
)
TIMEOUT = Setting("timeout", float, 60.0, "seconds to wait for the server before giving up", minimum=0.1, maximum=3600)
# The OpenAI API's sampling parameters, under the names the local models use where they have one.
MAX_NEW_TOKENS = next(s for s in GENERATION_SETTINGS if s.name == "max_new_tokens")
SEED = next(s for s in GENERATION_SETTINGS if s.name == "seed")
SAMPLING = (
    MAX_NEW_TOKENS,
    Setting(
        "temperature",
        float,
        None,
        "sampling temperature; 0 is greedy (none: the server's default)",
        minimum=0.0,
        maximum=2.0,
        optional=True,
    ),
    Setting("top_p", float, None, "nucleus sampling mass (none: the server's default)", 0.0, 1.0, optional=True),
    SEED,
    Setting("presence_penalty", float, None, "penalty for tokens already present", -2.0, 2.0, optional=True),
    Setting("frequency_penalty", float, None, "penalty by how often a token appeared", -2.0, 2.0, optional=True),
)
# Our setting name -> the API's parameter name.
API_NAMES = {"max_new_tokens": "max_tokens"}


@hookimpl
def register_models(register):
    register(
        NAME,
        family=FAMILY,
        checkpoint=DEFAULT_CHECKPOINT,
        description="a model on an OpenAI-compatible server: -m remote=http://HOST:PORT/v1[#MODEL_ID]",
        settings=(MODE, SYSTEM, TIMEOUT) + SAMPLING + (THINK, REASONING_EFFORT, TEMPLATE),
        markdown=True,
    )


@hookimpl
def load_model(spec: ModelSpec, checkpoint: str, options: Any) -> LoadedModel:
    """A client for the server; asks it which models it serves, so a wrong address fails here."""
    import openai

    url, _, wanted = checkpoint.partition("#")
    address = urlsplit(url)
    if address.scheme not in ("http", "https") or not address.hostname:
        raise ModelError(
            f"{checkpoint!r} is not a server address; load one as /load {NAME} http://HOST:PORT/v1[#MODEL_ID]"
        )
    key = next((os.environ[name] for name in KEY_VARIABLES if os.environ.get(name)), None)
    # max_retries=0: a failure is reported at once, and the user decides whether to send the line again.
    client = openai.OpenAI(base_url=url, api_key=key or "EMPTY", max_retries=0, timeout=LOAD_TIMEOUT)
    served = [model.id for model in _call(url, key, LOAD_TIMEOUT, lambda: client.models.list().data)]
    if wanted and wanted not in served:
        raise ModelError(f"the server at {url} has no model {wanted!r}; it serves: {', '.join(served) or 'none'}")
    if not wanted:
        if len(served) != 1:
            raise ModelError(
                f"the server at {url} serves {len(served)} models; pick one: "
                + ", ".join(f"/load {NAME} {url}#{name}" for name in served[:3])
                + (", ..." if len(served) > 3 else "")
            )
        wanted = served[0]
    loaded = LoadedModel(spec=spec, checkpoint=f"{url}#{wanted}", handle=client, device=f"server {address.netloc}")
    loaded.memo.update(url=url, model_id=wanted, key=key)
    return loaded


@hookimpl
def tokenize(model: LoadedModel, text: str, settings: dict[str, Any], history: list[tuple[str, str]]) -> Encoding:
    """The request body's input: the messages in chat mode, the line in complete mode."""
    request: dict[str, Any]
    if settings["mode"] == "chat":
        request = {"messages": messages(settings.get("system"), history, text)}
    else:
        request = {"prompt": text}
    tokens = _server_tokens(model, request, settings["timeout"])
    if tokens is None:
        return Encoding(
            text,
            [],
            context=request,
            unseen=f"the tokens are the server's and not visible: {model.memo['url']} has no /tokenize endpoint",
        )
    return Encoding(text, tokens, context=request)


def _server_tokens(model: LoadedModel, request: dict[str, Any], timeout: float) -> list[Token] | None:
    """The tokens from vLLM's `/tokenize` (beside `/v1`), or None where the server has no such endpoint.

    Whether it has one is asked once and kept with the model.
    """
    import openai

    if model.memo.get("tokenize") is False:
        return None
    client = model.handle
    root = model.memo["url"].rstrip("/").removesuffix("/v1")
    body = {"model": model.memo["model_id"], "return_token_strs": True, **request}
    if "messages" in request:
        body["add_generation_prompt"] = True
    try:
        answer = _call(
            model.memo["url"],
            model.memo["key"],
            timeout,
            lambda: client.post(f"{root}/tokenize", body=body, cast_to=object, options={"timeout": timeout}),
        )
    except ModelError as exc:
        if not isinstance(exc.__cause__, (openai.NotFoundError, openai.UnprocessableEntityError)) and not (
            isinstance(exc.__cause__, openai.APIStatusError) and exc.__cause__.status_code == 405
        ):
            raise
        model.memo["tokenize"] = False
        return None
    model.memo["tokenize"] = True
    ids = answer.get("tokens", [])
    pieces = answer.get("token_strs") or [str(i) for i in ids]
    return [Token(token_id, piece) for token_id, piece in zip(ids, pieces)]


@hookimpl
def run(model: LoadedModel, encoding: Encoding, settings: dict[str, Any], control: RunControl) -> dict[str, Any]:
    """Stream the reply; Ctrl-C closes the stream at the next event and keeps what came."""
    client = model.handle
    parameters = {
        API_NAMES.get(setting.name, setting.name): settings[setting.name]
        for setting in SAMPLING
        if settings.get(setting.name) is not None
    }
    chat = "messages" in encoding.context
    create = client.chat.completions.create if chat else client.completions.create
    timeout = settings["timeout"]
    if chat:
        parameters.update(_template_parameters(settings, model))
    outcome: dict[str, Any] = {
        "text": [],
        "reasoning": [],
        "finish_reason": None,
        "usage": None,
        "answering": False,
    }

    def stream_reply() -> None:
        stream = create(
            model=model.memo["model_id"],
            stream=True,
            stream_options={"include_usage": True},
            timeout=timeout,
            **encoding.context,
            **parameters,
        )
        outcome["answering"] = True
        with stream:
            for chunk in stream:
                if chunk.usage is not None:
                    outcome["usage"] = chunk.usage
                pieces = [(choice.delta.content if chat else choice.text) or "" for choice in chunk.choices]
                thoughts = [_reasoning_of(choice.delta) if chat else "" for choice in chunk.choices]
                for choice in chunk.choices:
                    outcome["finish_reason"] = choice.finish_reason or outcome["finish_reason"]
                text, thought = "".join(pieces), "".join(thoughts)
                if outcome["reasoning"] and not outcome["text"]:
                    text = text.lstrip()  # the blank lines between the thinking and the answer
                if thought:
                    outcome["reasoning"].append(thought)
                    control.emit_aside(thought)
                if text:
                    outcome["text"].append(text)
                    control.emit(text)
                # Only a chunk with text is a decoding step: a chat stream opens with an empty one (the role),
                # which must not count as the first token.
                if control.step() if text or thought else control.cancelled:
                    return

    _call(model.memo["url"], model.memo["key"], timeout, stream_reply, outcome)
    if outcome["finish_reason"] is None and not control.cancelled:
        raise ModelError(
            f"the server at {model.memo['url']} ended the reply without finishing it (the stream was cut short); "
            "send the line again, and see the server's log if it keeps happening"
        )
    return outcome


@hookimpl
def decode(model: LoadedModel, encoding: Encoding, output: dict[str, Any], settings: dict[str, Any]) -> Reply:
    text = "".join(output["text"])
    usage = output["usage"]
    reason = output["finish_reason"]
    notices = []
    if reason is not None and reason not in FINISH_REASONS:
        notices.append(f"the server stopped the reply: {reason}")
    if usage is None:  # it comes last: a reply cut short by Ctrl-C, or a server that does not count
        notices.append("the server sent no token counts (usage), so the stats show none")
    reasoning = "".join(output["reasoning"]).strip()
    return Reply(
        text=text,
        raw_text=text,
        stop_reason=FINISH_REASONS.get(reason, "eos"),
        input_tokens=usage.prompt_tokens if usage is not None else None,
        new_tokens=usage.completion_tokens if usage is not None else None,
        notices=notices,
        data={"reasoning": reasoning} if reasoning else {},
        reasoning_tokens=_reasoning_tokens(usage, output["reasoning"]),
    )


def _reasoning_of(delta: Any) -> str:
    """A delta's reasoning: vLLM, llama.cpp and transformers serve send `reasoning_content`, others `reasoning`."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _reasoning_tokens(usage: Any, pieces: list[str]) -> int:
    """The server's own count of reasoning tokens where its usage has one, else one per reasoning piece streamed.

    Reasoning that is only whitespace (an empty thinking block the prompt closed) is none.
    """
    if not "".join(pieces).strip():
        return 0
    details = getattr(usage, "completion_tokens_details", None)
    counted = getattr(details, "reasoning_tokens", None)
    return counted if isinstance(counted, int) and counted > 0 else len(pieces)


def _template_parameters(settings: dict[str, Any], model: LoadedModel) -> dict[str, Any]:
    """`reasoning_effort` as the API's own field; `think off` and `template.NAME` for the server's chat template."""
    from repl.api import template_arguments

    variables = template_arguments(settings, model)
    parameters: dict[str, Any] = {}
    effort = variables.pop(REASONING_EFFORT.name, None)
    if effort is not None:
        parameters["reasoning_effort"] = effort
    if variables:
        parameters["extra_body"] = {"chat_template_kwargs": variables}
    return parameters


def _call(url: str, key: str | None, timeout: float, request: Any, outcome: dict[str, Any] | None = None) -> Any:
    """Make a request; every way it can fail becomes one line that says what to do (without the API key).

    `outcome` is a streamed reply's progress: once the server has begun answering, a lost connection
    means it died mid-reply, and the text already shown is mentioned.
    """
    import openai

    try:  # openai 3 is built on httpx2, earlier versions on httpx: its transport errors come from that one
        import httpx2 as http_library
    except ImportError:
        import httpx as http_library  # type: ignore[no-redef]

    try:
        return request()
    except openai.APITimeoutError as exc:
        message = f"the server at {url} did not answer within {timeout:g} s; try again, or raise it with /set timeout"
        cause: Exception = exc
    except openai.APIConnectionError as exc:
        answering = outcome is not None and outcome["answering"]
        message = _broken_reply_message(url, exc.__cause__ or exc) if answering else _connection_message(url, exc)
        cause = exc
    except openai.AuthenticationError as exc:
        message, cause = _key_message(url, key, "refused", exc), exc
    except openai.PermissionDeniedError as exc:
        message, cause = _key_message(url, key, "does not allow", exc), exc
    except openai.NotFoundError as exc:
        message = (
            f"the server at {url} answered 404 ({_detail(exc)}): check the model id (/load {NAME} {url}#MODEL_ID), "
            "or use /set mode chat if it has no /v1/completions"
        )
        cause = exc
    except openai.RateLimitError as exc:
        message, cause = (
            f"the server at {url} is busy (429: {_detail(exc)}); wait a moment and send the line again",
            exc,
        )
    except openai.InternalServerError as exc:
        message = (
            f"the server at {url} failed ({exc.status_code}: {_detail(exc)}); see its log, then send the line again"
        )
        cause = exc
    except openai.APIStatusError as exc:
        message, cause = f"the server at {url} refused the request ({exc.status_code}: {_detail(exc)})", exc
    except (openai.APIError, http_library.HTTPError, ValueError) as exc:
        message, cause = _broken_reply_message(url, exc), exc
    if outcome is not None and outcome["text"]:
        message += f" (the {len(''.join(outcome['text']))} characters received were shown)"
    if key:
        message = message.replace(key, "***")
    raise ModelError(message) from cause


def _broken_reply_message(url: str, exc: BaseException | None) -> str:
    """A server that died mid-reply, or sent events that are not the API's JSON."""
    return (
        f"the reply from {url} broke off ({_detail(exc)}); send the line again, and see the server's log "
        "if it keeps happening"
    )


def _connection_message(url: str, exc: Exception) -> str:
    host = urlsplit(url).hostname
    reason = " ".join(str(exc.__cause__ or exc).split())
    if any(words in reason for words in ("Name or service not known", "name resolution", "nodename nor servname")):
        return f"cannot find the host {host!r} of {url}: check the address (/load {NAME} http://HOST:PORT/v1)"
    if "refused" in reason.lower():
        return (
            f"nothing answers at {url} (connection refused): start the server (vllm serve MODEL, or transformers "
            f"serve MODEL) or fix the address with /load {NAME} http://HOST:PORT/v1"
        )
    return f"cannot reach the server at {url} ({reason[:160]}): check that it runs and the address is right"


def _key_message(url: str, key: str | None, verb: str, exc: Exception) -> str:
    status = getattr(exc, "status_code", "")
    if key is None:
        return f"the server at {url} {verb} access without an API key ({status}): set MODELREPL_API_KEY"
    return f"the server at {url} {verb} the API key ({status}): check MODELREPL_API_KEY or OPENAI_API_KEY"


def _detail(exc: BaseException | None) -> str:
    """The server's own words, on one short line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict):
            body = body.get("message", body)
    words = " ".join(str(body if body else exc).split())
    return words[:160] or type(exc).__name__
