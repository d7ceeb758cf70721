"""Tiny but real Hugging Face checkpoints, built offline for tests, one module per kind of checkpoint.

- ``families``: the built-in families' checkpoints (``build_checkpoint``) and
  another head on one of them (``replace_model``);
- ``teaching``: overfitting one on exact answers (``teach_checkpoint``);
- ``chat``: instruct checkpoints with a chat template (``build_chat_checkpoint``), reasoning
  models' among them, whose templates ``templates`` holds as their checkpoints ship them;
- ``architectures``: one per architecture the built-in models take (``build_architecture``);
- ``vocabularies`` and ``weights``: what they share, the tokenizers and the writing of weights.

Heavy libraries (torch, transformers, tokenizers, sentencepiece) are imported
inside the functions: this package is imported by a pytest plugin, and test
collection must stay fast.
"""

from repl.testing.checkpoints.architectures import ARCHITECTURES, build_architecture
from repl.testing.checkpoints.chat import CHAT_STYLES, build_chat_checkpoint
from repl.testing.checkpoints.families import FAMILIES, build_checkpoint, replace_model
from repl.testing.checkpoints.teaching import ChatPrompt, teach_checkpoint

__all__ = [
    "ARCHITECTURES",
    "CHAT_STYLES",
    "FAMILIES",
    "ChatPrompt",
    "build_architecture",
    "build_chat_checkpoint",
    "build_checkpoint",
    "replace_model",
    "teach_checkpoint",
]
