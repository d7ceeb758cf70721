"""Every hookspec is documented in docs/plugins.md and exercised by a test.

A hook is documented by a section headed with its exact signature, whose
bullet points say what the reference promises for each hook. A test says which
hooks it exercises with ``@pytest.mark.hookspec("name", ...)``; the test files
are read, not run, so this check holds when it runs alone.
"""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from repl import api, hookspecs
from repl.core.results import CORE_FIELDS, RESERVED_FIELDS, Turn, turn_record

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
SECTION = re.compile(r"^### `(\w+)\((.*)\)`$", re.MULTILINE)
REQUIRED_BULLETS = ("Kind", "Called", "Arguments", "Returns", "Special tokens", "Errors")
SPECS = {name: value for name, value in vars(hookspecs).items() if hasattr(value, "modelrepl_spec")}


def documented_sections() -> dict[str, tuple[str, str]]:
    """{hook: (arguments as written in the heading, section text)}."""
    text = DOCS.read_text(encoding="utf-8")
    headings = list(SECTION.finditer(text))
    sections = {}
    for heading, following in zip(headings, headings[1:] + [None]):
        end = following.start() if following else text.find("\n## ", heading.end())
        sections[heading.group(1)] = (heading.group(2), text[heading.end() : end if end != -1 else len(text)])
    return sections


def hooks_named_by_tests() -> dict[str, list[str]]:
    """{hook: [test functions marked as exercising it]}, from every test file's source."""
    named: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.hookspec":
                    for argument in decorator.args:
                        named.setdefault(ast.literal_eval(argument), []).append(f"{path.name}::{node.name}")
    return named


def test_the_hookspecs_are_found():
    expected = {"register_models", "load_model", "tokenize", "run", "decode", "register_commands", "turn_finished"}
    assert expected <= set(SPECS)


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_every_hookspec_is_documented_with_its_signature_and_kind(hook):
    sections = documented_sections()
    assert hook in sections, f"docs/plugins.md has no section '### `{hook}(...)`'"
    arguments, body = sections[hook]
    signature = ", ".join(inspect.signature(SPECS[hook]).parameters)
    assert arguments == signature, f"{hook}: the heading says ({arguments}), the spec ({signature})"
    missing = [bullet for bullet in REQUIRED_BULLETS if f"- **{bullet}:**" not in body]
    assert not missing, f"{hook}: the section lacks {', '.join(missing)}"
    firstresult = SPECS[hook].modelrepl_spec["firstresult"]
    kind = re.search(r"- \*\*Kind:\*\* (\w+)", body).group(1)
    assert kind == ("firstresult" if firstresult else "broadcast")


def test_the_docs_document_no_hook_that_does_not_exist():
    assert set(documented_sections()) <= set(SPECS)


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_every_hookspec_is_exercised_by_a_marked_test(hook):
    assert hooks_named_by_tests().get(hook), f"no test is marked @pytest.mark.hookspec({hook!r})"


def test_tests_mark_only_hooks_that_exist():
    assert set(hooks_named_by_tests()) <= set(SPECS)


def test_the_walk_through_shows_the_echo_example_as_it_is():
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)

    assert [path for path, _ in blocks] == [
        "examples/echo/pyproject.toml",
        "examples/echo/modelrepl_echo/__init__.py",
        "examples/echo/tests/conftest.py",
        "examples/echo/tests/test_echo.py",
    ]
    for path, shown in blocks:
        assert shown == (ROOT / path).read_text(encoding="utf-8"), f"docs/plugins.md shows an old {path}"


def test_every_name_the_front_door_exports_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    front_door = text[text.index("## The front door: `repl.api`") : text.index("## Hook reference")]
    # A name is documented by a table row whose first cell names it: `name` or `name(arguments)`.
    first_cells = re.findall(r"^\| (.+?) \|", front_door, re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)[`(]", cell)}
    undocumented = [name for name in api.__all__ if name not in documented]
    assert not undocumented, f"docs/plugins.md's front door does not document {undocumented}"


def test_every_name_the_front_door_exports_exists():
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert not missing
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


@pytest.mark.slow
def test_importing_the_front_door_imports_no_torch_or_transformers():
    code = (
        "import sys; import repl.api; from repl.api import GENERATION_SETTINGS, SYSTEM, Repl, Reply, hookimpl; "
        "import plugins.gpt2, plugins.mt0, plugins.bert, plugins.chat, plugins.remote, plugins.gguf; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_the_stop_reasons_are_documented_in_one_table():
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("### Stop reasons") :].split("\n\n")[2]
    assert set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)) == set(api.STOP_REASONS)


def test_the_reserved_field_names_are_documented_as_they_are():
    text = DOCS.read_text(encoding="utf-8")
    listed = text[text.index("<!-- reserved-fields -->") :].split("\n\n")[0]
    assert re.findall(r"`(\w+)`", listed) == list(RESERVED_FIELDS)


def test_the_readme_describes_json_output_as_turn_record_writes_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    described = re.search(r"`--json` prints one object per model turn.*?`\{(.*?)\}`", readme, re.DOTALL).group(1)
    stats = re.search(r'"stats": \{(.*?)\}', described, re.DOTALL).group(1)
    record = turn_record(Turn(model="m", checkpoint="c", input="i"))

    assert (
        re.findall(r'"(\w+)"', re.sub(r"\{.*?\}", "", described, flags=re.DOTALL)) == list(record) == list(CORE_FIELDS)
    )
    assert re.findall(r'"(\w+)"', stats) == list(record["stats"])
