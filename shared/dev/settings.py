"""Settings of the local environment, overridable from AMITY_DEV_* variables.

Tests and benchmarks run on their own base port and home so that they never
touch a developer's running `make demo` environment.
"""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.3.1"


class DevSettings(BaseSettings):
    """Where the local regions live and how they are sized."""

    model_config = SettingsConfigDict(env_prefix="AMITY_DEV_")

    home: Path = Field(default=REPO_ROOT / ".amity" / "dev", description="State, data and logs of the regions.")
    base_port: int = Field(default=29090, ge=1024, le=65000, description="First port of the port layout.")
    jar_dir: Path = Field(default=REPO_ROOT / ".cache" / f"kafka-{KAFKA_VERSION}")
    pom: Path = Field(default=REPO_ROOT / "deploy" / "local" / "pom.xml")
    kafka_heap_mb: int = Field(default=768, ge=256, description="Broker heap; three regions fit in 2 cores / 24 GiB.")
    start_timeout_s: float = Field(default=90.0, gt=0)
    state_module: bool = Field(default=True, description="Load the amitystate module (built with the machine's C "
                                                         "compiler) into every region's Redis; false: Lua scripts")
    module_path: Path = Field(default=REPO_ROOT / ".cache" / "native" / "amity_state.so")

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    @property
    def regions_file(self) -> Path:
        return self.home / "regions.json"

    def region_dir(self, region: str) -> Path:
        return self.home / region
