"""A region: one Kafka cluster plus the Redis that holds its version state."""

import re
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

RegionName = Annotated[str, Field(pattern=REGION_NAME.pattern, description="Lower-case region id, e.g. us or eu-west")]

# For every consumer that does Python work per record. librdkafka fetches a partition whose queue went over its
# thresholds again only after fetch.queue.backoff.ms, 1 s by default, and such a consumer empties the queue sooner
# and then waits: a mirror link waited for records half its time (docs/benchmarks.md, "Where the time goes").
READER_CONFIG = {"fetch.queue.backoff.ms": 10}


class KafkaSecurity(BaseModel):
    """Client security settings passed to librdkafka as they are named there."""

    model_config = ConfigDict(extra="forbid")

    security_protocol: str = Field(default="PLAINTEXT", pattern=r"^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    sasl_mechanism: str | None = Field(default=None, pattern=r"^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER)$")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None

    def librdkafka(self) -> dict[str, str]:
        """The same settings under librdkafka's dotted keys, secrets revealed for the client only."""
        conf = {"security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf


class Region(BaseModel):
    """Where a region's Kafka and Redis are reached."""

    model_config = ConfigDict(extra="forbid")

    name: RegionName
    bootstrap: str = Field(min_length=1, description="Kafka bootstrap servers, host:port[,host:port]")
    redis: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL for the region's version state")
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_hosts(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"bootstrap server {server!r} is not host:port")
        return value

    @field_validator("redis")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis URL must start with redis://, rediss:// or unix://, not "
                             f"{value.partition(':')[0]!r}")
        try:
            # Builds the client's connection object as every user of the URL will, without connecting: a URL
            # redis-py cannot parse, or one with options it does not know, fails here and not in every caller.
            redis.ConnectionPool.from_url(value).make_connection()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"redis URL is not one a Redis client can use: {exc}") from None
        return value

    def kafka_config(self) -> dict[str, str]:
        """librdkafka settings common to every client of this region."""
        return {"bootstrap.servers": self.bootstrap, **self.security.librdkafka()}


def mask_url_password(url: str) -> str:
    """The URL with its password (if any) replaced by ***, for showing it."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
