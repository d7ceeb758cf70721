"""`modelrepl compare` and `modelrepl score`: every line of a file through the same evaluator as the REPL."""
