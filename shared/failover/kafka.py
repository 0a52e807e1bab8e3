"""Kafka client settings shared by every failover client."""

from amity.regions import Region

# librdkafka logs each failed reconnect at error level, every few hundred ms. A failover runs precisely while a
# region is down, and reports that itself (RegionUnreachable, warnings), so the client's own log stays silent.
QUIET = {"log_level": 0}


def client_config(region: Region, timeout_s: float) -> dict[str, str | int]:
    """The region's connection settings, quiet, failing a connection attempt after `timeout_s`."""
    return {**region.kafka_config(), **QUIET, "socket.connection.setup.timeout.ms": int(timeout_s * 1000)}
