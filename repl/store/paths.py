"""Where modelrepl keeps the user's files (the platform's own directories)."""

from pathlib import Path

import platformdirs

APP_NAME = "modelrepl"


def config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def history_file() -> Path:
    return data_dir() / "history"


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def transcript_file() -> Path:
    return data_dir() / "transcript.jsonl"
