"""The REPL: evaluate a line as a command or a model turn; its output port shows the result.

Reading lines is the reader's job (`repl.terminal.reader` for a terminal, a
plain iterator in batch mode), drawing the output port's (`repl.app.output`);
evaluation runs in the calling (main) thread so that Ctrl-C reaches generation.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from repl.app.arena import Arena, battle
from repl.app.commands import BUILTIN_MODULES
from repl.app.commands.registry import CommandRegistry
from repl.app.comparison import compare_result
from repl.app.context import CommandContext
from repl.core.claims import Claim, settle
from repl.core.layout import lay_out
from repl.core.plugin_host import PluginError, describe_exception
from repl.core.records import LoadedModel, ModelError, RunControl
from repl.core.results import CommandError, Result, Table, Turn
from repl.core.session import Session
from repl.core.text import one_line
from repl.core.turn import run_turn
from repl.core.units import human_bytes, human_count
from repl.store.transcript import Transcript

if TYPE_CHECKING:
    from repl.app.output import Output
    from repl.app.warm_start import Preloader


class Repl:
    def __init__(self, session: Session, renderer: Output, debug: bool = False):
        self.session = session
        self.renderer = renderer
        self.renderer.drawn_by_plugin = session.drawn_by_plugin
        self.debug = debug
        self.show_stats = False
        self.broadcast_to: list[str] | None = None
        self.arena: Arena | None = None  # while on, every line is a blind battle (`repl.app.arena`)
        self.arena_default: list[str] = []  # the entrants of a bare /arena: the config's list or the models named
        self.transcript: Transcript | None = None
        self.warm_start: Preloader | None = None
        self.commands = CommandRegistry()
        self.context = CommandContext(self)  # what every command handler receives
        for module in BUILTIN_MODULES:
            self.commands.add_module(module)
        self._add_plugin_commands()

    def _add_plugin_commands(self) -> None:
        """Gather every plugin's commands first, so a name two plugins claim is settled by `repl.claims`."""
        host = self.session.host
        registrations: list[tuple[Claim, dict[str, Any]]] = []
        for impl in host.manager.hook.register_commands.get_hookimpls():

            def register(name, handler, *, help="", usage="", aliases=(), plugin=impl.plugin_name):
                claim = Claim(plugin, (name.lstrip("/"), *aliases), host.is_builtin(plugin))
                registrations.append((claim, dict(handler=handler, help=help, usage=usage)))

            host.broadcast_one(impl, "register_commands", register=register)
        settlement = settle(
            [claim for claim, _ in registrations],
            what=lambda name: f"command /{name}",
            reserved=dict.fromkeys(self.commands.names(), "modelrepl"),
            how_to_keep=host.how_to_keep,
        )
        for plugin, problem in settlement.problems:
            host.report(plugin, problem)
        details = {id(claim): fields for claim, fields in registrations}
        for claim, (name, *aliases) in settlement.granted:
            try:
                self.commands.register(name, aliases=tuple(aliases), plugin=claim.plugin, **details[id(claim)])
            except ValueError as exc:
                host.report(claim.plugin, f"{exc}; not registered")

    # -- evaluation -------------------------------------------------------------

    def evaluate(self, line: str) -> Result:
        """One line in, one result out; user errors become messages, never exceptions.

        A result's `text` is its parts laid out at the output's width: what its renderer will show, uncoloured.
        """
        result = self._evaluate(line)
        if result.parts:
            result.text = lay_out(result.parts, self.width())
        return result

    def _evaluate(self, line: str) -> Result:
        try:
            if line.startswith("/") and not line.startswith("//"):
                return self._run_command(line[1:])
            text = line[1:] if line.startswith("//") else line
            if not text.strip():
                return Result()
            self._wait_for_warm_start()
            return self.send(text)
        except (CommandError, ModelError, PluginError) as exc:
            return Result(error=one_line(str(exc)))  # their messages already say what failed
        except KeyboardInterrupt:
            return Result(error="cancelled")
        except Exception as exc:
            if self.debug:
                traceback.print_exc()
            return Result(error=f"internal error: {describe_exception(exc)} (run with --debug for details)")

    def _run_command(self, text: str) -> Result:
        words = text.split(maxsplit=1)  # a tab or a newline (Esc-Enter) ends the name as a space does
        if not words:
            raise CommandError("a command name must follow '/': try /help")
        name, args = words[0], "".join(words[1:])
        found = self.commands.find(name)
        if found is None:
            raise CommandError(self.unknown_command_message(name))
        if not found.instant:
            self._wait_for_warm_start()
        try:
            answer = found.handler(self.context, args.strip())
        except (CommandError, ModelError, PluginError, KeyboardInterrupt):
            raise
        except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the REPL
            if found.plugin is None:
                raise
            self.session.host.report(found.plugin, f"command /{found.name} raised {describe_exception(exc)}")
            raise PluginError(found.plugin, f"/{found.name}", describe_exception(exc)) from exc
        if isinstance(answer, Result):
            return answer
        if answer is None or isinstance(answer, str):
            return Result(text=answer or "", confirmation=found.confirms)
        return Result(parts=[answer], confirmation=found.confirms)  # a Table or another part

    def _wait_for_warm_start(self) -> None:
        """Let the warm start finish first: two threads importing transformers at once break its imports.

        Ctrl-C ends the wait: the line is not run, the load goes on.
        """
        preloader = self.warm_start
        if preloader is None or not preloader.running:
            return
        with self.renderer.working(lambda: f"loading {preloader.name}"):
            try:
                preloader.wait()
            except KeyboardInterrupt:
                raise CommandError(
                    f"cancelled; {preloader.name} goes on loading in the background: send the line again in a moment"
                ) from None

    def unknown_command_message(self, name: str) -> str:
        hint = self.commands.nearest(name)
        return f"unknown command /{name}" + (f"; did you mean /{hint}?" if hint else "; try /help")

    def send(self, text: str) -> Result:
        """A model line: to the active model, to every model in broadcast mode, or to two in the arena."""
        if self.arena is not None:
            return battle(self, self.arena, text)
        return self.send_to(self.broadcast_to or [self.session.active_spec().name], text)

    def send_to(self, names: list[str], text: str) -> Result:
        """A model line to the named models: one turn, or a comparison of several."""
        if len(names) > 1:
            return compare_result(self, names, text)
        turn = self.turn(names[0], text)
        self.session.last_line = [turn]
        return Result(turns=[turn])

    def turn(self, name: str, text: str, stream: bool = True) -> Turn:
        self._announce_load(name)
        spec = self.session.spec(name)

        # With `think` at hide, a reasoning model's thinking shows only as the progress line, with its count.
        hidden = self.session.settings_of(spec.name).get("think") == "hide"
        run: list[RunControl] = []
        thinking = False

        def describe() -> str:
            if thinking and run:
                return f"thinking: {run[0].steps} tokens"
            return f"{spec.name} is answering" if spec.name in self.session.loaded else f"loading {spec.name}"

        def think_hidden(text: str) -> None:
            nonlocal thinking
            thinking = True

        render = self.session.settings_of(spec.name).get("render", "raw")
        with self.renderer.live_turn(describe, render, self.session.draws_own_replies(spec.name)) as shown:
            live = stream and shown.streaming
            turn = run_turn(
                self.session,
                name,
                text,
                shown.stream if live else None,
                (think_hidden if hidden else shown.aside) if live else None,
                shown.notice,
                watch=run.append,
            )
            shown.done(turn)
        if self.transcript is not None:
            self.transcript.record(turn)
        return turn

    def load(self, name: str, checkpoint: str | None = None) -> LoadedModel:
        """The named model, loaded now; with `checkpoint`, that checkpoint in place of the model's own."""
        with self.renderer.working(lambda: f"loading {self.session.spec(name).name}"):
            if checkpoint is None:
                self._announce_load(name)
                return self.session.model(name)
            self._announce_load(name, checkpoint)
            return self.session.replace_checkpoint(name, checkpoint)

    @property
    def clipboard(self) -> Any:
        """The prompt's clipboard: /copy puts the last reply there, and Ctrl-Y pastes it."""
        return self.renderer.clipboard

    def width(self) -> int | None:
        """Columns that command output is laid out in; None when it is not a terminal (lines stay whole)."""
        return self.renderer.width()

    def _announce_load(self, name: str, checkpoint: str | None = None) -> None:
        spec = self.session.spec(name)
        source = checkpoint or self.session.checkpoint_of(spec.name)
        if missing_directory(source):
            return  # nothing will load: the loader's one line says so
        if (checkpoint or spec.name not in self.session.loaded) and self.renderer.live:
            self.renderer.notice(f"loading {spec.name} from {source} ...")

    # -- descriptions -----------------------------------------------------------

    def describe_loaded(self, loaded: LoadedModel) -> str:
        if not loaded.parameters:  # a served model: its size is the server's business
            return loaded.placement or loaded.device
        precision = loaded.dtype if loaded.quantization is None else f"{loaded.dtype}, {loaded.quantization}"
        return (
            f"{loaded.placement or loaded.device}, {precision}, {human_count(loaded.parameters)} parameters, "
            f"{human_bytes(loaded.memory_bytes)}"
        )

    def describe_models(self) -> str:
        """The registered models as text at the output's width, as /models shows them uncoloured."""
        return lay_out([self.models_table()], self.width())

    def models_table(self) -> Table | str:
        """The registered models: family, checkpoint, aliases, and how each loaded model is placed."""
        session = self.session
        rows = []
        for name in session.model_names():
            spec = session.spec(name)
            loaded = session.loaded.get(name)
            rows.append(
                (
                    ("* " if name == session.active else "  ") + name,
                    spec.family,
                    session.checkpoint_of(name),
                    ", ".join(spec.aliases) or "-",
                    self.describe_loaded(loaded) if loaded else "not loaded",
                )
            )
        if not rows:
            return "no model is registered: see /plugins"
        return Table(("model", "family", "checkpoint", "aliases", "loaded"), tuple(rows))

    # -- driving ----------------------------------------------------------------

    def handle(self, line: str) -> Result:
        """Evaluate and render one line, then any new plugin problems."""
        result = self.evaluate(line)
        self.renderer.show(result, self.show_stats)
        for problem in self.session.host.take_problems():
            self.renderer.notice(problem)
        return result

    def run_lines(self, lines: Iterable[str]) -> int:
        """Batch mode: every line as if typed; exit status 1 if any failed."""
        failed = False
        for line in lines:
            result = self.handle(line)
            failed = failed or not result.ok
            if result.quit:
                break
        return 1 if failed else 0

    def toolbar_facts(self) -> dict[str, Any]:
        """What the bottom toolbar shows: active model, device, dtype, main settings, last turn."""
        facts: dict[str, Any] = {}
        if self.arena is not None:  # nothing about any model: it could tell A from B
            arena = self.arena
            return {"arena": len(arena.entrants), "votes": arena.votes, "vote": arena.waiting is not None}
        if self.session.active is None:
            return facts
        spec = self.session.active_spec()
        loaded = self.session.loaded.get(spec.name)
        facts["model"] = spec.name
        facts["device"] = self._where(spec.name, loaded) if loaded else None
        preloader = self.warm_start
        facts["loading"] = (
            loaded is None and preloader is not None and preloader.running and preloader.name == spec.name
        )
        values = self.session.settings_of(spec.name)
        for key in ("max_new_tokens", "do_sample", "temperature", "num_beams", "top_k", "context"):
            if key in values:
                facts[key] = values[key]
        if self.broadcast_to:
            facts["broadcast"] = ",".join(self.broadcast_to)
        last = next((turn for turn in reversed(self.session.turns) if turn.model == spec.name), None)
        if last is not None:  # the active model's: a comparison or a retry on others leaves it as it was
            facts["last"] = last.stats
        return facts

    def _where(self, name: str, loaded: LoadedModel) -> str:
        """Where the model runs and at what precision: `cpu float32`, `cpu int8`; a server has no dtype."""
        precision = self.session.load_options(name).quantize if loaded.quantization else loaded.dtype
        return " ".join(part for part in (loaded.placement or loaded.device, precision) if part and part != "-")


def missing_directory(checkpoint: str) -> bool:
    """A checkpoint written as a path (not a hub id) where there is nothing."""
    return checkpoint.startswith(("/", ".", "~")) and not os.path.exists(os.path.expanduser(checkpoint))
