"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class EquiscaleError(Exception):
    """A problem with the user's input or environment (not a bug): shown as one line, exit 2."""


class ConfigError(EquiscaleError, ValueError):
    """An invalid setting (a shape, a budget, a TOML field); the message names the parameter."""
