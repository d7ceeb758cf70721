"""The REPL as an evaluator: a line in, a result out; the command registry and the built-in commands.

Nothing here draws or reads a terminal: a front end (`repl.terminal`, `repl.batch`) does.
"""
