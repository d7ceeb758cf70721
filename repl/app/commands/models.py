"""Models and their settings: /models, /use, /load, /unload, /set, /show and /context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app.commands.arguments import on_off, split_arguments, unquoted
from repl.app.commands.registry import command
from repl.core import settings as settings_module
from repl.core.reasoning_settings import TEMPLATE
from repl.core.records import Setting
from repl.core.results import CommandError, Result, Table

if TYPE_CHECKING:
    from repl.app.context import CommandContext


@command("models", help="registered and loaded models")
def models_command(context: CommandContext, args: str) -> Table | str:
    split_arguments(args, "/models", 0, 0)
    return context.evaluator.models_table()


@command("use", usage="NAME", help="switch the active model", confirms=True, instant=True)
def use_command(context: CommandContext, args: str) -> str:
    (name,) = split_arguments(args, "/use NAME", 1, 1)
    spec = context.spec(name)
    context.session.active = spec.name
    context.evaluator.broadcast_to = None
    return f"active model: {spec.name} ({spec.family}, {context.session.checkpoint_of(spec.name)})"


@command(
    "load",
    usage="NAME [CHECKPOINT]",
    help="load a model now, optionally another checkpoint (hub id or directory)",
    confirms=True,
)
def load_command(context: CommandContext, args: str) -> str:
    words = split_arguments(args, "/load NAME [CHECKPOINT]", 1, 2)
    session = context.session
    spec = session.spec(words[0])
    wanted = words[1] if len(words) == 2 else session.checkpoint_of(spec.name)
    current = session.loaded.get(spec.name)
    if current is not None and current.checkpoint == wanted:
        return f"{spec.name} is already loaded from {wanted}"
    del current  # a reference kept here would keep the old model's memory while the new one loads
    try:
        loaded = context.load(spec.name, wanted)
    except KeyboardInterrupt:
        kept = f"; {spec.name} stays on {session.checkpoint_of(spec.name)}" if spec.name in session.loaded else ""
        raise CommandError(f"cancelled while loading {spec.name}{kept}") from None
    notes = [f"\nnote: {note}" for note in session.take_notes(spec.name)]
    return f"loaded {spec.name} from {loaded.checkpoint}: {context.evaluator.describe_loaded(loaded)}" + "".join(notes)


@command("unload", usage="NAME", help="free a loaded model's memory", confirms=True)
def unload_command(context: CommandContext, args: str) -> str:
    (name,) = split_arguments(args, "/unload NAME", 1, 1)
    spec = context.spec(name)
    if not context.session.unload(spec.name):
        raise CommandError(f"{spec.name} is not loaded")
    return f"unloaded {spec.name}"


@command(
    "set",
    usage="KEY VALUE",
    help="change a setting of the active model; a setting that takes text takes the rest of the line",
    confirms=True,
)
def set_command(context: CommandContext, args: str) -> str:
    if settings_module.compare_setting(args.split(" ", 1)[0]) is not None:
        key, value = split_arguments(args, "/set KEY VALUE", 2, 2)
        try:
            context.session.set_compare(key, value)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return f"every comparison: {key} = {context.session.compare[key]}"
    spec = context.spec()
    key, _, rest = args.strip().partition(" ")
    setting = settings_module.find_setting(spec, key)
    if setting is not None and setting.takes_text and rest.strip():
        value = unquoted(rest.strip())  # text with spaces, quoted or not; the quotes are not part of it
    else:
        key, value = split_arguments(args, "/set KEY VALUE", 2, 2)
    try:
        warning = context.session.set(spec.name, key, value)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    values = context.session.settings_of(spec.name)
    if key in values:
        shown = f"{spec.name}: {key} = {settings_module.format_value(values[key])}"
    else:  # a template variable set to none: not passed, so the template's own default applies
        shown = f"{spec.name}: {key} unset (the template's default)"
    return f"{shown}\nnote: {warning}" if warning else shown


@command("show", usage="[NAME]", help="a model's settings (default: the active model's)")
def show_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, "/show [NAME]", 0, 1)
    spec = context.spec(words[0]) if words else context.spec()
    values = context.session.settings_of(spec.name)
    rows: list[tuple[str, str, str]] = []
    for setting in settings_module.all_settings(spec):
        if setting.prefix:
            rows += _prefixed_rows(context, spec.name, setting, values)
        else:
            rows.append((setting.name, settings_module.format_value(values[setting.name]), setting.help))
    return Result(
        parts=[
            f"{spec.name} ({spec.family}, {context.session.checkpoint_of(spec.name)})",
            Table(("setting", "value", "meaning"), tuple(rows)),
            f"stats after each reply: {'on' if context.evaluator.show_stats else 'off'}",
            "comparisons: " + ", ".join(f"{key} = {value}" for key, value in context.session.compare.items()),
        ]
    )


def _prefixed_rows(context: CommandContext, name: str, setting: Setting, values: dict) -> list[tuple[str, str, str]]:
    """One row per name after a prefix setting: for `template.`, each variable the loaded template reads."""
    loaded = context.loaded(name)
    read = loaded.template_variables if loaded is not None and setting.name == TEMPLATE.name else None
    named = sorted({key.removeprefix(setting.name) for key in values if key.startswith(setting.name)} | set(read or ()))
    if not named:
        unknown = "none read by its template" if read is not None else "listed once the model is loaded"
        return [(settings_module.shown_name(setting), "-", f"{setting.help} ({unknown})")]
    meaning = "a variable its chat template reads" if read is not None else setting.help
    return [
        (
            setting.name + variable,
            settings_module.format_value(values[setting.name + variable])
            if setting.name + variable in values
            else "(template's default)",
            meaning,
        )
        for variable in named
    ]


@command(
    "context",
    usage="[on|off]",
    help="keep earlier turns as the prompt (models that support it); alone, whether it does",
    confirms=True,
)
def context_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, "/context [on|off]", 0, 1)
    spec = context.spec()
    if spec.setting("context") is None:
        raise CommandError(f"{spec.name} keeps no conversation context; each line stands alone")
    if words:
        context.session.set(spec.name, "context", on_off(words[0], "/context [on|off]"))
    state = settings_module.format_value(context.session.settings_of(spec.name)["context"])
    return Result(text=f"{spec.name}: context {state}", confirmation=bool(words))  # alone, it answers a question
