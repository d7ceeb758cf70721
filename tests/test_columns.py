"""Replies in columns: rows shared across columns, widths in terminal cells, the live region and its scrolling."""

import io
import re

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repl.core.layout import cells
from repl.terminal.columns import (
    SEPARATOR,
    ColumnsView,
    LiveColumns,
    column_width,
    fits,
    parting,
    shown_text,
    stats_footer,
)

SGR = re.compile(r"\x1b\[[0-9;]*m")
GPT2 = "The quick brown fox jumps over the lazy dog. 我爱你 😀 and then it goes on for a long while, line after line. "
MT0 = "The quick brown fox leaps over the lazy cat. Wide: 日本語のテキスト, emoji 🎉🎉 and more words here. "


def plain(row):
    return SGR.sub("", row)


def separators_at(row, count):
    """The cells at which the column separators (│ or ┼) stand in a laid-out row."""
    at, found = 0, []
    for char in plain(row):
        if char in "│┼":
            found.append(at)
        at += cells(char)
    return found[: count - 1]


def frame(width, colour=False, texts=(GPT2 * 3, MT0 * 2), **finish):
    view = ColumnsView([("gpt2", "sshleifer/tiny-gpt2"), ("mt0", "bigscience/mt0-small")][: len(texts)], width, colour)
    for number, text in enumerate(texts):
        for start in range(0, len(text), 3):
            view.add(number, text[start : start + 3])
        view.finish(number, stats_footer(0.123, 40, 31.2, "length", **finish))
    return view


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("colour", [False, True])
def test_columns_share_rows_and_keep_their_widths(width, colour):
    view = frame(width, colour)
    rows = view.rows()
    inner = column_width(2, width)
    expected_separator = [inner + 1]
    for row in rows:
        assert cells(plain(row)) <= width - 1
        assert separators_at(row, 2) == expected_separator, row
    left = "".join(plain(row)[: len(plain(row).split(SEPARATOR)[0])] for row in rows)
    assert "我爱你 😀" in left
    # Both replies start on the row under the rule, and both footers on one row.
    body = [plain(row) for row in rows]
    assert body[2].startswith("The quick brown fox jumps") and "The quick brown fox leaps" in body[2]
    footer = next(i for i, row in enumerate(body) if row.startswith("ttft"))
    assert body[footer].count("ttft 0.123s") == 2


def test_colour_never_moves_a_cell():
    assert [plain(row) for row in frame(120, colour=True).rows()] == [plain(row) for row in frame(120).rows()]


def test_wide_characters_wrap_by_cells_not_characters():
    view = frame(80, texts=("日本語" * 40, "😀" * 40))
    for row in view.rows():
        for cell in re.split("[│┼]", plain(row)):
            assert cells(cell.strip(" ─")) <= column_width(2, 80)
    assert plain(view.rows()[2]).startswith("日本語" * 6)  # 18 characters, 36 of the column's 38 cells


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab cd  efgh\n我😀")), max_size=300),
    cuts=st.lists(st.integers(1, 9), min_size=1, max_size=40),
)
def test_streamed_in_any_pieces_the_column_ends_as_if_given_at_once(text, cuts):
    streamed = ColumnsView([("x", ""), ("y", "")], 80)
    at, step = 0, 0
    while at < len(text):
        size = cuts[step % len(cuts)]
        streamed.add(0, text[at : at + size])
        at, step = at + size, step + 1
    whole = ColumnsView([("x", ""), ("y", "")], 80)
    whole.add(0, text)
    for view in (streamed, whole):
        view.finish(0)
        view.finish(1)
    assert streamed.rows() == whole.rows()


def test_reasoning_comes_first_and_the_reply_starts_on_its_own_row():
    view = ColumnsView([("chat", "c"), ("gpt2", "g")], 80)
    view.add(0, "let me think\n", "aside")
    view.add(0, "Hello")
    view.finish(0, stats_footer(0.1, 3, 30.0, "eos", reasoning_tokens=4))
    view.finish(1, error="it broke")
    rows = [plain(row) for row in view.rows()]
    assert rows[2].startswith("let me think") and "error: it broke" not in rows[2]
    assert rows[3].startswith("Hello")
    assert any("4 thinking tok" in row for row in rows)


def test_control_characters_cannot_move_the_cursor():
    assert shown_text("a\x1b[2Jb\tc\r\n") == "a\\x1b[2Jb    c\n"


def test_where_the_replies_part_is_marked_in_each_column():
    view = ColumnsView([("a", ""), ("b", "")], 80, colour=False)
    view.add(0, "The quick brown fox jumps")
    view.add(1, "The quick brown fox")
    assert view.parted_at is None  # b may still say " jumps"
    view.add(1, " leaps")
    assert view.parted_at == len("The quick brown fox ")
    row = view.rows()[2]
    assert "fox \x1b[7mj\x1b[0mumps" in row and "fox \x1b[7ml\x1b[0meaps" in row


@pytest.mark.parametrize(
    ("replies", "ended", "expected"),
    [
        (["abc", "abd"], [False, False], (2, True)),
        (["abc", "ab"], [False, False], (2, False)),
        (["abc", "ab"], [False, True], (2, True)),
        (["abc", "abc"], [True, True], (3, False)),
        (["abc", ""], [False, False], (0, False)),
        (["xa", "ya", "xa"], [False, False, False], (0, True)),
    ],
)
def test_parting(replies, ended, expected):
    assert parting(replies, ended) == expected


def test_no_mark_when_replies_agree_or_differ_from_the_start():
    same = frame(80, texts=("same words", "same words"))
    different = frame(80, texts=("one reply", "another"))
    assert same.parted_at is None and different.parted_at is None
    assert "\x1b[7m" not in "".join(same.rows() + different.rows())


def test_a_column_that_has_not_started_says_it_is_waiting():
    view = ColumnsView([("a", ""), ("b", "")], 80)
    view.add(0, "hello")
    footer = plain(view.rows()[-1])
    assert footer.startswith("answering…") and footer.endswith("waiting")


def test_how_many_columns_fit():
    assert fits(2, 80) and fits(3, 120) and fits(4, 200)
    assert not fits(3, 80) and not fits(4, 120) and not fits(1, 200) and not fits(5, 400)
    with pytest.raises(ValueError):
        ColumnsView([("a", "")], 80)


def screen_after(width, height, feed):
    """Run `feed(view, live)` against a pyte terminal; the whole scrollback and screen, as text."""
    screen = pyte.HistoryScreen(width, height, history=100_000)
    stream = pyte.Stream(screen)
    written = []

    class Terminal(io.StringIO):
        def write(self, text):
            written.append(text)
            stream.feed(text.replace("\n", "\r\n"))  # the terminal's own newline translation (ONLCR)
            return len(text)

    view = ColumnsView([("a", "x"), ("b", "y"), ("c", "z")][:2], width, colour=True)
    live = LiveColumns(view, Terminal(), height)
    feed(view, live)
    live.close()
    lines = ["".join(line[x].data for x in range(width)).rstrip() for line in screen.history.top]
    lines += [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines, [plain(row).rstrip() for row in view.rows()], written


def long_text(seed):
    return " ".join(f"w{n}{'x' * (n % 7)}" for n in range(seed, seed + 300))


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("order", ["together", "one after another"])
def test_a_frame_taller_than_the_screen_scrolls_whole_and_ends_printed_once(width, order):
    texts = [long_text(0), long_text(40)]

    def feed(view, live):
        if order == "together":
            for start in range(0, max(map(len, texts)), 4):
                for number, text in enumerate(texts):
                    view.add(number, text[start : start + 4])
                live.draw()
        else:
            for number, text in enumerate(texts):
                for start in range(0, len(text), 4):
                    view.add(number, text[start : start + 4])
                    live.draw()
                view.finish(number, stats_footer(0.1, 300, 20.0, "length"))
                live.draw()
        for number in range(2):
            view.finish(number, stats_footer(0.1, 300, 20.0, "length"))

    shown, expected, _ = screen_after(width, 20, feed)
    assert shown == expected  # every row once, in order, nothing torn or doubled


def test_a_redraw_costs_no_more_as_the_replies_grow():
    sizes = {}

    def feed(view, live):
        for count in range(1, 2001):
            view.add(0, "token ")
            view.add(1, "token " if count % 3 else "other ")
            before = len(written_so_far)
            live.draw()
            if count in (100, 2000):
                sizes[count] = sum(len(text) for text in written_so_far[before:])

    written_so_far = []
    screen = pyte.Screen(120, 30)
    stream = pyte.Stream(screen)

    class Terminal(io.StringIO):
        def write(self, text):
            written_so_far.append(text)
            stream.feed(text.replace("\n", "\r\n"))
            return len(text)

    view = ColumnsView([("a", ""), ("b", "")], 120)
    feed(view, LiveColumns(view, Terminal(), 30))
    assert sizes[2000] <= max(sizes[100], 1) * 3


def test_a_markdown_reply_is_drawn_in_its_column_once_whole_and_the_arena_keeps_it_plain():
    from repl.core.results import Turn
    from repl.terminal.columns import ColumnsOnScreen

    reply = "# Cats\n\n- they **purr**\n- they sleep"
    for hidden in (False, True):
        screen = ColumnsOnScreen([("chat", "c"), ("gpt2", "g")], io.StringIO(), 80, 30, colour=False, hidden=hidden)
        with screen:
            chat, gpt2 = screen.column(0, render="markdown"), screen.column(1)
            chat.stream(reply)
            gpt2.stream("**not markdown** here")
            chat.done(Turn(model="chat", checkpoint="c", input="hi", output=reply))
            gpt2.done(Turn(model="gpt2", checkpoint="g", input="hi", output="**not markdown** here"))
        rows = [plain(row) for row in screen.view.rows()]
        left = "\n".join(row.split("│")[0] for row in rows[2:6])
        right = "\n".join(row.split("│")[1] for row in rows[2:4])
        assert "**not markdown** here" in right  # raw: gpt2 renders raw
        if hidden:
            assert "# Cats" in left and "**purr**" in left  # both sides plain: nothing tells the models apart
        else:
            assert "Cats" in left and "#" not in left and "purr" in left and "**" not in left


def test_a_model_that_generates_nothing_shows_only_that_it_is_done():
    assert stats_footer(0.018, 0, None, "done") == ["done"]  # no ttft, "0 tok" or "- tok/s" for bert
    assert stats_footer(0.017, 12, 54.1, "eos")[:2] == ["ttft 0.017s", "12 tok"]
