"""The coordinator's settings, read from AMITY_* environment variables by entry points only."""

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amity.errors import ConfigError

MIN_TOKEN_LENGTH = 16


class CoordinatorSettings(BaseSettings):
    """Defaults run on a laptop against `amity dev up`; production refuses to start without a token."""

    model_config = SettingsConfigDict(env_prefix="AMITY_", extra="ignore")

    environment: Literal["local", "production"] = "local"
    host: str = Field(default="127.0.0.1", description="Address uvicorn binds to")
    port: int = Field(default=8080, ge=1, le=65535)
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="The coordinator's own state")
    namespace: str = Field(default="amity:v1:", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                           description="Prefix of every Redis key; the version part changes with the key layout")
    api_token: SecretStr | None = Field(default=None, description="Bearer token for mutating endpoints")
    api_token_subject: str = Field(default="operator", description="Who the api_token stands for in rule history")
    api_tokens: dict[str, SecretStr] = Field(default_factory=dict, description="More tokens: subject -> token")
    read_requires_token: bool = Field(default=False, description="Close read endpoints to callers without a token")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts regions may name for Kafka and Redis (the coordinator connects there); empty allows any",
    )
    probe_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Reachability checks give up after this")
    health_interval_s: float = Field(default=10.0, gt=0, description="How often every region's health is checked")
    heartbeat_interval_s: float = Field(default=2.0, gt=0, description="How often workers are asked to heartbeat")
    worker_timeout_s: float = Field(default=10.0, gt=0, description="A worker silent this long loses its links")
    worker_forget_s: float = Field(default=600.0, gt=0, description="A worker silent this long is unregistered")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger request bodies get 413")
    history_limit: int = Field(default=1000, ge=1, description="Rule changes kept in the history")

    @model_validator(mode="after")
    def _safe_outside_a_laptop(self) -> "CoordinatorSettings":
        if self.environment == "production":
            tokens = [self.api_token, *self.api_tokens.values()]
            if self.api_token is None or any(t and len(t.get_secret_value()) < MIN_TOKEN_LENGTH for t in tokens):
                raise ConfigError(f"AMITY_API_TOKEN must be set to at least {MIN_TOKEN_LENGTH} characters "
                                  "when AMITY_ENVIRONMENT=production")
        if self.worker_timeout_s <= self.heartbeat_interval_s:
            raise ConfigError("AMITY_WORKER_TIMEOUT_S must be longer than AMITY_HEARTBEAT_INTERVAL_S, "
                              "or live workers would lose their links between two heartbeats")
        return self

    def tokens(self) -> dict[str, SecretStr]:
        """Every accepted token by subject; empty means authentication is off (local use)."""
        named = dict(self.api_tokens)
        if self.api_token is not None:
            named[self.api_token_subject] = self.api_token
        return named
