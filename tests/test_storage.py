"""Atomic whole-file writes and durable appends: old or new content, never a torn file."""

import os
import random
import subprocess
import sys
import textwrap
import time

import pytest

from repl.store import files as storage
from repl.store import session_files as sessions
from repl.store.files import StorageError, append_line, write_atomic


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_write_atomic_creates_a_private_file_in_a_private_directory(tmp_path):
    path = tmp_path / "new" / "file.json"
    write_atomic(path, "hello\n")
    assert path.read_text() == "hello\n"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_write_atomic_makes_a_readable_file_private_when_it_replaces_it(tmp_path):
    path = tmp_path / "file"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_atomic(path, "new")
    assert path.read_text() == "new"
    assert mode(path) == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "file"
    write_atomic(path, "old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", full_disk)
    with pytest.raises(StorageError, match=r"No space left on device.*previous file is unchanged"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_append_line_adds_whole_private_lines(tmp_path):
    path = tmp_path / "log" / "lines.jsonl"
    append_line(path, '{"a": 1}')
    append_line(path, '{"b": 2}\n')
    assert path.read_text() == '{"a": 1}\n{"b": 2}\n'
    assert mode(path) == 0o600


def test_append_line_ends_a_line_torn_by_an_earlier_crash(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"a": 1}\n{"b": ')
    append_line(path, '{"c": 3}')
    assert path.read_text().splitlines() == ['{"a": 1}', '{"b": ', '{"c": 3}']


def test_a_short_write_is_undone_so_no_half_line_remains(tmp_path, monkeypatch):
    path = tmp_path / "lines.jsonl"
    append_line(path, "first")
    real_write = os.write

    def half_write(descriptor, data):
        return real_write(descriptor, data[: len(data) // 2])

    monkeypatch.setattr(storage.os, "write", half_write)
    with pytest.raises(StorageError, match="short write"):
        append_line(path, "second line that does not fit")
    assert path.read_text() == "first\n"


def test_append_line_reports_an_unwritable_place(tmp_path):
    directory = tmp_path / "a directory"
    directory.mkdir()
    with pytest.raises(StorageError, match="cannot write"):
        append_line(directory, "line")


SAVER = textwrap.dedent(
    """
    import builtins
    import io
    import os
    import sys
    import time
    from pathlib import Path

    from repl.store import session_files as sessions
    from repl.core.plugin_host import create_host
    from repl.core.results import Turn
    from repl.core.session import Session


    class SlowDiskFile:
        # Data reaches the disk 64 KB at a time, so a kill can land in the middle of any write.
        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            for start in range(0, len(text), 65536):
                self.handle.write(text[start : start + 65536])
                self.handle.flush()
                time.sleep(0.003)
            return len(text)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return self.handle.__exit__(*exc_info)

        def __getattr__(self, name):
            return getattr(self.handle, name)


    real_open, real_fsync = io.open, os.fsync

    def slow_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return SlowDiskFile(handle) if "w" in mode or "a" in mode else handle

    def slow_fsync(descriptor):
        time.sleep(0.1)
        real_fsync(descriptor)

    io.open = builtins.open = slow_open
    os.fsync = slow_fsync
    path, version = Path(sys.argv[1]), int(sys.argv[2])
    session = Session(create_host(entry_points=False))
    while True:
        session.turns = [Turn(model="m", checkpoint="c", input=f"v{version} #{i}", output=OUTPUT) for i in range(TURNS)]
        sessions.save(session, path, overwrite=True)
        print(version, flush=True)
        version += 1
    """
)
TURNS = 10
OUTPUT = "x" * 200_000


@pytest.mark.slow
def test_kill_9_during_a_session_save_leaves_the_old_or_the_new_file(tmp_path):
    """SIGKILL a process that keeps saving a 2 MB session, at random moments: the file always reads back whole.

    The saving process has a slow disk (64 KB per write, 0.1 s per fsync), so
    kills often land mid-write; a temporary file left behind proves one did,
    and the loop runs until that has happened twice.
    """
    path = tmp_path / "big.json"
    script = tmp_path / "saver.py"
    script.write_text(SAVER.replace("TURNS", str(TURNS)).replace("OUTPUT", f"'x' * {len(OUTPUT)}"))
    rng = random.Random(1234)
    version, kills_mid_write = 0, 0
    for _ in range(40):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(version)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout.readline().strip() == str(version)  # one whole save, then kill during later ones
            time.sleep(rng.uniform(0, 0.5))
        finally:
            child.kill()
        printed = child.communicate()[0].split()
        last_completed = int(printed[-1]) if printed else version
        saved = sessions.read(path)
        versions = {turn.input.split(" ")[0] for turn in saved.turns}
        assert len(saved.turns) == TURNS and len(versions) == 1
        found = int(versions.pop().removeprefix("v"))
        assert found in (last_completed, last_completed + 1)
        assert all(turn.output == OUTPUT for turn in saved.turns)
        assert mode(path) == 0o600
        temporaries = list(tmp_path.glob(".big.json.*.tmp"))
        if temporaries:
            assert found == last_completed  # killed before the rename: the old file stands
            kills_mid_write += 1
            for temporary in temporaries:
                temporary.unlink()
        if kills_mid_write == 2:
            break
        version = found + 1
    assert kills_mid_write == 2
