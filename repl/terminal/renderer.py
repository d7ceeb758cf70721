"""Results as terminal text or JSON lines: the one place output is drawn.

Commands and turns hand over data (`Result`: parts, records, turns); only
this module decides between text, tables and JSON, applies the width and
colour, and keeps track of what a live turn already showed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from prompt_toolkit.clipboard import InMemoryClipboard

from repl.core.layout import DEFAULT_WIDTH, Wrapper, lay_out_part, wrap_lines, wrap_paragraph
from repl.core.reasoning_settings import THINKING_CLOSES, THINKING_OPENS, hidden_mark
from repl.core.results import Table, shown_reply, turn_record
from repl.core.text import one_line
from repl.core.units import count, seconds
from repl.terminal.markdown import MarkdownStream, render_markdown, terminal_color_system
from repl.terminal.spinner import Working

# Colours by role, through prompt_toolkit styles: the prompt uses the same names.
STYLE_RULES = {
    "error": "ansired",
    "note": "ansibrightblack",
    "prompt.model": "ansicyan bold",
    "bottom-toolbar": "noreverse bg:ansibrightblack fg:ansiwhite",
}

if TYPE_CHECKING:
    from repl.core.results import Result, Stats, Turn
    from repl.terminal.columns import ColumnsOnScreen


def stats_line(stats: Stats, streamed: bool = True) -> str:
    """`[12 in, 5 new, ttft 0.012s, 0.345s total, 14.5 tok/s, eos]`; "?" for a count nobody sent.

    A reasoning model's line says how many of the new tokens were thinking,
    and when the answer began (ttfa). A model that generates no tokens (stop
    reason `done`) has no new tokens, time to first token or rate, and a reply
    that did not stream no time to first token to feel.
    """
    parts = [f"{count(stats.input_tokens)} in"]
    generates = stats.stop_reason != "done"
    if generates:
        thinking = f" ({stats.reasoning_tokens} thinking)" if stats.reasoning_tokens else ""
        parts.append(f"{count(stats.new_tokens)} new{thinking}")
    if generates and streamed:
        parts.append(f"ttft {seconds(stats.ttft)}")
        if stats.reasoning_tokens:
            parts.append(f"ttfa {seconds(stats.ttfa)}")
    parts.append(f"{seconds(stats.seconds)} total")
    if generates:
        parts.append("-" if stats.tokens_per_s is None else f"{stats.tokens_per_s:.1f} tok/s")
    return "[" + ", ".join(parts + [stats.stop_reason]) + "]"


def style():
    from prompt_toolkit.styles import Style

    return Style.from_dict(STYLE_RULES)


def colour_wanted(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return bool(stream.isatty()) and not environ.get("NO_COLOR")


# SGR codes for faint text and back to normal intensity.
_DIM, _UNDIM = "\x1b[2m", "\x1b[22m"
# How sure a table row is (`Table.row_roles`), as a colour: green, cyan, yellow, red.
ROW_COLOURS = {"sure": "32", "likely": "36", "unsure": "33", "unlikely": "31"}


class LiveTurn:
    """One model turn as it happens: its streamed text and early notices, drawn at once.

    With `markdown`, the reply and its reasoning (dimmed) are drawn as
    markdown while they stream (`repl.terminal.markdown`); otherwise as the
    text comes. The renderer remembers what the turn showed, so that `show`
    does not draw it again.
    """

    def __init__(self, renderer: Renderer, working: Working, markdown: bool = False, streaming: bool = True):
        self.renderer = renderer
        self.working = working
        self.markdown = markdown
        self.streaming = streaming  # whether streamed text is shown as it comes (see `Renderer.live_turn`)
        self.streamed = False
        self.notices_shown = 0
        self._streams: dict[str, MarkdownStream] = {}  # "aside" and "reply" as they stream as markdown

    def stream(self, text: str) -> None:
        self.working.stop()  # the reply takes the spinner's line
        self.streamed = True
        if not self.markdown:
            self.renderer.stream(text)
            return
        if "aside" in self._streams and "reply" not in self._streams:
            self._end_thinking()
        self._markdown_stream("reply").feed(text)

    def aside(self, text: str) -> None:
        self.working.stop()
        if self.markdown:
            if "aside" not in self._streams:
                self.renderer.out.write(self.renderer.dimmed(THINKING_OPENS) + "\n")
            self._markdown_stream("aside").feed(text)
        else:
            self.renderer.aside(text)
        self.streamed = self.streamed or self.renderer.terminal

    def _end_thinking(self) -> None:
        """The reasoning streamed as markdown is over: the rest of it, then the line that closes it."""
        self._streams["aside"].finish()
        self.renderer.out.write(self.renderer.dimmed(THINKING_CLOSES) + "\n")

    def notice(self, message: str) -> None:
        self.working.stop()
        self.notices_shown += 1
        for stream in self._streams.values():  # the open block steps aside, and is drawn again below the note
            stream.suspend()
        self.renderer.notice(message)

    def done(self, turn: Turn) -> None:
        if "aside" in self._streams and "reply" not in self._streams:  # only reasoning came before it stopped
            self._end_thinking()
        for stream in self._streams.values():  # the rest, an unclosed fence as code
            stream.finish()
        self.renderer.end_stream()
        if self.streamed or self.notices_shown:
            self.renderer.shown_live[id(turn)] = self

    def _markdown_stream(self, part: str) -> MarkdownStream:
        if part not in self._streams:
            renderer = self.renderer

            def write(text: str) -> None:
                renderer.out.write(text)
                renderer.out.flush()

            self._streams[part] = MarkdownStream(
                write,
                renderer.width() or DEFAULT_WIDTH,
                renderer.colour,
                terminal_color_system(os.environ),
                dim=part == "aside",
                height=lambda: shutil.get_terminal_size((DEFAULT_WIDTH, 24)).lines,
            )
        return self._streams[part]


class Renderer:
    """Writes results to a terminal (text) or as one JSON object per line.

    A reply's aside (a model's reasoning: streamed through `aside`, or
    ``data["reasoning"]`` of a finished turn) is shown before the reply, on
    lines of its own between "thinking…" and "…done thinking", dimmed on a
    terminal that takes colour; with the model's `think` setting at `hide`,
    only a mark after the reply says it thought. Off a terminal (a pipe, `-e`)
    the reasoning is not shown at all: stdout carries the answers, and `--json`,
    the transcript and session files keep the reasoning.

    `terminal` marks an interactive session at a terminal, where confirmations
    share the screen with replies and `colour` may be on; otherwise (batch
    mode) confirmations go to stderr, so stdout holds only replies.

    At a terminal a reply is drawn the way its model's `render` setting says:
    markdown (rendered as it streams, `repl.terminal.markdown`) or its raw
    text; a plugin may draw its models' finished replies itself
    (`drawn_by_plugin`, the `render_reply` hook). Everywhere else replies are
    their raw text.
    """

    def __init__(
        self,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        json_mode: bool = False,
        terminal: bool = False,
        colour: bool = False,
    ):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.json_mode = json_mode
        self.aside_open = False  # streamed aside text waits for a line break before the reply
        self.terminal = terminal
        self.colour = colour and not json_mode
        # The prompt's clipboard: /copy puts the last reply there, Ctrl-Y pastes it.
        self.clipboard = InMemoryClipboard()
        # What live turns already showed (streamed text, early notices), by the turn's id, until shown.
        self.shown_live: dict[int, LiveTurn] = {}
        # Set by the evaluator: a finished reply as its model's plugin draws it, or None (the `render_reply` hook).
        self.drawn_by_plugin: Callable[[Turn, int, bool], str | None] | None = None
        # Streamed text is broken at spaces to the width as it comes: the terminal would cut words.
        self._wrapper: Wrapper | None = None

    @property
    def live(self) -> bool:
        """Whether streamed text and progress show as they come: not in JSON lines, which hold only results."""
        return not self.json_mode

    def width(self) -> int | None:
        """Columns to lay text out in: the terminal's; None for a file or pipe, where lines stay whole."""
        if not self.terminal:
            return None
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns

    def stream(self, text: str) -> None:
        self._close_aside()
        self.out.write(self._wrapped(text))
        self.out.flush()

    def aside(self, text: str) -> None:
        if not self.terminal:
            return
        if not self.aside_open:
            self.out.write(self.dimmed(THINKING_OPENS) + "\n")
            self.aside_open = True
        wrapped = self._wrapped(text)
        if wrapped:  # the wrapper may hold a word back
            self.out.write(self.dimmed(wrapped))
            self.out.flush()

    def _wrapped(self, text: str) -> str:
        if self._wrapper is None:
            self._wrapper = Wrapper(self.width())
        return self._wrapper.feed(text)

    def _wrapped_whole(self, text: str) -> str:
        """A finished reply broken into lines as a streamed one is."""
        wrapper = Wrapper(self.width())
        return wrapper.feed(text) + wrapper.finish()

    def end_stream(self) -> None:
        """Write the end of streamed text the wrapper held back (its last word)."""
        if self._wrapper is not None:
            last = self._wrapper.finish()
            self.out.write(self.dimmed(last) if self.aside_open else last)
            self._wrapper = None

    def _close_aside(self) -> None:
        if self.aside_open:
            self.end_stream()
            self.aside_open = False
            self.out.write("\n" + self.dimmed(THINKING_CLOSES) + "\n")

    def dimmed(self, text: str) -> str:
        return _DIM + text + _UNDIM if self.colour else text

    def working(self, describe: Callable[[], str]) -> Working:
        """A spinner while a model loads or computes, on a terminal only (never in batch or JSON output)."""
        return Working(self.out if self.terminal and not self.json_mode else None, describe)

    @contextlib.contextmanager
    def live_turn(
        self, describe: Callable[[], str], render: str = "raw", drawn_by_plugin: bool = False
    ) -> Iterator[LiveTurn]:
        """A turn being generated: a spinner until its first text, then the text as it streams.

        At a terminal, `render` markdown draws it as markdown; a reply that its
        plugin draws (`drawn_by_plugin`) is not streamed there: the plugin gets it whole.
        """
        at_terminal = self.terminal and not self.json_mode
        with self.working(describe) as working:
            yield LiveTurn(
                self,
                working,
                markdown=at_terminal and render == "markdown",
                streaming=self.live and not (at_terminal and drawn_by_plugin),
            )

    def copy(self, text: str) -> None:
        """Put `text` on the prompt's clipboard (Ctrl-Y pastes it) and on the terminal's."""
        self.clipboard.set_text(text)
        self.copy_to_terminal(text)

    def columns(self, heads: list[tuple[str, str]], hidden: bool = False) -> ColumnsOnScreen | None:
        """Live columns for a comparison, one per (title, detail); None where they cannot be drawn.

        They need a terminal (not JSON lines, not a file) wide enough for every column.
        """
        from repl.terminal.columns import ColumnsOnScreen, fits

        width = self.width()
        if self.json_mode or width is None or not fits(len(heads), width):
            return None
        rows = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).lines
        return ColumnsOnScreen(heads, self.out, width, rows, self.colour, hidden, self.drawn_by_plugin)

    def copy_to_terminal(self, text: str) -> None:
        """Put `text` on the terminal's clipboard with the OSC 52 escape, which also works over SSH."""
        if self.terminal:
            self.out.write(f"\x1b]52;c;{base64.b64encode(text.encode('utf-8')).decode('ascii')}\x07")
            self.out.flush()

    def problem(self, message: str) -> None:
        """A one-line message about something that went wrong."""
        if self.json_mode:
            self._json({"error": one_line(message)})
        else:
            self._styled(self.err, "error", f"error: {one_line(message)}")

    def notice(self, message: str) -> None:
        self._styled(self.err, "note", f"note: {one_line(message)}")

    def _styled(self, stream: IO[str], role: str, line: str) -> None:
        """One line in the colour of its role (see STYLE_RULES) when colour is on, wrapped at spaces to the width.

        Its later lines are indented past the role's label (`note: `).
        """
        width = self.width()
        if width:
            line = wrap_paragraph(line, width, indent=len(role) + 2)
        if not self.colour:
            stream.write(line + "\n")
            stream.flush()
            return
        from prompt_toolkit import print_formatted_text
        from prompt_toolkit.data_structures import Size
        from prompt_toolkit.formatted_text import FormattedText
        from prompt_toolkit.output.vt100 import Vt100_Output

        stream.flush()
        output = Vt100_Output(stream, lambda: Size(rows=24, columns=self.width() or DEFAULT_WIDTH))
        print_formatted_text(FormattedText([(f"class:{role}", line)]), style=style(), output=output)

    def show(self, result: Result, show_stats: bool = False) -> None:
        if self.json_mode:
            self._show_json(result)
        else:
            self._show_text(result, show_stats)

    def _show_text(self, result: Result, show_stats: bool) -> None:
        width = self.width()
        if result.parts:
            text = "\n".join(self._part_text(part, width) for part in result.parts)
        else:
            text = result.text.rstrip("\n")
            if width:
                text = wrap_lines(text, width)
        if text:
            shown_on = self.err if result.confirmation and not self.terminal else self.out
            shown_on.write(text + "\n")
            shown_on.flush()
        for turn in result.turns:
            self._turn_text(turn, show_stats, labelled=len(result.turns) > 1)
        if result.error:
            self.problem(result.error)
        self.out.flush()

    def _part_text(self, part: Any, width: int | None) -> str:
        """A part laid out at `width`; a table's rows shaded by their roles where colour is on."""
        if isinstance(part, str):
            return wrap_lines(part, width) if width else part
        text = lay_out_part(part, width)
        if not (self.colour and isinstance(part, Table) and part.row_roles):
            return text
        head, rule, *body = text.splitlines()
        if len(body) != len(part.row_roles):  # a row wrapped onto several lines: leave it plain
            return text
        shaded = [
            f"\x1b[{ROW_COLOURS[role]}m{line}\x1b[0m" if role in ROW_COLOURS else line
            for line, role in zip(body, part.row_roles)
        ]
        return "\n".join([head, rule, *shaded] + ([part.legend] if part.legend else []))

    def _turn_text(self, turn: Turn, show_stats: bool, labelled: bool) -> None:
        reasoning = turn.data.get("reasoning")
        live = self.shown_live.pop(id(turn), None)
        streamed = live is not None and live.streamed
        if streamed and not live.markdown:  # markdown ends with its last line; raw text needs its line ended
            if self.aside_open:  # only reasoning came before the reply stopped
                self._close_aside()
            else:
                self.out.write("\n")
        hidden = turn.settings.get("think") == "hide"
        thought = isinstance(reasoning, str) and reasoning and self.terminal and not turn.error
        if thought and hidden and streamed:
            self.out.write(self.dimmed(hidden_mark(turn)) + "\n")
        for notice in turn.notices[live.notices_shown if live else 0 :]:
            self.notice(notice)
        if not streamed:
            width = self.width()
            if thought and not hidden:
                self.out.write(self._reasoning_text(turn, reasoning, width) + "\n")
            if not turn.error:
                reply = self.reply_text(turn, width)
                label = f"[{turn.model}]" if labelled else ""
                raw = reply == shown_reply(turn)
                separator = " " if raw else "\n"  # a drawn reply starts on a line of its own
                shown = (label + separator if label else "") + reply
                self.out.write((self._wrapped_whole(shown) if raw else shown) + "\n")
            if thought and hidden:
                self.out.write(self.dimmed(hidden_mark(turn)) + "\n")
        if turn.stats.stop_reason == "cancelled" and not turn.error:
            self.notice("cancelled: the reply above is what was generated before Ctrl-C")
        if turn.error:
            self.problem(turn.error)
        elif show_stats:
            width = self.width()
            line = stats_line(turn.stats, bool(turn.settings.get("stream")))
            self.out.write((wrap_paragraph(line, width, indent=1) if width else line) + "\n")

    def reply_text(self, turn: Turn, width: int | None) -> str:
        """A finished reply as shown in `width` columns (None: not a terminal): the plugin's drawing, markdown or raw.

        For a reply shown whole: a turn that did not stream, a block of
        /compare, a column beside others.
        """
        if width is None or not self.terminal or self.json_mode:
            return shown_reply(turn)
        drawn = self.drawn_by_plugin(turn, width, self.colour) if self.drawn_by_plugin else None
        if drawn is not None:
            return drawn.rstrip("\n")
        if turn.display is None and turn.output and turn.settings.get("render") == "markdown":
            return self._markdown_text(turn.output, width)
        return shown_reply(turn)

    def _reasoning_text(self, turn: Turn, reasoning: str, width: int | None) -> str:
        """A finished turn's reasoning between the lines that set it apart, dimmed (as markdown where it renders so)."""
        if width is not None and self.terminal and turn.settings.get("render") == "markdown":
            shown = self._markdown_text(reasoning, width, dim=True)
        else:
            shown = self.dimmed(self._wrapped_whole(reasoning))
        return f"{self.dimmed(THINKING_OPENS)}\n{shown}\n{self.dimmed(THINKING_CLOSES)}"

    def _markdown_text(self, text: str, width: int, dim: bool = False) -> str:
        return render_markdown(text, width, self.colour, terminal_color_system(os.environ), dim).rstrip("\n")

    def _show_json(self, result: Result) -> None:
        for turn in result.turns:
            self._json(turn_record(turn))
        for record in result.records:
            self._json(record)
        if result.text and not result.turns and not result.records:  # plain text: a confirmation, a help page
            self._json({"output": result.text})
        if result.error:
            self._json({"error": result.error})

    def _json(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self.out.flush()
