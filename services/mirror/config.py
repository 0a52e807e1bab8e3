"""The standalone worker's config file: regions, links and conflict rules in one YAML document.

```yaml
regions:
  us: {bootstrap: 127.0.0.1:29092, redis: redis://127.0.0.1:29099/0}
  eu: {bootstrap: 127.0.0.1:29102, redis: redis://127.0.0.1:29109/0}
links:
  - {source: us, destination: eu}
  - {source: eu, destination: us}
```

The worker learns the whole topology (for routing) from `links`; `run` selects
which of them this worker replicates (all by default).
"""

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amity.errors import ConfigError
from amity.links import Link
from amity.regions import Region
from amity.rules import ConflictRule
from amity.topology import Topology, TopologyError


class MirrorConfig(BaseModel):
    """Regions, the full link set, and which links this worker runs."""

    model_config = ConfigDict(extra="forbid")

    regions: dict[str, Region]
    links: list[Link] = Field(min_length=1)
    run: list[str] | None = Field(default=None, description="Ids of the links this worker replicates; all when absent")
    rules: list[ConflictRule] = Field(default_factory=list, description="Conflict rules, first match wins")

    @model_validator(mode="before")
    @classmethod
    def _region_names_from_keys(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("regions"), dict):
            data = {**data, "regions": {
                name: {"name": name, **spec} if isinstance(spec, dict) else spec
                for name, spec in data["regions"].items()
            }}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "MirrorConfig":
        for link in self.links:
            for end in (link.source, link.destination):
                if end not in self.regions:
                    raise ValueError(f"link {link.name} names region {end!r}, which is not under regions:")
        ids = [link.name for link in self.links]
        if len(set(ids)) != len(ids):
            raise ValueError("the same source and destination appear in two links")
        try:
            Topology(self.regions, [(link.source, link.destination) for link in self.links])
        except TopologyError as exc:
            raise ValueError(str(exc)) from None
        unknown = set(self.run or ()) - set(ids)
        if unknown:
            raise ValueError(f"run: names unknown links {sorted(unknown)}; links are {ids}")
        return self

    def running_links(self) -> list[Link]:
        wanted = set(self.run) if self.run is not None else None
        return [link for link in self.links if wanted is None or link.name in wanted]


def load_config(path: Path) -> MirrorConfig:
    """Read and validate a config file; every problem is a ConfigError naming the file."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read mirror config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"mirror config {path} is not valid YAML: {exc}") from None
    try:
        return MirrorConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"mirror config {path} is invalid: {problems}") from None
