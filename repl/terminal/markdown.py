"""Markdown for a terminal, drawn while it streams.

A reply is cut into top-level blocks (a paragraph, a heading, a list, a table,
a code fence...) by markdown-it-py's block parser, the one rich's `Markdown`
uses. A block is *finished* once a later block has begun on a complete line:
nothing appended after that can change it (a fence stays open until its
closing fence, a list goes on while its lines are indented). Finished blocks
are rendered once and written once; only the *open* block (and whatever of the
last line has arrived) is redrawn, at most a few times a second. The cost of a
token therefore depends on the size of the open block, not of the reply.

Each block is rendered as a document of its own, with the blank line between
two blocks that rich's whole-document render puts there (rich separates a
block from the one before it unless that one is a thematic break), so the
screen after streaming is the one-shot render of the whole reply.

One thing cannot follow from streaming: a reference-style link whose
definition comes after the paragraph that uses it (the paragraph was written
before the definition arrived). Models seldom write them.

rich and markdown-it-py are imported when the first reply is rendered, never
at start-up.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

REDRAW_EVERY = 0.2  # seconds: the open block is redrawn at most five times a second
CODE_THEME = "monokai"  # rich's default; Pygments' theme for fenced code
# The start of a fence still being typed: shown once it is a fence, not as two backticks of prose.
_FENCE_BEGINNING = re.compile(r"^ {0,3}(`{1,2}|~{1,2})$")
# Cursor to the start of the line `n` lines up, then erase to the end of the screen.
_UP = "\x1b[{}A"
_ERASE_BELOW = "\r\x1b[J"


def terminal_color_system(environ: Mapping[str, str]) -> str:
    """The richest colours the terminal announces: 24-bit where COLORTERM says so, else 256."""
    return "truecolor" if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit") else "256"


@cache
def _block_parser() -> Any:
    """The parser rich's Markdown uses (commonmark with tables and strikethrough), so blocks are cut where it cuts."""
    from markdown_it import MarkdownIt

    return MarkdownIt().enable("strikethrough").enable("table")


@dataclass(frozen=True)
class Block:
    """A top-level block: its lines ``start`` to ``end`` (exclusive) and markdown-it's token type.

    ``after_previous`` tells whether rich's blank line before the block comes
    from the block before it (a paragraph, a heading, a fence) or from the
    block's own first child (a list, a quote, a table: they begin with one).
    """

    start: int
    end: int
    kind: str
    after_previous: bool


def top_level_blocks(text: str) -> list[Block]:
    """The top-level blocks of `text`, in order, with the line ranges markdown-it maps them to."""
    tokens = _block_parser().parse(text)
    blocks = []
    first = 0
    while first < len(tokens):
        opening = tokens[first]
        last = first
        if opening.nesting == 1:
            while not (tokens[last].level == 0 and tokens[last].nesting == -1):
                last += 1
        if opening.map is not None:
            blocks.append(
                Block(opening.map[0], opening.map[1], opening.type, _spaced_by_previous(tokens[first : last + 1]))
            )
        first = last + 1
    return blocks


def _spaced_by_previous(tokens: list[Any]) -> bool:
    """Whether rich decides the blank line before this block by the block before it.

    Rich writes a top-level block when it closes, after a blank line if the
    last element it closed asks for one. For a block whose first closing
    element is the block itself (or a child rich writes at once, an image),
    that element was the previous block; a list, a quote or a table closes a
    child of its own first, which then decides, as it does when the block is
    rendered alone.
    """
    from rich.markdown import Link, Markdown, MarkdownElement, UnknownElement

    stack: list[type] = []
    for token in _flattened(tokens):
        if token.type == "link_open":  # rich keeps a link on its stack only while it collects the link's text
            stack.append(Link)
            continue
        if token.type == "link_close":
            stack.pop()
            continue
        if token.type in _NOT_ELEMENTS or (token.tag in Markdown.inlines and token.type not in _CODE):
            continue
        if token.nesting == 1:
            stack.append(Markdown.elements.get(token.type) or UnknownElement)
            continue
        if token.nesting == -1:
            stack.pop()
        if not stack:
            return True
        written_at_once = stack[-1].on_child_close is MarkdownElement.on_child_close
        return written_at_once and token.type != "inline"
    return True


_NOT_ELEMENTS = {"text", "hardbreak", "softbreak", "html_inline"}  # rich handles these as text and style
_CODE = {"fence", "code_block"}


def _flattened(tokens: list[Any]) -> Any:
    """The tokens in the order rich walks them: an inline token's children in its place."""
    for token in tokens:
        if token.children and token.type != "fence" and token.tag != "img":
            yield from _flattened(token.children)
        else:
            yield token


@cache
def _spaced_after(kind: str) -> bool:
    """Whether rich asks for a blank line after a top-level block of this kind."""
    from rich.markdown import Markdown, UnknownElement

    return bool((Markdown.elements.get(kind) or UnknownElement).new_line)


class MarkdownPainter:
    """Renders markdown with rich at a fixed width; colour, dimming and theme are fixed per painter.

    ``colour`` off keeps the layout and the attributes (bold, italic,
    underline, dim) without a single colour, as NO_COLOR asks. ``renders``
    and ``rendered_chars`` count the work done, for tests and benchmarks.
    """

    def __init__(self, width: int, colour: bool, color_system: str = "256", dim: bool = False):
        from rich.console import Console

        self.width = max(width, 1)
        self.dim = dim
        # Rich reads no environment (NO_COLOR, COLUMNS, TERM): the caller has decided.
        self.console = Console(
            file=io.StringIO(),
            width=self.width,
            force_terminal=True,
            color_system=color_system,
            no_color=not colour,
            legacy_windows=False,
            highlight=False,
            emoji=False,
            _environ={},
        )
        self.renders = 0
        self.rendered_chars = 0

    def render(self, source: str) -> str:
        """`source` as one document: lines of exactly the painter's width, each ending in a newline."""
        from rich.markdown import Markdown

        self.renders += 1
        self.rendered_chars += len(source)
        with self.console.capture() as captured:
            self.console.print(
                Markdown(source, code_theme=CODE_THEME, hyperlinks=False, style="dim" if self.dim else "none")
            )
        return captured.get()


def render_markdown(text: str, width: int, colour: bool, color_system: str = "256", dim: bool = False) -> str:
    """The whole of `text` rendered at once: what the screen shows after it has streamed."""
    return MarkdownPainter(width, colour, color_system, dim).render(text)


def markdown_lines(text: str, width: int, colour: bool, color_system: str = "256", dim: bool = False) -> list[str]:
    """`text` rendered within `width` cells, as lines without their newline (a column of /compare, say).

    Every line is padded to take exactly `width` cells on a terminal; with
    colour on they carry escape sequences, so measure them in cells, never
    with len().
    """
    from rich.cells import cell_len

    lines = render_markdown(text, width, colour, color_system, dim).splitlines()
    return [line + " " * (width - cell_len(_SGR.sub("", line))) for line in lines]


_SGR = re.compile(r"\x1b\[[\d;]*m")


class MarkdownStream:
    """Draws a reply as markdown while its pieces arrive.

    ``write`` takes what to put on the terminal; ``height`` (a number or a
    function giving the terminal's rows) keeps the redrawn part within the
    screen: lines of an open block that would scroll off are written for good.
    ``clock`` is for tests. Call ``finish()`` when the reply is complete (or
    stopped): it draws the rest, an unclosed fence as code.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        width: int,
        colour: bool,
        color_system: str = "256",
        dim: bool = False,
        height: int | Callable[[], int] | None = None,
        redraw_every: float = REDRAW_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.write = write
        self.painter = MarkdownPainter(width, colour, color_system, dim)
        self.height = height
        self.redraw_every = redraw_every
        self.clock = clock
        self._pieces: list[str] = []  # the whole reply, raw
        self._open = ""  # the raw text from the first line of the open block on
        self._last_kind: str | None = None  # the kind of the last block written for good
        self._frozen: list[str] = []  # lines of the open part already written for good (scrolled off)
        self._live_rows = 0  # rows drawn below the finished part that the next redraw replaces
        self._drawn_at: float | None = None
        self._stale = False
        self.finished = False

    @property
    def text(self) -> str:
        """The raw reply so far, exactly as it arrived."""
        return "".join(self._pieces)

    @property
    def renders(self) -> int:
        return self.painter.renders

    @property
    def rendered_chars(self) -> int:
        return self.painter.rendered_chars

    def feed(self, piece: str) -> None:
        if not piece or self.finished:
            return
        self._pieces.append(piece)
        self._open += piece
        self._stale = True
        if "\n" in piece:
            self._commit_finished_blocks()
        now = self.clock()
        if self._drawn_at is None or now - self._drawn_at >= self.redraw_every:
            self._redraw(now)

    def finish(self) -> None:
        """Draw what is left as finished: the screen then shows the one-shot render of the reply."""
        if self.finished:
            return
        self.finished = True
        output = self._erase_live()
        blocks = top_level_blocks(self._open)
        if blocks:
            output += self._written_for_good(self._separator(blocks[0]) + self.painter.render(self._open))
        self._live_rows = 0
        self.write(output)

    def suspend(self) -> None:
        """Take the open block off the screen, so another line can be written where it was; `feed` redraws it."""
        if self._live_rows:
            self.write(self._erase_live())
            self._live_rows = 0
            self._stale = True
            self._drawn_at = None

    # -- the finished part --------------------------------------------------------

    def _commit_finished_blocks(self) -> None:
        """Write every block that a later block has closed; keep the rest open."""
        complete = self._open[: self._open.rfind("\n") + 1]
        blocks = top_level_blocks(complete)
        if len(blocks) < 2:
            return
        lines = complete.splitlines(keepends=True)
        output = self._erase_live()
        for block in blocks[:-1]:
            source = "".join(lines[block.start : block.end])
            output += self._written_for_good(self._separator(block) + self.painter.render(source))
            self._last_kind = block.kind
        self._open = self._open[sum(len(line) for line in lines[: blocks[-1].start]) :]
        self._live_rows = 0
        self._drawn_at = None  # the open block moved up: draw it again now
        self.write(output)

    def _separator(self, block: Block) -> str:
        """The blank line rich puts between the last block written and `block` (never before the first)."""
        spaced = block.after_previous and self._last_kind is not None and _spaced_after(self._last_kind)
        return "\n" if spaced else ""

    def _written_for_good(self, rendered: str) -> str:
        """What of `rendered` still has to be written: lines that scrolled off while it was open already are."""
        lines = rendered.splitlines(keepends=True)
        already = min(len(self._frozen), len(lines))
        del self._frozen[:already]
        return "".join(lines[already:])

    # -- the open part --------------------------------------------------------------

    def _redraw(self, now: float) -> None:
        if not self._stale:
            return
        self._stale = False
        self._drawn_at = now
        shown = self._open
        last_line = shown[shown.rfind("\n") + 1 :]
        if _FENCE_BEGINNING.match(last_line):
            shown = shown[: len(shown) - len(last_line)]
        blocks = top_level_blocks(shown) if shown.strip() else []
        rendered = self._separator(blocks[0]) + self.painter.render(shown) if blocks else ""
        lines = rendered.splitlines(keepends=True)[len(self._frozen) :]
        rows = self._rows()
        scrolling_off = max(0, len(lines) - rows) if rows else 0
        self._frozen += lines[:scrolling_off]
        self.write(self._erase_live() + "".join(lines))
        self._live_rows = len(lines) - scrolling_off

    def _rows(self) -> int | None:
        """Rows the open part may take: the screen's, less one for the cursor's line."""
        height = self.height() if callable(self.height) else self.height
        return None if height is None else max(height - 1, 1)

    def _erase_live(self) -> str:
        if not self._live_rows:
            return ""
        return _UP.format(self._live_rows) + _ERASE_BELOW
