"""Turning raw input lines into the inputs the REPL evaluates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

BLOCK_FENCE = '"""'
_UNDECODABLE = re.compile("[\ud800-\udfff]")


def replace_undecodable(text: str) -> str:
    """`text` with each byte that was not UTF-8 shown as U+FFFD, as stdin is read.

    Terminal input and command-line arguments carry such bytes as lone
    surrogates (Python's "surrogateescape"), which no file, tokenizer or JSON
    encoder accepts.
    """
    return _UNDECODABLE.sub("\ufffd", text)


def block_is_open(text: str) -> bool:
    """Whether `text` starts a `\"\"\"` block that it does not close yet."""
    stripped = text.strip()
    if not stripped.startswith(BLOCK_FENCE):
        return False
    return len(stripped) < 2 * len(BLOCK_FENCE) or not stripped.endswith(BLOCK_FENCE)


def unwrap_block(text: str) -> str:
    """The input a whole `\"\"\"` block stands for, as typed at the prompt in one piece.

    The fences go, and with them the line breaks right after the opening one and
    before the closing one, as `join_blocks` does line by line; other text is unchanged.
    """
    stripped = text.strip()
    if not stripped.startswith(BLOCK_FENCE) or block_is_open(text):
        return text
    body = stripped[len(BLOCK_FENCE) : -len(BLOCK_FENCE)]
    if "\n" not in body:
        return body
    lines = body.split("\n")
    if not lines[0].strip():
        lines = lines[1:]
    if lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


def join_blocks(read: Callable[[bool], str]) -> Iterator[str]:
    """Lines as the REPL evaluates them: a block between two `\"\"\"` lines is one input.

    `read(continued)` returns the next raw line (continued: inside a block) and
    raises EOFError at the end; an unfinished block at the end is still sent.
    """
    while True:
        line = read(False)
        stripped = line.strip()
        if not stripped.startswith(BLOCK_FENCE):
            yield line
            continue
        if len(stripped) >= 2 * len(BLOCK_FENCE) and stripped.endswith(BLOCK_FENCE):
            yield stripped[len(BLOCK_FENCE) : -len(BLOCK_FENCE)]
            continue
        first = line.lstrip()[len(BLOCK_FENCE) :]
        body = [first] if first else []
        try:
            while True:
                more = read(True)
                if more.rstrip().endswith(BLOCK_FENCE):
                    tail = more.rstrip()[: -len(BLOCK_FENCE)]
                    if tail:
                        body.append(tail)
                    break
                body.append(more)
        except EOFError:
            yield "\n".join(body)
            raise
        yield "\n".join(body)


def batch_lines(lines: Iterable[str]) -> Iterator[str]:
    """Inputs from a file or stdin, with `\"\"\"` blocks joined, trailing newlines dropped."""
    iterator = iter(lines)

    def read(continued: bool) -> str:
        try:
            return next(iterator).rstrip("\r\n")
        except StopIteration:
            raise EOFError from None

    try:
        yield from join_blocks(read)
    except EOFError:
        return
