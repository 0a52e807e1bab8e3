"""Region API models: secrets in, never out; the worker's copy reveals them."""

import pytest
from pydantic import ValidationError

from amity.coordinator.schemas.regions import RegionConnection, RegionPublic, RegionUpdate, mask_url_password
from amity.coordinator.store.regions import decode, encode
from amity.regions import KafkaSecurity, Region

SECURE = Region(name="us", bootstrap="k:9092", redis="redis://user:pw@r:6379/0",
                security=KafkaSecurity(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
                                       sasl_password="hunter2"))


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://r:6379/0", "redis://r:6379/0"),
    ("redis://user:pw@r:6379/0", "redis://user:***@r:6379/0"),
    ("rediss://:p@ss@r/1", "rediss://:***@r/1"),
    ("redis://user@r/0", "redis://user@r/0"),
])
def test_mask_url_password(url: str, shown: str) -> None:
    assert mask_url_password(url) == shown


def test_public_view_has_no_secrets() -> None:
    shown = RegionPublic.of(SECURE).model_dump_json()
    assert "hunter2" not in shown and ":pw@" not in shown
    assert '"sasl_password_set":true' in shown


def test_worker_connection_reveals_the_password() -> None:
    revealed = RegionConnection.of(SECURE).model_dump_json()
    assert Region.model_validate_json(revealed).security.sasl_password.get_secret_value() == "hunter2"


def test_store_round_trip_keeps_the_password() -> None:
    assert decode(encode(SECURE)).kafka_config()["sasl.password"] == "hunter2"


def test_update_replaces_given_fields_and_validates_the_result() -> None:
    moved = RegionUpdate(bootstrap="k2:9092").apply(SECURE)
    assert (moved.bootstrap, moved.security.sasl_password.get_secret_value()) == ("k2:9092", "hunter2")
    with pytest.raises(ValueError, match="not host:port"):
        RegionUpdate(bootstrap="nohost").apply(SECURE)


@pytest.mark.parametrize(("url", "reason"), [
    ("redis://:secret@h]:6379/0", "Invalid IPv6 URL"),
    ("redis://:secret@h:6379/0?foo=1", "unexpected keyword argument 'foo'"),
    ("redis://:secret@h:99999/0", "Port out of range"),
    ("http://:secret@h:6379/0", "must start with redis://"),
])
def test_a_redis_url_no_client_can_use_is_refused_without_echoing_its_password(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Region(name="us", bootstrap="k:9092", redis=url)
    message = refused.value.errors()[0]["msg"]  # what the API's 422 says; pydantic's str() also repeats the input
    assert reason in message and "secret" not in message
