"""The `modelrepl` command: argument parsing, batch mode and the interactive REPL.

Only light modules are imported here; torch and transformers wait until a
model is needed, so `modelrepl --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence

from repl.core.exit_status import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from repl.core.reasoning_settings import TEMPLATE
from repl.core.records import LoadOptions, ModelError
from repl.hf import quantization as quantize
from repl.hf.placement import parse_max_memory
from repl.store import config as config_module
from repl.store.config import DEVICES, DTYPES, ConfigError


def _version() -> str:
    try:
        return importlib.metadata.version("modelrepl")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _model_choice(text: str) -> tuple[str, str | None]:
    name, _, checkpoint = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=CHECKPOINT, got {text!r}")
    return name, checkpoint or None


def _setting(text: str) -> tuple[str | None, str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE or MODEL.KEY=VALUE, got {text!r}")
    head, prefix, variable = key.partition(TEMPLATE.name)
    if prefix and (not head or head.endswith(".")):  # a chat template's variable: [MODEL.]template.NAME
        return (head[:-1] or None), prefix + variable, value
    model, dot, key = key.rpartition(".")
    return (model if dot else None), key, value


def _max_memory(text: str) -> tuple[str, str]:
    try:
        return parse_max_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-memory ")) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrepl",
        description="A REPL for Hugging Face transformers models: seq2seq (mt0), causal (gpt2), masked (bert), "
        "instruct models through their chat template (chat) and models on an OpenAI-compatible server (remote), "
        "extended by plugins. With -e or piped input it runs in batch mode.",
        epilog="Inside the REPL, /help lists the commands.",
    )
    parser.add_argument("--version", action="version", version=f"modelrepl {_version()}")
    _add_model_options(parser)
    parser.add_argument(
        "-e",
        "--execute",
        action="append",
        default=[],
        metavar="TEXT",
        help="process TEXT as if typed, then exit (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="batch output as one JSON object per line")
    parser.add_argument("--no-stream", action="store_true", help="print replies only when complete")
    parser.add_argument("--no-log", action="store_true", help="do not append turns to the transcript")
    parser.add_argument(
        "--no-preload", action="store_true", help="do not load the active model in the background at the prompt"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal and plugin errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("plugins", help="list plugins: name, version, hooks, status")
    commands.add_parser("models", help="list registered models: family, default checkpoint, aliases")
    config_parser = commands.add_parser("config", help="where the config file is, and what it sets")
    config_parser.add_argument("action", choices=("path", "show", "example"))
    compare_parser = commands.add_parser("compare", help="run prompts on several models and tabulate the stats")
    _add_model_options(compare_parser)
    compare_parser.add_argument("prompts", nargs="?", help="file with one prompt per line (default: stdin)")
    compare_parser.add_argument("--jsonl", metavar="PATH", help="write one JSON row per prompt and model")
    compare_parser.add_argument("--csv", metavar="PATH", help="write one CSV row per prompt and model")
    compare_parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="time each run N times after a warm-up"
    )
    compare_parser.add_argument(
        "--layout",
        choices=("table", "columns"),
        default="table",
        help="columns: on a terminal, each prompt's replies stream side by side before the table",
    )
    board_parser = commands.add_parser(
        "leaderboard", help="the arena's ratings (Bradley-Terry, Elo scale) with 95%% intervals, from the votes"
    )
    # Its own dest: the top-level --json's default would otherwise be overwritten by this one's.
    board_parser.add_argument("--json", dest="json_board", action="store_true", help="one JSON object per entrant")
    board_parser.add_argument("--since", metavar="YYYY-MM-DD", help="only the votes cast on or after this day")
    board_parser.add_argument("--models", nargs="+", default=[], metavar="NAME", help="only battles between these")
    score_parser = commands.add_parser("score", help="log-likelihood of texts under several models, as a table")
    _add_model_options(score_parser)
    score_parser.add_argument(
        "texts", nargs="?", help="file with one text per line (seq2seq: INPUT => TARGET; default: stdin)"
    )
    score_parser.add_argument("--jsonl", metavar="PATH", help="write one JSON row per text and model")
    score_parser.add_argument("--csv", metavar="PATH", help="write one CSV row per text and model")
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        type=_model_choice,
        metavar="NAME[=CHECKPOINT]",
        help="model to use, optionally with a checkpoint (hub id or directory); repeatable, the first is active",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="[MODEL.]KEY=VALUE",
        help="a setting for MODEL, or for every model named with -m (default: the active one)",
    )
    parser.add_argument(
        "--system", metavar="TEXT", help="system prompt of every model that takes one (chat); /system changes it"
    )
    parser.add_argument("--device", choices=DEVICES, help="where models run (default: auto)")
    parser.add_argument("--dtype", choices=DTYPES, help="weights' precision (default: auto, as saved)")
    parser.add_argument(
        "--max-memory",
        action="append",
        default=[],
        type=_max_memory,
        metavar="DEVICE=SIZE",
        help="with --device auto, the most memory a model may take on DEVICE (0, cuda:1, cpu): 0=20GiB; repeatable",
    )
    parser.add_argument(
        "--offload-dir", metavar="DIR", help="with --device auto, put the layers that fit in no memory on disk here"
    )
    parser.add_argument(
        "--quantize",
        choices=quantize.MODES,
        help="quantize weights after loading: int8 on CPU, bnb8/bnb4 (bitsandbytes) on CUDA; "
        "or per model as -m NAME@int8",
    )
    parser.add_argument("--allow-pickle", action="store_true", help="allow checkpoints with pickle (.bin) weights")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoints that run their own code")
    parser.add_argument("--config", metavar="PATH", help="config file (default: the platform's config directory)")


def build_session(args: argparse.Namespace, config: config_module.Config):
    """The session the flags and config describe; errors name what to fix."""
    from repl.core.plugin_host import create_host
    from repl.core.session import Session
    from repl.core.settings import find_setting

    host = create_host()
    options = LoadOptions(
        device=args.device or config.device,
        dtype=args.dtype or config.dtype,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        max_memory=tuple(args.max_memory) or config.max_memory,
        offload_dir=args.offload_dir or config.offload_dir,
        quantize=args.quantize,
    )
    chosen = args.model[0][0] if args.model else config_module.default_model(config, host)
    session = Session(host, options, active=chosen)
    config_module.apply_model_settings(config, session)
    session.set_compare("compare_run", config.compare_run)
    session.set_compare("compare_layout", config.compare_layout)
    for name, checkpoint in args.model:
        session.spec(name)  # a NAME@TAG copy exists from now on: /models lists it before its first use
        if checkpoint:
            session.choose_checkpoint(name, checkpoint)
    if args.no_stream or not config.stream:
        session.set_everywhere("stream", False)
    if args.system is not None:
        _set_system_prompt(session, args.system)
    # A setting without MODEL. is for the named models that take it, not every installed one.
    named = [name for name, _ in args.model] or ([session.active] if session.active else [])
    for model, key, value in args.set:
        targets = [model] if model else [name for name in named if find_setting(session.spec(name), key)]
        try:
            if not targets:
                raise ValueError(f"none of {', '.join(named) or 'the models'} takes the setting {key!r}")
            for name in targets:
                session.set(name, key, value)
        except ValueError as exc:
            raise ModelError(f"--set {key}={value}: {exc}") from None
    return session


def _set_system_prompt(session, text: str) -> None:
    """--system TEXT: the text as given (not parsed as a setting value) on every model that takes one."""
    from repl.core.conversation import SYSTEM

    takers = [name for name, spec in session.host.models().items() if spec.setting(SYSTEM.name) is not None]
    if not takers:
        raise ModelError("--system: no installed model takes a system prompt")
    for name in takers:
        session.settings[name] = {**session.settings_of(name), SYSTEM.name: text or None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("repl").setLevel(logging.DEBUG)
    err = sys.stderr
    try:
        config = config_module.load(args.config)
        if args.command == "config":
            return _config_command(args.action, config)
        if args.command == "plugins":
            from repl.app.commands.general import plugins_table
            from repl.app.evaluator import Repl
            from repl.core.plugin_host import create_host
            from repl.core.results import Result
            from repl.core.session import Session
            from repl.terminal.renderer import Renderer

            host = create_host()
            renderer = Renderer()
            Repl(Session(host), renderer)  # runs the start-up hooks, where most plugin faults show
            renderer.show(Result(parts=[plugins_table(host)]))
            return EXIT_OK
        if args.command == "leaderboard":
            return _leaderboard_command(args)
        session = build_session(args, config)
        if args.command == "models":
            from repl.app.evaluator import Repl
            from repl.core.results import Result
            from repl.terminal.renderer import Renderer

            renderer = Renderer()
            renderer.show(Result(parts=[Repl(session, renderer).models_table()]))
            return EXIT_OK
        if args.command == "compare":
            from repl.batch.compare import compare_cli

            return compare_cli(build_evaluator(args, config, session, _compare_renderer(args)), args)
        if args.command == "score":
            from repl.batch.score import score_cli

            return score_cli(build_evaluator(args, config, session), args)
        return _run(args, config, session)
    except (ConfigError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED


def _leaderboard_command(args: argparse.Namespace) -> int:
    from repl.app.leaderboard import leaderboard_result, parse_since
    from repl.core.results import CommandError
    from repl.terminal.renderer import Renderer

    try:
        since = parse_since(args.since) if args.since else None
    except CommandError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    renderer = Renderer(json_mode=args.json or args.json_board, terminal=sys.stdout.isatty())
    renderer.show(leaderboard_result(since, args.models))
    return EXIT_OK


def _config_command(action: str, config: config_module.Config) -> int:
    from repl.store import paths

    if action == "path":
        print(config.path or paths.config_file())
    elif action == "show":
        from repl.core.plugin_host import create_host
        from repl.core.session import Session

        host = create_host()
        active = Session(host, active=config_module.default_model(config, host)).active
        print(config_module.show(config, active))
    else:
        print(config_module.EXAMPLE, end="")
    return EXIT_OK


def _compare_renderer(args: argparse.Namespace):
    """`modelrepl compare --layout columns` at a terminal draws its columns there; otherwise the default."""
    if args.layout != "columns" or not sys.stdout.isatty():
        return None
    from repl.terminal.renderer import Renderer, colour_wanted

    return Renderer(terminal=True, colour=colour_wanted(sys.stdout))


def build_evaluator(args: argparse.Namespace, config: config_module.Config, session, renderer=None):
    """The one evaluator every mode runs lines through: the REPL, -e and piped lines, `compare` and `score`."""
    from repl.app.evaluator import Repl
    from repl.terminal.renderer import Renderer

    repl = Repl(session, renderer or Renderer(), debug=args.debug)
    repl.arena_default = list(config.arena) or list(dict.fromkeys(name for name, _ in args.model))
    if config.log and not args.no_log:
        from repl.store.paths import transcript_file
        from repl.store.transcript import Transcript

        repl.transcript = Transcript(transcript_file(), repl.renderer.notice)
    return repl


def _run(args: argparse.Namespace, config: config_module.Config, session) -> int:
    from repl.terminal.renderer import Renderer, colour_wanted

    batch = bool(args.execute) or not sys.stdin.isatty()
    at_terminal = not batch and sys.stdout.isatty()
    renderer = Renderer(json_mode=args.json, terminal=at_terminal, colour=at_terminal and colour_wanted(sys.stdout))
    repl = build_evaluator(args, config, session, renderer)
    if batch:
        from repl.core.lines import batch_lines, replace_undecodable

        for problem in session.host.take_problems():
            repl.renderer.notice(problem)
        if args.execute:
            return repl.run_lines(batch_lines(map(replace_undecodable, args.execute)))
        return repl.run_lines(batch_lines(_stdin_lines()))
    from repl.store import paths
    from repl.terminal.reader import TerminalReader, interact

    _banner(repl)
    reader = TerminalReader(repl, paths.history_file(), config.history_size)
    if config.preload and not args.no_preload:
        from repl.app.warm_start import Preloader

        repl.warm_start = Preloader.for_active(session, repl.renderer.notice)
        if repl.warm_start is not None:
            repl.warm_start.then = reader.redraw  # the toolbar said "loading…"
            reader.when_shown(repl.warm_start.start)
    interact(repl, reader)
    return EXIT_OK


def _stdin_lines():
    """Stdin as text; bytes that are not UTF-8 become U+FFFD instead of stopping the run."""
    stream = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
    yield from stream


def _banner(repl) -> None:
    from repl.core.layout import DEFAULT_WIDTH, wrap_paragraph

    session = repl.session
    if session.active is not None:
        spec = session.active_spec()
        banner = (
            f"modelrepl {_version()}: {spec.name} ({spec.family}, {session.checkpoint_of(spec.name)}) is active. "
            "/help lists commands, Ctrl-D quits."
        )
        repl.renderer.out.write(wrap_paragraph(banner, repl.width() or DEFAULT_WIDTH) + "\n")
    for problem in session.host.take_problems():
        repl.renderer.notice(problem)


if __name__ == "__main__":
    sys.exit(main())
