"""The twin's IoT SQL subset, on the health rules' own SQL (edgeml.config.healthrule)."""

from __future__ import annotations

import pytest

from edgeml.config.healthrule import HEALTH_METRICS, rule_sql
from edgeml.twin.cloud.rules.engine import ActionFailed, substitute
from edgeml.twin.cloud.rules.sql import UNDEFINED, Message, RuleSqlError, parse, topic_matches

RECORD = {
    "kind": "health",
    "requests": 60,
    "errors": 3,
    "latency_ms": {"p50": 4.0, "p95": 9.0, "p99": 12.5},
    "mean_confidence": 0.91,
    "drift": {"class_psi": 0.04, "confidence_psi": None},
}


def _message(payload: object, topic: str = "edgeml/core-7/inference/health") -> Message:
    return Message(topic, payload, 1_767_225_600_000)


@pytest.mark.parametrize("metric", HEALTH_METRICS, ids=lambda m: m.name)
def test_each_health_rule_selects_its_field_and_the_thing(metric: object) -> None:
    statement = parse(rule_sql(metric))  # type: ignore[arg-type]
    assert statement.matches("edgeml/core-7/inference/health")
    result = statement.run(_message(RECORD))
    field = metric.field  # type: ignore[attr-defined]
    if field == "drift.confidence_psi":  # null in this record: WHERE null >= 0 is Undefined, so no action
        assert result is None
        return
    expected = RECORD
    for part in field.split("."):
        expected = expected[part]  # type: ignore[assignment,index]
    assert result == {"value": expected, "thing": "core-7"}


def test_where_drops_event_records_missing_fields_and_non_json() -> None:
    statement = parse(rule_sql(HEALTH_METRICS[0]))
    assert statement.run(_message({**RECORD, "kind": "event"})) is None
    assert statement.run(_message({"kind": "health"})) is None
    assert statement.run(_message(UNDEFINED)) is None
    assert statement.run(_message({**RECORD, "requests": "60"})) is None  # a string is not >= 0


def test_topic_filters_match_as_mqtt_does() -> None:
    assert topic_matches("edgeml/+/inference/health", "edgeml/a/inference/health")
    assert not topic_matches("edgeml/+/inference/health", "edgeml/a/b/inference/health")
    assert not topic_matches("edgeml/+/inference/health", "edgeml/a/inference/results")
    assert topic_matches("edgeml/#", "edgeml/a/inference/health")


def test_boolean_logic_with_undefined_follows_iot_sql() -> None:
    statement = parse("SELECT a FROM 't' WHERE missing = 1 OR a > 1")
    assert statement.run(_message({"a": 2}, "t")) == {"a": 2}
    assert parse("SELECT a FROM 't' WHERE NOT missing = 1").run(_message({"a": 2}, "t")) is None
    assert parse("SELECT * FROM 't' WHERE (a = 'x') AND b <> 3").run(_message({"a": "x", "b": 4}, "t")) == {
        "a": "x",
        "b": 4,
    }


def test_substitution_templates_see_the_payload_not_select_aliases() -> None:
    message = _message(RECORD)
    assert substitute("LatencyP99/${topic(2)}", message) == "LatencyP99/core-7"
    assert substitute("${latency_ms.p99}", message) == "12.5"
    assert substitute("${value}", message) == ""  # an AS alias is not in the payload


@pytest.mark.parametrize(
    "sql", ["SELECT upper(a) FROM 't'", "SELECT a FROM t", "SELECT a FROM 't' WHERE", "SELEC a"]
)
def test_sql_the_twin_cannot_run_is_refused(sql: str) -> None:
    with pytest.raises(RuleSqlError):
        parse(sql)


def test_a_template_the_twin_cannot_evaluate_fails_the_action() -> None:
    with pytest.raises(ActionFailed):
        substitute("${upper(a)}", _message(RECORD))
