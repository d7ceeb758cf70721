"""Text laid out for a terminal: tables, wrapping by display width, blocks side by side.

Widths count terminal cells, not characters: CJK characters and most emoji
take two.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

# Side by side only when every column still fits a short sentence per line.
MIN_COLUMN_WIDTH = 28
COLUMN_GAP = " | "


def one_line(message: str) -> str:
    """A message as one line with nothing a terminal would act on.

    Messages quote what the user typed or what a plugin said, which may hold a
    newline or an escape sequence; these are shown as escapes instead.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


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


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max([cells(h)] + [cells(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(pad(c, w) for c, w in zip(row, widths)).rstrip() for row in text_rows]
    return "\n".join(lines)


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
