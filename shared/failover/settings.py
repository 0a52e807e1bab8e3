"""Failover and checkpointer settings, overridable from AMITY_FAILOVER_* variables."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FailoverSettings(BaseSettings):
    """Index density, translation bounds and timeouts."""

    model_config = SettingsConfigDict(env_prefix="AMITY_FAILOVER_")

    snapshot_every: int = Field(default=1000, ge=1, description="Records between index snapshots (K): a "
                                "translation reads at most about K records per partition")
    count_limit: int = Field(default=1_000_000, ge=1, description="Most records read per partition to count "
                             "re-deliveries; beyond it the count is a lower bound")
    timeout_s: float = Field(default=10.0, gt=0, description="Longest wait for one Kafka or Redis answer")
    probe_timeout_s: float = Field(default=5.0, gt=0, description="How long the source region gets to answer "
                                   "before the latest checkpoint is used instead")
    checkpoint_interval_s: float = Field(default=5.0, gt=0, description="How often groups are checkpointed")
    discovery_interval_s: float = Field(default=5.0, gt=0, description="How often the tailer looks for new topics")
    trim_interval_s: float = Field(default=60.0, gt=0, description="How often snapshots below the log start are dropped")
