"""Failover API: a move names two regions and becomes the operation's request; refusals get their HTTP status."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from amity.coordinator.routes.failover import MoveRefused
from amity.coordinator.schemas.failover import GroupMove
from amity.failover import (
    DestinationBehind, Direction, FailoverRefused, GroupActive, NoLink, RegionUnreachable, TranslationStateMissing,
    UnknownGroup,
)
from amity.regions import REGION_NAME

MOVE = {"group": "billing", "topic": "orders", "source": "us", "destination": "eu"}

region_pairs = st.lists(st.from_regex(REGION_NAME, fullmatch=True), min_size=2, max_size=2, unique=True)
moves = st.builds(
    lambda ends, **fields: GroupMove(source=ends[0], destination=ends[1], **fields),
    region_pairs,
    group=st.from_regex(r"[ -~]{1,255}", fullmatch=True),
    topic=st.from_regex(r"[a-zA-Z0-9._-]{1,249}", fullmatch=True),
    dry_run=st.booleans(), allow_behind=st.booleans(), scan=st.booleans(),
)


def test_defaults_commit_with_an_index_and_the_destination_caught_up() -> None:
    move = GroupMove(**MOVE)
    assert (move.dry_run, move.allow_behind, move.scan) == (False, False, False)


def test_the_same_region_at_both_ends_is_refused() -> None:
    with pytest.raises(ValidationError, match="source and destination are both 'us'"):
        GroupMove(**{**MOVE, "destination": "us"})


@pytest.mark.parametrize(("field", "value"), [
    ("group", ""), ("group", "tab\there"), ("group", "x" * 256), ("group", "caf\u00e9"),
    ("topic", ""), ("topic", "orders/eu"), ("topic", "t" * 250),
    ("source", "US"), ("destination", "-eu"),
])
def test_invalid_fields_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        GroupMove(**{**MOVE, field: value})


@pytest.mark.parametrize("field", ["check_links", "remote_topic", "direction"])
def test_direct_mode_fields_are_unknown_here(field: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GroupMove(**{**MOVE, field: False})


@given(moves, st.sampled_from(Direction))
def test_the_request_carries_every_field_and_checks_links(move: GroupMove, direction: Direction) -> None:
    request = move.request(direction)
    assert request.model_dump(include=set(GroupMove.model_fields)) == move.model_dump()
    assert (request.direction, request.check_links, request.remote_topic) == (direction, True, None)


@given(st.text(min_size=1), st.text(min_size=1))
def test_only_two_regions_pass(a: str, b: str) -> None:
    valid = bool(REGION_NAME.fullmatch(a) and REGION_NAME.fullmatch(b)) and a != b
    try:
        GroupMove(**{**MOVE, "source": a, "destination": b})
    except ValidationError:
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize(("refusal", "status"), [
    (GroupActive, 409), (UnknownGroup, 404), (NoLink, 409), (TranslationStateMissing, 409),
    (DestinationBehind, 409), (RegionUnreachable, 503), (FailoverRefused, 409),
])
def test_each_refusal_answers_with_its_status(refusal: type[FailoverRefused], status: int) -> None:
    assert MoveRefused(refusal("why")).status == status


def test_refusals_name_body_fields_instead_of_flags() -> None:
    behind = MoveRefused(DestinationBehind("eu lacks records: wait for the mirror, or allow it (--allow-behind)"))
    assert str(behind) == 'eu lacks records: wait for the mirror, or allow it ("allow_behind": true)'
    no_index = MoveRefused(TranslationStateMissing("no offset index: or pass --scan to read the topics"))
    assert str(no_index) == 'no offset index: or pass "scan": true to read the topics'
