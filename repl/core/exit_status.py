"""The exit statuses of the `modelrepl` command and its batch tools."""

EXIT_OK = 0
EXIT_FAILED = 1  # some line or prompt failed
EXIT_USAGE = 2  # bad flags, config or files: nothing was run
EXIT_INTERRUPTED = 130
