"""``check_plugin``: does a plugin keep the contract of modelrepl's hookspecs?

Call it from a plugin's own tests::

    from repl.testing import check_plugin

    def test_my_plugin_conforms(my_checkpoint):
        check_plugin("myplugin", checkpoints={"mymodel": my_checkpoint})

It registers the plugin alone in a fresh host, checks that its hook
implementations match the specs, then for every model it registers: that it
loads, tokenizes each sample line with the tokens it adds declared, runs
(streaming the reply's text, honouring Ctrl-C) and decodes into a reply that
keeps the documented rules (a stop reason, strict JSON data of its own names);
that the lines work in the real REPL loop, in batch and ``--json`` mode (strict
JSON, every core field); that a missing checkpoint or an overlong line (the
plugin's own, in its input format) reaches the user as a one-line message,
never as a traceback or a plugin failure, and that an overlong line the model
cuts is cut where ``/tokens`` shows it, with a notice; that its commands answer
bad arguments with a message; and that its hooks print no library warnings to
the terminal. Each check is a :class:`Finding`; if any fails,
:class:`ConformanceError` (an ``AssertionError``) lists them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from repl import hookspecs
from repl.api import STOP_REASONS, Encoding, LoadedModel, LoadOptions, ModelError, Reply, RunControl, Setting, Token
from repl.app.evaluator import Repl
from repl.core.layout import cells
from repl.core.plugin_host import MODEL_HOOKS, PluginError, PluginHost
from repl.core.results import CORE_FIELDS, RESERVED_FIELDS, Result
from repl.core.session import Session
from repl.core.settings import find_setting
from repl.core.turn import tokenize
from repl.terminal.renderer import Renderer
from repl.testing.driver import ReplDriver
from repl.testing.leaks import Leaks

SAMPLE = "hello world"
# "error" is modelrepl's own: a plugin that fails raises instead.
REPLY_STOP_REASONS = tuple(reason for reason in STOP_REASONS if reason != "error")
# Longer than any tiny model's limit, so that truncation (or its refusal) is exercised.
LONG_LINE_WORDS = 1000
HOOKSPEC_NAMES = tuple(name for name, value in vars(hookspecs).items() if hasattr(value, "modelrepl_spec"))
# What a user may type after a plugin's command by mistake: each must get a message, never a crash.
BAD_ARGUMENTS = ("", "no-such-name", "'unbalanced quote", "--", "-1", "\x00\x1b[2J", "word " * 2000)


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, on which model (None: the plugin as a whole), and why it failed."""

    check: str
    ok: bool
    model: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f" [{self.model}]" if self.model else ""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}{where}" + (f": {self.detail}" if self.detail else "")


@dataclass
class ConformanceReport:
    plugin: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.ok]

    def __str__(self) -> str:
        passed = [finding for finding in self.findings if finding.ok]
        summary = f"plugin {self.plugin!r}: {len(self.failures)} of {len(self.findings)} checks failed"
        return "\n".join([summary] + [f"  {finding}" for finding in self.failures + passed])


class ConformanceError(AssertionError):
    """A plugin failed ``check_plugin``; ``report`` holds every finding."""

    def __init__(self, report: ConformanceReport):
        super().__init__(str(report))
        self.report = report


def check_plugin(
    plugin: str | ModuleType | Any,
    *,
    name: str | None = None,
    checkpoints: dict[str, str | Path] | None = None,
    samples: dict[str, str | list[str]] | None = None,
    long_inputs: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    raise_on_failure: bool = True,
) -> ConformanceReport:
    """Check one plugin against the hookspecs; raise ConformanceError if any check fails.

    ``plugin`` is an installed entry-point name of the ``modelrepl`` group
    (loaded the way modelrepl loads it), or a plugin module or object,
    registered as ``name`` (default: the module's last name). ``checkpoints``
    maps model names to the checkpoint to load instead of the default;
    ``samples`` maps model names to a line the model can answer, or a list of
    them (default ``"hello world"``); ``long_inputs`` maps model names to a line
    longer than the model takes, written in the model's own input format
    (default: the first sample repeated to 1000 words); ``settings`` are
    applied to every model that takes them (``{"max_new_tokens": 4}`` keeps
    generation short).
    """
    lines = {model: [given] if isinstance(given, str) else list(given) for model, given in (samples or {}).items()}
    report = _Checker(checkpoints or {}, lines, long_inputs or {}, settings or {}).run(plugin, name)
    if raise_on_failure and not report.ok:
        raise ConformanceError(report)
    return report


class _Checker:
    def __init__(
        self,
        checkpoints: dict[str, str | Path],
        samples: dict[str, list[str]],
        long_inputs: dict[str, str],
        settings: dict[str, Any],
    ):
        # Directories made absolute: the commands are checked from a scratch directory.
        self.checkpoints = {model: _absolute(path) for model, path in checkpoints.items()}
        self.samples = samples
        self.long_inputs = long_inputs
        self.settings = settings
        self.host = PluginHost()
        self.report = ConformanceReport("")

    def record(self, check: str, ok: bool, detail: str = "", model: str | None = None) -> bool:
        self.report.findings.append(Finding(check, ok, model, "" if ok else detail))
        return ok

    def problems(self) -> list[str]:
        status = self.host.statuses.get(self.report.plugin)
        return list(status.problems) if status else []

    # -- the plugin ---------------------------------------------------------------

    def run(self, plugin: Any, name: str | None) -> ConformanceReport:
        if isinstance(plugin, str):
            self.report.plugin = plugin
            self.host.load_entry_points(only=[plugin])
            installed = plugin in self.host.statuses
            if not self.record("has a modelrepl entry point", installed, "none is installed by that name"):
                return self.report
            plugin = self.host.manager.get_plugin(plugin)
        else:
            self.report.plugin = name or getattr(plugin, "__name__", type(plugin).__name__).rsplit(".", 1)[-1]
            self.host.add(plugin, self.report.plugin)
        status = self.host.statuses[self.report.plugin]
        if not self.record("imports, with hooks that match the hookspecs", status.broken is None, status.broken or ""):
            return self.report
        self._check_unmarked(plugin)
        models = self._check_registration(status.hooks)
        session = Session(self.host, LoadOptions(device="cpu"))
        for model in models:
            if model in self.checkpoints:
                session.choose_checkpoint(model, self.checkpoints[model])
        before = self.problems()
        Repl(session, _quiet_renderer())
        added = self.problems()[len(before) :]
        self.record("registers its commands", not added, "; ".join(added))
        for model in models:
            self._check_model(session, model)
        self._check_commands(session)
        left = self.problems()
        self.record("no problem reported at any hook", not left, "; ".join(left))
        return self.report

    def _check_unmarked(self, plugin: Any) -> None:
        unmarked = [
            attribute
            for attribute in HOOKSPEC_NAMES
            if callable(getattr(plugin, attribute, None)) and not hasattr(getattr(plugin, attribute), "modelrepl_impl")
        ]
        self.record(
            "every hook function is marked @hookimpl",
            not unmarked,
            f"{', '.join(unmarked)} look like hooks but lack @hookimpl (from repl import hookimpl), "
            "so pluggy never calls them",
        )

    def _check_registration(self, hooks: list[str]) -> list[str]:
        """The plugin's models that are fit to be checked one by one."""
        models = [name for name, spec in self.host.models().items() if spec.plugin == self.report.plugin]
        problems = self.problems()
        self.record("registers its models without problems", not problems, "; ".join(problems))
        implemented = [hook for hook in MODEL_HOOKS if hook in hooks]
        if not models:
            if implemented:
                detail = f"implements {', '.join(implemented)} but registers no model"
                self.record("registers the models its hooks serve", False, detail)
            return []
        missing = [hook for hook in MODEL_HOOKS if hook not in hooks]
        if not self.record("implements every model hook", not missing, f"{', '.join(missing)} missing"):
            return []
        return [name for name in models if self._check_settings(name)]

    def _check_settings(self, name: str) -> bool:
        spec = self.host.models()[name]
        wrong = [repr(s) for s in spec.settings if not isinstance(s, Setting)]
        if not self.record("declares settings as repl.api.Setting", not wrong, ", ".join(wrong), name):
            return False
        if spec.validate_settings is None:
            return True
        try:
            spec.validate_settings(spec.default_settings())
        except ValueError as exc:
            return self.record("accepts its default settings", False, f"validate_settings refuses them: {exc}", name)
        return self.record("accepts its default settings", True, model=name)

    # -- one model, through its hooks -----------------------------------------------------

    def _check_model(self, session: Session, name: str) -> None:
        spec = session.spec(name)
        for key, value in self.settings.items():
            if find_setting(spec, key) is not None:
                session.set(name, key, value)
        samples = self.samples.get(name) or [SAMPLE]
        leaks = Leaks()
        with leaks.watching():
            loaded = self._check_load(session, name)
        if loaded is None:
            return
        answered = []
        for sample in samples:
            with leaks.watching():
                encoding = self._check_tokenize(session, name, sample)
                replied = encoding is not None and self._check_reply(session, name, sample, loaded, encoding)
            if replied:
                answered.append(encoding)
        if len(answered) == len(samples):
            long_line = self._long_line(name, samples[0])
            with leaks.watching():
                self._check_cancel(session, name, loaded, answered[0])
                self._check_long_line_tokens(session, name, loaded, long_line)
            self._check_in_repl(session, name, samples)
            self._check_errors_are_messages(session, name, long_line)
        self.record(
            "prints no library warnings to the terminal",
            not leaks.found,
            f"{leaks.summary()}: the user sees them between the prompt and the reply; silence them where they arise",
            name,
        )

    def _check_load(self, session: Session, name: str) -> LoadedModel | None:
        try:
            loaded = session.model(name)
        except (ModelError, PluginError) as exc:
            self.record("loads", False, str(exc), name)
            return None
        asked = session.checkpoint_of(name)
        limit = loaded.max_input_tokens
        wrong = []
        if loaded.spec.name != name:
            wrong.append(f"spec is {loaded.spec.name!r}, not the spec it was given")
        if loaded.checkpoint != asked:
            wrong.append(f"checkpoint is {loaded.checkpoint!r}, not {asked!r} it was asked to load")
        if loaded.decoder_start is not None and not isinstance(loaded.decoder_start, Token):
            wrong.append(f"decoder_start is a {type(loaded.decoder_start).__name__}, not a Token")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            wrong.append(f"max_input_tokens is {limit!r}, not a positive int or None")
        self.record("loads", not wrong, "; ".join(wrong), name)
        return loaded

    def _check_tokenize(self, session: Session, name: str, sample: str) -> Encoding | None:
        try:
            encoding = tokenize(session, name, sample)
        except (ModelError, PluginError) as exc:
            self.record("tokenizes the sample", False, f"{sample!r}: {exc}", name)
            return None
        malformed = [repr(token) for token in encoding.tokens if not _is_token(token)]
        if not self.record(
            "tokenizes the sample",
            bool(encoding.tokens) and not malformed and encoding.text == sample,
            f"tokens {malformed or encoding.tokens!r} for text {encoding.text!r}; expected Tokens of {sample!r}",
            name,
        ):
            return None
        undeclared = [t for t in encoding.tokens if t.special and not t.added and t.piece not in sample]
        detail = ", ".join(
            f"{t.piece!r} (id {t.id}) is special and not in the text, but not marked added" for t in undeclared
        )
        self.record("declares the tokens its tokenizer adds", not undeclared, detail, name)
        return encoding

    def _run_and_decode(self, session: Session, loaded: LoadedModel, encoding: Encoding, control: RunControl) -> Any:
        settings = dict(session.settings_of(loaded.spec.name))
        hook_arguments = dict(model=loaded, encoding=encoding, settings=settings)
        output = self.host.call(loaded.spec.plugin, "run", control=control, **hook_arguments)
        return self.host.call(loaded.spec.plugin, "decode", output=output, **hook_arguments)

    def _check_reply(self, session: Session, name: str, sample: str, loaded: LoadedModel, encoding: Encoding) -> bool:
        streamed: list[str] = []
        control = RunControl(stream=streamed.append)
        try:
            reply = self._run_and_decode(session, loaded, encoding, control)
        except (ModelError, PluginError) as exc:
            return self.record("runs and decodes the sample", False, str(exc), name)
        self.record("run reports its steps to control.step()", control.steps > 0, "Ctrl-C could never stop it", name)
        if not isinstance(reply, Reply):
            return self.record("decode returns a Reply", False, f"it returned {type(reply).__name__}", name)
        wrong = _malformed_reply(reply)
        self.record("the reply is well formed", not wrong, "; ".join(wrong), name)
        shown = "".join(streamed)
        self.record(
            "streams exactly the reply's text",
            not streamed or shown == reply.text,
            f"streamed {shown!r} but the reply text is {reply.text!r}",
            name,
        )
        hidden = [t.piece for t in encoding.tokens if t.added and t.special and t.piece not in sample]
        if loaded.decoder_start is not None:
            hidden.append(loaded.decoder_start.piece)
        leaked = sorted({piece for piece in hidden if piece and piece in reply.text})
        self.record(
            "keeps added special tokens out of the reply text",
            not leaked,
            f"{', '.join(map(repr, leaked))} shown to the user; they belong in raw_text",
            name,
        )
        return not wrong

    def _check_cancel(self, session: Session, name: str, loaded: LoadedModel, encoding: Encoding) -> None:
        control = RunControl()
        control.cancel()
        check = "stops at the first step after Ctrl-C"
        try:
            reply = self._run_and_decode(session, loaded, encoding, control)
        except (ModelError, PluginError) as exc:
            self.record(check, False, str(exc), name)
            return
        if control.steps > 1:
            self.record(check, False, f"{control.steps} steps ran after the cancel flag was set", name)
        else:
            self.record(check, isinstance(reply, Reply), "decode of the cut-short output returned no Reply", name)

    # -- one model, through the REPL ----------------------------------------------------

    def _check_in_repl(self, session: Session, name: str, samples: list[str]) -> None:
        repl = Repl(session, _quiet_renderer())
        results = [repl.handle(f"/use {name}")] + [repl.handle(sample) for sample in samples]
        failed = _errors(results)
        answered = all(result.turns for result in results[1:])
        self.record("answers in batch mode", not failed and answered, "; ".join(failed), name)

        json_repl = Repl(session, _quiet_renderer(json_mode=True))
        for sample in samples:
            json_repl.handle(sample)
        lines = json_repl.renderer.out.getvalue().splitlines()
        self.record("answers in --json mode, in strict JSON", *_json_turns(lines, name, len(samples)), name)

        self._check_at_a_terminal(session, name, samples)

        history = Path(tempfile.mkdtemp()) / "history"
        drive = ReplDriver(Repl(session, _quiet_renderer()), history_path=history).lines(f"/use {name}", *samples)
        failed = _errors(drive.results)
        self.record(
            "answers in the interactive loop",
            len(drive.results) == len(samples) + 1 and not failed and "Traceback" not in drive.stderr,
            "; ".join(failed) or drive.stderr,
            name,
        )

    def _check_at_a_terminal(self, session: Session, name: str, samples: list[str]) -> None:
        """Replies shown at a terminal (markdown or raw by `render`), and drawn by `render_reply` if it has one."""
        renderer = Renderer(io.StringIO(), io.StringIO(), terminal=True)
        results = [Repl(session, renderer).handle(sample) for sample in samples]
        failed = _errors(results)
        self.record("answers at a terminal", not failed and bool(renderer.out.getvalue()), "; ".join(failed), name)
        if not session.draws_own_replies(name):
            return
        too_wide = []
        for width in (40, 100):
            for turn in (turn for result in results for turn in result.turns):
                drawn = session.drawn_by_plugin(turn, width, False) or ""
                too_wide += [f"{line!r} is wider than {width}" for line in drawn.splitlines() if cells(line) > width]
        self.record("draws its replies within the width (render_reply)", not too_wide, "; ".join(too_wide[:3]), name)

    def _long_line(self, name: str, sample: str) -> str:
        """The plugin's own overlong line for the model, or the sample repeated to LONG_LINE_WORDS words."""
        words = sample.split() or SAMPLE.split()
        repeated = " ".join((words * (LONG_LINE_WORDS // len(words) + 1))[:LONG_LINE_WORDS])
        return self.long_inputs.get(name) or repeated

    def _check_long_line_tokens(self, session: Session, name: str, loaded: LoadedModel, long_line: str) -> None:
        """An overlong line is cut in `tokenize`, where /tokens shows it, and a notice says so."""
        check = "cuts an overlong line where /tokens shows it, with a notice"
        try:
            encoding = tokenize(session, name, long_line)
        except (ModelError, PluginError):
            return  # refused: `_check_errors_are_messages` judges how
        if not encoding.tokens:
            return  # tokenized elsewhere (a server): nothing is shown to disagree with
        limit, source = loaded.max_input_tokens, "its max_input_tokens"
        if limit is None:
            limit, source = _positions(loaded), "its model's positions"
        shown = len(encoding.tokens)
        if limit is not None and shown > limit and not encoding.notices:
            self.record(
                check,
                False,
                f"tokenize gives {shown} tokens for the long line, with no notice, but the model takes at most "
                f"{limit} ({source}): /tokens shows tokens the model never sees; cut them in tokenize, with a notice",
                name,
            )
            return
        words = len(long_line.split())
        typed = sum(not token.added for token in encoding.tokens)
        cut_unnoticed = name not in self.long_inputs and typed < words and not encoding.notices
        self.record(
            check,
            not cut_unnoticed,
            f"the {words}-word line became {typed} tokens of text, with no notice saying what was cut",
            name,
        )

    def _check_commands(self, session: Session) -> None:
        """Each of the plugin's commands answers arguments typed by mistake with a message, not a crash."""
        repl = Repl(session, _quiet_renderer())
        mine = [found for found in repl.commands if found.plugin == self.report.plugin]
        for found in mine:
            wrong = []
            leaks = Leaks()
            # A command that takes a file name writes nothing into the project it is tested from.
            with contextlib.chdir(tempfile.mkdtemp()):
                for arguments in BAD_ARGUMENTS:
                    before = self.problems()
                    with leaks.watching():
                        result = repl.evaluate(f"/{found.name} {arguments}")
                    crashed = [
                        error
                        for error in _errors([result])
                        if "\n" in error or error.startswith(("internal error", f"plugin {self.report.plugin!r}"))
                    ]
                    crashed += self.problems()[len(before) :]
                    if crashed:
                        wrong.append(f"/{found.name} {_shown_arguments(arguments)}: {'; '.join(crashed)}")
            self.record(f"/{found.name} answers bad arguments with a message", not wrong, "; ".join(wrong[:3]))
            self.record(f"/{found.name} prints no library warnings to the terminal", not leaks.found, leaks.summary())

    def _check_errors_are_messages(self, session: Session, name: str, long_line: str) -> None:
        missing = Path(tempfile.mkdtemp()) / "missing-checkpoint"
        for check, line in (
            ("a missing checkpoint is a one-line message", f"/load {name} {shlex.quote(str(missing))}"),
            ("an overlong line is truncated or refused with a message", long_line),
        ):
            before = self.problems()
            repl = Repl(session, _quiet_renderer())
            plugin_failure = ("internal error", f"plugin {self.report.plugin!r}")
            errors = _errors([repl.handle(line)])
            wrong = [error for error in errors if "\n" in error or error.startswith(plugin_failure)]
            wrong += self.problems()[len(before) :]
            printed = repl.renderer.err.getvalue() + repl.renderer.out.getvalue()
            fine = not wrong and "Traceback" not in printed
            self.record(check, fine, "; ".join(wrong) or "a traceback was printed", name)


def _absolute(checkpoint: str | Path) -> str:
    """A checkpoint directory as an absolute path; a hub id as it is."""
    return str(Path(checkpoint).resolve()) if Path(checkpoint).exists() else str(checkpoint)


def _positions(loaded: LoadedModel) -> int | None:
    """The most tokens a transformers model takes by its config, when the plugin did not say; else None."""
    config = getattr(loaded.handle, "config", None)
    if config is None or not hasattr(loaded.tokenizer, "model_max_length"):
        return None
    from repl.api import max_positions

    return max_positions(config, loaded.tokenizer)


def _shown_arguments(arguments: str) -> str:
    shown = repr(arguments)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _json_turns(lines: list[str], name: str, expected: int) -> tuple[bool, str]:
    """Whether --json printed one strict JSON object per line with every core field and no error."""
    try:
        records = [json.loads(line, parse_constant=_refuse_constant) for line in lines]
    except ValueError as exc:
        return False, f"printed a line that is not strict JSON ({exc}): {lines!r}"
    wrong = [
        record
        for record in records
        if record.get("model") != name or record.get("error") is not None or set(CORE_FIELDS) - set(record)
    ]
    if len(records) != expected or wrong:
        return False, f"printed {lines!r}; expected {expected} object(s) with every core field and no error"
    return True, ""


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _errors(results: list[Result]) -> list[str]:
    return [error for result in results for error in [result.error, *(t.error for t in result.turns)] if error]


def _is_token(token: Any) -> bool:
    return isinstance(token, Token) and isinstance(token.id, int) and isinstance(token.piece, str)


def _malformed_reply(reply: Reply) -> list[str]:
    wrong = []
    if not isinstance(reply.text, str) or not isinstance(reply.raw_text, str):
        wrong.append("text and raw_text must be str")
    if reply.display is not None and not isinstance(reply.display, str):
        wrong.append(f"display must be str or None, not {type(reply.display).__name__}")
    for field_name in ("new_ids", "raw_ids"):
        ids = getattr(reply, field_name)
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            wrong.append(f"{field_name} must be a list of int, not {ids!r:.80}")
    if reply.stop_reason not in REPLY_STOP_REASONS:
        wrong.append(f"stop_reason {reply.stop_reason!r} is not one of {', '.join(REPLY_STOP_REASONS)}")
    if not isinstance(reply.notices, list) or not all(isinstance(n, str) for n in reply.notices):
        wrong.append("notices must be a list of str")
    if reply.stop_reason == "done" and reply.new_ids:
        wrong.append(f"stop_reason 'done' means no tokens were generated, yet new_ids has {len(reply.new_ids)}")
    if not isinstance(reply.data, dict):
        wrong.append(f"data must be a dict (a JSON object), not {type(reply.data).__name__}")
        return wrong
    try:
        json.dumps(reply.data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        wrong.append(f"data must be strict JSON for --json ({exc})")
    reserved = [key for key in reply.data if key in RESERVED_FIELDS]
    if reserved:
        wrong.append(f"data uses names reserved for modelrepl's own fields: {', '.join(map(repr, reserved))}")
    return wrong


def _quiet_renderer(json_mode: bool = False) -> Renderer:
    return Renderer(io.StringIO(), io.StringIO(), json_mode=json_mode)
