"""Settings of a mirror worker: env-overridable (AMITY_MIRROR_*), defaults that run locally."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from amity.state import Engine


class MirrorSettings(BaseSettings):
    """How a worker batches, discovers topics and reports."""

    model_config = SettingsConfigDict(env_prefix="AMITY_MIRROR_")

    worker_id: str = Field(default="", description="Stable id of this worker; a random one when empty")
    batch_size: int = Field(default=5000, ge=1, description="Records consumed per loop iteration")
    transaction_batch_size: int = Field(
        default=100_000, ge=1,
        description="Most records consumed per loop iteration on an exactly-once link, where a batch is one "
                    "transaction per source partition: every commit waits on the transaction coordinator, so "
                    "fewer, larger transactions drain a backlog faster. A batch takes what is fetched already, "
                    "so under steady load it stays small and this bounds only a backlog's batches")
    poll_timeout_s: float = Field(default=0.2, gt=0)
    discovery_interval_s: float = Field(default=5.0, gt=0, description="How often new topics and partitions are found")
    max_hops: int = Field(default=8, ge=1, le=15, description="Links a record may cross in all; beyond, it is dropped")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus /metrics port; 0 disables it")
    metrics_host: str = Field(default="127.0.0.1", description="Address /metrics binds to; 0.0.0.0 in a pod")
    stats_file: Path | None = Field(default=None, description="Where the JSON stats are written, if anywhere")
    stats_interval_s: float = Field(default=2.0, gt=0)
    linger_ms: int = Field(default=20, ge=0, description="Producer linger: larger batches, higher throughput")
    compression: str = Field(default="lz4", pattern=r"^(none|gzip|snappy|lz4|zstd)$")
    retry_backoff_max_s: float = Field(default=30.0, gt=0, description="Longest wait between retries to a cluster")
    redis_timeout_s: float = Field(
        default=30.0, gt=0,
        description="Longest wait for a region's Redis to answer one command (a batch's script takes well under "
                    "a second); past it the link reports the Redis unreachable and retries, instead of hanging")
    transaction_timeout_ms: int = Field(default=60_000, ge=1000)
    gc_threshold: int = Field(
        default=500_000, ge=700,
        description="Objects allocated and not yet freed between the interpreter's cyclic garbage collections "
                    "(Python's default: 700). At 50,000 a resolved topic's batches, which keep more objects alive "
                    "until written, set off a collection every few batches: half a microsecond of CPU per record "
                    "(docs/benchmarks.md); at Python's default, a quarter of a worker's CPU")
    state_namespace: str = Field(default="amity", pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                 description="Key prefix of the version state in every region's Redis")
    state_engine: Engine = Field(default=Engine.AUTO,
                                 description="What runs the version state's operations in each region's Redis: "
                                             "auto (the amitystate module where loaded, else Lua), lua or module")
