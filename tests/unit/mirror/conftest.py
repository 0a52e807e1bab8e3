"""Link runners for unit tests: built over regions nobody listens on, so they never connect."""

from collections.abc import Callable, Iterator

import pytest

from amity.links import Link
from amity.mirror.link import LinkRunner
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.regions import Region

US = Region(name="us", bootstrap="127.0.0.1:1", redis="redis://127.0.0.1:1/0")
EU = Region(name="eu", bootstrap="127.0.0.1:1", redis="redis://127.0.0.1:1/0")


@pytest.fixture
def idle_runner() -> Iterator[Callable[..., LinkRunner]]:
    """Builds a us -> eu LinkRunner that is never started; its thread pools are stopped after the test."""
    built: list[LinkRunner] = []

    def build(link: Link = Link(source="us", destination="eu"), settings: MirrorSettings | None = None) -> LinkRunner:
        runner = LinkRunner(link, US, EU, Router(link, [link], ["us", "eu"], 8), settings or MirrorSettings(),
                            LinkStats(link.name))
        built.append(runner)
        return runner

    yield build
    for runner in built:
        runner._committer.shutdown()
        runner._lander.shutdown()
