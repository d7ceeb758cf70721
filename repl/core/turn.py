"""One model turn: tokenize -> run -> decode through the owning plugin's hooks."""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator

from repl.core.conversation import SYSTEM
from repl.core.plugin_host import PluginError
from repl.core.records import Encoding, ModelError, ModelSpec, Reply, RunControl, TokenProbs
from repl.core.results import RESERVED_FIELDS, Stats, Turn
from repl.core.session import Session
from repl.core.text import one_line

log = logging.getLogger(__name__)


@contextlib.contextmanager
def cancel_on_interrupt(control: RunControl) -> Iterator[None]:
    """While generating, a first Ctrl-C asks the model to stop after the current step.

    A second Ctrl-C raises KeyboardInterrupt at once, for a plugin that never
    checks the flag. Outside the main thread signals cannot be caught, so the
    default behaviour stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame):
        if control.cancelled:
            raise KeyboardInterrupt
        control.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def cancel_all_on_interrupt(cancel: threading.Event, threads: Callable[[], list[threading.Thread]]) -> Iterator[None]:
    """While several turns run in `threads()`, a first Ctrl-C asks every one to stop after its current step.

    A second Ctrl-C raises KeyboardInterrupt in each of those threads, as
    `cancel_on_interrupt` does in the main thread, for a plugin that never
    checks the flag: the turn keeps what it had streamed.
    """

    def on_interrupt(signum, frame):
        if not cancel.is_set():
            cancel.set()
            return
        for thread in threads():
            if thread.is_alive() and thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
                )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def tokenize(session: Session, name: str, text: str) -> Encoding:
    """What the named model's tokenizer feeds it for `text` (loading the model if needed)."""
    spec = session.spec(name)
    model = session.model(spec.name)
    encoding = session.host.call(
        spec.plugin,
        "tokenize",
        model=model,
        text=text,
        settings=dict(session.settings_of(spec.name)),
        history=session.history(spec.name),
    )
    encoding = session.host.expect(spec.plugin, "tokenize", encoding, Encoding)
    encoding.notices[:0] = session.take_notes(spec.name)  # what the load changed comes first
    return encoding


def run_turn(
    session: Session,
    name: str,
    text: str,
    write: Callable[[str], None] | None = None,
    aside: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    watch: Callable[[RunControl], None] | None = None,
) -> Turn:
    """Send `text` to a model and record the turn; never raises for the model's failures.

    `write` receives streamed text when the model's `stream` setting is on,
    `aside` streamed text shown apart from the reply (a model's reasoning);
    `notify` then receives the notices about the input (truncation, context
    trimmed) before the model runs, so that they come ahead of the reply.
    `cancel`, when given, is the flag that stops this turn: several turns
    running at once share one (see `cancel_all_on_interrupt`).

    `watch` is handed the run's control before the model runs, to follow its
    steps while it works (a live "thinking: N tokens" line).
    """
    spec = session.spec(name)
    settings = dict(session.settings_of(spec.name))
    turn = Turn(model=spec.name, checkpoint=session.checkpoint_of(spec.name), input=text, settings=settings)
    streaming = bool(settings.get("stream"))
    control = RunControl(stream=write if streaming else None, aside=aside if streaming else None)
    if cancel is not None:
        control.cancel_event = cancel
    if watch is not None:
        watch(control)
    started = model = None
    try:
        model = session.model(spec.name)
        turn.checkpoint = model.checkpoint
        settings.update(session.settings_of(spec.name))  # the load may have fitted them to the model
        encoding = tokenize(session, spec.name, text)
        turn.notices.extend(encoding.notices)
        if control.streaming and notify is not None:
            for notice in encoding.notices:
                notify(notice)
        turn.stats.input_tokens = None if encoding.unseen else len(encoding.tokens)
        started = control.started = time.perf_counter()
        with cancel_on_interrupt(control):
            output = session.host.call(
                spec.plugin, "run", model=model, encoding=encoding, settings=settings, control=control
            )
        reply = session.host.expect(
            spec.plugin,
            "decode",
            session.host.call(spec.plugin, "decode", model=model, encoding=encoding, output=output, settings=settings),
            Reply,
        )
        if not isinstance(reply.text, str):
            session.host.expect(spec.plugin, "decode (Reply.text)", reply.text, str)
        turn.output = reply.text
        turn.raw_output = reply.raw_text
        turn.display = reply.display
        turn.raw_ids = list(reply.raw_ids or reply.new_ids)
        turn.data = _json_data(session, spec.plugin, reply.data)
        turn.notices.extend(reply.notices)
        turn.logprobs = _checked_logprobs(session, spec.plugin, reply.logprobs)
        turn.stats.new_tokens = _new_tokens(reply)
        turn.stats.reasoning_tokens = reply.reasoning_tokens
        if reply.input_tokens is not None:
            turn.stats.input_tokens = reply.input_tokens
        turn.stats.stop_reason = "cancelled" if control.cancelled else reply.stop_reason
    except (ModelError, PluginError) as exc:
        log.debug("turn on %s failed", spec.name, exc_info=True)  # shown with --debug: the plugin's traceback
        turn.error = one_line(str(exc))
        turn.stats.stop_reason = "error"
    except KeyboardInterrupt:
        turn.output = "".join(control.streamed)
        turn.stats.stop_reason = "cancelled"
        turn.stats.new_tokens = None if turn.output else 0  # whatever counted them was cut short too
        if model is None:
            turn.error = f"cancelled while loading {spec.name}"
        elif started is None:
            turn.error = "cancelled before the model answered"
    finally:
        turn.streamed = control.streaming and bool(control.streamed or control.aside_streamed)
        if started is not None:
            _finish_stats(turn.stats, control, started)
        _say_what_the_conversation_keeps(turn, spec, settings)
        session.turns.append(turn)
    session.host.broadcast("turn_finished", turn=turn)
    return turn


def _say_what_the_conversation_keeps(turn: Turn, spec: ModelSpec, settings: dict) -> None:
    """For a model that keeps a conversation, whether a cancelled or failed exchange stays in it.

    The conversation is the model's turns that worked (`Session.history`): a
    cancelled one stays with the partial reply it got, a failed one is left out
    whole, so user and assistant turns still alternate for templates that insist.
    """
    if not (spec.setting(SYSTEM.name) or settings.get("context")):
        return
    if turn.error is not None:
        turn.notices.append("the failed exchange is left out of the conversation")
    elif turn.stats.stop_reason == "cancelled":
        turn.notices.append(
            "the cancelled exchange stays in the conversation with its partial reply; /clear forgets it"
        )


def _new_tokens(reply: Reply) -> int | None:
    """The reply's count of new tokens: the plugin's, else its ids'; None for generated text whose ids nobody saw."""
    if reply.new_tokens is not None:
        return reply.new_tokens
    if reply.new_ids or not reply.text or reply.stop_reason == "done":  # "done": it generates no tokens
        return len(reply.new_ids)
    return None


def _json_data(session: Session, plugin: str, data: object) -> dict:
    """A reply's data goes to --json, transcripts and saved sessions beside modelrepl's own fields.

    So it must be a JSON object in strict JSON (NaN and infinities are not JSON,
    though Python's json writes them) that leaves modelrepl's field names alone.
    """
    problem = None
    try:
        if not isinstance(data, dict):
            raise TypeError(f"it is a {type(data).__name__}")
        json.dumps(data)
    except (TypeError, ValueError) as exc:  # ValueError: a circular reference
        problem = f"returned data that is not a JSON object ({exc})"
    else:
        reserved = [key for key in data if key in RESERVED_FIELDS]
        if reserved:
            problem = f"returned data with field names reserved for modelrepl: {', '.join(map(repr, reserved))}"
        elif not _strict_json(data):
            problem = "returned data that is not strict JSON (NaN or infinity)"
    if problem is not None:
        session.host.report(plugin, f"decode {problem}")
        raise PluginError(plugin, "decode", problem)
    return dict(data)


def _strict_json(data: dict) -> bool:
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        return False
    return True


def _checked_logprobs(session: Session, plugin: str, logprobs: object) -> list[TokenProbs] | None:
    """A reply's probabilities are shown by /probs and written by --json: a list of TokenProbs, or None."""
    if logprobs is None or (isinstance(logprobs, list) and all(isinstance(s, TokenProbs) for s in logprobs)):
        return logprobs
    problem = "returned logprobs that are not a list of TokenProbs"
    session.host.report(plugin, f"decode {problem}")
    raise PluginError(plugin, "decode", problem)


def _finish_stats(stats: Stats, control: RunControl, started: float) -> None:
    stats.seconds = time.perf_counter() - started
    if control.first_token_at is not None:
        stats.ttft = control.first_token_at - started
    # The first answer token: when its text was streamed, else the step that made it (a reply not streamed).
    if control.first_answer_at is not None:
        stats.ttfa = control.first_answer_at - started
    else:
        steps = len(control.step_times) if stats.new_tokens is None else min(len(control.step_times), stats.new_tokens)
        if stats.reasoning_tokens < steps:
            stats.ttfa = control.step_times[stats.reasoning_tokens] - started
    if stats.new_tokens and stats.seconds > 0:
        stats.tokens_per_s = stats.new_tokens / stats.seconds
