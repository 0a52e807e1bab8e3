"""Conflict rules: validation of each policy's settings, and picking the rule for a topic."""

import pytest
from pydantic import ValidationError

from amity.ordering import OrderingField, Source
from amity.rules import MAX_TOPIC_PATTERN, ConflictRule, Fallback, FirstHop, Policy, RuleSet


def test_a_bare_rule_is_last_writer_wins() -> None:
    rule = ConflictRule(topic="orders")
    assert (rule.policy, rule.max_skew_ms, rule.first_hop) == (Policy.LWW, 60_000, FirstHop.STATE)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"policy": "timestamp"}, "policy timestamp needs `field`"),
        ({"policy": "timestamp", "field": "body"}, "must be 'timestamp', 'header:<name>' or 'json:<dotted.path>'"),
        ({"policy": "timestamp", "field": "header:"}, "must be 'timestamp'"),
        ({"policy": "timestamp", "field": "json:a..b"}, "empty step"),
        ({"policy": "region-priority"}, "policy region-priority needs `regions`"),
        ({"policy": "region-priority", "regions": ["us", "eu", "us"]}, r"regions \['us'\] are listed more than once"),
        ({"policy": "region-priority", "regions": ["US"]}, "String should match pattern"),
        ({"policy": "vector", "fallback": "region-priority"}, "with fallback region-priority needs `regions`"),
        ({"policy": "vector", "regions": ["us"]}, "policy vector does not use regions"),
        ({"policy": "lww", "field": "timestamp"}, "policy lww does not use field"),
        ({"policy": "lww", "fallback": "lww"}, "policy lww does not use fallback"),
        ({"policy": "none", "regions": ["us"]}, "policy none does not use regions"),
        ({"policy": "timestamp", "field": "timestamp", "regions": ["us"]}, "does not use regions"),
        ({"policy": "region-priority", "regions": ["us"], "fallback": "lww"}, "does not use fallback"),
        ({"policy": "lamport"}, "Input should be"),
        ({"max_skew_ms": 0}, "greater than 0"),
        ({"policy": "vector", "first_hop": "timestamp"}, "first_hop timestamp is for policies lww and timestamp"),
        ({"policy": "region-priority", "regions": ["us"], "first_hop": "timestamp"}, "only the region's state"),
        ({"policy": "none", "first_hop": "timestamp"}, "first_hop timestamp is for policies lww and timestamp"),
        ({"first_hop": "clock"}, "Input should be 'state' or 'timestamp'"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_rules_refuse_settings_that_do_not_fit_their_policy(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConflictRule(topic="orders", **settings)


def test_a_topic_pattern_must_compile() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        ConflictRule(topic="orders(")


def test_a_topic_pattern_is_no_longer_than_the_api_can_name_again() -> None:
    ConflictRule(topic="o" * MAX_TOPIC_PATTERN)
    with pytest.raises(ValidationError, match=f"at most {MAX_TOPIC_PATTERN} characters"):
        ConflictRule(topic="o" * (MAX_TOPIC_PATTERN + 1))


def test_valid_rules_of_every_policy() -> None:
    stamped = ConflictRule(topic="t", policy="timestamp", field="json:meta.updated_at")
    assert stamped.ordering_field == OrderingField(Source.JSON, "meta.updated_at", ("meta", "updated_at"))
    ranked = ConflictRule(topic="t", policy="region-priority", regions=["eu", "us", "ap"])
    assert ranked.priorities == {"eu": 3, "us": 2, "ap": 1}
    vector = ConflictRule(topic="t", policy="vector")
    assert vector.effective_fallback is Fallback.LWW
    by_priority = ConflictRule(topic="t", policy="vector", fallback="region-priority", regions=["us"])
    assert by_priority.effective_fallback is Fallback.REGION_PRIORITY
    assert ConflictRule(topic="t", policy="none").ordering_field is None
    assert ConflictRule(topic="t", first_hop="timestamp").first_hop is FirstHop.TIMESTAMP
    assert ConflictRule(topic="t", policy="timestamp", field="timestamp", first_hop="timestamp").first_hop == "timestamp"


@pytest.mark.parametrize(
    ("topic", "exact"), [("orders", True), ("orders.v1", True), ("a_b-c", True), ("orders.*", False), ("o[12]", False)]
)
def test_topics_made_of_kafka_name_characters_are_exact_names(topic: str, exact: bool) -> None:
    assert ConflictRule(topic=topic).is_exact is exact


def test_an_exact_name_beats_a_pattern_listed_before_it() -> None:
    rules = RuleSet(
        rules=[ConflictRule(topic="orders.*", policy="none"), ConflictRule(topic="orders.eu", policy="vector")]
    )
    assert rules.rule_for("orders.eu").policy is Policy.VECTOR
    assert rules.rule_for("orders.us").policy is Policy.NONE


def test_the_first_matching_pattern_wins() -> None:
    rules = RuleSet(rules=[ConflictRule(topic="orders-.*", policy="vector"), ConflictRule(topic=".*", policy="none")])
    assert rules.rule_for("orders-eu").policy is Policy.VECTOR
    assert rules.rule_for("payments").policy is Policy.NONE


def test_patterns_match_the_whole_name_and_exact_names_only_themselves() -> None:
    rules = RuleSet(rules=[ConflictRule(topic="orders.v1"), ConflictRule(topic="pay.+s")])
    assert rules.rule_for("ordersXv1") is None
    assert rules.rule_for("orders.v1.old") is None
    assert rules.rule_for("payments.dlq") is None
    assert rules.rule_for("payments") is not None


def test_no_rule_means_none() -> None:
    assert RuleSet().rule_for("orders") is None


def test_lookups_are_cached_per_topic() -> None:
    rules = RuleSet(rules=[ConflictRule(topic="o.+")])
    first = rules.rule_for("orders")
    assert rules._by_topic == {"orders": first}
    assert rules.rule_for("orders") is first


def test_two_rules_for_the_same_topic_are_refused() -> None:
    with pytest.raises(ValidationError, match="two conflict rules name topic 'orders'"):
        RuleSet(rules=[ConflictRule(topic="orders"), ConflictRule(topic="orders", policy="none")])


def test_rule_sets_load_from_plain_data() -> None:
    raw = {"rules": [{"topic": "orders", "policy": "region-priority", "regions": ["eu", "us"]}]}
    rules = RuleSet.model_validate(raw)
    assert rules.rule_for("orders").regions == ("eu", "us")
