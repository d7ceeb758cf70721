"""modelrepl: a terminal REPL for Hugging Face transformers models, driven by plugins.

Plugin authors import everything from the one front door, ``repl.api``
(documented in docs/plugins.md); ``hookimpl`` stays importable from here too.
"""

from repl.hookspecs import hookimpl

__all__ = ["hookimpl"]
