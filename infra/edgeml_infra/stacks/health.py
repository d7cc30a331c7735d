"""Health: the IoT topic rules that turn the app's health records into CloudWatch metrics (edgeml.config.
healthrule, the same definition a cloud twin executes), their error action, and fleet alarms a gate reads."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from constructs import Construct

from edgeml.config import outputs
from edgeml.config.healthrule import SQL_VERSION, health_rules
from edgeml_infra.nag import acknowledge_wildcard_resource
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.common import output

ALARM_PERIOD = Duration.minutes(5)


class HealthStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.rules_spec = health_rules(settings.rule_prefix, settings.metric_namespace)
        rule_arns = [
            self.format_arn(service="iot", resource="rule", resource_name=rule.name)
            for rule in self.rules_spec
        ]
        self.error_log = logs.LogGroup(
            self,
            "RuleErrors",
            log_group_name=settings.rule_error_log_group,
            removal_policy=RemovalPolicy.DESTROY,
        )
        cfn_log_group = self.error_log.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = settings.log_retention_days
        self.rule_role = iam.Role(
            self,
            "RuleRole",
            description="AWS IoT rules of the edgeml health metrics",
            # Confused-deputy guard (AWS IoT DG cross-service-confused-deputy-prevention).
            assumed_by=iam.ServicePrincipal(
                "iot.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": rule_arns},
                },
            ),
        )
        rule_policy = iam.Policy(
            self,
            "RuleAccess",
            statements=[
                iam.PolicyStatement(
                    sid="HealthMetricsInOurNamespaceOnly",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": settings.metric_namespace}},
                ),
                iam.PolicyStatement(
                    sid="RuleErrorLog",
                    actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    resources=[self.error_log.log_group_arn],
                ),
            ],
        )
        rule_policy.attach_to_role(self.rule_role)
        acknowledge_wildcard_resource(
            rule_policy,
            "*",
            "cloudwatch:PutMetricData has no resource type (IAM service authorization reference); it is "
            f"limited by the cloudwatch:namespace condition to {settings.metric_namespace}.",
        )
        error_action = iot.CfnTopicRule.ActionProperty(
            cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                log_group_name=self.error_log.log_group_name, role_arn=self.rule_role.role_arn
            )
        )
        self.topic_rules: list[iot.CfnTopicRule] = []
        for rule in self.rules_spec:
            topic_rule = iot.CfnTopicRule(
                self,
                "Rule" + "".join(part.capitalize() for part in rule.name.split("_")),
                rule_name=rule.name,
                topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                    sql=rule.sql,
                    aws_iot_sql_version=SQL_VERSION,
                    rule_disabled=False,
                    description=f"edgeml health record -> CloudWatch {settings.metric_namespace}",
                    actions=[
                        iot.CfnTopicRule.ActionProperty(
                            cloudwatch_metric=iot.CfnTopicRule.CloudwatchMetricActionProperty(
                                metric_namespace=action.metric_namespace,
                                metric_name=action.metric_name,
                                metric_value=action.metric_value,
                                metric_unit=action.metric_unit,
                                role_arn=self.rule_role.role_arn,
                            )
                        )
                        for action in rule.actions
                    ],
                    error_action=error_action,
                ),
            )
            topic_rule.node.add_dependency(rule_policy)
            self.topic_rules.append(topic_rule)
        self.alarms = self._alarms(settings)
        output(self, outputs.METRIC_NAMESPACE, settings.metric_namespace)
        output(self, outputs.HEALTH_ALARMS, {name: alarm.alarm_name for name, alarm in self.alarms.items()})
        output(self, outputs.HEALTH_RULES, [rule.name for rule in self.rules_spec])

    def _alarms(self, settings: Settings) -> dict[str, cloudwatch.Alarm]:
        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=settings.metric_namespace,
                metric_name=name,
                statistic=statistic,
                period=ALARM_PERIOD,
            )

        thresholds = settings.thresholds
        error_rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, errors / requests, 0)",
            using_metrics={"errors": metric("Errors", "Sum"), "requests": metric("Requests", "Sum")},
            period=ALARM_PERIOD,
            label="error rate",
        )
        specs: dict[str, tuple[cloudwatch.IMetric, float, cloudwatch.ComparisonOperator]] = {
            "ErrorRate": (
                error_rate,
                thresholds.max_error_rate,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            "LatencyP99": (
                metric("LatencyP99", "Maximum"),
                thresholds.max_latency_p99_ms,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            "MeanConfidence": (
                metric("MeanConfidence", "Minimum"),
                thresholds.min_mean_confidence,
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            ),
            "ClassPsi": (
                metric("ClassPsi", "Maximum"),
                thresholds.max_class_psi,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
        }
        alarms = {}
        for name, (source, threshold, comparison) in specs.items():
            alarms[name] = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                alarm_name=f"{settings.prefix}-health-{name}",
                alarm_description=f"edgeml fleet health: {name} against {threshold:g}",
                metric=source,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                # No health records (an idle fleet) is no evidence of bad health.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        return alarms
