"""Where `amity bench` keeps its regions and results, overridable from AMITY_BENCH_* variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from amity.dev.settings import REPO_ROOT, DevSettings


class BenchSettings(BaseSettings):
    """The benchmark's own home and ports (21090..): never the tests' (24090) nor the demo's (29090)."""

    model_config = SettingsConfigDict(env_prefix="AMITY_BENCH_")

    home: Path = Field(default=REPO_ROOT / ".amity" / "bench", description="Regions, run logs and results JSON")
    base_port: int = Field(default=21090, ge=1024, le=65000)
    docs: Path = Field(default=REPO_ROOT / "docs" / "benchmarks.md", description="What --write-docs rewrites")

    def dev(self) -> DevSettings:
        return DevSettings(home=self.home, base_port=self.base_port)
