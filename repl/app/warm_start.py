"""Warm start: load the active model in the background while the user types the first line.

A fresh process spends seconds importing torch and transformers and loading
the checkpoint. Interactive sessions start that work in a thread as soon as
the prompt is drawn, so the first reply comes about as fast as the second.

- Only a checkpoint already on this machine is preloaded: a local directory
  or file, or a hub id whose config (or a `REPO#FILE` whose file) is in the
  Hugging Face cache; the load itself runs
  with ``local_files_only``, so nothing is ever downloaded in the background.
- The load goes through `Session.model`, whose per-model lock makes a line
  sent meanwhile wait for this load instead of starting a second one; that
  wait is timed in short steps, so Ctrl-C cancels it and not the REPL.
- Any other line waits for it too (`Repl.warm_start`), except the few commands
  that need neither torch nor transformers: transformers' lazy imports break
  when two threads import it at once.
- Nothing is shown unless the load fails. A hub checkpoint the cache holds only
  in part fails here quietly: the line's own load then fetches what is missing
  and shows any error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from repl.core.plugin_host import PluginError, describe_exception
from repl.core.records import ModelError
from repl.core.session import Session

log = logging.getLogger(__name__)


class Preloader:
    """Loads one model of a session in a background thread, once."""

    def __init__(self, session: Session, name: str, report: Callable[[str], None]):
        self.session = session
        self.name = name
        self.report = report
        self.done = threading.Event()
        self.then: Callable[[], None] | None = None  # called from the thread once the load has ended
        self._thread = threading.Thread(target=self._load, name=f"modelrepl-preload-{name}", daemon=True)

    @classmethod
    def for_active(cls, session: Session, report: Callable[[str], None]) -> Preloader | None:
        """A preloader for the active model, or None when there is none or it is loaded already."""
        if session.active is None or session.active in session.loaded:
            return None
        return cls(session, session.active, report)

    def start(self) -> None:
        if not self._thread.is_alive() and not self.done.is_set():
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end (True), in short steps so that Ctrl-C lands in the main thread."""
        waited = 0.0
        while not self.done.wait(0.1):
            waited += 0.1
            if timeout is not None and waited >= timeout:
                return False
        return True

    def _load(self) -> None:
        checkpoint = self.session.checkpoint_of(self.name)
        try:
            if not is_on_this_machine(checkpoint):
                return
            from repl.hf.loading import quiet_loading  # also for plugins that call from_pretrained themselves

            with quiet_loading():
                self.session.model(self.name, local_files_only=True)
        except (ModelError, PluginError) as exc:
            log.debug("preloading %s failed", self.name, exc_info=True)
            if _is_local(checkpoint):
                self.report(f"preloading {self.name} failed: {exc}")
        except Exception as exc:  # the REPL must keep going whatever a plugin's load raises in this thread
            log.debug("preloading %s failed", self.name, exc_info=True)
            self.report(f"preloading {self.name} failed: {describe_exception(exc)}")
        finally:
            self.done.set()
            if self.then is not None:
                self.then()


def _is_local(checkpoint: str) -> bool:
    return os.path.isdir(os.path.expanduser(checkpoint))


def is_on_this_machine(checkpoint: str) -> bool:
    """A local directory or file, or a hub id whose config.json the Hugging Face cache holds.

    A file of a hub repository written `REPO#FILE` (a GGUF file) is on this
    machine when the cache holds that file.
    """
    path = os.path.expanduser(checkpoint)
    if os.path.isdir(path) or os.path.isfile(path):
        return True
    repository, marked, filename = checkpoint.partition("#")
    if checkpoint.startswith((".", "/", "~")) or repository.count("/") > 1 or (marked and not filename):
        return False
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repository, filename or "config.json"), str)
    except ValueError:  # not a valid repository id
        return False
