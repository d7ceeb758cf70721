"""Writing the user's files so that a crash or a full disk never tears them.

Whole files go to a temporary file in the same directory, are fsync'd and then
renamed over the old one: a reader sees the old file or the new one, never a
mix. Append-only logs are fsync'd line by line. Everything is created readable
by the user only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


class StorageError(Exception):
    """A file could not be written; the message says which and why."""


def _private_directory(directory: Path) -> None:
    # mkdir(parents=True) would give the parents it makes the umask's mode, not this one.
    for missing in reversed([d for d in (directory, *directory.parents) if not d.exists()]):
        missing.mkdir(mode=PRIVATE_DIRECTORY, exist_ok=True)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    try:
        _private_directory(path.parent)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, PRIVATE_FILE)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged") from None


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line and make it durable before returning."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        _private_directory(path.parent)
        descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        size_before = os.fstat(descriptor).st_size
        if size_before and os.pread(descriptor, 1, size_before - 1) != b"\n":
            # An earlier process died mid-line: end that fragment so this line stays whole.
            data = b"\n" + data
        try:
            if os.write(descriptor, data) != len(data):
                raise OSError(28, "short write (disk full?)")
            os.fsync(descriptor)
        except OSError:
            with contextlib.suppress(OSError):  # leave no half line behind
                os.ftruncate(descriptor, size_before)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory; the rename still stands
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
