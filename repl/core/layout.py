"""Text laid out in a given number of columns: tables, wrapping by display width, blocks side by side.

Pure functions of strings: the renderer (`repl.terminal.renderer`) chooses the
width, and `Result.text` uses them with none. Widths count terminal cells,
not characters: CJK characters and most emoji take two.
"""

from __future__ import annotations

import os
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


def cells(text: str) -> int:
    """Terminal columns the text takes."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - cells(text))


def wrap(line: str, width: int) -> list[str]:
    """The line in pieces of at most `width` columns, broken at a space where there is one."""
    rows = []
    while cells(line) > width:
        fits = 1
        while cells(line[: fits + 1]) <= width:
            fits += 1
        space = line.rfind(" ", 0, fits + 1)
        cut = space if space > 0 else fits
        rows.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    rows.append(line)
    return rows


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], width: int | None = None) -> str:
    """Columns padded to line up; with `width`, the widest columns wrap (at spaces) until the table fits.

    A row shorter than the headers leaves its last cells empty.
    """
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    text_rows = [row + [""] * (len(headers) - len(row)) for row in text_rows]
    widths = [max([cells(h)] + [cells(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    if width is not None:
        widths = _fit(widths, [list(headers), *text_rows], width - len(TABLE_GAP) * (len(widths) - 1))
    lines = _table_row(headers, widths)
    lines.append(TABLE_GAP.join("-" * w for w in widths))
    for row in text_rows:
        lines += _table_row(row, widths)
    return "\n".join(lines)


def _fit(widths: list[int], rows: list[list[str]], room: int) -> list[int]:
    """Column widths that add up to `room`, narrowing the widest first.

    A column first narrows only down to its longest word, so that words stay
    whole; only if that is not enough are words cut, down to MIN_TABLE_COLUMN.
    """
    widths = list(widths)
    longest_word = [max([1] + [cells(word) for row in rows for word in row[i].split()]) for i in range(len(widths))]
    for floors in (longest_word, [MIN_TABLE_COLUMN] * len(widths)):
        while sum(widths) > room:
            narrowable = [i for i in range(len(widths)) if widths[i] > floors[i]]
            if not narrowable:
                break
            widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return widths


def _table_row(row: Sequence[str], widths: list[int]) -> list[str]:
    """One row of cells as one or more lines, each cell wrapped to its column."""
    wrapped = [wrap(cell, width) for cell, width in zip(row, widths)]
    height = max(len(lines) for lines in wrapped)
    return [
        TABLE_GAP.join(pad(lines[i] if i < len(lines) else "", width) for lines, width in zip(wrapped, widths)).rstrip()
        for i in range(height)
    ]


def wrap_paragraph(text: str, width: int, indent: int = 0) -> str:
    """`text` wrapped to `width` columns, at spaces; lines after the first indented by `indent`."""
    rows = wrap(text, max(width - indent, MIN_TABLE_COLUMN))
    return ("\n" + " " * indent).join(rows)


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
    return "\n\n".join("\n".join([_label(label, max(width, MIN_COLUMN_WIDTH)), body]) for label, body in blocks)


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
