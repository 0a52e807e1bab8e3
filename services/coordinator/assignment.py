"""Which live worker runs which link: deterministic, balanced, and sticky.

Loads differ by at most one. A link stays with the worker that ran it while
that worker is live and within its share, so a worker leaving moves only its
own links and a worker joining takes only its share. Links that must move go
to the free worker ranking highest for them by a hash of (link, worker),
rendezvous style: the same inputs give the same answer on any coordinator.
"""

import hashlib
from collections.abc import Iterable, Mapping

Assignment = dict[str, tuple[str, ...]]


def spread(links: Iterable[str], workers: Iterable[str], previous: Mapping[str, str] | None = None) -> Assignment:
    """Worker id -> the link ids it runs (sorted). `previous` maps link id -> worker that ran it."""
    workers = sorted(set(workers))
    links = sorted(set(links))
    if not workers:
        return {}
    previous = previous or {}
    held = {w: sorted((link for link in links if previous.get(link) == w), key=lambda link: _score(link, w),
                      reverse=True)
            for w in workers}
    quota = _quotas(len(links), held)
    load = {w: held[w][:quota[w]] for w in workers}
    placed = {link for kept in load.values() for link in kept}
    for link in links:
        if link not in placed:
            free = (w for w in workers if len(load[w]) < quota[w])
            load[max(free, key=lambda w: _score(link, w))].append(link)
    return {w: tuple(sorted(kept)) for w, kept in load.items()}


def owners(assignment: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Link id -> the worker that runs it."""
    return {link: worker for worker, links in assignment.items() for link in links}


def _quotas(n_links: int, held: Mapping[str, list[str]]) -> dict[str, int]:
    """Each worker's share; the one-larger shares go to the workers already holding most."""
    base, extra = divmod(n_links, len(held))
    by_claim = sorted(held, key=lambda w: (-len(held[w]), w))
    return {w: base + (rank < extra) for rank, w in enumerate(by_claim)}


def _score(link: str, worker: str) -> int:
    digest = hashlib.blake2b(f"{link}\0{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
