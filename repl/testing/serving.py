"""A real OpenAI-compatible server for tests and benchmarks: `transformers serve` on a local checkpoint."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Loading a checkpoint and starting the server takes seconds; a busy 2-core machine may need minutes.
START_SECONDS = 180


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def transformers_serve(checkpoint: Path, logs: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`transformers serve` on `checkpoint` at 127.0.0.1, offline: (its /v1 base URL, the process).

    Its output goes to `logs/serve.log`; RuntimeError (with the log's end) if it exits or does not answer
    in time. The server is stopped on the way out.
    """
    port = free_port()
    log_path = logs / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "transformers.cli.transformers", "serve", str(checkpoint)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
