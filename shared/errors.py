"""One exception root for Amity, so callers can catch everything Amity raises.

Messages are written for the person running Amity: they say what went wrong
and, where there is one, what to do about it.
"""


class AmityError(Exception):
    """Root of every error Amity raises on purpose."""


class ConfigError(AmityError):
    """A setting, config file or request names something invalid."""


class DevEnvironmentError(AmityError):
    """The local multi-region environment cannot be started, stopped or read."""
