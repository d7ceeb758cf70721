"""The user's files: where they live, the config, the transcript, session files, writing without tearing."""
