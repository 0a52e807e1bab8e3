"""Checks a link must pass against the regions and links the coordinator already holds.

Two links from the same source to the same destination must never replicate
the same source topic, nor write the same destination topic: the destination
would get records twice, and routing (amity.topology) needs at most one edge
per region pair and topic. Where it can, the check names such a topic;
otherwise it proves the links disjoint from their patterns' literal prefixes,
and refuses when it cannot, asking for patterns it can tell apart.
"""

from collections.abc import Collection, Iterable, Mapping

from amity.coordinator.patterns import Prefix, literal_prefix
from amity.links import Link, Naming


def unknown_regions(link: Link, regions: Collection[str]) -> list[str]:
    return sorted({link.source, link.destination} - set(regions))


def collision(a: Link, b: Link, source_topics: Iterable[str] = ()) -> str | None:
    """Why `a` and `b` may write the same destination topic, or None when they cannot."""
    if (a.source, a.destination) != (b.source, b.destination):
        return None
    witnesses = _witnesses(a, b, source_topics)
    both = sorted(topic for topic in witnesses if a.selects(topic) and b.selects(topic))
    if both:
        return f"both would replicate topic {both[0]!r} from region {a.source!r}"
    shared = _destinations(a, witnesses) & _destinations(b, witnesses)
    if shared:
        return f"both would write topic {min(shared)!r} in region {a.destination!r}"
    for pa in a.include:
        for pb in b.include:
            if not _patterns_disjoint(a, pa, b, pb):
                return (f"both may replicate topics matching {pa!r} and {pb!r}; give them include patterns with "
                        "different literal starts, or exclude one's pattern in the other")
    return None


def plan(link: Link, source_topics: Iterable[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(source topic, destination topic) for each topic the link selects, and the topics it skips."""
    selected, skipped = [], []
    for topic in sorted(set(source_topics)):
        if link.selects(topic):
            selected.append((topic, link.destination_topic(topic)))
        else:
            skipped.append(topic)
    return selected, skipped


def _witnesses(a: Link, b: Link, source_topics: Iterable[str]) -> set[str]:
    """Existing topics, plus every literal include and its counterpart under the other naming."""
    found = set(source_topics)
    prefix = f"{a.source}."
    for pattern in (*a.include, *b.include):
        parsed = literal_prefix(pattern)
        if parsed.exact:
            found |= {parsed.text, prefix + parsed.text}
            if parsed.text.startswith(prefix):
                found.add(parsed.text.removeprefix(prefix))
    return found


def _destinations(link: Link, topics: Iterable[str]) -> set[str]:
    return {link.destination_topic(topic) for topic in topics if link.selects(topic)}


def _patterns_disjoint(a: Link, pa: str, b: Link, pb: str) -> bool:
    """True when no topic matches both `pa` in `a` and `pb` in `b`, and none lands on the same destination topic."""
    prefix_a, prefix_b = literal_prefix(pa), literal_prefix(pb)
    if prefix_a.exact or prefix_b.exact:
        return True  # a single topic: the witnesses above already tried it
    sources_disjoint = prefix_a.disjoint(prefix_b) or _excludes_all(b, pa) or _excludes_all(a, pb)
    if a.naming is b.naming:
        return sources_disjoint
    return sources_disjoint and _in_destination(a, prefix_a).disjoint(_in_destination(b, prefix_b))


def _in_destination(link: Link, prefix: Prefix) -> Prefix:
    if link.naming is Naming.PREFIX:
        return Prefix(f"{link.source}.{prefix.text}", prefix.exact)
    return prefix


def _excludes_all(link: Link, pattern: str) -> bool:
    """True when every topic `pattern` matches is excluded by `link`."""
    starts = literal_prefix(pattern).text
    for exclude in link.exclude:
        if exclude == pattern:
            return True
        head = literal_prefix(exclude.removesuffix(".*"))
        if exclude.endswith(".*") and head.exact and starts.startswith(head.text):
            return True
    return False


def first_collision(candidate: Link, others: Mapping[str, Link], source_topics: Iterable[str] = ()) -> str | None:
    """The first existing link `candidate` collides with, as a message naming it."""
    topics = list(source_topics)
    for link_id, other in sorted(others.items()):
        reason = collision(candidate, other, topics)
        if reason:
            return f"link {link_id!r} covers the same topics from {other.source} to {other.destination}: {reason}"
    return None
