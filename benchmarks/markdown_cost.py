"""Markdown while it streams: what one token costs once the reply has N tokens.

Three ways to keep the screen up to date with a reply that arrives token by
token, each timed over the tokens that follow the first N (80 columns, 256
colours, output thrown away):

Each figure is the mean over one whole turn of the reply's pattern (about 150
tokens) after the first N.

- *streamed, every token*: `MarkdownStream` redrawing the open block at every
  token (its rate limit off): the worst case of the way modelrepl draws;
- *streamed, 5/s*: the same at its default rate, at 50 tokens a second;
- *whole reply*: rich rendering the whole reply so far at every token, the
  way that freezes long replies.

Besides the seconds, the markdown characters rendered per token: a measure of
the work that does not depend on the machine.
"""

from __future__ import annotations

import re
import time
from typing import Any

from benchmarks.timing import Summary, Workload, alternate

LENGTHS = (100, 1000, 4000)
WIDTH = 80
TOKENS_PER_SECOND = 50  # the clock the rate-limited stream sees
# One turn of a typical code answer: prose with inline markup, a list, a table and a fenced block.
UNIT = """\
## Step

The function below reads **one** line at a time, so a `huge` file never has to fit in memory; see the
[io docs](https://docs.python.org/3/library/io.html) for the details of buffering.

- open the file with `encoding="utf-8"`
- strip each line
- skip the empty ones

| name | meaning |
|------|---------|
| `path` | the file to read |
| `skip` | whether to skip empty lines |

```python
def read_lines(path, skip=True):
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip() or not skip:
                yield line.rstrip("\\n")
```

"""


def pieces_of_unit() -> list[str]:
    """UNIT cut as a tokenizer cuts text: words with their leading space, punctuation, newlines."""
    return re.findall(r"\n| ?\w+| ?[^\w\s]| +", UNIT)


def pieces(count: int) -> list[str]:
    """`count` pieces of a long markdown reply: UNIT over and over."""
    unit = pieces_of_unit()
    return (unit * (count // len(unit) + 1))[:count]


def measure(workload: Workload) -> dict[str, Any]:
    from repl.terminal.markdown import MarkdownPainter, MarkdownStream

    # A whole turn of the reply's pattern is timed, so each length averages over the same mix of blocks.
    timed_tokens = len(pieces_of_unit())
    whole_tokens = 3 if workload.quick else 20  # rendering the whole reply is slow: fewer samples
    figures: dict[str, Any] = {}
    for length in LENGTHS:
        reply = pieces(length + timed_tokens)
        counted: dict[str, float] = {}

        def streamed(every: float, key: str) -> float:
            clock = [0.0]
            stream = MarkdownStream(lambda _: None, WIDTH, True, redraw_every=3600, clock=lambda: clock[0])
            for piece in reply[:length]:
                stream.feed(piece)
            stream.redraw_every = every
            chars = stream.rendered_chars
            started = time.perf_counter()
            for piece in reply[length:]:
                clock[0] += 1 / TOKENS_PER_SECOND
                stream.feed(piece)
            seconds = (time.perf_counter() - started) / timed_tokens
            counted[key] = (stream.rendered_chars - chars) / timed_tokens
            return seconds

        painter = MarkdownPainter(WIDTH, True)

        def whole() -> float:
            started = time.perf_counter()
            for end in range(length, length + whole_tokens):
                painter.render("".join(reply[:end]))
            counted["whole"] = len("".join(reply[:length]))
            return (time.perf_counter() - started) / whole_tokens

        values = alternate(
            {
                "every_token": lambda: streamed(0, "every_token"),
                "five_a_second": lambda: streamed(0.2, "five_a_second"),
                "whole": whole,
            },
            workload,
        )
        row = {name: Summary.of(seconds).as_dict() for name, seconds in values.items()}
        row["chars_per_token"] = counted
        row["ratio"] = row["whole"]["median"] / row["every_token"]["median"]
        figures[str(length)] = row
    return figures
