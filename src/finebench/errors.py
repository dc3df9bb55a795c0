"""Error types whose messages are shown to users as they are (no traceback needed to act on them)."""


class FinebenchError(Exception):
    """A problem the user can fix; the message names the culprit (config key, file, package)."""


class ConfigError(FinebenchError):
    """Invalid configuration; the message starts with the offending key path."""
