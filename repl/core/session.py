"""The state of one REPL: which model is active, what is loaded, settings and turns."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import sys
import threading
from collections.abc import Iterator
from typing import Any

from repl.core import settings as settings_module
from repl.core.plugin_host import PluginError, PluginHost
from repl.core.reasoning_settings import REASONING_EFFORT, TEMPLATE, THINK, template_arguments
from repl.core.records import QUANTIZATIONS, LoadedModel, LoadOptions, ModelError, ModelSpec
from repl.core.results import Turn
from repl.core.suggest import nearest
from repl.core.units import counted


def _return_freed_memory() -> None:
    """Give the heap pages the model and its tokenizer freed back to the system.

    glibc keeps freed memory in its pools, so without this /unload leaves
    resident memory more than 100 MB above its level before a real-size load.
    Elsewhere (no glibc) there is nothing to trim.
    """
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def _touches_template(key: str) -> bool:
    return key in (THINK.name, REASONING_EFFORT.name) or key.startswith(TEMPLATE.name)


class Session:
    """Owns the active model, the loaded models, per-model settings and the turns."""

    def __init__(self, host: PluginHost, options: LoadOptions | None = None, active: str | None = None):
        self.host = host
        self.options = options or LoadOptions()
        self.loaded: dict[str, LoadedModel] = {}
        self.checkpoints: dict[str, str] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        self.turns: list[Turn] = []
        # The turns of the latest line sent to models (one, or one per model of a comparison): what /retry repeats.
        self.last_line: list[Turn] = []
        # Turns /retry is answering again: out of their models' conversations until it is done.
        self._regenerating: list[Turn] = []
        # Per model, what a load changed in its settings, for the next turn (or /load) to say.
        self._notes: dict[str, list[str]] = {}
        # Per model: the quantization the config asks for (`quantize` in [models.NAME]).
        self.quantization: dict[str, str] = {}
        # NAME@MODE: a registered model at another precision, made on first use (see `find`).
        self.variants: dict[str, ModelSpec] = {}
        # One lock per model name: a load started by the warm start and a line's load never run twice.
        self._load_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Per model, the number of turns there were when its `context` was last turned on, or it
        # loaded another checkpoint: the conversation it is given starts there.
        self.context_from: dict[str, int] = {}
        # How comparisons run and are laid out: one value for every model (`COMPARE_SETTINGS`).
        self.compare: dict[str, Any] = {s.name: s.default for s in settings_module.COMPARE_SETTINGS}
        self.active = self._default_active(active)

    def _default_active(self, wanted: str | None) -> str | None:
        models = self.host.models()
        if wanted:
            return self.spec(wanted).name
        if "mt0" in models:
            return "mt0"
        return next(iter(models), None)

    # -- models -----------------------------------------------------------------

    def find(self, name: str) -> ModelSpec | None:
        """The model called `name` (or an alias), or None.

        `NAME@TAG` is a copy of the registered model NAME: a model of its own,
        with its own checkpoint, settings and turns, that starts with NAME's.
        A quantization as TAG (`gpt2@int8`) loads it so, and `/compare gpt2
        gpt2@int8` shows what quantizing costs; any other word (`gpt2@hot`)
        keeps NAME's precision, so that two settings of one model can be compared.
        """
        base_name, at, mode = name.partition("@")
        base = self.host.resolve(base_name)
        if not at or base is None:
            return base
        if mode not in QUANTIZATIONS and not mode.isidentifier():
            raise ModelError(
                f"{name}: after @ comes a quantization ({', '.join(QUANTIZATIONS)}) or a word naming a copy of "
                f"{base.name}, e.g. {base.name}@hot"
            )
        variant_name = f"{base.name}@{mode}"
        if variant_name not in self.variants:
            self.variants[variant_name] = dataclasses.replace(base, name=variant_name, aliases=())
            self.settings.setdefault(variant_name, dict(self.settings_of(base.name)))
        return self.variants[variant_name]

    def model_names(self) -> list[str]:
        """Every registered model, then the NAME@MODE variants used so far."""
        return list(self.host.models()) + list(self.variants)

    def spec(self, name: str) -> ModelSpec:
        """The model called `name` (or an alias), or ModelError naming the nearest."""
        spec = self.find(name)
        if spec is None:
            known = list(self.host.models()) + [a for s in self.host.models().values() for a in s.aliases]
            hint = nearest(name, known)
            suffix = (
                f"; did you mean {hint!r}?"
                if hint
                else (f"; known: {', '.join(self.host.models())}" if known else "; no model is registered")
            )
            raise ModelError(f"unknown model {name!r}{suffix}")
        return spec

    def active_spec(self) -> ModelSpec:
        if self.active is None:
            raise ModelError("no model is registered: see `modelrepl plugins` for broken plugins")
        return self.spec(self.active)

    def draws_own_replies(self, name: str) -> bool:
        """Whether the model's plugin draws its replies on a terminal (the `render_reply` hook)."""
        return self.host.implements(self.spec(name).plugin, "render_reply")

    def drawn_by_plugin(self, turn: Turn, width: int, colour: bool) -> str | None:
        """A finished reply as the model's plugin draws it; None when it has no drawing of its own or it failed."""
        spec = self.find(turn.model)
        model = self.loaded.get(turn.model)
        if spec is None or model is None:
            return None
        return self.host.offer(spec.plugin, "render_reply", str, model=model, turn=turn, width=width, colour=colour)

    def checkpoint_of(self, name: str) -> str:
        spec = self.spec(name)
        if spec.name in self.checkpoints:
            return self.checkpoints[spec.name]
        base, at, _ = spec.name.partition("@")
        return self.checkpoint_of(base) if at else spec.checkpoint

    def load_options(self, name: str) -> LoadOptions:
        """How `name` is loaded: its @MODE if that is a quantization, else --quantize, else its config's `quantize`."""
        base, _, mode = self.spec(name).name.partition("@")
        chosen = mode if mode in QUANTIZATIONS else self.options.quantize or self.quantization.get(base)
        return dataclasses.replace(self.options, quantize=chosen)

    def choose_checkpoint(self, name: str, checkpoint: str | None) -> None:
        spec = self.spec(name)
        if checkpoint:
            self.checkpoints[spec.name] = checkpoint
        else:
            self.checkpoints.pop(spec.name, None)

    def model(self, name: str, local_files_only: bool = False) -> LoadedModel:
        """The loaded model, loading it on first use; a failed load registers nothing.

        Safe to call from the warm-start thread (`repl.preload`, which passes
        `local_files_only`) and the main thread at once: a second caller waits
        for the first one's load instead of starting another.
        """
        spec = self.spec(name)
        loaded = self.loaded.get(spec.name)
        if loaded is not None:
            return loaded
        lock = self.load_lock(spec.name)
        while not lock.acquire(timeout=0.1):  # timed, so that Ctrl-C lands while the warm start is loading
            pass
        try:
            checkpoint = self.checkpoint_of(spec.name)
            loaded = self.loaded.get(spec.name)
            if loaded is not None and loaded.checkpoint == checkpoint:
                return loaded
            if loaded is not None:  # the warm start loaded the checkpoint /load has just replaced
                self.unload(spec.name)
            options = dataclasses.replace(self.load_options(spec.name), local_files_only=local_files_only)
            self.loaded[spec.name] = loaded = self._load(spec, options)
            self._fit_settings(spec, loaded)
            return loaded
        finally:
            lock.release()

    def load_lock(self, name: str) -> threading.Lock:
        """The lock held while model `name` loads."""
        with self._locks_guard:
            return self._load_locks.setdefault(name, threading.Lock())

    def _load(self, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
        checkpoint = self.checkpoint_of(spec.name)
        result = self.host.call(spec.plugin, "load_model", spec=spec, checkpoint=checkpoint, options=options)
        return self.host.expect(spec.plugin, "load_model", result, LoadedModel)

    def replace_checkpoint(self, name: str, checkpoint: str) -> LoadedModel:
        """Load `checkpoint` in place of the model's own; a refused load leaves the model as it was.

        The plugin frees the old model (`LoadOptions.make_room`) only once the
        new checkpoint passed the checks that need no weights; should loading
        fail after that, the old checkpoint is loaded again.
        """
        spec = self.spec(name)
        lock = self.load_lock(spec.name)
        while not lock.acquire(timeout=0.1):  # as in `model`: the warm start may be loading it
            pass
        try:
            previous = self.checkpoints.get(spec.name)
            before = self.checkpoint_of(spec.name)
            was_loaded = spec.name in self.loaded
            self.choose_checkpoint(spec.name, None if checkpoint == spec.checkpoint else checkpoint)
            options = dataclasses.replace(self.load_options(spec.name), make_room=lambda: self.unload(spec.name))
            try:
                loaded = self._load(spec, options)
            except BaseException as refusal:
                self.choose_checkpoint(spec.name, previous)
                if was_loaded and spec.name not in self.loaded:
                    self._reload_after(refusal, spec)
                raise
            self.unload(spec.name)  # still there when the plugin loaded beside it
            self.loaded[spec.name] = loaded
            self._fit_settings(spec, loaded)
            if self.checkpoint_of(spec.name) != before:
                self._new_conversation(spec)
            return loaded
        finally:
            lock.release()

    def _fit_settings(self, spec: ModelSpec, loaded: LoadedModel) -> None:
        """Lower a reply budget set before the model's limit was known, so that its lines do not all fail."""
        values = self.settings_of(spec.name)
        problem = settings_module.room_problem(spec, loaded, values)
        if problem is None or loaded.max_input_tokens is None:
            return
        lowered = max(loaded.max_input_tokens // 2, 1)
        self.settings[spec.name] = {**values, "max_new_tokens": lowered}
        self._notes.setdefault(spec.name, []).append(f"{problem}; lowered to {lowered}")

    def _new_conversation(self, spec: ModelSpec) -> None:
        """Another checkpoint is another model: it is not given the old one's answers as its own."""
        earlier = len(self.history(spec.name))
        self.context_from[spec.name] = len(self.turns)
        values = self.settings_of(spec.name)
        if not earlier or not (spec.setting("system") or values.get("context")):
            return  # a model that keeps no conversation has none to start afresh
        kept = "; the system prompt is kept" if values.get("system") else ""
        self._notes.setdefault(spec.name, []).append(
            f"{spec.name} starts a fresh conversation on {self.checkpoint_of(spec.name)}: "
            f"the {counted(earlier, 'earlier turn')} {'stays' if earlier == 1 else 'stay'} in /history "
            f"but {'is' if earlier == 1 else 'are'} not given to it{kept}"
        )

    def take_notes(self, name: str) -> list[str]:
        """What loading the model changed in its settings (once)."""
        return self._notes.pop(self.spec(name).name, [])

    def _reload_after(self, refusal: BaseException, spec: ModelSpec) -> None:
        try:
            self.loaded[spec.name] = self._load(spec, self.load_options(spec.name))
        except (ModelError, PluginError) as exc:
            raise ModelError(
                f"{refusal}; and {spec.name} could not load {self.checkpoint_of(spec.name)} again: {exc}"
            ) from None

    def unload(self, name: str) -> bool:
        spec = self.spec(name)
        loaded = self.loaded.pop(spec.name, None)
        if loaded is None:
            return False
        del loaded
        gc.collect()
        _return_freed_memory()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    # -- settings ---------------------------------------------------------------

    def settings_of(self, name: str) -> dict[str, Any]:
        spec = self.spec(name)
        if spec.name not in self.settings:
            self.settings[spec.name] = settings_module.defaults(spec)
        return self.settings[spec.name]

    def set(self, name: str, key: str, value: Any) -> str | None:
        """Change one setting of one model; ValueError if refused, a warning if it has no effect."""
        spec = self.spec(name)
        elsewhere = {s.name for other in self.host.models().values() for s in settings_module.all_settings(other)}
        updated, warning = settings_module.change(spec, self.settings_of(spec.name), key, value, elsewhere)
        loaded = self.loaded.get(spec.name)
        problem = None if loaded is None else settings_module.room_problem(spec, loaded, updated)
        if problem is not None:
            raise ValueError(problem)
        if loaded is not None and _touches_template(key):
            try:  # refused at the door: the template of the checkpoint loaded now does not read it
                template_arguments(updated, loaded)
            except ModelError as exc:
                raise ValueError(str(exc)) from None
        if key == "context" and updated[key] and not self.settings_of(spec.name).get(key):
            self.context_from[spec.name] = len(self.turns)
        self.settings[spec.name] = updated
        return warning

    def set_compare(self, key: str, value: Any) -> None:
        """Change a comparison setting; ValueError if refused."""
        setting = settings_module.compare_setting(key)
        if setting is None:
            raise ValueError(f"{key!r} is no comparison setting")
        self.compare[key] = setting.parse(value) if isinstance(value, str) else setting.check(value)

    def set_everywhere(self, key: str, value: Any) -> list[str]:
        """Change a setting on every model that takes it (``--set KEY=VALUE`` without a model)."""
        names = [name for name, spec in self.host.models().items() if settings_module.find_setting(spec, key)]
        if not names:
            raise ValueError(f"no model takes the setting {key!r}")
        for name in names:
            self.set(name, key, value)
        return names

    # -- turns ------------------------------------------------------------------

    def history(self, name: str) -> list[tuple[str, str]]:
        """Earlier (input, output) pairs of one model since the last /clear, or since its context was turned on."""
        since = self.turns[self.context_from.get(name, 0) :]
        return [(t.input, t.output) for t in since if t.model == name and t.ok and not _among(t, self._regenerating)]

    def latest_line(self) -> list[Turn]:
        """The turns of the last line sent to models; the last turn when that is not known (an opened session)."""
        kept = [turn for turn in self.last_line if _among(turn, self.turns)]
        return kept or self.turns[-1:]

    @contextlib.contextmanager
    def regenerating(self, old: list[Turn]) -> Iterator[None]:
        """Answer the line of the `old` turns again: each model is given the conversation before its old turn.

        An old turn is replaced (it leaves the turns) once its model answered
        again; a model that failed, or was cancelled before answering, keeps it.
        """
        self._regenerating = list(old)
        first_new = len(self.turns)
        try:
            yield
        finally:
            self._regenerating = []
            answered = {turn.model for turn in self.turns[first_new:] if turn.ok}
            for turn in old:
                if turn.model in answered:
                    self._forget(turn)

    def _forget(self, turn: Turn) -> None:
        index = next(i for i, kept in enumerate(self.turns) if kept is turn)
        del self.turns[index]
        for name, start in self.context_from.items():
            if start > index:
                self.context_from[name] = start - 1

    def clear(self) -> None:
        self.turns.clear()
        self.last_line = []
        self.context_from.clear()


def _among(turn: Turn, turns: list[Turn]) -> bool:
    """Whether this very turn is in `turns` (two turns may be equal: the same line, the same answer)."""
    return any(kept is turn for kept in turns)
