"""The engine: records, the plugin host, the session, settings and one model turn.

Nothing here imports prompt_toolkit, torch or transformers (import-linter checks it).
"""
