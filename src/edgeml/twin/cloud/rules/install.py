"""The health topic rules (edgeml.config.healthrule, the CDK health stack's definition) put into an account
with plain boto3, for a cloud twin or an account without the CDK stacks. A rule that exists is left alone."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from edgeml.config.healthrule import SQL_VERSION, health_rules


def install_health_rules(
    iot: Any, rule_prefix: str, namespace: str, role_arn: str, error_log_group: str | None = None
) -> list[str]:
    """Creates the rules that are missing; returns the names created."""
    created = []
    for rule in health_rules(rule_prefix, namespace):
        payload: dict[str, Any] = {
            "sql": rule.sql,
            "awsIotSqlVersion": SQL_VERSION,
            "ruleDisabled": False,
            "actions": [
                {
                    "cloudwatchMetric": {
                        "metricNamespace": a.metric_namespace,
                        "metricName": a.metric_name,
                        "metricValue": a.metric_value,
                        "metricUnit": a.metric_unit,
                        "roleArn": role_arn,
                    }
                }
                for a in rule.actions
            ],
        }
        if error_log_group:
            payload["errorAction"] = {
                "cloudwatchLogs": {"logGroupName": error_log_group, "roleArn": role_arn}
            }
        try:
            iot.create_topic_rule(ruleName=rule.name, topicRulePayload=payload)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
            continue
        created.append(rule.name)
    return created
