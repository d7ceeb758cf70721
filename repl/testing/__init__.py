"""modelrepl's test kit for plugin authors.

- ``repl.testing.fixtures``: pytest fixtures (``pytest_plugins = ["repl.testing.fixtures"]``).
- ``build_checkpoint(family, directory)``: tiny real checkpoints, built offline.
- ``make_host``, ``make_repl``, ``ReplDriver``: REPLs holding only chosen plugins,
  and a driver that types into the real input loop and returns structured results.
"""

from repl.testing.checkpoints import FAMILIES, build_checkpoint
from repl.testing.driver import DriveResult, ReplDriver, make_host, make_repl, run_lines

__all__ = ["FAMILIES", "DriveResult", "ReplDriver", "build_checkpoint", "make_host", "make_repl", "run_lines"]
