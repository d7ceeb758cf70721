"""Who gets a name that several plugins claim: a model's name or alias, a command.

The rule does not depend on the order in which plugins were installed or loaded:

- a name modelrepl itself uses (a built-in command) stays modelrepl's;
- a name a built-in plugin claims stays that plugin's;
- a name only one plugin claims is that plugin's (the first time it claims it);
- a name two or more other plugins claim goes to none of them, and each is told
  how to settle it: uninstall the others, or leave them out of MODELREPL_PLUGINS.

A claim is refused when it loses its first name (the model's or command's own
name); otherwise it keeps the names it won and only loses the aliases it did not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Claim:
    """One registration: the plugin, its names (the name first, then aliases), and whether it ships with modelrepl."""

    plugin: str
    names: tuple[str, ...]
    builtin: bool = False


@dataclass
class Settlement:
    """The claims that keep their own name, with every name each keeps; and (plugin, problem) per name lost."""

    granted: list[tuple[Claim, tuple[str, ...]]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def settle(
    claims: Iterable[Claim],
    *,
    what: Callable[[str], str],
    how_to_keep: Callable[[str, list[str]], str],
    reserved: Mapping[str, str] | None = None,
) -> Settlement:
    """Decide every claim: the names each one keeps, and a one-line problem per name it lost.

    `what(name)` names a name in messages ("model name 'x'", "command /x");
    `reserved` maps names already owned to their owner ("modelrepl");
    `how_to_keep(plugin, rivals)` tells the user how to give a contested name to `plugin`.
    """
    claims = list(claims)
    reserved = reserved or {}
    claimants: dict[str, list[Claim]] = {}
    for claim in claims:
        for name in dict.fromkeys(claim.names):
            claimants.setdefault(name, []).append(claim)
    settlement = Settlement()
    given: dict[str, str] = dict(reserved)
    for claim in claims:
        kept: list[str] = []
        for name in claim.names:
            problem = _lost(name, claim, claimants[name], given, reserved, what, how_to_keep)
            if problem is not None:
                settlement.problems.append((claim.plugin, f"{problem}; {'left out' if kept else 'not registered'}"))
                if not kept:
                    break  # without its own name there is nothing to register
                continue
            given[name] = claim.plugin
            kept.append(name)
        if kept:
            settlement.granted.append((claim, tuple(kept)))
    return settlement


def _lost(
    name: str,
    claim: Claim,
    claimants: list[Claim],
    given: Mapping[str, str],
    reserved: Mapping[str, str],
    what: Callable[[str], str],
    how_to_keep: Callable[[str, list[str]], str],
) -> str | None:
    """Why `claim` does not get `name`, or None when it does."""
    if name in reserved:
        return f"{what(name)} is already taken by {reserved[name]}"
    builtin = next((other.plugin for other in claimants if other.builtin), None)
    if builtin is not None and builtin != claim.plugin:
        return f"{what(name)} belongs to the built-in plugin {builtin!r}"
    rivals = sorted({other.plugin for other in claimants} - {claim.plugin})
    if builtin is None and rivals:
        named = " and ".join(repr(plugin) for plugin in sorted([claim.plugin, *rivals]))
        return (
            f"{what(name)} is claimed by plugins {named}, so none of them gets it; "
            f"to give it to {claim.plugin!r}, {how_to_keep(claim.plugin, rivals)}"
        )
    if name in given:  # the plugin claimed it before, for another model or command
        return f"{what(name)} is already taken by plugin {given[name]!r}"
    return None
