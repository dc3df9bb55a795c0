"""Error types whose messages are shown to users as they are (no traceback needed to act on them), and the
did-you-mean suggestion those messages carry."""

import difflib


class FinebenchError(Exception):
    """A problem the user can fix; the message names the culprit (config key, file, package)."""


class ConfigError(FinebenchError):
    """Invalid configuration; the message starts with the offending key path."""


def did_you_mean(name: str, choices) -> str:
    """`` (did you mean 'a', 'b'?)`` for the closest of ``choices`` to a misspelt ``name``; empty when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
