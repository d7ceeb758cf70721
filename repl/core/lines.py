"""Turning raw input lines into the inputs the REPL evaluates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

BLOCK_FENCE = '"""'
# A command line whose last word is the fence: `/score gpt2 bert -- """` (not `//text`, which is text).
_COMMAND_OPENING = re.compile(r'^\s*(/[^/\s].*?)\s+"""\s*$')
_UNDECODABLE = re.compile("[\ud800-\udfff]")


def replace_undecodable(text: str) -> str:
    """`text` with each byte that was not UTF-8 shown as U+FFFD, as stdin is read.

    Terminal input and command-line arguments carry such bytes as lone
    surrogates (Python's "surrogateescape"), which no file, tokenizer or JSON
    encoder accepts.
    """
    return _UNDECODABLE.sub("\ufffd", text)


def _opening(text: str) -> tuple[str, str] | None:
    """(the block's head, what follows its opening fence) when `text` opens a block, else None.

    A block opens with a line that starts with the fence (no head), or with a
    command line that ends in it, its arguments' last word: `/score gpt2 bert -- \"\"\"`
    (the head is the command line without the fence).
    """
    stripped = text.lstrip()
    if stripped.startswith(BLOCK_FENCE):
        return "", stripped[len(BLOCK_FENCE) :]
    first, newline, rest = text.partition("\n")
    command = _COMMAND_OPENING.match(first)
    if command is None:
        return None
    return command.group(1), newline + rest


def opens_block(line: str) -> bool:
    """Whether a line starts a block (one that may close on the same line: `\"\"\"text\"\"\"`)."""
    return _opening(line) is not None


def block_is_open(text: str) -> bool:
    """Whether `text` starts a `\"\"\"` block that it does not close yet."""
    opening = _opening(text)
    return opening is not None and not opening[1].rstrip().endswith(BLOCK_FENCE)


def unwrap_block(text: str) -> str:
    """The input a whole `\"\"\"` block stands for, as typed at the prompt in one piece.

    The fences go, and with them the line breaks right after the opening one and
    before the closing one, as `join_blocks` does line by line; a command's head
    stays before the text, a space between; other text is unchanged.
    """
    opening = _opening(text)
    if opening is None or block_is_open(text):
        return text
    head, after = opening
    body = after.rstrip()[: -len(BLOCK_FENCE)]
    if "\n" in body:
        lines = body.split("\n")
        if not lines[0].strip():
            lines = lines[1:]
        if lines and not lines[-1].strip():
            lines = lines[:-1]
        body = "\n".join(lines)
    return f"{head} {body}" if head else body


def join_blocks(read: Callable[[bool], str]) -> Iterator[str]:
    """Lines as the REPL evaluates them: a block between two `\"\"\"` lines is one input.

    `read(continued)` returns the next raw line (continued: inside a block) and
    raises EOFError at the end; an unfinished block at the end is still sent.
    A command line ending in the fence opens a block too, its text after the command.
    """
    while True:
        line = read(False)
        opening = _opening(line)
        if opening is None:
            yield line
            continue
        head, first = opening
        if len(first.rstrip()) >= len(BLOCK_FENCE) and first.rstrip().endswith(BLOCK_FENCE):
            yield unwrap_block(line)
            continue
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
            yield _headed(head, "\n".join(body))
            raise
        yield _headed(head, "\n".join(body))


def _headed(head: str, body: str) -> str:
    return f"{head} {body}" if head else body


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
