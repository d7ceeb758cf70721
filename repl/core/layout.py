"""Text laid out in a given number of columns: tables, wrapping by display width, blocks side by side.

Pure functions of strings: the renderer (`repl.terminal.renderer`) chooses the
width, and `Result.text` uses them with none. Widths count terminal cells,
not characters: CJK characters and most emoji take two.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repl.core.results import Part

# Side by side only when every column still fits a short sentence per line.
MIN_COLUMN_WIDTH = 28
COLUMN_GAP = " | "
TABLE_GAP = "  "
# Prose wraps at this width where nothing gives one (a file, a pipe, no COLUMNS); tables and lines stay whole there.
DEFAULT_WIDTH = 80
# The term column of Definitions takes at most this share of the width; longer terms get a line of their own.
TERM_SHARE = 0.3
# A table column wraps no narrower than this: narrower, words would be cut.
MIN_TABLE_COLUMN = 8
# A path (a checkpoint) may shrink to this many cells, shortened from the left: …/gpt2.
MIN_PATH = 10


def cells(text: str) -> int:
    """Terminal columns the text takes."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - cells(text))


def wrap(line: str, width: int, after: str = "") -> list[str]:
    """The line in pieces of at most `width` columns, broken at a space where there is one.

    A word longer than the width is broken after one of the characters `after`
    where it has one (`max_new_` `tokens`), else where the width ends.
    """
    rows = []
    while cells(line) > width:
        fits = _fits(line, width)
        space = line.rfind(" ", 0, fits + 1)
        inside = max([line.rfind(char, 0, fits) + 1 for char in after] + [0])
        cut = space if space > 0 else inside or fits
        rows.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    rows.append(line)
    return rows


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], width: int | None = None) -> str:
    """Columns padded to line up; with `width`, narrowed until the table fits (see `_fit`).

    A row shorter than the headers leaves its last cells empty. Cells wrap at
    spaces; a path too long for its column is shortened from the left (…/gpt2).
    """
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    text_rows = [row + [""] * (len(headers) - len(row)) for row in text_rows]
    headers = list(headers)
    widths = [max([cells(h)] + [cells(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    gap, dropped = TABLE_GAP, []
    if width is not None:
        gap, shown = _fit(widths, [headers, *text_rows], width)
        dropped = [header for i, header in enumerate(headers) if i not in shown]
        headers = [headers[i] for i in shown]
        text_rows = [[row[i] for i in shown] for row in text_rows]
        widths = [shown[i] for i in shown]
    lines = _table_row(headers, widths, gap)
    lines.append(gap.join("-" * w for w in widths))
    for row in text_rows:
        lines += _table_row(row, widths, gap)
    if dropped:
        lines += wrap(f"(too narrow to show: {', '.join(dropped)})", width or 0)
    return "\n".join(lines)


def _fit(widths: list[int], rows: list[list[str]], width: int) -> tuple[str, dict[int, int]]:
    """The gap and the width of each column shown ({index: width}) for a table that fits in `width`.

    In turn, until it fits, the widest column narrows: first only paths
    shorten (to MIN_PATH); then headers wrap; then cells wrap, down to their
    longest word (see `_floor`), with the usual gap between columns, then
    with one space; then words are cut, down to MIN_TABLE_COLUMN; then the
    last columns are left out (the first always stays).
    """
    headers = rows[0]
    whole = [
        max([0] + [_floor(row[i]) if _is_path(row[i]) else cells(row[i]) for row in rows[1:]])
        for i in range(len(widths))
    ]
    paths_short = [max(cells(header), cell) for header, cell in zip(headers, whole)]
    headers_wrap = [max(_longest_word(header), cell) for header, cell in zip(headers, whole)]
    longest_word = [max(_longest_word(row[i]) for row in rows) for i in range(len(widths))]
    least = [MIN_TABLE_COLUMN] * len(widths)
    shown = dict(enumerate(widths))
    steps = ((paths_short, TABLE_GAP), (headers_wrap, TABLE_GAP), (longest_word, TABLE_GAP), (longest_word, " "))
    for floors, gap in (*steps, (least, " ")):
        if _narrow(shown, floors, width - len(gap) * (len(shown) - 1)):
            return gap, shown
    while len(shown) > 1 and sum(shown.values()) + len(shown) - 1 > width:
        del shown[max(shown)]
    _narrow(shown, least, width - (len(shown) - 1))
    return " ", shown


def _narrow(widths: dict[int, int], floors: list[int], room: int) -> bool:
    """Narrow the widest columns, each down to its floor, until they add up to `room`; whether they do."""
    while sum(widths.values()) > room:
        narrowable = [i for i in widths if widths[i] > floors[i]]
        if not narrowable:
            return False
        widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return True


def _longest_word(text: str) -> int:
    return max([1] + [_floor(word) for word in text.split()])


def _floor(word: str) -> int:
    """How narrow a word's column may get with the word kept readable.

    A path shortens (to MIN_PATH), a word of parts joined by _ or - breaks
    after one (`max_new_` `tokens`), any other word stays whole.
    """
    if _is_path(word):
        return min(cells(word), MIN_PATH)
    return max(cells(part) for part in re.split(r"(?<=[_-])", word))


def _is_path(text: str) -> bool:
    return "/" in text and not any(char.isspace() for char in text)


def shorten_path(path: str, width: int) -> str:
    """`path` in at most `width` cells, its start dropped for "…", at a "/" where that keeps half the room."""
    if cells(path) <= width:
        return path
    tail = path
    while cells(tail) > width - 1:
        tail = tail[1:]
    slash = tail.find("/")
    while 0 <= slash < len(tail) - 1 and tail[slash + 1] == "/":  # http://host: the last of the two
        slash += 1
    if slash > 0 and cells(tail[slash:]) >= width // 2:
        tail = tail[slash:]
    return "…" + tail


def _table_row(row: Sequence[str], widths: list[int], gap: str) -> list[str]:
    """One row of cells as one or more lines, each cell wrapped (a path shortened) to its column."""
    wrapped = [
        [shorten_path(cell, width)] if _is_path(cell) else wrap(cell, width, after="_-")
        for cell, width in zip(row, widths)
    ]
    height = max(len(lines) for lines in wrapped)
    return [
        gap.join(pad(lines[i] if i < len(lines) else "", width) for lines, width in zip(wrapped, widths)).rstrip()
        for i in range(height)
    ]


def _fits(line: str, width: int) -> int:
    """How many characters of `line` fit in `width` cells (at least one)."""
    fits = 1
    while fits < len(line) and cells(line[: fits + 1]) <= width:
        fits += 1
    return fits


def wrap_paragraph(text: str, width: int, indent: int = 0) -> str:
    """`text` wrapped to `width` columns, at spaces; lines after the first indented by `indent`."""
    rows = wrap(text, max(width - indent, MIN_TABLE_COLUMN))
    return ("\n" + " " * indent).join(rows)


def wrap_lines(text: str, width: int) -> str:
    """Each line of `text` wrapped at spaces to `width`; its later lines indented as the line is."""
    return "\n".join(wrap_paragraph(line, width, _indent(line, width)) for line in text.split("\n"))


def _indent(line: str, width: int) -> int:
    indent = len(line) - len(line.lstrip(" "))
    return indent if indent <= width // 2 else 0


def _controls_shown(text: str) -> str:
    """Control characters but the line break as escapes (\\x1b): a reply must not move the cursor or clear a screen."""
    return "".join(char if char == "\n" or unicodedata.category(char) != "Cc" else repr(char)[1:-1] for char in text)


class Wrapper:
    """Text that comes in pieces (a streamed reply) broken at spaces into lines of at most `width` cells.

    A word is held back until it ends, so that it can go to the next line
    whole; one longer than a line is broken where the line ends. Spaces at
    the start of a line are kept (indentation), those where a line breaks are
    dropped, and control characters show as escapes. With no width (not a
    terminal), text passes as it comes.
    """

    def __init__(self, width: int | None):
        self.wraps = width is not None
        self.width = width or 0
        self.column = 0  # cells already on the current line
        self.spaces = ""  # spaces after the last word, written only if a word follows on this line
        self.word = ""

    def feed(self, text: str) -> str:
        """What of `text` can be written now."""
        if not self.wraps:
            return text
        out: list[str] = []
        for char in _controls_shown(text.replace("\t", "    ")):
            if char == "\n":
                out.append(self._place_word())
                out.append("\n")
                self.column, self.spaces = 0, ""
            elif char == " ":
                out.append(self._place_word())
                self.spaces += " "
            else:
                self.word += char
                if cells(self.word) > self.width:
                    out.append(self._break_word())
        return "".join(out)

    def finish(self) -> str:
        """The word still held back; the next text starts a new line."""
        last = self._place_word() if self.wraps else ""
        self.column, self.spaces = 0, ""
        return last

    def _place_word(self) -> str:
        word, self.word = self.word, ""
        if not word:
            return ""
        if self.column + cells(self.spaces) + cells(word) <= self.width:
            placed = self.spaces + word
            self.column += cells(placed)
        else:
            placed = "\n" + word
            self.column = cells(word)
        self.spaces = ""
        return placed

    def _break_word(self) -> str:
        """A word longer than a line: as much as fits on a line of its own, the rest held back."""
        fits = _fits(self.word, self.width)
        placed = ("\n" if self.column else "") + self.word[:fits] + "\n"
        self.word, self.spaces, self.column = self.word[fits:], "", 0
        return placed


def layout_blocks(blocks: list[tuple[str, str]], width: int) -> str:
    """Labelled blocks side by side when each column gets MIN_COLUMN_WIDTH, else one under another."""
    count = len(blocks)
    column = (width - len(COLUMN_GAP) * (count - 1)) // max(count, 1)
    if count > 1 and column >= MIN_COLUMN_WIDTH:
        columns = [_block_lines(label, body, column) for label, body in blocks]
        height = max(len(lines) for lines in columns)
        rows = [
            COLUMN_GAP.join(pad(lines[row] if row < len(lines) else "", column) for lines in columns).rstrip()
            for row in range(height)
        ]
        return "\n".join(rows)
    return "\n\n".join(
        "\n".join([_label(label, max(width, MIN_COLUMN_WIDTH)), wrap_lines(body.expandtabs(4), width)])
        for label, body in blocks
    )


def _label(label: str, width: int) -> str:
    head = f"-- {label} "
    return head + "-" * max(width - len(head), 2)


def _block_lines(label: str, body: str, width: int) -> list[str]:
    lines = [_label(label, width)]
    for line in body.splitlines() or [""]:
        lines += wrap(line.expandtabs(4), width)
    return lines


def plain_width() -> int:
    """Where no terminal gives a width: the COLUMNS the environment sets (the shells' convention), else 80."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns if os.environ.get("COLUMNS") else DEFAULT_WIDTH


def lay_out(parts: Sequence[Part], width: int | None) -> str:
    """A command's parts as text `width` columns wide; with None, tables keep their lines (prose: `plain_width`)."""
    return "\n".join(lay_out_part(part, width) for part in parts)


def lay_out_part(part: Part, width: int | None) -> str:
    from repl.core.results import Blocks, Definitions, Prose, Table

    if isinstance(part, Table):
        room = None if width is None else width - part.indent
        text = table(part.headers, part.rows, room)
        return "\n".join(" " * part.indent + line for line in text.splitlines()) if part.indent else text
    if isinstance(part, Prose):
        return "\n".join(wrap_paragraph(line, width or plain_width(), part.indent) for line in part.text.splitlines())
    if isinstance(part, Definitions):
        return definitions(part.rows, width or plain_width())
    if isinstance(part, Blocks):
        return layout_blocks(list(part.blocks), width or plain_width())
    return part


def definitions(rows: Sequence[tuple[str, str]], width: int) -> str:
    """Terms in a column of at most TERM_SHARE of the width, each explanation wrapped beside its term."""
    widest = int(width * TERM_SHARE)
    column = max([cells(term) for term, _ in rows if cells(term) <= widest] or [widest])
    lines = []
    for term, explanation in rows:
        explained = wrap_paragraph(explanation, width, indent=column + 2)
        if cells(term) > column:
            lines += [wrap_paragraph(term, width, indent=2), " " * (column + 2) + explained]
        else:
            lines.append(f"{pad(term, column)}  {explained}")
    return "\n".join(lines)
