"""One exception root for Amity, so callers can catch everything Amity raises.

Messages are written for the person running Amity: they say what went wrong
and, where there is one, what to do about it.
"""

from confluent_kafka import KafkaError, KafkaException


def one_line(exc: Exception) -> str:
    """What failed, in one line: a Kafka error's message and name, else the exception's own message or type."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(error, KafkaError):
        return f"{error.str()} ({error.name()})"
    return str(exc) or type(exc).__name__


class AmityError(Exception):
    """Root of every error Amity raises on purpose."""


class ConfigError(AmityError):
    """A setting, config file or request names something invalid."""


class DevEnvironmentError(AmityError):
    """The local multi-region environment cannot be started, stopped or read."""
