"""What modelrepl does to the terminal while it works between two prompts.

Keys typed meanwhile are not echoed, so a Ctrl-C never leaves `^C` inside
the reply; a line with a spinner and the elapsed time shows that a model is
loading or computing a reply that is not streamed, and is erased after.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
FIRST_DRAWN_AFTER = 0.3  # seconds: work that ends sooner shows no spinner at all
REDRAWN_EVERY = 0.1
ERASE_LINE = "\r\x1b[K"


@contextlib.contextmanager
def keys_not_echoed(stream: IO[str] | None = None) -> Iterator[None]:
    """Turn the terminal's echo off while modelrepl, not the prompt, owns the screen.

    Ctrl-C still interrupts (the terminal's ISIG stays on); only its `^C` echo
    goes. Typed-ahead keys still reach the next prompt.
    """
    stream = stream or sys.stdin
    try:
        import termios

        descriptor = stream.fileno()
        saved = termios.tcgetattr(descriptor)
    except (ImportError, OSError, ValueError, AttributeError):  # not a terminal, or no termios (Windows)
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
    termios.tcsetattr(descriptor, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(descriptor, termios.TCSANOW, saved)


class Working:
    """A spinner line, `⠋ loading gpt2 2.4s`, redrawn by a thread until `stop()`.

    `describe()` is asked at each redraw, so the label follows the work (loading,
    then answering). Without a stream (batch or JSON output) it draws nothing.
    """

    def __init__(self, stream: IO[str] | None, describe: Callable[[], str]):
        self.stream = stream
        self.describe = describe
        self._stopped = threading.Event()
        self._drawn = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Working:
        if self.stream is not None:
            self._thread = threading.Thread(target=self._spin, name="modelrepl-spinner", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Erase the line; safe to call more than once, and before output starts."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._drawn and self.stream is not None:
            self.stream.write(ERASE_LINE)
            self.stream.flush()
            self._drawn = False

    def _spin(self) -> None:
        started = time.monotonic()
        if self._stopped.wait(FIRST_DRAWN_AFTER):
            return
        frame = 0
        while not self._stopped.is_set():
            elapsed = time.monotonic() - started
            self.stream.write(f"{ERASE_LINE}{FRAMES[frame % len(FRAMES)]} {self.describe()} {elapsed:.1f}s")
            self.stream.flush()
            self._drawn = True
            frame += 1
            self._stopped.wait(REDRAWN_EVERY)
