"""Where a topic a group reads in one region is found in another, according to the links.

A link X -> Y carries X's topic T into Y as `link.destination_topic(T)` (T
itself, or `X.T` with prefix naming). A group can move along the link (from T
in X to its copy in Y) and back (from the copy in Y to T in X): the copy holds
X's records with their provenance, and T holds them as local records, so the
same frontier translates both ways.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from amity.links import Link, Naming


@dataclass(frozen=True, slots=True)
class Route:
    """A topic in `source` and its counterpart in `destination`."""

    source: str
    source_topic: str
    destination: str
    destination_topic: str


def find_link(links: Iterable[Link], source: str, destination: str, topic: str) -> Link | None:
    """The link from `source` to `destination` that replicates `topic`, if any."""
    for link in links:
        if link.source == source and link.destination == destination and link.selects(topic):
            return link
    return None


def origin_topic(link: Link, copy: str) -> str | None:
    """The source topic whose copy in the link's destination is named `copy`; None if the link makes no such copy."""
    if link.naming is Naming.PREFIX:
        prefix = f"{link.source}."
        if not copy.startswith(prefix):
            return None
        copy = copy[len(prefix):]
    return copy if link.selects(copy) else None


def routes_from(region: str, topic: str, links: Iterable[Link]) -> list[Route]:
    """Every region a group reading `topic` in `region` could move to, with the topic's name there."""
    found: dict[tuple[str, str], Route] = {}
    for link in links:
        if link.source == region and link.selects(topic):
            route = Route(region, topic, link.destination, link.destination_topic(topic))
        elif link.destination == region and (source_topic := origin_topic(link, topic)) is not None:
            route = Route(region, topic, link.source, source_topic)
        else:
            continue
        found.setdefault((route.destination, route.destination_topic), route)
    return sorted(found.values(), key=lambda r: (r.destination, r.destination_topic))


def indexed(region: str, topic: str, links: Iterable[Link]) -> bool:
    """True when some route starts or ends at `topic` in `region`: the tailer must index it."""
    return bool(routes_from(region, topic, links))
