"""Which links carry which origin's records, so every region gets each record exactly once.

Checking the provenance path alone stops loops but not duplicates: in a mesh
of A, B and C, A's record reaches C over A->C and again over A->B->C. So each
origin's records travel along one spanning tree of the link graph: the
shortest-path tree rooted at the origin. Where two regions at the same depth
link to a region, its parent is the one whose name sorts first, so every
worker that knows the same links computes the same trees, with no
coordination per record. docs/headers.md works through a mesh and a chain.
"""

from collections.abc import Iterable
from enum import StrEnum

from amity.errors import AmityError
from amity.headers import MAX_PATH
from amity.regions import REGION_NAME

Edge = tuple[str, str]


class TopologyError(AmityError):
    """The regions and links do not form a graph Amity can route over."""


class Verdict(StrEnum):
    """What a link does with one record: forward it, or why it drops it (a metric label)."""

    FORWARD = "forward"
    LOOP = "loop"  # the destination already holds the record
    MAX_HOPS = "max-hops"  # the record has crossed as many links as allowed
    OFF_ROUTE = "off-route"  # another link delivers this origin's records to the destination
    UNKNOWN_ORIGIN = "unknown-origin"  # the origin is not a region of this topology


class Topology:
    """An immutable set of regions and directed links, with each origin's routing tree computed once."""

    __slots__ = ("_regions", "_edges", "_successors", "_trees")

    def __init__(self, regions: Iterable[str], edges: Iterable[Edge]) -> None:
        names = tuple(regions)
        links = tuple((source, destination) for source, destination in edges)
        _check_regions(names)
        _check_edges(links, set(names))
        self._regions = frozenset(names)
        self._edges = frozenset(links)
        successors: dict[str, list[str]] = {name: [] for name in names}
        for source, destination in links:
            successors[source].append(destination)
        self._successors = {name: tuple(sorted(targets)) for name, targets in successors.items()}
        self._trees: dict[str, frozenset[Edge]] = {}

    @property
    def regions(self) -> frozenset[str]:
        return self._regions

    @property
    def edges(self) -> frozenset[Edge]:
        return self._edges

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return (self._regions, self._edges) == (other._regions, other._edges)

    def __hash__(self) -> int:
        return hash((self._regions, self._edges))

    def __repr__(self) -> str:
        links = ", ".join(f"{s}->{d}" for s, d in sorted(self._edges))
        return f"Topology(regions={sorted(self._regions)}, links=[{links}])"

    def route(self, origin: str, path: tuple[str, ...], source: str, destination: str, max_hops: int) -> Verdict:
        """Whether the link source->destination forwards a record that sits in `source` (path[-1]).

        `max_hops` is how many links a record may cross in all; it is capped
        at MAX_PATH - 1 so that a forwarded record's path always fits its header.
        """
        if destination in path:
            return Verdict.LOOP
        hops = len(path)
        if hops > max_hops or hops >= MAX_PATH:
            return Verdict.MAX_HOPS
        tree = self._trees.get(origin)
        if tree is None:
            if origin not in self._regions:
                return Verdict.UNKNOWN_ORIGIN
            tree = self.tree_edges(origin)
        return Verdict.FORWARD if (source, destination) in tree else Verdict.OFF_ROUTE

    def tree_edges(self, origin: str) -> frozenset[Edge]:
        """The links that carry `origin`'s records: its shortest-path tree."""
        tree = self._trees.get(origin)
        if tree is None:
            self._check_known(origin)
            tree = self._trees[origin] = self._shortest_path_tree(origin)
        return tree

    def reachable_from(self, origin: str) -> set[str]:
        """The regions other than `origin` that receive its records."""
        return {destination for _, destination in self.tree_edges(origin)}

    def unreachable(self) -> dict[str, set[str]]:
        """For each origin that cannot reach every other region, the regions it cannot reach."""
        missing = {origin: self._regions - self.reachable_from(origin) - {origin} for origin in sorted(self._regions)}
        return {origin: regions for origin, regions in missing.items() if regions}

    def _shortest_path_tree(self, origin: str) -> frozenset[Edge]:
        """Breadth-first, each new region taking as parent the first-named region of the previous level."""
        seen = {origin}
        level = [origin]
        tree: list[Edge] = []
        while level:
            parents: dict[str, str] = {}
            for parent in sorted(level):
                for child in self._successors[parent]:
                    if child not in seen and child not in parents:
                        parents[child] = parent
            tree.extend((parent, child) for child, parent in parents.items())
            seen.update(parents)
            level = list(parents)
        return frozenset(tree)

    def _check_known(self, region: str) -> None:
        if region not in self._regions:
            raise TopologyError(f"region {region!r} is not part of this topology; known: {', '.join(sorted(self._regions))}")


def _check_regions(names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(name, str) or not REGION_NAME.fullmatch(name):
            raise TopologyError(f"{name!r} is not a region name (lower-case letters, digits, '-' and '_', up to 32)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TopologyError(f"region {repeated[0]!r} is listed more than once")


def _check_edges(edges: tuple[Edge, ...], regions: set[str]) -> None:
    seen: set[Edge] = set()
    for edge in edges:
        source, destination = edge
        if source == destination:
            raise TopologyError(f"link {source}->{destination} replicates a region into itself; remove it")
        for end in (source, destination):
            if end not in regions:
                raise TopologyError(f"link {source}->{destination} names region {end!r}, which is not registered")
        if edge in seen:
            raise TopologyError(f"link {source}->{destination} is listed more than once")
        seen.add(edge)
