"""Plugins need only the front door: `repl.api`, and `repl.testing` for their tests.

What the docs show a plugin author, the hookspecs' docstrings and both example
plugins name nothing else of modelrepl's; the import paths of the first docs
still work, for plugins written against them.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

from repl import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
FRONT_DOORS = ("repl.api", "repl.testing")
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOTTED_NAME = re.compile(r"\brepl(?:\.\w+)+")


def behind_the_door(module: str) -> bool:
    """Whether `module` is one of modelrepl's own (or its built-in plugins') that plugins must not use."""
    own = module == "repl" or module.startswith(("repl.", "plugins.")) or module == "plugins"
    return own and not any(module == door or module.startswith(door + ".") for door in FRONT_DOORS)


def imported_modules(code: str) -> list[str]:
    """Every module a piece of Python code imports from, `from repl import hf` as `repl`."""
    modules = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    return modules


def docs_code_samples() -> list[str]:
    return PYTHON_BLOCK.findall(DOCS.read_text(encoding="utf-8"))


def test_the_docs_have_code_samples_to_check():
    assert len(docs_code_samples()) >= 5


@pytest.mark.parametrize("number", range(len(docs_code_samples())))
def test_a_code_sample_of_the_plugin_docs_imports_only_the_front_door(number):
    sample = docs_code_samples()[number]

    wrong = [module for module in imported_modules(sample) if behind_the_door(module)]

    assert not wrong, f"docs/plugins.md's code sample {number} imports {wrong}; show repl.api or repl.testing"


@pytest.mark.parametrize("hook", sorted(n for n, v in vars(hookspecs).items() if hasattr(v, "modelrepl_spec")))
def test_a_hookspec_docstring_names_only_the_front_door(hook):
    text = getattr(hookspecs, hook).__doc__

    wrong = [name for name in DOTTED_NAME.findall(text) if behind_the_door(name)]

    assert not wrong, f"the {hook} hookspec's docstring names {wrong}; name repl.api's"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_example_plugins_import_only_the_front_door(path):
    wrong = [module for module in imported_modules(path.read_text(encoding="utf-8")) if behind_the_door(module)]

    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


@pytest.mark.parametrize(
    "module, names",
    [
        ("repl", ("hookimpl",)),
        ("repl.turn", ("tokenize",)),
        ("repl.commands", ("Result", "CommandError")),
        ("repl.settings", ("GENERATION_SETTINGS", "validate_generation")),
        ("repl.testing", ("check_plugin", "make_repl", "build_checkpoint", "tokenize")),
        ("repl.testing.checkpoints", ("build_checkpoint", "build_chat_checkpoint", "ARCHITECTURES")),
    ],
)
def test_the_import_paths_of_the_first_docs_still_work(module, names):
    imported = importlib.import_module(module)

    assert all(callable(getattr(imported, name)) or getattr(imported, name) for name in names)


def test_from_repl_import_hf_still_has_every_name_it_had():
    from repl import hf

    names = (
        "FAMILY_NAMES MASKED_BATCH HUB_TIMEOUT_SECONDS resolve_device family_of max_positions quiet_loading load "
        "describe added_by_tokenizer encode_marking_added encode_cut_at_end split_added_ends cut_to_fit "
        "decoder_start forced_first_token decode_text WholeCharacterStreamer IncrementalStreamer streamer_for "
        "generation_config generate token_probs token_texts top_alternatives entropy score_causal score_seq2seq "
        "score_masked stop_reason eos_ids"
    ).split()

    assert [name for name in names if not hasattr(hf, name)] == []


def test_the_old_paths_are_the_front_door_s_objects():
    from repl import api, commands, turn
    from repl import hookimpl as old_hookimpl

    assert (commands.Result, commands.CommandError, old_hookimpl) == (api.Result, api.CommandError, api.hookimpl)
    assert turn.tokenize is importlib.import_module("repl.testing").tokenize
