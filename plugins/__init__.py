"""modelrepl's built-in model plugins, registered through the `modelrepl` entry points."""
