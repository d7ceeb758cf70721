"""modelrepl: a terminal REPL for Hugging Face transformers models, driven by plugins.

Plugin authors need only ``hookimpl`` from here and the records in ``repl.api``.
"""

from repl.hookspecs import hookimpl

__all__ = ["hookimpl"]
