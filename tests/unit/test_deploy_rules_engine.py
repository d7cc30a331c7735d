"""The cloud twin runs the topic rules it stores: a health record published through iot-data becomes the
CloudWatch datapoints the rules say (fleet and per-device metric, the twin's clock as timestamp); a failing
action runs the rule's error action; a disabled rule does nothing. Plain boto3 at the twin's endpoint."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.rules.install import install_health_rules
from edgeml.twin.cloud.service import ManualClock

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
ROLE = "arn:aws:iam::123456789012:role/rules"


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[tuple[CloudEndpoint, ManualClock]]:
    clock = ManualClock(datetime.now(UTC))  # CloudWatch Logs drops events older than 14 days
    with (
        CloudEndpoint(tmp_path, clock=clock, persist_moto=False) as endpoint,
        mock.patch.dict(os.environ, {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint.endpoint_url}),
    ):
        yield endpoint, clock


def _sum(cloudwatch: Any, namespace: str, metric: str, clock: ManualClock) -> list[float]:
    now = clock.now()
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric},
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
    )
    return [float(v) for v in answer["MetricDataResults"][0]["Values"]]


def test_a_health_record_becomes_fleet_and_device_metrics(twin: tuple[CloudEndpoint, ManualClock]) -> None:
    endpoint, clock = twin
    suffix = uuid.uuid4().hex[:8]
    namespace = f"EdgeML/Rules{suffix}"
    install_health_rules(boto3.client("iot", region_name=REGION), f"r_{suffix}", namespace, ROLE)
    data, cloudwatch = (
        boto3.client("iot-data", region_name=REGION),
        boto3.client("cloudwatch", region_name=REGION),
    )
    record = {
        "kind": "health",
        "requests": 50,
        "errors": 4,
        "latency_ms": {"p99": 9.5},
        "mean_confidence": None,
    }
    data.publish(topic=f"edgeml/core-{suffix}/inference/health", qos=1, payload=json.dumps(record).encode())
    data.publish(
        topic=f"edgeml/core-{suffix}/inference/health", qos=1, payload=b'{"kind": "event", "errors": 9}'
    )
    assert _sum(cloudwatch, namespace, f"Errors/core-{suffix}", clock) == [4.0]
    assert _sum(cloudwatch, namespace, "Errors", clock) == [4.0]
    assert _sum(cloudwatch, namespace, f"Requests/core-{suffix}", clock) == [50.0]
    assert _sum(cloudwatch, namespace, f"MeanConfidence/core-{suffix}", clock) == []  # null: WHERE drops it
    assert not endpoint.topic_rules.failures


def test_a_failing_action_runs_the_error_action_and_a_disabled_rule_nothing(
    twin: tuple[CloudEndpoint, ManualClock],
) -> None:
    endpoint, _ = twin
    suffix = uuid.uuid4().hex[:8]
    iot, logs = boto3.client("iot", region_name=REGION), boto3.client("logs", region_name=REGION)
    group = f"/edgeml/rule-errors-{suffix}"
    logs.create_log_group(logGroupName=group)
    action = {"metricNamespace": "X", "metricName": "Kind", "metricValue": "${kind}", "metricUnit": "None"}
    for name, disabled in ((f"bad_{suffix}", False), (f"off_{suffix}", True)):
        iot.create_topic_rule(
            ruleName=name,
            topicRulePayload={
                "sql": f"SELECT * FROM 'bad/{suffix}/+'",
                "ruleDisabled": disabled,
                "actions": [{"cloudwatchMetric": {**action, "roleArn": ROLE}}],
                "errorAction": {"cloudwatchLogs": {"logGroupName": group, "roleArn": ROLE}},
            },
        )
    boto3.client("iot-data", region_name=REGION).publish(
        topic=f"bad/{suffix}/x", payload=b'{"kind": "health"}'
    )
    failures = [f for f in endpoint.topic_rules.failures if suffix in f.rule]
    assert [f.rule for f in failures] == [f"bad_{suffix}"]
    assert "metricValue 'health' is not a number" in failures[0].message
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert len(events) == 1 and json.loads(events[0]["message"])["ruleName"] == f"bad_{suffix}"
