"""The fixed port layout of the local regions.

Each known region has a slot; its ports are base + 10 * slot + offset, so the
default layout reads like Kafka's own ports: us on 29092, eu on 29102, ap on
29112. docs/dev.md lists the table.
"""

from dataclasses import dataclass

from amity.errors import DevEnvironmentError

KNOWN_REGIONS: tuple[str, ...] = ("us", "eu", "ap", "sa", "af", "me")
KAFKA_OFFSET = 2
CONTROLLER_OFFSET = 3
REDIS_OFFSET = 9


@dataclass(frozen=True)
class RegionPorts:
    """The three loopback ports one local region listens on."""

    region: str
    kafka: int
    controller: int
    redis: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis}/0"


def region_ports(region: str, base_port: int) -> RegionPorts:
    """Ports of `region` in the layout that starts at `base_port`."""
    check_known(region)
    first = base_port + 10 * KNOWN_REGIONS.index(region)
    return RegionPorts(region, first + KAFKA_OFFSET, first + CONTROLLER_OFFSET, first + REDIS_OFFSET)


def check_known(region: str) -> None:
    """Refuse a region name that has no slot in the layout."""
    if region not in KNOWN_REGIONS:
        known = ", ".join(KNOWN_REGIONS)
        raise DevEnvironmentError(f"unknown region {region!r}: local regions are {known}")


def parse_regions(text: str) -> list[str]:
    """Split a `us,eu,ap` list, refusing unknown names, duplicates and an empty list."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise DevEnvironmentError("no region named: pass --regions us,eu[,ap...]")
    if len(set(names)) != len(names):
        raise DevEnvironmentError(f"region named twice in {text!r}")
    for name in names:
        check_known(name)
    return names
