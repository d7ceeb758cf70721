"""Comparison columns and the blind arena in a real pseudo-terminal, read back through a terminal emulator.

The REPL runs under pexpect at 80, 120 and 200 columns; pyte plays its
output as a terminal would, so the tests see the screen (and what scrolled
off it) that a user sees.
"""

import os
import re
import sys
import time

import pexpect
import pyte
import pytest
from prompt_toolkit.utils import get_cwidth

from repl.terminal.columns import column_width

pytestmark = pytest.mark.slow

PROMPT = re.compile(r"^(\S+|vote a/b/t/n)> ?$")
HI = "Say hi in Chinese:"  # the taught gpt2 answers " 我爱你 😀 🎉"


class Terminal:
    """modelrepl under a pseudo-terminal of the given size, its output played on a pyte screen."""

    def __init__(self, argv, columns, rows, env):
        self.screen = pyte.HistoryScreen(columns, rows, history=10_000)
        self.stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(
            sys.executable, argv, env=env, encoding="utf-8", timeout=180, dimensions=(rows, columns)
        )
        self.columns = columns
        self.output = ""  # everything written since the last send
        self.wait_for_prompt()

    def pump(self, seconds=0.05):
        try:
            text = self.child.read_nonblocking(100_000, timeout=seconds)
        except pexpect.TIMEOUT:
            return
        self.output += text
        self.stream.feed(text)

    def send(self, line):
        self.output = ""
        self.child.send(line + "\r")

    def wait_for_prompt(self, timeout=240):
        """Until the cursor's line is an empty prompt and the screen has stopped changing."""
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.2)
            line = self.row(self.screen.cursor.y).strip()
            if PROMPT.match(line):
                before = self.output
                self.pump(0.5)
                if self.output == before:
                    return PROMPT.match(line).group(1)
        raise AssertionError(f"no prompt; screen:\n{self.text()}")

    def row(self, y):
        return "".join(self.screen.buffer[y][x].data for x in range(self.columns)).rstrip()

    def lines(self):
        """Every line: what scrolled off the top, then the screen."""
        history = ["".join(line[x].data for x in range(self.columns)).rstrip() for line in self.screen.history.top]
        return history + [self.row(y) for y in range(self.screen.lines)]

    def text(self):
        return "\n".join(self.lines())

    def close(self):
        if self.child.isalive():
            self.child.kill(9)


@pytest.fixture
def terminal(taught_checkpoints, tiny_checkpoints, tmp_path):
    """A starter of Terminals on gpt2 and mt0: taught ones (short exact replies) or random ones (long replies)."""
    started = []

    def start(columns, rows=40, *extra, taught=True, **environ):
        checkpoints = taught_checkpoints if taught else tiny_checkpoints
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "PYTHONPATH": os.getcwd(),
            **environ,
        }
        argv = ["-m", "repl", "--no-log", "--no-preload"]
        for family in ("gpt2", "mt0"):
            argv += ["-m", f"{family}={checkpoints[family]}"]
        terminal = Terminal([*argv, *extra], columns, rows, env)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


def frame(lines, columns):
    """The comparison's frame in the lines: (header row, body rows, footer rows), split at the separator."""
    inner = column_width(2, columns)
    header = next(i for i, line in enumerate(lines) if line.startswith("gpt2 · ") and "│ mt0 · " in line)
    rules = [i for i in range(header, len(lines)) if lines[i].startswith("─" * inner + "─┼─")]
    assert len(rules) == 2 and rules[0] == header + 1, "\n".join(lines[header:])
    body = lines[rules[0] + 1 : rules[1]]
    footer = lines[rules[1] + 1 : rules[1] + 3]
    return lines[header], body, footer, inner


def cell_split(line, inner):
    """A frame line's left and right cells, by terminal cells (a wide character takes two)."""
    at = 0
    for index, char in enumerate(line):
        if at == inner + 1:
            assert char == "│", line
            return line[:index].rstrip(), line[index + 2 :].rstrip()
        at += get_cwidth(char)
    raise AssertionError(f"no separator after {inner} cells: {line!r}")


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_replies_stream_side_by_side_in_rows_that_line_up(terminal, taught_repl, columns):
    repl = taught_repl(active="gpt2", gpt2={"max_new_tokens": 12}, mt0={"max_new_tokens": 40})
    expected = {name: repl.turn(name, HI, stream=False).output for name in ("gpt2", "mt0")}
    term = terminal(columns, 40, "--set", "gpt2.max_new_tokens=12", "--set", "mt0.max_new_tokens=40")
    term.send(f"/compare gpt2 mt0 -- {HI}")
    term.wait_for_prompt()
    _, body, footer, inner = frame(term.lines(), columns)
    left, right = zip(*(cell_split(line, inner) for line in body))
    assert "".join(left).replace(" ", "") == expected["gpt2"].replace(" ", "")  # 我爱你 😀 🎉, wide and whole
    assert "".join(right).replace(" ", "") == expected["mt0"].replace(" ", "")
    assert all(line[: len(line)].count("│") == 1 for line in body)  # nothing torn: one separator per row
    first, second = cell_split(footer[0], inner)
    assert first.startswith("ttft ") and second.startswith("ttft ")  # the footers start on one row
    assert term.text().count("gpt2 · ") == 1  # the frame was drawn once, not once per redraw


def test_a_reply_taller_than_the_screen_scrolls_with_its_neighbour_and_is_printed_once(terminal, tiny_checkpoints):
    from repl.testing import make_repl
    from repl.testing.fixtures import builtin_host

    settings = {"gpt2": {"max_new_tokens": 40}, "mt0": {"max_new_tokens": 400}}
    checkpoints = {family: str(path) for family, path in tiny_checkpoints.items()}
    repl = make_repl(builtin_host(), active="gpt2", checkpoints=checkpoints, settings=settings)
    expected = {name: repl.turn(name, "hello there", stream=False).output for name in ("gpt2", "mt0")}
    term = terminal(80, 16, "--set", "gpt2.max_new_tokens=40", "--set", "mt0.max_new_tokens=400", taught=False)
    term.send("/compare gpt2 mt0 -- hello there")
    term.wait_for_prompt()
    lines = term.lines()
    _, body, _, inner = frame(lines, 80)
    assert len(body) > 16  # taller than the screen
    left, right = zip(*(cell_split(line, inner) for line in body))
    assert "".join(right).replace(" ", "") == expected["mt0"].replace(" ", "")
    assert "".join(left).replace(" ", "") == expected["gpt2"].replace(" ", "")


def test_ctrl_c_stops_every_column_and_keeps_what_was_written(terminal):
    term = terminal(120, 40, "--set", "gpt2.max_new_tokens=100", "--set", "mt0.max_new_tokens=100000", taught=False)
    term.send("/set compare_run parallel")
    term.wait_for_prompt()
    term.send("/compare gpt2 mt0 -- hello there")
    end = time.time() + 120
    while time.time() < end and term.output.count("rara") < 20:
        term.pump(0.2)
    term.child.sendintr()
    term.wait_for_prompt()
    _, body, footer, inner = frame(term.lines(), 120)
    kept = "".join(cell_split(line, inner)[1] for line in body)
    assert kept.startswith("rarara")  # what mt0 wrote before Ctrl-C stays on the screen
    assert "cancelled" in " ".join(cell_split(line, inner)[1] for line in footer)
    assert "shared device" in " ".join(footer)  # both ran at once on the CPU: their timings are marked
    assert "^C" not in term.text()


def test_the_arena_hides_names_until_the_vote_and_draws_both_orders(terminal, tmp_path):
    term = terminal(100, 30, "--set", "gpt2.max_new_tokens=3", "--set", "mt0.max_new_tokens=3")
    term.send("/arena gpt2 mt0")
    assert term.wait_for_prompt() == "arena"
    orders = set()
    for _ in range(16):
        term.send(HI)
        assert term.wait_for_prompt() == "vote a/b/t/n"
        shown = term.output
        assert "gpt2" not in shown and "mt0" not in shown and "tok/s" not in shown
        assert "│" in shown  # the columns, headed A and B
        term.child.send("t")  # one key votes
        assert term.wait_for_prompt() == "arena"
        found = re.search(r"A was (gpt2|mt0)", term.output)
        assert found, term.output
        orders.add(found.group(1))
        if len(orders) == 2:
            break
    assert orders == {"gpt2", "mt0"}
    votes = (tmp_path / "data" / "modelrepl" / "arena.jsonl").read_text().splitlines()
    assert len(votes) >= 2
    term.send("/leaderboard")
    term.wait_for_prompt()
    assert re.search(r"1\s+(gpt2|mt0)\s+1000", term.output)
