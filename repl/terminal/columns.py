"""Replies side by side, one column per model, drawn while they stream.

A frame is a header (model and checkpoint, or "A" and "B" in the arena), the
replies wrapped at spaces to their column's width, and a footer (the figures,
or what the column is waiting for). Every column shares the frame's rows, so
the n-th row of every reply is on one screen line, and the footers start on
the same line.

While the replies stream, the frame is a live region at the bottom of the
screen, redrawn from its first changed row. A row of a column stops changing
once the text after it has started a new row (wrapping is greedy, so later
text never moves an earlier break); a frame row is final when it is final
in every column. When the frame grows taller than the screen, final rows at
its top are left where they are and scroll away as ordinary output, so each
redraw costs at most a screenful whatever the replies' length. If a fast
column runs more than a screen ahead of a slow one, its lower rows wait
below (the footer counts them) until the slow one catches up or all end;
then the rest of the frame is printed once.

Where the replies part (the first character at which they differ) is
marked in each column as soon as it is known, by reverse video (yellow with
colour; reverse video needs no colour, so it shows under NO_COLOR too).
Widths count terminal cells: CJK characters and most emoji take two.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from repl.core.layout import MIN_COLUMN_WIDTH, cells, wrap
from repl.core.reasoning_settings import THINKING_CLOSES, THINKING_OPENS, hidden_mark
from repl.core.results import shown_reply
from repl.core.units import count, rate, seconds

if TYPE_CHECKING:
    from repl.core.results import Turn

MAX_COLUMNS = 4
_SGR = re.compile(r"\x1b\[[0-9;]*m")
SEPARATOR = " │ "
RULE_SEPARATOR = "─┼─"
RULE = "─"
# Rows kept off the live region: the line the cursor ends on and one of slack.
SCREEN_MARGIN = 2
MIN_REGION = 8

# SGR parameters for each kind of text, with colour and without (where only
# the mark of the parting stays: reverse video is no colour).
COLOURED = {
    "title": "1;36",
    "detail": "2",
    "rule": "2",
    "aside": "2",
    "note": "2",
    "footer": "2",
    "error": "31",
    "mark": "30;43",
}
PLAIN = {"mark": "7"}


def fits(count: int, width: int) -> bool:
    """Whether `count` columns of at least MIN_COLUMN_WIDTH cells fit in `width`."""
    return 2 <= count <= MAX_COLUMNS and column_width(count, width) >= MIN_COLUMN_WIDTH


def column_width(count: int, width: int) -> int:
    # One cell short of the screen: a row that fills the last cell would leave the cursor in
    # the terminal's pending-wrap state, and moving it up from there is off by one in some terminals.
    return (width - 1 - len(SEPARATOR) * (count - 1)) // count


def stats_footer(
    ttft: float | None,
    new_tokens: int | None,
    tokens_per_s: float | None,
    stop_reason: str,
    reasoning_tokens: int | None = None,
    shared: bool = False,
) -> list[str]:
    """A column's figures: each part is kept whole when the footer wraps.

    A model that generates no tokens (stop reason `done`: bert) has no time to first token, count or
    rate to show, as on the stats line.
    """
    if stop_reason == "done":
        parts = [stop_reason]
    else:
        parts = [f"ttft {seconds(ttft)}", f"{count(new_tokens)} tok", f"{rate(tokens_per_s)} tok/s", stop_reason]
    if reasoning_tokens:
        parts.append(f"{reasoning_tokens} thinking tok")
    if shared:
        parts.append("shared device")  # the models ran at once on one device: each one's timing includes the other
    return parts


@dataclass
class Row:
    kind: str  # reply, aside (reasoning), note or error
    text: str
    start: int = -1  # a reply row's offset in the reply


@dataclass
class Column:
    """One model's column: its rows so far, and the line still being written."""

    title: str
    detail: str = ""
    state: str = "waiting"  # waiting, running or done
    footer: list[str] = field(default_factory=list)
    reply: str = ""  # the reply as shown (control characters escaped, tabs expanded)
    rows: list[Row] = field(default_factory=list)  # final rows
    open: Row | None = None  # the line being written: may still wrap

    def add(self, text: str, kind: str, width: int) -> None:
        """Text streamed into the column; `kind` other than the open line's starts a new line."""
        text = shown_text(text)
        if not text:
            return
        if self.open is not None and self.open.kind != kind:
            if self.open.text:
                self._close_open(width)
            else:  # the reasoning's last line break: the reply starts on the next row, not one further
                self.open = None
        lines = text.split("\n")
        for number, piece in enumerate(lines):
            if self.open is None:
                self.open = Row(kind, "", len(self.reply) if kind == "reply" else -1)
            self.open.text += piece
            if kind == "reply":
                self.reply += piece
            if number < len(lines) - 1:
                if kind == "reply":
                    self.reply += "\n"
                self._close_open(width)
            else:
                self._wrap_open(width)

    def finish(self, width: int) -> None:
        if self.open is not None and (self.open.text or not self.rows):
            self._close_open(width)
        self.open = None
        self.state = "done"

    def count(self) -> int:
        """Rows shown: the final ones and the open line."""
        return len(self.rows) + (self.open is not None)

    def row(self, index: int) -> Row:
        return self.rows[index] if index < len(self.rows) else self.open

    def _wrap_open(self, width: int) -> None:
        """Move every wrapped row of the open line but the last (still growing) to the final rows."""
        line = self.open
        pieces = wrap(line.text, width)
        if len(pieces) == 1:
            return
        searched = 0
        for piece in pieces[:-1]:
            at = line.text.index(piece, searched)
            self.rows.append(Row(line.kind, piece, line.start + at if line.start >= 0 else -1))
            searched = at + len(piece)
        rest = pieces[-1]  # wrap leaves the remainder as it is: a suffix of the line
        start = line.start + len(line.text) - len(rest) if line.start >= 0 else -1
        self.open = Row(line.kind, rest, start)

    def _close_open(self, width: int) -> None:
        self._wrap_open(width)
        self.rows.append(self.open)
        self.open = None


def shown_text(text: str) -> str:
    """Text as a column shows it: a tab as four spaces, carriage returns dropped, other controls as escapes.

    A control character would move the cursor and tear the frame.
    """
    out = []
    for char in text:
        if char == "\t":
            out.append("    ")
        elif char == "\n" or unicodedata.category(char) != "Cc":
            out.append(char)
        elif char != "\r":
            out.append(repr(char)[1:-1])
    return "".join(out)


def parting(replies: Sequence[str], ended: Sequence[bool], known: int = 0) -> tuple[int, bool]:
    """The length of the replies' common start, from `known` on, and whether they are known to part there.

    They part at p when two replies differ at p, or one has ended at p while
    another goes on; until then a reply still being written may yet agree.
    """
    p = known
    shortest = min(len(reply) for reply in replies)
    while p < shortest and len({reply[p] for reply in replies}) == 1:
        p += 1
    longer = {reply[p] for reply in replies if len(reply) > p}
    ended_here = any(done and len(reply) == p for reply, done in zip(replies, ended))
    return p, len(longer) > 1 or (bool(longer) and ended_here)


class ColumnsView:
    """The frame of 2 to 4 columns; `rows()` lays it out as styled lines.

    Safe to feed from several threads (one per model) while one thread draws.
    """

    def __init__(self, heads: Sequence[tuple[str, str]], width: int, colour: bool = False):
        if not 2 <= len(heads) <= MAX_COLUMNS:
            raise ValueError(f"columns take 2 to {MAX_COLUMNS} replies, not {len(heads)}")
        self.columns = [Column(title, detail) for title, detail in heads]
        self.width = column_width(len(heads), width)
        self.styles = COLOURED if colour else PLAIN
        self.lock = threading.Lock()
        self.parted_at: int | None = None  # where the replies part, once known
        self._common = 0
        self._marked: dict[int, Row] = {}  # column number: the final row that holds the parting

    # -- feeding ------------------------------------------------------------

    def add(self, index: int, text: str, kind: str = "reply") -> None:
        with self.lock:
            column = self.columns[index]
            column.state = "running"
            column.add(text, kind, self.width)
            self._find_parting()

    def start(self, index: int) -> None:
        with self.lock:
            self.columns[index].state = "running"

    def finish(self, index: int, footer: Sequence[str] = (), error: str | None = None) -> None:
        with self.lock:
            column = self.columns[index]
            if error:
                column.add(error, "error", self.width)
            column.finish(self.width)
            column.footer = list(footer)
            self._find_parting()

    def repaint(self, index: int, lines: Sequence[str]) -> None:
        """Put a finished reply drawn elsewhere (markdown, a plugin's drawing) in place of its plain rows.

        `lines` carry their own escapes and take at most the column's width.
        """
        with self.lock:
            column = self.columns[index]
            rows = column.rows
            at = next((i for i, row in enumerate(rows) if row.kind == "reply"), len(rows))
            kept = [row for row in rows if row.kind != "reply"]
            column.rows = kept[:at] + [Row("painted", line) for line in lines] + kept[at:]
            if column.open is not None and column.open.kind == "reply":
                column.open = None
            self._marked.pop(index, None)

    def set_footer(self, index: int, footer: Sequence[str]) -> None:
        with self.lock:
            self.columns[index].footer = list(footer)

    @property
    def done(self) -> bool:
        return all(column.state == "done" for column in self.columns)

    def _find_parting(self) -> None:
        if self.parted_at is not None:
            return
        replies = [column.reply for column in self.columns]
        self._common, parted = parting(replies, [c.state == "done" for c in self.columns], self._common)
        if parted and self._common > 0:  # replies that differ from their first character part nowhere worth marking
            self.parted_at = self._common

    # -- laying out ---------------------------------------------------------

    HEADER_ROWS = 2

    def height(self) -> int:
        """Rows of the whole frame."""
        return self.HEADER_ROWS + self.body_height() + 1 + self.footer_height()

    def body_height(self) -> int:
        return max(column.count() for column in self.columns)

    def footer_height(self) -> int:
        return max(max(len(self._footer_lines(column)) for column in self.columns), 1)

    def final_rows(self) -> int:
        """Frame rows from the top that will not change again."""
        body = self.body_height()
        # A column that is done changes no more, down to the frame's last row (blank below its reply).
        final = min(body if column.state == "done" else len(column.rows) for column in self.columns)
        return self.HEADER_ROWS + min(final, body)

    def rows(self, top: int = 0, limit: int | None = None) -> list[str]:
        """Frame rows from `top`, as lines with their escapes; with `limit`, at most that many.

        The footer is always shown: what does not fit above it is left out
        (and counted in the footer's rule).
        """
        body_end = self.HEADER_ROWS + self.body_height()
        footer = self.footer_height()
        shown_end = body_end if limit is None else min(body_end, max(top, top + limit - 1 - footer))
        lines = [self._frame_row(row) for row in range(top, shown_end)]
        lines.append(self._footer_rule(shown_end - self.HEADER_ROWS))
        footers = [self._footer_lines(column) for column in self.columns]
        lines += [self._join([lines_[i] if i < len(lines_) else [] for lines_ in footers]) for i in range(footer)]
        return lines

    def _frame_row(self, row: int) -> str:
        if row == 0:
            return self._join([self._title(column) for column in self.columns])
        if row == 1:
            return self._rule([""] * len(self.columns))
        index = row - self.HEADER_ROWS
        cells_ = []
        for number, column in enumerate(self.columns):
            cells_.append(self._body_cell(column, column.row(index), number) if index < column.count() else [])
        return self._join(cells_)

    def _title(self, column: Column) -> list[tuple[str, str]]:
        title = _clip(column.title, self.width)
        room = self.width - cells(title) - 3
        if not column.detail or room < 4:
            return [("title", title)]
        return [("title", title), ("detail", " · " + _clip(column.detail, room))]

    def _body_cell(self, column: Column, row: Row, number: int) -> list[tuple[str, str]]:
        if row.kind != "reply" or self.parted_at is None or self._marked_row(column, number) is not row:
            return [(row.kind if row.kind != "reply" else "", row.text)]
        at = max(self.parted_at - row.start, 0)
        return [("", row.text[:at]), ("mark", row.text[at : at + 1] or " "), ("", row.text[at + 1 :])]

    def _marked_row(self, column: Column, number: int) -> Row | None:
        """The row that holds the parting: the first reply row that ends after it (a break may have eaten it).

        Remembered once it is a final row, so that drawing does not search every row each time.
        """
        if number in self._marked:
            return self._marked[number]
        if len(column.reply) <= self.parted_at:
            return None  # this reply ended where the others go on: nothing of its own to mark
        for candidate in (*column.rows, column.open):
            if (
                candidate is not None
                and candidate.kind == "reply"
                and candidate.start + len(candidate.text) > self.parted_at
            ):
                if candidate is not column.open:
                    self._marked[number] = candidate
                return candidate
        return None

    def _footer_rule(self, shown_rows: int) -> str:
        notes = []
        for column in self.columns:
            hidden = column.count() - shown_rows
            notes.append(f" {hidden} more rows below " if hidden > 0 else "")
        return self._rule(notes)

    def _footer_lines(self, column: Column) -> list[list[tuple[str, str]]]:
        if column.state == "waiting":
            return [[("note", "waiting")]]
        if column.state == "running" and not column.footer:
            return [[("note", "answering…")]]
        lines: list[str] = []
        current = ""
        for part in column.footer:
            joined = f"{current} · {part}" if current else part
            if current and cells(joined) > self.width:
                lines.append(current)
                current = part
            else:
                current = joined
        if current:
            lines.append(current)
        return [[("footer", piece)] for line in lines for piece in wrap(line, self.width)]

    def _rule(self, notes: list[str]) -> str:
        parts = []
        for note in notes:
            note = _clip(note, self.width - 2)
            left = 2 if note else 0
            parts.append([("rule", RULE * left), ("note", note), ("rule", RULE * (self.width - left - cells(note)))])
        return self._paint(_joined(parts, ("rule", RULE_SEPARATOR)))

    def _join(self, cells_: list[list[tuple[str, str]]]) -> str:
        padded = []
        for fragments in cells_:
            used = sum(cells(_SGR.sub("", text) if kind == "painted" else text) for kind, text in fragments)
            padded.append(fragments + [("", " " * (self.width - used))])
        fragments = _joined(padded, ("rule", SEPARATOR))
        while fragments and not fragments[-1][1].strip():
            fragments.pop()
        if fragments:  # no trailing spaces, coloured or not
            fragments[-1] = (fragments[-1][0], fragments[-1][1].rstrip(" "))
        return self._paint(fragments)

    def _paint(self, fragments: list[tuple[str, str]]) -> str:
        out = []
        for kind, text in fragments:
            code = self.styles.get(kind)
            out.append(f"\x1b[{code}m{text}\x1b[0m" if code and text else text)
        return "".join(out)


def _joined(cells_: list[list[tuple[str, str]]], separator: tuple[str, str]) -> list[tuple[str, str]]:
    """The cells' fragments in one list, the separator between each two cells."""
    out: list[tuple[str, str]] = []
    for number, fragments in enumerate(cells_):
        if number:
            out.append(separator)
        out.extend(fragments)
    return out


def _clip(text: str, width: int) -> str:
    """`text` cut to `width` cells, an ellipsis marking the cut."""
    text = shown_text(text).replace("\n", " ")
    if cells(text) <= width:
        return text
    while text and cells(text) > width - 1:
        text = text[:-1]
    return text + "…"


class LiveColumns:
    """Draws a ColumnsView at the bottom of a terminal as it changes.

    `draw()` is called by one thread (the one that waits for the models);
    the models' threads only feed the view. `close()` prints what is left of
    the frame and leaves the cursor on a fresh line.
    """

    def __init__(self, view: ColumnsView, out: IO[str], screen_rows: int):
        self.view = view
        self.out = out
        self.region = max(screen_rows - SCREEN_MARGIN, MIN_REGION)
        self.top = 0  # the frame's first row that is still redrawn; those above are left to scroll away
        self.drawn: list[str] = []  # the rows on screen from `top`, as last written

    def draw(self) -> None:
        with self.view.lock:
            view = self.view
            top = max(self.top, min(view.final_rows(), view.height() - self.region))
            # From the old top, so that rows about to be left behind are first brought up to date.
            new = view.rows(self.top, limit=self.region + (top - self.top))
        self._write(new)
        self.drawn = new[top - self.top :]
        self.top = top

    def close(self) -> None:
        with self.view.lock:
            new = self.view.rows(self.top)
        self._write(new)
        self.out.write("\n")
        self.out.flush()
        self.drawn = []

    def _write(self, new: list[str]) -> None:
        """Rewrite the rows that changed, then add the new ones below; the cursor ends on the last row."""
        old = self.drawn
        parts = []
        row = len(old) - 1  # where the cursor is: the last row written
        for index, line in enumerate(new):
            if index < len(old) and old[index] == line:
                continue
            if index < len(old):
                parts.append(_move(index - row) + "\r" + line + "\x1b[K")
            else:
                if row < len(old) - 1:
                    parts.append(_move(len(old) - 1 - row))
                    row = len(old) - 1
                parts.append(("\n" if row >= 0 else "") + line + "\x1b[K")
            row = index
        if len(new) < len(old):
            parts.append(_move(len(new) - 1 - row) + "\n\x1b[J" + _move(-1))
            row = len(new) - 1
        parts.append(_move(len(new) - 1 - row))
        if parts:
            self.out.write("".join(parts))
            self.out.flush()


def _move(rows: int) -> str:
    """The escape that moves the cursor `rows` down (up when negative), within the screen."""
    if rows > 0:
        return f"\x1b[{rows}B"
    return f"\x1b[{-rows}A" if rows < 0 else ""


class ColumnsOnScreen:
    """Comparison turns shown as live columns: `column(i)` is where model i's turn streams.

    Used as a context manager by the thread that waits for the models; leaving
    it prints the rest of the frame. `hidden` (the arena) keeps every figure
    and note out of the columns, as those could tell the models apart.
    """

    def __init__(
        self,
        heads: Sequence[tuple[str, str]],
        out: IO[str],
        width: int,
        screen_rows: int,
        colour: bool,
        hidden: bool = False,
        drawn_by_plugin: Callable[[Turn, int, bool], str | None] | None = None,
    ):
        self.view = ColumnsView(heads, width, colour)
        self.live = LiveColumns(self.view, out, screen_rows)
        self.colour = colour
        self.hidden = hidden
        self.drawn_by_plugin = drawn_by_plugin

    def __enter__(self) -> ColumnsOnScreen:
        self.live.draw()
        return self

    def __exit__(self, *exc_info) -> None:
        self.live.close()

    def column(self, index: int, render: str = "raw", drawn_by_plugin: bool = False) -> ColumnFeed:
        """Where model `index`'s turn goes; `render` and `drawn_by_plugin` as for a turn of its own.

        In the arena every reply stays plain: a markdown or a plugin's drawing would tell the models apart.
        """
        drawn = not self.hidden
        return ColumnFeed(self, index, markdown=drawn and render == "markdown", plugin=drawn and drawn_by_plugin)

    def draw(self) -> None:
        self.live.draw()

    def not_run(self, index: int) -> None:
        """A model whose turn never started (Ctrl-C came first)."""
        self.view.finish(index, ["not run"])


class ColumnFeed:
    """One model's turn as it reaches its column: streamed text, early notes, then the finished turn."""

    def __init__(self, screen: ColumnsOnScreen, index: int, markdown: bool = False, plugin: bool = False):
        self.screen = screen
        self.index = index
        self.markdown = markdown
        self.plugin = plugin
        self.streaming = True  # as the output port's live turns say: streamed text is shown as it comes
        self.shown = False  # whether any text streamed: a turn that streamed nothing is shown whole when done
        self.thinking = False  # reasoning is streaming: it is set apart by a line before and after

    def stream(self, text: str) -> None:
        self.shown = True
        if self.thinking:  # the reasoning is over: the line that closes it, then the answer
            self.thinking = False
            self.screen.view.add(self.index, f"\n{THINKING_CLOSES}\n", "aside")
        self.screen.view.add(self.index, text)

    def aside(self, text: str) -> None:
        self.shown = True
        if not self.thinking:
            self.thinking = True
            self.screen.view.add(self.index, f"{THINKING_OPENS}\n", "aside")
        self.screen.view.add(self.index, text, "aside")

    def notice(self, message: str) -> None:
        if not self.screen.hidden:
            self.screen.view.add(self.index, f"note: {message}\n", "note")

    def done(self, turn: Turn, shared: bool = False) -> None:
        view = self.screen.view
        reasoning = turn.data.get("reasoning")
        thought = isinstance(reasoning, str) and reasoning and not turn.error
        hidden = turn.settings.get("think") == "hide"
        if self.thinking:  # only reasoning came before the reply stopped
            view.add(self.index, f"\n{THINKING_CLOSES}\n", "aside")
        if not self.shown and not turn.error:
            if thought and not hidden:
                view.add(self.index, f"{THINKING_OPENS}\n{reasoning}\n{THINKING_CLOSES}\n", "aside")
            view.add(self.index, shown_reply(turn))
        if thought and hidden:
            view.add(self.index, hidden_mark(turn), "aside")
        if not turn.error and (self.markdown or self.plugin) and self.screen.live.top <= view.HEADER_ROWS:
            # Drawn now that it is whole, while none of its rows has scrolled away: streamed, it stayed plain.
            painted = self._painted(turn)
            if painted is not None:
                view.repaint(self.index, painted)
        if self.screen.hidden:
            ended = "stopped" if turn.stats.stop_reason == "cancelled" else "done"
            view.finish(self.index, [ended], turn.error and "error (its message comes with the names)")
            return
        stats = turn.stats
        footer = stats_footer(
            stats.ttft, stats.new_tokens, stats.tokens_per_s, stats.stop_reason, stats.reasoning_tokens, shared
        )
        view.finish(self.index, ["error"] if turn.error else footer, turn.error and f"error: {turn.error}")

    def _painted(self, turn: Turn) -> list[str] | None:
        """The reply as its plugin draws it, or as markdown; None where neither applies or the drawing fails."""
        width, colour = self.screen.view.width, self.screen.colour
        if self.plugin and self.screen.drawn_by_plugin is not None:
            drawing = self.screen.drawn_by_plugin(turn, width, colour)
            if drawing is not None and all(cells(_SGR.sub("", line)) <= width for line in drawing.splitlines()):
                return drawing.splitlines()
        if self.markdown:
            from repl.terminal.markdown import markdown_lines

            lines = [line.rstrip() for line in markdown_lines(shown_reply(turn), width, colour)]
            while lines and not _SGR.sub("", lines[-1]).strip():
                lines.pop()  # rich ends a document with a blank line: the footer's rule follows instead
            return lines
        return None
