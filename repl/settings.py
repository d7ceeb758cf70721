"""An import path of the first plugin docs, kept so that plugins written against them still work: use `repl.api`."""

from repl.core.settings import GENERATION_KEYS, GENERATION_SETTINGS, REPL_SETTINGS
from repl.hf.validation import validate_generation

__all__ = ["GENERATION_KEYS", "GENERATION_SETTINGS", "REPL_SETTINGS", "validate_generation"]
