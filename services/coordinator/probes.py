"""Whether a region's Kafka and Redis answer, and which topics its Kafka has.

confluent-kafka blocks, so its calls run in a worker thread; every check has a
timeout so that a dead region costs seconds, never a hung request.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from amity.coordinator.errors import InvalidRequestError, UnreachableError
from amity.coordinator.schemas.regions import DependencyStatus, RegionHealth, Status
from amity.regions import Region, mask_url_password

librdkafka_log = logging.getLogger("amity.coordinator.librdkafka")


async def region_health(region: Region, timeout_s: float) -> RegionHealth:
    """Both dependencies of a region, checked at once."""
    kafka, redis = await asyncio.gather(kafka_status(region, timeout_s), redis_status(region.redis, timeout_s))
    status = Status.UP if kafka.ok and redis.ok else Status.DOWN
    return RegionHealth(status=status, kafka=kafka, redis=redis, checked_at=datetime.now(UTC))


async def require_reachable(region: Region, timeout_s: float) -> RegionHealth:
    """The region's health; raises UnreachableError, saying what to do, unless both Kafka and Redis answer."""
    health = await region_health(region, timeout_s)
    failures = [status.error for status in (health.kafka, health.redis) if status is not None and not status.ok]
    if failures:
        raise UnreachableError(f"region {region.name!r} is not reachable ({'; '.join(failures)}); check the addresses, "
                          "that the servers run and the security settings, or pass check=false to register it anyway")
    return health


async def kafka_status(region: Region, timeout_s: float) -> DependencyStatus:
    started = time.monotonic()
    try:
        brokers = await asyncio.to_thread(_broker_count, region, timeout_s)
    except (KafkaException, ValueError) as exc:
        return DependencyStatus(ok=False, error=f"Kafka at {region.bootstrap} did not answer within {timeout_s:g}s "
                                               f"({_kafka_reason(exc)})")
    if brokers == 0:
        return DependencyStatus(ok=False, error=f"Kafka at {region.bootstrap} reported no brokers")
    return DependencyStatus(ok=True, latency_ms=_ms_since(started))


async def redis_status(url: str, timeout_s: float) -> DependencyStatus:
    started = time.monotonic()
    try:
        await asyncio.wait_for(_ping(url, timeout_s), timeout_s + 1)
    except (aioredis.RedisError, OSError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        return DependencyStatus(ok=False, error=f"Redis at {mask_url_password(url)} did not answer within "
                                               f"{timeout_s:g}s ({reason})")
    return DependencyStatus(ok=True, latency_ms=_ms_since(started))


async def _ping(url: str, timeout_s: float) -> None:
    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def list_topics(region: Region, timeout_s: float) -> list[str]:
    """Every topic of the region's Kafka."""
    try:
        return await asyncio.to_thread(_topic_names, region, timeout_s)
    except (KafkaException, ValueError) as exc:
        raise UnreachableError(f"cannot list the topics of region {region.name!r}: Kafka at {region.bootstrap} did not "
                          f"answer within {timeout_s:g}s ({_kafka_reason(exc)})") from None


def require_allowed_hosts(region: Region, allowed: list[str]) -> None:
    """Refuse regions naming hosts outside `allowed` (empty: any), since the coordinator connects to them."""
    if not allowed:
        return
    hosts = [server.strip().rpartition(":")[0].strip("[]") for server in region.bootstrap.split(",")]
    try:
        redis_host = urlsplit(region.redis).hostname
    except ValueError as exc:
        raise InvalidRequestError(f"region {region.name!r}: redis URL cannot be read ({exc})") from None
    refused = sorted({h for h in [*hosts, redis_host] if h and h not in allowed})
    if refused:
        raise InvalidRequestError(f"region {region.name!r} names hosts {refused} that are not in the coordinator's "
                      f"allowed hosts {allowed} (setting AMITY_ALLOWED_HOSTS)")


def _admin(region: Region, timeout_s: float) -> AdminClient:
    timeout_ms = str(int(timeout_s * 1000))
    return AdminClient({**region.kafka_config(), "socket.timeout.ms": timeout_ms,
                        "socket.connection.setup.timeout.ms": timeout_ms, "logger": librdkafka_log})


def _broker_count(region: Region, timeout_s: float) -> int:
    return len(_admin(region, timeout_s).list_topics(timeout=timeout_s).brokers)


def _topic_names(region: Region, timeout_s: float) -> list[str]:
    return sorted(_admin(region, timeout_s).list_topics(timeout=timeout_s).topics)


def _kafka_reason(exc: Exception) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if hasattr(error, "str") else str(exc)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
