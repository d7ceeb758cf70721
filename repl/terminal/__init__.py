"""Everything that knows a terminal: reading lines, completion, keys, the toolbar, the spinner and drawing output."""
