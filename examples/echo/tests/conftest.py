pytest_plugins = ["repl.testing.fixtures"]
