"""Conflicts go to their topic; where the destination refused to create it, to the dead-letter topic."""

from amity.mirror.topics import TopicRefused
from amity.resolver import Outcome, Verdict
from tests.unit.mirror.stubs import StubMessage


class _Sync:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse, self.created = refuse, []

    def ensure_internal(self, name: str, config: dict) -> None:
        if name in self.refuse:
            raise TopicRefused(f"link us-to-eu: eu refused to create topic {name!r}: INVALID_TOPIC_EXCEPTION")
        self.created.append(name)


def test_conflicts_whose_topic_was_refused_are_dead_lettered_and_the_rest_recorded(idle_runner) -> None:
    runner = idle_runner()
    runner._sync = _Sync(refuse={"long.conflicts"})
    outcome = Outcome(Verdict.CONFLICT_APPLIED)
    ok, refused = StubMessage(topic_="orders"), StubMessage(topic_="long")
    dead: list = []
    recordable = runner._recordable([(ok, [], outcome), (refused, [], outcome), (ok, [], outcome)], dead)
    assert [entry[0] for entry in recordable] == [ok, ok]
    assert [(msg, reason) for msg, reason, _detail in dead] == [(refused, "conflicts-topic-refused")]
    again: list = []
    runner._recordable([(refused, [], outcome)], again)
    assert runner._sync.created == ["orders.conflicts"]  # each topic asked for once per plan
    assert len(again) == 1
