"""The blind arena at the prompt: /arena, /vote and /leaderboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repl.app import arena as arena_module
from repl.app.commands.arguments import model_names, split_arguments
from repl.app.commands.registry import command
from repl.app.leaderboard import leaderboard_result, parse_since
from repl.core.results import CommandError, Result

if TYPE_CHECKING:
    from repl.app.context import CommandContext


@command(
    "arena",
    usage="[NAME ...] | off",
    help="blind comparison: each line goes to two of the models, shown as A and B; vote, then see who was who",
)
def arena_command(context: CommandContext, args: str) -> str:
    repl = context.evaluator
    words = args.split()
    if [word.lower() for word in words] == ["off"]:
        was = repl.arena
        repl.arena = None
        if was is None:
            return "the arena was not on"
        return f"arena off after {was.votes} vote{'s' if was.votes != 1 else ''}; /leaderboard shows the ratings"
    names = model_names(repl.session, words) if words else list(repl.arena_default)
    if not words and len(names) < 2:
        raise CommandError(
            "name the models to pit against each other: /arena NAME NAME ... (or list them as "
            "`arena = [...]` in the config)"
        )
    repl.arena = arena_module.start(repl, names)
    repl.broadcast_to = None
    return (
        f"arena on: {', '.join(names)}. Each line goes to two of them, shown as A and B in random order; "
        f"then vote: {arena_module.VOTE_HELP}. /arena off leaves, /leaderboard shows the ratings."
    )


@command("vote", usage="a|b|tie|bad", help="in the arena: which reply was better (a, b), a tie, or both bad")
def vote_command(context: CommandContext, args: str) -> Result:
    repl = context.evaluator
    (word,) = split_arguments(args, "/vote a|b|tie|bad", 1, 1)
    verdict = arena_module.verdict_of(word)
    if verdict is None:
        raise CommandError(f"usage: /vote a|b|tie|bad ({arena_module.VOTE_HELP})")
    if repl.arena is None:
        raise CommandError("the arena is not on: /arena NAME NAME ... starts it")
    return arena_module.vote(repl, repl.arena, verdict)


@command(
    "leaderboard",
    usage="[--since YYYY-MM-DD] [NAME ...]",
    help="the arena's ratings (Bradley-Terry, Elo scale) with 95% intervals, battles, wins, ties and losses",
)
def leaderboard_command(context: CommandContext, args: str) -> Result:
    words = split_arguments(args, "/leaderboard [--since YYYY-MM-DD] [NAME ...]", 0, None)
    since = None
    if "--since" in words:
        at = words.index("--since")
        if at + 1 >= len(words):
            raise CommandError("usage: /leaderboard [--since YYYY-MM-DD] [NAME ...]")
        since = parse_since(words[at + 1])
        words = words[:at] + words[at + 2 :]
    return leaderboard_result(since, words)
