"""Bearer token checks."""

import pytest
from pydantic import SecretStr

from amity.coordinator.auth import ANONYMOUS, authenticate
from amity.coordinator.errors import UnauthorizedError
from amity.coordinator.settings import CoordinatorSettings
from amity.errors import ConfigError

TOKENS = {"alice": SecretStr("alice-token-123456"), "bob": SecretStr("bob-token-1234567")}


def test_no_tokens_configured_means_anonymous() -> None:
    assert authenticate(None, {}) == ANONYMOUS


def test_the_matching_token_names_its_subject() -> None:
    assert authenticate("bob-token-1234567", TOKENS) == "bob"


@pytest.mark.parametrize(("token", "message"), [(None, "Authorization: Bearer"), ("", "Authorization: Bearer"),
                                                ("alice-token-12345", "not one the coordinator accepts")])
def test_missing_or_wrong_tokens_are_refused(token: str | None, message: str) -> None:
    with pytest.raises(UnauthorizedError, match=message):
        authenticate(token, TOKENS)


def test_settings_name_the_single_token_after_its_subject() -> None:
    settings = CoordinatorSettings(api_token=SecretStr("t" * 20), api_tokens={"ci": SecretStr("c" * 20)})
    assert {subject: t.get_secret_value() for subject, t in settings.tokens().items()} == \
        {"operator": "t" * 20, "ci": "c" * 20}


def test_production_refuses_to_start_without_a_long_token() -> None:
    with pytest.raises(ConfigError, match="AMITY_API_TOKEN"):
        CoordinatorSettings(environment="production")
    with pytest.raises(ConfigError, match="at least 16"):
        CoordinatorSettings(environment="production", api_token=SecretStr("short"))


def test_worker_timeout_must_exceed_the_heartbeat_interval() -> None:
    with pytest.raises(ConfigError, match="AMITY_WORKER_TIMEOUT_S"):
        CoordinatorSettings(heartbeat_interval_s=5, worker_timeout_s=5)


def test_settings_come_from_amity_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMITY_NAMESPACE", "amity:v1:staging:")
    monkeypatch.setenv("AMITY_ALLOWED_HOSTS", '["127.0.0.1"]')
    settings = CoordinatorSettings()
    assert (settings.namespace, settings.allowed_hosts) == ("amity:v1:staging:", ["127.0.0.1"])
