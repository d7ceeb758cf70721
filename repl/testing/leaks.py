"""What a plugin's hooks would print to the user's terminal besides modelrepl's own output.

In the REPL, a Python warning, a library's log record at WARNING or above (transformers'
"Token indices sequence length is longer than ..."), or a stray print lands between the
prompt and the reply. `Leaks` records all three while plugin code runs, so that
`check_plugin` can name them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

# Python's own default filters: what a user of the REPL would see, not pytest's "show everything".
_HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


class _Recorder(logging.Handler):
    def __init__(self, found: list[str]):
        super().__init__(logging.WARNING)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        self.found.append(f"{record.name} logged: {record.getMessage()}")


class Leaks:
    """Each message a plugin's code printed, warned or logged, as one line."""

    def __init__(self) -> None:
        self.found: list[str] = []

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        recorder = _Recorder(self.found)
        # A library that keeps its records from the root logger (transformers does) gets the recorder too.
        loggers = [logging.getLogger()] + [
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
        printed = io.StringIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for category in _HIDDEN_BY_DEFAULT:
                warnings.filterwarnings("ignore", category=category)
            for logger in loggers:
                logger.addHandler(recorder)
            try:
                with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                    yield
            finally:
                for logger in loggers:
                    logger.removeHandler(recorder)
        self.found += [f"{w.category.__name__}: {w.message}" for w in caught]
        self.found += [f"printed: {line}" for line in printed.getvalue().splitlines() if line.strip()]

    def summary(self, most: int = 3) -> str:
        distinct = list(dict.fromkeys(" ".join(found.split())[:200] for found in self.found))
        more = f" (and {len(distinct) - most} more)" if len(distinct) > most else ""
        return "; ".join(distinct[:most]) + more
