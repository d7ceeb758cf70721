"""Markdown drawn while it streams ends on screen exactly as the whole reply rendered at once.

A terminal emulator (pyte) plays what the stream writes, cursor moves and
erasures included, and its screen is compared cell by cell (character,
colours, bold, italics, underline) with the screen of a one-shot render.
"""

import io
import re
import subprocess
import sys

import pyte
import pytest

from repl.terminal.markdown import (
    MarkdownStream,
    markdown_lines,
    render_markdown,
    terminal_color_system,
    top_level_blocks,
)

REPLY = """\
# Sorting a list in Python

Python sorts with **`sorted()`**, which returns a *new* list, or `list.sort()`, which sorts in place.
See [the sorting how-to](https://docs.python.org/3/howto/sorting.html) for more, 和 中文 too 🙂.

## Ways to sort

- `sorted(items)`: a new list
- `items.sort()`: in place
  - stable, like every Python sort
- `key=` picks what to compare

1. Write the key function
2. Pass it as `key=`

| call | returns | in place |
|------|---------|----------|
| `sorted(x)` | a new list | no |
| `x.sort()` | `None` | yes |

```python
def by_length(words):
    \"\"\"Shortest first.\"\"\"
    return sorted(words, key=len)


print(by_length(["kiwi", "fig", "banana"]))
```

> Note: `sort()` returns `None`,
> so `x = x.sort()` loses the list.

---

That is all ~~there is~~ you need.
"""

# Documents whose block boundaries and spacing rich treats in its particular ways.
ODD_DOCUMENTS = [
    "plain text without a newline at the end",
    "- a\n- b\n\n\n- c after two blank lines\n\nafter\n",
    "- dash list\n* star list\n+ plus list\n",
    "1. one\n2. two\n\n3) other delimiter\n",
    "Setext heading\n===\n\nAnother\n---\ntext\n",
    "para\n    not code: a lazy line\n\n    indented code\n\n    more of it\n\ntext\n",
    "> quote\nlazy continuation\n\n> > nested\n> - list in quote\n\nend\n",
    "| a | b |\n|---|:-:|\n| 1 | 2 |\nstill table\n\nafter table\n",
    "para with ![an image](pic.png) inside\n\nnext\n\n![alone](x.png)\n",
    "<div>\nhtml block\n</div>\n\ntext\n\n<!-- comment -->\n",
    "#\n\n# \n\nempty headings above\n",
    "~~~\ntilde fence\n~~~\n````md\n```\ninner\n```\n````\n",
    "- item\n\n  ```python\n  x = 1\n  ```\n\n- item after a fence\n",
    "***\n---\n___\n\ntext between\n\n---\n",
    "text  \nwith hard break\\\nand another\n\n[link **bold**](u) and <http://auto.link>\n",
    "Wide: 日本語のテキストが折り返されるかどうかを確かめるための長い段落です。" * 3
    + "\n\n| 名前 | 値 |\n|---|---|\n| 猫 | 🐈 |\n",
]


def screen_rows(data: str, width: int, rows: int) -> list[list[tuple]]:
    """What a terminal `width` columns wide shows after `data`: each cell's character and attributes."""
    screen = pyte.Screen(width, rows)
    screen.set_mode(pyte.modes.LNM)  # a newline returns the carriage, as a tty's output processing does
    pyte.Stream(screen).feed(data)
    return [[_cell(screen.buffer[row][column]) for column in range(width)] for row in range(rows)]


def plain_rows(data: str, width: int, rows: int) -> list[str]:
    return ["".join(cell[0] for cell in row).rstrip() for row in screen_rows(data, width, rows)]


def pieces_of(text: str) -> list[str]:
    """The text cut as a tokenizer cuts it: words with their leading space, punctuation, newlines."""
    return re.findall(r"\n| ?\w+| ?[^\w\s]| +", text)


def streamed(text, width, colour=True, pieces=None, step=0.03, **options):
    """Everything the stream writes while `text` arrives piece by piece, a piece every `step` seconds."""
    written = []
    now = [0.0]
    stream = MarkdownStream(written.append, width, colour, clock=lambda: now[0], **options)
    for piece in pieces if pieces is not None else pieces_of(text):
        now[0] += step
        stream.feed(piece)
    stream.finish()
    assert stream.text == text
    return "".join(written), stream


def assert_same_screen(text, width, colour=True, **options):
    one_shot = render_markdown(text, width, colour)
    rows = one_shot.count("\n") + 3
    output, _ = streamed(text, width, colour, **options)
    assert screen_rows(output, width, rows) == screen_rows(one_shot, width, rows)


def test_the_pieces_are_the_whole_reply():
    assert "".join(pieces_of(REPLY)) == REPLY


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("colour", [True, False], ids=["colour", "no-colour"])
def test_streamed_token_by_token_the_screen_ends_as_the_one_shot_render(width, colour):
    assert_same_screen(REPLY, width, colour)


@pytest.mark.parametrize("width", [40, 80])
@pytest.mark.parametrize("document", ODD_DOCUMENTS, ids=range(len(ODD_DOCUMENTS)))
def test_odd_documents_end_as_their_one_shot_render(document, width):
    assert_same_screen(document, width)


@pytest.mark.parametrize("cut", ["characters", "lines", "whole"])
def test_any_cutting_of_the_reply_ends_the_same(cut):
    pieces = {"characters": list(REPLY), "lines": REPLY.splitlines(keepends=True), "whole": [REPLY]}[cut]
    assert_same_screen(REPLY, 80, pieces=pieces)


def test_redrawn_every_piece_it_still_ends_as_the_one_shot_render():
    assert_same_screen(REPLY, 80, redraw_every=0)


def test_what_the_screen_shows_has_no_markdown_markup():
    shown = "\n".join(plain_rows(streamed(REPLY, 80)[0], 80, 80))
    for markup in ("# ", "**", "```", "~~", "|---", "](", "> "):
        assert markup not in shown
    for words in ("Sorting a list in Python", "def by_length(words):", "sorted(x)", "the sorting how-to"):
        assert words in shown


def test_code_is_highlighted_by_its_language():
    rows = screen_rows(render_markdown(REPLY, 80, True), 80, 80)
    text = ["".join(cell[0] for cell in row) for row in rows]
    row = next(i for i, line in enumerate(text) if "def by_length" in line)
    keyword = rows[row][text[row].index("def")]
    name = rows[row][text[row].index("by_length")]
    assert keyword[1] != name[1]  # Pygments colours the keyword and the function name differently
    assert keyword[2] != "default"  # on the code block's background


def test_an_unclosed_fence_at_the_end_still_shows_its_code():
    reply = "Here is the function:\n\n```python\ndef add(a, b):\n    return a +"
    output, _ = streamed(reply, 80)
    shown = plain_rows(output, 80, 20)
    assert " def add(a, b):" in shown and "     return a +" in shown
    assert not any("```" in row or "python" in row for row in shown)
    assert screen_rows(output, 80, 20) == screen_rows(render_markdown(reply, 80, True), 80, 20)


def test_an_open_fence_is_drawn_as_code_while_it_streams():
    written = []
    stream = MarkdownStream(written.append, 60, True, redraw_every=0)
    for piece in pieces_of("Intro.\n\n```python\nimport os\nprint(os.sep)\n"):
        stream.feed(piece)
    rows = screen_rows("".join(written), 60, 12)
    text = ["".join(cell[0] for cell in row).rstrip() for row in rows]
    assert not any("```" in line for line in text)
    code_row = text.index(" import os")
    assert rows[code_row][1][2] != "default"  # the code block's background: code, not prose
    assert rows[code_row][1][1] != rows[code_row][8][1]  # `import` and `os` highlighted apart


def test_the_start_of_a_fence_is_not_shown_as_backticks():
    written = []
    stream = MarkdownStream(written.append, 40, False, redraw_every=0)
    for piece in ["Text.\n", "\n", "`", "`"]:
        stream.feed(piece)
    assert "`" not in "\n".join(plain_rows("".join(written), 40, 6))


def test_no_color_keeps_the_layout_without_a_colour():
    coloured = render_markdown(REPLY, 80, True)
    plain = render_markdown(REPLY, 80, False)
    assert plain_rows(plain, 80, 80) == plain_rows(coloured, 80, 80)
    colours = re.findall(r"\x1b\[([\d;]*)m", plain)
    assert not [codes for codes in colours if re.search(r"(^|;)(3\d|4\d|9\d|10\d)(;|$)", codes)]
    assert "\x1b[1m" in plain  # bold stays: it is not a colour


def test_the_colour_system_follows_colorterm():
    assert terminal_color_system({"COLORTERM": "truecolor"}) == "truecolor"
    assert terminal_color_system({}) == "256"
    # Rendered in a process of its own: rich keeps a style's escape codes once made, for one colour system.
    code = (
        "from repl.terminal.markdown import render_markdown; import sys; "
        "print('38;2;' in render_markdown('```python\\ndef f(): pass\\n```', 40, True, sys.argv[1]))"
    )
    for system, truecolour in (("truecolor", "True"), ("256", "False")):
        done = subprocess.run([sys.executable, "-c", code, system], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == truecolour


def test_dimmed_markdown_is_dim():
    assert "\x1b[2m" in render_markdown("Thinking **hard**.", 40, True, dim=True)


@pytest.mark.parametrize("width", [30, 57, 80])
def test_markdown_lines_fit_the_width_whatever_the_characters(width):
    from rich.cells import cell_len
    from rich.text import Text

    lines = markdown_lines(REPLY + ODD_DOCUMENTS[-1], width, True)
    assert {cell_len(Text.from_ansi(line).plain) for line in lines} == {width}


def test_finished_blocks_are_rendered_once_and_the_open_one_a_few_times_a_second():
    blocks = len(top_level_blocks(REPLY))
    pieces = pieces_of(REPLY)
    _, fast = streamed(REPLY, 80, step=0.001)  # a thousand pieces a second: the screen keeps up at five
    seconds = len(pieces) * 0.001
    assert fast.renders <= blocks + seconds / 0.2 + blocks + 1
    _, slow = streamed(REPLY, 80, step=1.0)  # a piece a second: each is shown as it comes
    assert slow.renders <= blocks + len(pieces) + 1


def long_reply(tokens: int) -> str:
    """A reply of about `tokens` pieces: paragraphs, lists and code blocks, over and over."""
    unit = (
        "A paragraph of some length that explains a point, with **bold** words and `code` in it, "
        "long enough to wrap.\n\n- an item\n- another item\n\n```python\nfor i in range(3):\n    print(i)\n```\n\n"
    )
    text = ""
    while len(pieces_of(text)) < tokens:
        text += unit
    return text


def cost_of_the_last_tokens(tokens: int, window: int = 100) -> float:
    """Characters of markdown rendered per piece over the last `window` pieces of a reply of `tokens` pieces."""
    pieces = pieces_of(long_reply(tokens))
    stream = MarkdownStream(lambda _: None, 80, True, redraw_every=3600, clock=lambda: 0.0)
    for piece in pieces[:-window]:
        stream.feed(piece)
    stream.redraw_every = 0  # from here every piece is redrawn: the worst case
    before = stream.rendered_chars
    for piece in pieces[-window:]:
        stream.feed(piece)
    return (stream.rendered_chars - before) / window


def test_the_cost_of_a_token_does_not_grow_with_the_reply():
    cost = {tokens: cost_of_the_last_tokens(tokens) for tokens in (200, 1000, 4000)}
    assert cost[4000] < 1.5 * cost[200] and cost[1000] < 1.5 * cost[200]
    # Rendering the whole reply at every token would cost the reply's length per token.
    assert cost[4000] < len(long_reply(4000)) / 50


def test_a_block_taller_than_the_screen_keeps_what_scrolled_off():
    code = "".join(f"line_{i} = {i}\n" for i in range(40))
    reply = f"Before.\n\n```python\n{code}```\n\nAfter.\n"
    written = []
    stream = MarkdownStream(written.append, 50, True, height=10, redraw_every=0)
    for piece in pieces_of(reply):
        stream.feed(piece)
    stream.finish()
    screen = pyte.HistoryScreen(50, 10, history=200)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed("".join(written))
    scrolled = ["".join(line[column].data for column in range(50)).rstrip() for line in screen.history.top]
    everything = [line for line in scrolled + [row.rstrip() for row in screen.display]]
    expected = plain_rows(render_markdown(reply, 50, True), 50, 60)
    while everything and not everything[-1]:
        everything.pop()
    while expected and not expected[-1]:
        expected.pop()
    assert everything == expected


def test_suspend_takes_the_open_block_off_the_screen():
    written = []
    stream = MarkdownStream(written.append, 40, False, redraw_every=0)
    for piece in pieces_of("Done.\n\nOpen.\n\nStill being writ"):
        stream.feed(piece)
    stream.suspend()
    written.append("note: a line of its own\n")
    stream.feed("ten.")
    stream.finish()
    shown = plain_rows("".join(written), 40, 8)
    # What was finished stays; the open part is drawn again below the note.
    assert shown[:7] == ["Done.", "note: a line of its own", "", "Open.", "", "Still being written.", ""]


def test_importing_the_renderer_imports_neither_rich_nor_markdown_it():
    code = "import sys, repl.terminal.markdown; print([m for m in ('rich', 'markdown_it') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- at a real terminal: modelrepl in a pseudo-terminal, a chat model taught a markdown reply --------------------------

TAUGHT_LINE = "Show me markdown"
TAUGHT_MARKDOWN = "# Sorting\n\nUse **sorted**:\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(sorted(x))\n```\n"


@pytest.fixture(scope="module")
def markdown_chat(tmp_path_factory):
    from repl.testing import build_chat_checkpoint, teach_checkpoint

    root = tmp_path_factory.mktemp("markdown-chat")
    return teach_checkpoint("chat", build_chat_checkpoint(root / "chat"), {TAUGHT_LINE: TAUGHT_MARKDOWN}, steps=150)


def at_a_terminal(checkpoint, home, width, *flags, **environment):
    """Send the taught line to modelrepl in a pseudo-terminal; the screen's rows and the reply as its transcript has it."""
    import json
    import os

    import pexpect

    rows = 60
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "PYTHONPATH": os.getcwd(),
        "COLORTERM": "",
        **environment,
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "repl", "-m", f"chat={checkpoint}", "--no-preload", "--set", "max_new_tokens=150", *flags],
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(rows, width),
    )
    child.logfile_read = io.StringIO()  # everything the terminal was sent
    try:
        child.expect("chat")
        child.expect(">")
        child.sendline(TAUGHT_LINE)
        child.expect("print")
        child.expect(pexpect.TIMEOUT, timeout=3)  # the rest of the reply, and the next prompt
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.kill(9)
    written = child.logfile_read.getvalue()
    transcript = (home / "data" / "modelrepl" / "transcript.jsonl").read_text(encoding="utf-8").splitlines()
    return written, json.loads(transcript[-1])["output"]


def reply_rows(screen: list[list[tuple]]) -> list[list[tuple]]:
    """The rows between the line sent and the next prompt, notes left out (a long one wraps under its first word)."""
    text = ["".join(cell[0] for cell in row) for row in screen]
    start = next(i for i, line in enumerate(text) if line.startswith(f"chat> {TAUGHT_LINE}")) + 1
    end = next(i for i in range(start, len(text)) if text[i].startswith("chat>"))
    kept, in_note = [], False
    for row, line in zip(screen[start:end], text[start:end]):
        in_note = line.startswith("note:") or (in_note and re.match(NOTE_CONTINUED, line) is not None)
        if not in_note:
            kept.append(row)
    return kept


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 120])
def test_at_a_terminal_a_streamed_markdown_reply_ends_exactly_as_its_one_shot_render(markdown_chat, tmp_path, width):
    written, reply = at_a_terminal(markdown_chat, tmp_path, width)
    assert reply == TAUGHT_MARKDOWN  # the model says what it was taught, and the transcript keeps it raw
    one_shot = render_markdown(reply, width, True)
    assert reply_rows(screen_rows_at_a_tty(written, width)) == rows_of(one_shot, width)


@pytest.mark.slow
def test_at_a_terminal_an_unclosed_fence_still_shows_its_code_and_no_color_its_layout(markdown_chat, tmp_path):
    written, reply = at_a_terminal(markdown_chat, tmp_path, 80, "--set", "max_new_tokens=82", NO_COLOR="1")
    assert "```python\nprint(" in reply and not reply.endswith("```\n")  # cut inside the fence
    one_shot = render_markdown(reply, 80, False)
    shown = reply_rows(screen_rows_at_a_tty(written, 80))
    assert shown == rows_of(one_shot, 80)
    assert any(" print(" in "".join(cell[0] for cell in row) for row in shown)
    assert not re.search(r"\x1b\[[\d;]*(3\d|4\d|9\d)[;m]", written.replace("\x1b[39", "").replace("\x1b[49", ""))


# The rows of a note that wraps: indented to the end of "note: ".
NOTE_CONTINUED = r"^ {6}\S"


def rows_of(rendered: str, width: int) -> list[list[tuple]]:
    """The rows a render fills, each cell with its attributes."""
    return screen_rows(rendered, width, rendered.count("\n") + 1)[:-1]


def screen_rows_at_a_tty(written: str, width: int, rows: int = 60) -> list[list[tuple]]:
    """Like `screen_rows`, for output a tty already turned into carriage return and line feed."""
    screen = pyte.Screen(width, rows)
    pyte.Stream(screen).feed(written)
    return [[_cell(screen.buffer[row][column]) for column in range(width)] for row in range(rows)]


def _cell(cell) -> tuple:
    return (cell.data, cell.fg, cell.bg, cell.bold, cell.italics, cell.underscore, cell.reverse)
